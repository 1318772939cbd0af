//! The runtime seam on every driver: tasks, timers, cross-thread wake-ups, sockets.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tars_core_net::rt::net::{TcpListener, TcpStream};
use tars_core_net::rt::{self, IoMode, Shards};
use tars_proto::BytesMut;

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn tasks_and_timers(mode: IoMode) {
    let out = rt::block_on(mode, async {
        let t0 = Instant::now();
        let a = rt::spawn(async {
            rt::sleep(Duration::from_millis(30)).await;
            1
        });
        let b = rt::spawn(async { 2 });
        let slow = rt::timeout(Duration::from_millis(20), rt::sleep(Duration::from_secs(5))).await;
        assert!(slow.is_err(), "a 5 s sleep must time out after 20 ms");
        let fast = rt::timeout(Duration::from_secs(5), async { 7 }).await;
        assert_eq!(fast, Ok(7));
        let sum = a.await + b.await;
        (sum, t0.elapsed())
    })
    .unwrap();
    assert_eq!(out.0, 3);
    assert!(out.1 >= Duration::from_millis(30), "sleep returned early: {:?}", out.1);
    assert!(out.1 < Duration::from_secs(3), "timers fired late: {:?}", out.1);
}

fn wake_from_another_thread(mode: IoMode) {
    let (tx, rx) = rt::sync::channel::bounded::<u32>(4);
    let feeder = std::thread::spawn(move || {
        for i in 0..100 {
            std::thread::sleep(Duration::from_micros(200));
            tx.send_blocking(i).unwrap();
        }
    });
    let got = rt::block_on(mode, async move {
        let mut sum = 0;
        while let Ok(v) = rx.recv().await {
            sum += v;
        }
        sum
    })
    .unwrap();
    feeder.join().unwrap();
    assert_eq!(got, (0..100).sum::<u32>());
}

fn tcp_echo(mode: IoMode) {
    rt::block_on(mode, async {
        let listener = TcpListener::bind(local()).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = rt::spawn(async move {
            let mut s = listener.accept().await.unwrap();
            let mut buf = BytesMut::new();
            loop {
                let before = buf.len();
                let n = s.read_buf(&mut buf, 1 << 20).await.unwrap();
                if n == 0 {
                    break;
                }
                let chunk = buf.split_off(before);
                s.write_all(&chunk).await.unwrap();
            }
        });
        let c = TcpStream::connect(addr).await.unwrap();
        c.set_nodelay(true).unwrap();
        // Larger than socket buffers, so writes block and EPOLLOUT gets armed and disarmed.
        let payload: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
        // The stream is one object; a writer task and this reader share it by handing it
        // over: the writer sends in chunks, yielding between them, while we read.
        let shared = std::rc::Rc::new(std::cell::RefCell::new(c));
        let w = {
            let shared = shared.clone();
            let data = payload.clone();
            rt::spawn(async move {
                for chunk in data.chunks(64 * 1024) {
                    let mut off = 0;
                    while off < chunk.len() {
                        let n = std::future::poll_fn(|cx| shared.borrow_mut().poll_write_some(cx, &chunk[off..]))
                            .await
                            .unwrap();
                        off += n;
                    }
                }
                shared.borrow_mut().write_idle().unwrap();
                shared.borrow().shutdown(std::net::Shutdown::Write).unwrap();
            })
        };
        let (mut got, mut back) = (Vec::new(), BytesMut::new());
        loop {
            let n = std::future::poll_fn(|cx| shared.borrow_mut().poll_read_buf(cx, &mut back, 1 << 20)).await.unwrap();
            if n == 0 {
                break;
            }
        }
        w.await;
        got.extend_from_slice(&back);
        server.await;
        assert_eq!(got.len(), payload.len());
        assert!(got == payload, "echoed bytes differ");
    })
    .unwrap();
}

fn connect_refused(mode: IoMode) {
    rt::block_on(mode, async {
        // Bind then drop to find a port nobody listens on.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let r = TcpStream::connect(addr).await;
        assert!(r.is_err(), "connect to a closed port must fail");
    })
    .unwrap();
}

fn shards_share_a_port(mode: IoMode) {
    // Both shards bind the same port (SO_REUSEPORT) and count what they accept.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let tx = std::sync::Mutex::new(tx);
    let shards = Shards::start("t", 2, mode, move |info| {
        let tx = tx.lock().unwrap().clone();
        async move {
            let l = TcpListener::bind(addr).unwrap();
            tx.send(usize::MAX).unwrap();
            let mut served = 0;
            loop {
                let accept = rt::timeout(Duration::from_millis(1500), l.accept()).await;
                match accept {
                    Ok(Ok(mut s)) => {
                        s.write_all(&[info.id as u8]).await.unwrap();
                        served += 1;
                    }
                    _ => break,
                }
            }
            tx.send(served).unwrap();
        }
    })
    .unwrap();
    assert_eq!(rx.recv().unwrap(), usize::MAX);
    assert_eq!(rx.recv().unwrap(), usize::MAX);
    let mut seen = [0usize; 2];
    for _ in 0..64 {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut b = [0u8; 1];
        std::io::Read::read_exact(&mut s, &mut b).unwrap();
        seen[b[0] as usize] += 1;
    }
    shards.join().unwrap();
    let served: usize = rx.try_iter().sum();
    assert_eq!(served, 64);
    assert_eq!(seen.iter().sum::<usize>(), 64);
}

tars_core_net::on_every_driver! {
    timers => tasks_and_timers;
    cross_thread_wake => wake_from_another_thread;
    echo_4mb => tcp_echo;
    refused => connect_refused;
    reuseport => shards_share_a_port;
}

#[test]
fn io_mode_parses_config_words() {
    assert_eq!("uring".parse::<IoMode>().unwrap(), IoMode::Uring);
    assert_eq!("epoll-et".parse::<IoMode>().unwrap(), IoMode::EpollEt);
    assert_eq!("epoll-lt".parse::<IoMode>().unwrap(), IoMode::EpollLt);
    assert!("kqueue".parse::<IoMode>().is_err());
    for m in IoMode::ALL {
        assert_eq!(m.as_str().parse::<IoMode>().unwrap(), m);
    }
}

#[test]
fn uring_probe_answers_on_this_machine() {
    // Whatever the answer, it must be stable and resolve() must agree with it.
    let first = rt::probe_uring();
    assert_eq!(first, rt::probe_uring());
    let resolved = IoMode::Uring.resolve();
    assert_eq!(resolved == IoMode::Uring, first.is_ok());
}
