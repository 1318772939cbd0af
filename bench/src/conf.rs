//! The server config the in-process benchmarks start their services with.

/// `<tars><application><server>` for `app.server` with an admin `local` port and one adapter
/// per servant, all on free ports of 127.0.0.1, with the echo server's adapter settings
/// (`maxconns=100000`, `queuecap=0`, `queuetimeout=60000`) so every server measured side by
/// side queues alike; `server_extra` goes inside `<server>`, `extra` after `</application>`.
pub fn server_config(app: &str, server: &str, servants: &[&str], server_extra: &str, extra: &str) -> String {
    let mut adapters = String::new();
    for obj in servants {
        adapters.push_str(&format!(
            "  <{obj}Adapter>\n    endpoint=tcp -h 127.0.0.1 -p 0 -t 60000\n    servant={obj}\n    \
             maxconns=100000\n    queuecap=0\n    queuetimeout=60000\n  </{obj}Adapter>\n"
        ));
    }
    format!(
        "<tars>\n<application>\n<server>\n  app={app}\n  server={server}\n  \
         local=tcp -h 127.0.0.1 -p 0 -t 10000\n{server_extra}{adapters}</server>\n</application>\n{extra}</tars>\n"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tars_core_net::server::adapter::ServerConfig;
    use tars_proto::config::Config;

    #[test]
    fn every_servant_gets_an_adapter_and_the_extras_land_where_asked() {
        let text =
            server_config("A", "S", &["A.S.One", "A.S.Two"], "  logpath=/tmp/x\n", "<log>\nfsync=never\n</log>\n");
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.get("/tars/application/server<logpath>"), Some("/tmp/x"));
        assert_eq!(c.get("/tars/log<fsync>"), Some("never"));
        let server = ServerConfig::from_config(&c).unwrap();
        let servants: Vec<&str> = server.adapters.iter().map(|a| a.servant.as_str()).collect();
        assert_eq!(servants, ["A.S.One", "A.S.Two"]);
        assert!(server
            .adapters
            .iter()
            .all(|a| a.max_conns == 100_000 && a.queue_timeout == std::time::Duration::from_secs(60)));
    }
}
