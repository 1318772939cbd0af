//! Hello, world: the `TestApp.Hello` interface of `tars/Hello.tars` and its servant.
//!
//! `build.rs` compiles the IDL into module [`TestApp`]: the servant trait
//! [`TestApp::Hello`], its adapter wrapper [`TestApp::HelloServant`] and the client
//! [`TestApp::HelloProxy`]. `src/main.rs` serves [`HelloImp`] under [`HELLO_OBJ`].

use std::cell::Cell;

use tars_proto::rpc::{Current, ServantError};

include!(concat!(env!("OUT_DIR"), "/_include.rs"));

/// The servant name; `hello.conf` gives it an adapter.
pub const HELLO_OBJ: &str = "TestApp.HelloServer.HelloObj";

/// The `Hello` servant. The server builds one per shard and calls it only from that
/// shard's thread, so the counter is a plain `Cell`.
#[derive(Debug, Default)]
pub struct HelloImp {
    shard: usize,
    calls: Cell<i64>,
}

impl HelloImp {
    /// The servant of shard `shard`.
    pub fn new(shard: usize) -> HelloImp {
        HelloImp { shard, calls: Cell::new(0) }
    }
}

impl TestApp::Hello for HelloImp {
    async fn say_hello(
        &self,
        _current: &mut Current,
        name: String,
        greeting: &mut String,
    ) -> Result<i32, ServantError> {
        self.calls.set(self.calls.get() + 1);
        *greeting = format!("Hello, {name}!");
        Ok(0)
    }

    async fn count(&self, _current: &mut Current, n: &mut i64) -> Result<i32, ServantError> {
        *n = self.calls.get();
        Ok(i32::try_from(self.shard).unwrap_or(i32::MAX))
    }

    async fn add(&self, _current: &mut Current, a: i32, b: i32, c: &mut i32) -> Result<i32, ServantError> {
        // An overflow is the caller's mistake, answered as such, never a panic.
        match a.checked_add(b) {
            Some(sum) => {
                *c = sum;
                Ok(0)
            }
            None => Ok(-1),
        }
    }
}
