//! `hello-client [NAME] [OBJECT]`: calls `sayHello(NAME)` and `count` on the hello server and
//! prints the answers. NAME defaults to `world`, OBJECT to the endpoint in `hello.conf`.

use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_example_hello::{TestApp::HelloProxy, HELLO_OBJ};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "world".to_owned());
    let object = args.next().unwrap_or_else(|| format!("{HELLO_OBJ}@tcp -h 127.0.0.1 -p 18601"));
    let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt)?;
    let (greeting, shard, n) = client.run(move |comm| async move {
        let hello = HelloProxy::new(comm.proxy(&object)?, HELLO_OBJ);
        let mut greeting = String::new();
        hello.say_hello(&name, &mut greeting).await?;
        let mut n = 0;
        let shard = hello.count(&mut n).await?;
        anyhow::Ok((greeting, shard, n))
    })?;
    println!("{greeting}");
    println!("shard {shard} has answered sayHello {n} times");
    Ok(())
}
