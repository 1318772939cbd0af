//! The Prometheus HTTP service-discovery endpoint (`http_sd_configs`): `GET /prometheus/sd`
//! answers the same groups as the container interface's `getMetricsAdapters`, as
//!
//! ```json
//! [{"targets":["10.0.0.7:9325"],"labels":{"application":"App","server":"Server","set":""}}]
//! ```
//!
//! Served by [`tars_core_net::http`] (a small hardened HTTP/1.1 server on std threads: its
//! limits, timeouts, 503 beyond [`MAX_CONNECTIONS`], 404/405/400/431): Prometheus asks once a
//! minute, and the answer needs a database query, which runs on the connection's own thread,
//! never on an IO shard. A good answer is kept for [`CACHE_FOR`]: however many clients ask,
//! the database sees at most one query a second (the lock is held across the query, so
//! requests that arrive together share one).

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tars_core_net::http::{self, Handler, Response};
use tars_protocol::tars::MetricsAdapterInfo;

use crate::container::query_metrics_adapters;
use crate::Context;

pub use tars_core_net::http::{HttpServer as HttpSd, IO_TIMEOUT, MAX_CONNECTIONS, MAX_REQUEST_HEAD, REQUEST_DEADLINE};

/// The discovery path.
pub const SD_PATH: &str = "/prometheus/sd";
/// How long an answer is served again without asking the database.
pub const CACHE_FOR: Duration = Duration::from_secs(1);

/// The last good answer and when it was made. Shared by the HTTP connection threads only.
type Cache = Mutex<Option<(Instant, Response)>>;

/// Binds `addr` (`host:port`; port 0 picks one) and serves discovery requests from `ctx`'s
/// database on a thread of its own.
pub fn start(addr: &str, ctx: Arc<Context>) -> io::Result<HttpSd> {
    let cache: Arc<Cache> = Arc::new(Mutex::new(None));
    let handler: Handler = Arc::new(move || cached(&cache, || answer(&ctx)));
    let server = http::serve(addr, "tars-registry-sd", vec![(SD_PATH, handler)])?;
    tracing::info!(addr = %server.addr(), path = SD_PATH, "Prometheus service discovery listening");
    Ok(server)
}

/// The cached answer while fresh, else a new one (cached when it is a 200).
fn cached(cache: &Cache, make: impl FnOnce() -> Response) -> Response {
    let mut slot = cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((at, r)) = slot.as_ref() {
        if at.elapsed() < CACHE_FOR {
            return r.clone();
        }
    }
    let r = make();
    *slot = (r.status == 200).then(|| (Instant::now(), r.clone()));
    r
}

fn answer(ctx: &Context) -> Response {
    // This thread may block: the store's blocking entry point is the right one here.
    match ctx.store.run_blocking(query_metrics_adapters) {
        Ok(groups) => Response::json(render(&groups)),
        Err(e) => {
            tracing::warn!(error = %e, "service discovery: database query failed");
            Response::text(503, format!("database unavailable: {e}\n"))
        }
    }
}

/// The Prometheus HTTP SD document for `groups`.
pub fn render(groups: &[MetricsAdapterInfo]) -> String {
    let doc: Vec<serde_json::Value> =
        groups.iter().map(|g| serde_json::json!({ "targets": g.targets, "labels": g.labels })).collect();
    serde_json::Value::Array(doc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_document_is_prometheus_shaped() {
        let g = MetricsAdapterInfo {
            targets: vec!["n1:9325".into()],
            labels: BTreeMap::from([("application".into(), "A".into()), ("set".into(), String::new())]),
        };
        let v: serde_json::Value = serde_json::from_str(&render(&[g])).expect("JSON");
        assert_eq!(v, serde_json::json!([{"targets": ["n1:9325"], "labels": {"application": "A", "set": ""}}]));
        assert_eq!(render(&[]), "[]");
    }
}
