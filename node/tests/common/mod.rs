//! What the node's end-to-end tests share: a real registry over a test `db_tars`, and the
//! adapter sections of the configs they write.
#![allow(dead_code)]

use tars_core_net::rt::IoMode;
use tars_proto::config::Config;
use tars_registry::service::{Registry, StartOptions};
use tars_testkit::db::TestDb;

/// The registry's node-facing object.
pub(crate) const REGISTRY: &str = "tars.tarsregistry.RegistryObj";
/// The registry's locator object.
pub(crate) const QUERY: &str = "tars.tarsregistry.QueryObj";

/// `<{obj}Adapter>` on `host:port` (0: any port).
pub(crate) fn adapter(obj: &str, host: &str, port: u16) -> String {
    format!("<{obj}Adapter>\nendpoint=tcp -h {host} -p {port} -t 60000\nservant={obj}\n</{obj}Adapter>\n")
}

/// A registry named `server` with QueryObj and RegistryObj on `host` at `ports` (0: any), a
/// 100 ms change poll plus the `reap` keys, and `extra` sections under `<tars>`.
pub(crate) fn start_registry(
    db: &TestDb,
    server: &str,
    host: &str,
    ports: (u16, u16),
    reap: &str,
    extra: &str,
) -> Registry {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver={server}\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n{}{}</server>\n</application>\n\
         <reap>\nchangePollMs=100\n{reap}</reap>\n{extra}</tars>\n",
        adapter(QUERY, host, ports.0),
        adapter(REGISTRY, host, ports.1),
    );
    let opts = StartOptions { io: Some(IoMode::EpollEt), shards: Some(1), store: Some(db.store.clone()) };
    tars_registry::service::start(&Config::parse(&text).unwrap(), opts).unwrap()
}
