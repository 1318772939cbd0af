//! Implementations of the test servants, exactly as `tars/Interop.tars` documents them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tars_core_net::{rt, Bytes};
use tars_proto::rpc::{Current, ServantError};

use crate::TarsBench::Echo;
use crate::TarsTest::{Interop, Payload};

/// Largest blob `bigBlob` will build, so a hostile size cannot exhaust memory.
pub const MAX_BLOB: i32 = 8 * 1024 * 1024;

/// What `fire` recorded: shared by every shard, since a oneway note and the call that reads it
/// back may arrive on different connections.
#[derive(Debug, Default)]
struct Fired {
    count: i32,
    last: String,
}

/// The `Interop` servant. One instance per shard; the `fire` log is shared between them.
#[derive(Debug, Clone, Default)]
pub struct InteropImpl {
    fired: Arc<Mutex<Fired>>,
}

impl Interop for InteropImpl {
    async fn echo_string(&self, _: &mut Current, s: String) -> Result<String, ServantError> {
        Ok(s)
    }

    async fn add_ints(&self, _: &mut Current, a: i32, b: i64) -> Result<i64, ServantError> {
        Ok(i64::from(a).wrapping_add(b))
    }

    async fn round_trip(&self, _: &mut Current, p: Payload, echoed: &mut Payload) -> Result<i32, ServantError> {
        let n = i32::try_from(p.values.len()).unwrap_or(i32::MAX);
        *echoed = p;
        echoed.id = echoed.id.wrapping_add(1);
        echoed.words.push("seen".to_owned());
        Ok(n)
    }

    async fn split_name(
        &self,
        _: &mut Current,
        full: String,
        first: &mut String,
        last: &mut String,
    ) -> Result<i32, ServantError> {
        let (f, l) = full.split_once(' ').unwrap_or((full.as_str(), ""));
        *first = f.to_owned();
        *last = l.to_owned();
        Ok(i32::try_from(full.len()).unwrap_or(i32::MAX))
    }

    async fn fail(&self, _: &mut Current, code: i32) -> Result<i32, ServantError> {
        Err(ServantError::new(code, format!("fail {code}")))
    }

    async fn fire(&self, _: &mut Current, note: String) -> Result<(), ServantError> {
        let mut f = self.fired.lock().map_err(|_| ServantError::unknown("fire log poisoned"))?;
        f.count += 1;
        f.last = note;
        Ok(())
    }

    async fn last_fired(&self, _: &mut Current, note: &mut String) -> Result<i32, ServantError> {
        let f = self.fired.lock().map_err(|_| ServantError::unknown("fire log poisoned"))?;
        note.clone_from(&f.last);
        Ok(f.count)
    }

    async fn big_blob(&self, _: &mut Current, size: i32) -> Result<Bytes, ServantError> {
        if !(0..=MAX_BLOB).contains(&size) {
            return Err(ServantError::unknown(format!("bigBlob size {size} outside 0..={MAX_BLOB}")));
        }
        Ok((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into())
    }

    async fn slow_echo(&self, _: &mut Current, v: i32, delay_ms: i32, echoed: &mut i32) -> Result<i32, ServantError> {
        let ms = u64::try_from(delay_ms.clamp(0, 60_000)).unwrap_or(0);
        rt::sleep(Duration::from_millis(ms)).await;
        *echoed = v.wrapping_mul(2);
        Ok(v)
    }
}

/// The bench echo servant: `sOut = sIn`, returns 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, _: &mut Current, s_in: String, s_out: &mut String) -> Result<i32, ServantError> {
        *s_out = s_in;
        Ok(0)
    }
}

/// The servant name of [`FaultServant`]; `tars-test-server` serves it only when its config
/// gives it an adapter (`FaultObjAdapter`).
pub const FAULT_OBJ: &str = "TarsTest.InteropServer.FaultObj";
/// Its adapter's name.
pub const FAULT_ADAPTER: &str = "TarsTest.InteropServer.FaultObjAdapter";

/// A hand-written servant that fails the ways a servant can, for the panic tests (never in a
/// production server): `panicInFuture` panics while its call runs, `panicInDispatch` panics
/// in `dispatch` itself before returning a future (as a fast path that decodes on the spot
/// could), `killShard` spawns a task that panics outside any call, which takes its shard
/// down. Any other function answers 0. No parameters; one instance per shard.
#[derive(Debug, Default)]
pub struct FaultServant;

impl tars_proto::dispatch::Dispatch for FaultServant {
    fn dispatch(self: std::rc::Rc<Self>, current: Current, _body: Bytes) -> tars_proto::dispatch::DispatchFuture {
        match current.func.as_str() {
            "panicInDispatch" => panic!("panicInDispatch asked for it"),
            // The task first yields to the executor, so it panics outside this call.
            "killShard" => rt::spawn(async {
                rt::sleep(Duration::from_millis(10)).await;
                panic!("killShard asked for it")
            })
            .detach(),
            _ => {}
        }
        Box::pin(async move {
            if current.func == "panicInFuture" {
                rt::sleep(Duration::from_millis(1)).await;
                panic!("panicInFuture asked for it");
            }
            let mut w = tars_proto::rpc::ParamWriter::new(current.version);
            w.write_ret(&0i32);
            (current, Ok(w.finish()))
        })
    }
}
