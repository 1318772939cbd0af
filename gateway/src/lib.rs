//! tarsgateway: the HTTP JSON gateway, as upstream's TarsGateway (`json_path`, port 8200)
//! serves it. `POST /json/App.Server.Obj/func` with a JSON object as its body becomes a
//! JSON-protocol call (iVersion 5: the body's members are the parameters by name); the
//! answer's body is the servant's JSON (`tars_ret` and the `out` parameters by name):
//!
//! ```text
//! curl -d '{"a":1,"b":2}' http://127.0.0.1:8200/json/TestApp.HelloServer.HelloObj/add
//! {"c":3,"tars_ret":0}
//! ```
//!
//! The object is resolved through the application's `<client>` `locator` (an object the
//! registry does not know is 404, and costs one locator query; only known ones reach the
//! client, so made-up names leave no state behind); the path can never name endpoints, so a
//! caller cannot choose where the gateway connects. The caller's address goes along as the
//! call context's `REMOTE_IP`, as upstream does.
//!
//! | outcome | status |
//! |---|---|
//! | the call answered `iRet` 0 | 200, the servant's JSON (a business error is its `tars_ret`) |
//! | path not `/json/App.Server.Obj/func`, body not one JSON object, `iRet` −1 (the servant could not decode it) | 400 |
//! | the object refused by `allow`/`deny` | 403 |
//! | the registry does not know the object, `iRet` −3 (no such function) or −4 (no such servant) | 404 |
//! | another method than `POST` | 405 |
//! | `Transfer-Encoding` instead of `Content-Length` | 411 |
//! | body over `maxBodyKB` | 413 |
//! | connections over `maxConnections`, calls over `maxInFlight`, objects over `maxObjects`, `iRet` −9 (overload) | 503 |
//! | the call timed out (or `iRet` −6/−7) | 504 |
//! | no active endpoint, connection failed, any other `iRet` | 502 |
//!
//! Errors are answered as `{"error":{"status":…,"tars_ret":…,"message":…}}` (upstream answers
//! HTML pages with the same codes; upstream maps every backend `iRet` other than a timeout to
//! 502, where we say 400/404/503 when the code says whose fault it is).
//!
//! Config keys (besides `<tars><application><server>` and `<client>` `locator`):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `/tars/gateway<listen>` | `localip:8200` (or the first adapter's host, else `127.0.0.1`) | the HTTP address, `host:port` (port 0: any) |
//! | `/tars/gateway<allow>` | — | object patterns (`*` any run; `,` `;` `\|` or space separated): when set, only these are called; a match also lifts the default deny |
//! | `/tars/gateway<deny>` | — | more object patterns refused, on top of the built-in `tars.*` and `*.AdminObj` |
//! | `/tars/gateway<maxBodyKB>` | 64 | the largest request body (beyond: 413) |
//! | `/tars/gateway<maxConnections>` | 256 | HTTP connections at once (beyond: 503) |
//! | `/tars/gateway<maxInFlight>` | 128 | calls waiting for an answer at once (beyond: 503) |
//! | `/tars/gateway<maxObjects>` | 1024 | distinct objects called (beyond: 503 for a new one) |
//! | `/tars/gateway<timeoutMs>` | 3000 | how long a call (and a locator query) may take |
//! | `/tars/gateway<ioTimeoutMs>` | 5000 | one HTTP read or write; how long an idle keep-alive connection lasts |
//!
//! The framework's own objects (`tars.*`: registry, node, config, AdminReg…) and any
//! `*.AdminObj` are refused unless `allow` names them: a gateway faces callers the cluster
//! does not trust. Upstream's `auto_proxy=0` with its `<proxy>` table corresponds to an
//! `allow` list. Request bodies are never logged; each call is one `debug` line (peer, path,
//! status, time).
//!
//! Admin command `tars.gateway`: requests, ok, bad_request, refused, not_found, busy, failed,
//! timeouts, in_flight, objects, and the policy.
//!
//! Start reading at [`call`] (the rules, sans-IO), then [`service`].

pub mod call;
pub mod error;
pub mod service;

pub use error::GatewayError;
pub use service::{GatewayService, GatewaySettings, Stats, DEFAULT_PORT, JSON_PREFIX, STATUS_COMMAND};
