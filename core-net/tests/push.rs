#![allow(clippy::unwrap_used)]
//! Server push on every IO driver: a servant keeps the push handle of the connection a call
//! came on, pushes to that client later from another thread, and the client's push handler
//! gets each push with its function name; once the client goes, the handle says so.

use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_core_net::server::adapter::ServerConfig;
use tars_core_net::server::{Dispatch, DispatchFuture, ServerBuilder};
use tars_proto::config::Config;
use tars_proto::push::{PushError, PushHandle};
use tars_proto::rpc::{CallOptions, Current, ParamWriter, ServantError};
use tars_proto::Bytes;

const OBJ: &str = "T.S.PushObj";

/// `subscribe()`: remembers the caller's connection.
struct Subscribe(Arc<Mutex<Vec<PushHandle>>>);

impl Dispatch for Subscribe {
    fn dispatch(self: Rc<Self>, current: Current, _body: Bytes) -> DispatchFuture {
        Box::pin(async move {
            let result = match (current.func.as_str(), &current.push) {
                ("subscribe", Some(h)) => {
                    self.0.lock().unwrap().push(h.clone());
                    Ok(ParamWriter::new(current.version).finish())
                }
                ("subscribe", None) => Err(ServantError::unknown("no push handle")),
                (other, _) => Err(ServantError::no_func(other)),
            };
            (current, result)
        })
    }
}

fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while !f() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

fn pushes_reach_the_client_and_closing_is_seen(io: IoMode) {
    let conf = format!(
        "<tars>\n<application>\n<server>\napp=T\nserver=S\n<{OBJ}Adapter>\n\
         endpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={OBJ}\n</{OBJ}Adapter>\n\
         </server>\n</application>\n</tars>\n"
    );
    let subscribers = Arc::new(Mutex::new(Vec::new()));
    let subs = subscribers.clone();
    let server = ServerBuilder::new(ServerConfig::from_config(&Config::parse(&conf).unwrap()).unwrap())
        .servant(OBJ, move |_| Subscribe(subs.clone()))
        .shards(2)
        .io(io)
        .start()
        .unwrap();
    let port = server.addr(&format!("{OBJ}Adapter")).unwrap().port();

    let client = BlockingClient::start(ClientConfig::default(), io).unwrap();
    let got: Arc<Mutex<Vec<(String, i16, Bytes)>>> = Arc::default();
    let sink = got.clone();
    let obj = format!("{OBJ}@tcp -h 127.0.0.1 -p {port}");
    client.run(move |comm| async move {
        comm.on_push(move |p| sink.lock().unwrap().push((p.func, p.version, p.body)));
        let proxy = comm.proxy(&obj).unwrap();
        let opts = CallOptions::default();
        tars_proto::rpc::call(&proxy, OBJ, "subscribe", ParamWriter::new(1).finish(), &opts, false).await.unwrap();
    });
    let handle = subscribers.lock().unwrap().pop().expect("the call carried a push handle");
    assert!(!handle.is_closed());
    // Pushed from this thread, not the connection's shard.
    for i in 0..3u8 {
        handle.push(&format!("f{i}"), 1, Bytes::from(vec![i])).unwrap();
    }
    assert!(
        wait(Duration::from_secs(5), || got.lock().unwrap().len() == 3),
        "pushes arrived: {:?}",
        got.lock().unwrap()
    );
    let got_now = got.lock().unwrap().clone();
    let expect: Vec<(String, i16, Bytes)> = (0..3u8).map(|i| (format!("f{i}"), 1, Bytes::from(vec![i]))).collect();
    assert_eq!(got_now, expect, "in order, with their names and bodies");

    // The client goes away: its connection closes and the handle refuses further pushes.
    drop(client);
    assert!(wait(Duration::from_secs(5), || handle.is_closed()), "handle sees the close");
    assert_eq!(handle.push("late", 1, Bytes::new()), Err(PushError::Closed));
    server.shutdown();
    server.wait().unwrap();
}

tars_core_net::on_every_driver! {
    pushes_reach_the_client => pushes_reach_the_client_and_closing_is_seen;
}
