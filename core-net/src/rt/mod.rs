//! The runtime seam: shards, tasks, timers and sockets, over two IO drivers.
//!
//! A *shard* is one thread running one single-threaded executor. Everything a shard creates
//! (tasks, sockets, timers) stays on it; work crosses shards only through channels. Two
//! drivers sit behind the same functions, so service code never names either:
//!
//! - [`IoMode::Uring`]: glommio over io_uring.
//! - [`IoMode::EpollEt`] / [`IoMode::EpollLt`]: our own reactor written directly over epoll,
//!   edge- or level-triggered (see `epoll/mod.rs` for how the two modes differ).
//!
//! The driver is chosen per thread when its executor starts ([`block_on`], [`Shards::start`]);
//! [`spawn`], [`sleep`] and [`net`] then dispatch on the thread's driver. Calling them from a
//! thread that runs no executor panics with a message saying so: that is a programming error,
//! not an input error.

mod epoll;
pub mod net;
mod probe;
pub mod sync;
mod uring;

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use probe::{probe_uring, UringUnavailable};

/// Which IO driver a shard runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoMode {
    /// glommio over io_uring.
    Uring,
    /// Our epoll reactor, edge-triggered: drain reads and writes until `EAGAIN`.
    EpollEt,
    /// Our epoll reactor, level-triggered: one read per readiness report.
    EpollLt,
}

impl IoMode {
    /// Every mode, in the order tests and benchmarks run them.
    pub const ALL: [IoMode; 3] = [IoMode::Uring, IoMode::EpollEt, IoMode::EpollLt];

    /// The config-file spelling: `uring`, `epoll-et` or `epoll-lt`.
    pub fn as_str(self) -> &'static str {
        match self {
            IoMode::Uring => "uring",
            IoMode::EpollEt => "epoll-et",
            IoMode::EpollLt => "epoll-lt",
        }
    }

    /// The mode that will actually run when `self` is asked for: `Uring` becomes `EpollEt`
    /// when io_uring cannot be used here, with one log line saying why.
    pub fn resolve(self) -> IoMode {
        if self != IoMode::Uring {
            return self;
        }
        match probe_uring() {
            Ok(()) => IoMode::Uring,
            Err(why) => {
                tracing::warn!("io_uring unavailable ({why}); running on epoll-et instead");
                IoMode::EpollEt
            }
        }
    }
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `io` value that is none of the three modes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown io mode {0:?} (expected uring, epoll-et or epoll-lt)")]
pub struct UnknownIoMode(pub String);

impl FromStr for IoMode {
    type Err = UnknownIoMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "uring" => Ok(IoMode::Uring),
            "epoll-et" | "epoll" => Ok(IoMode::EpollEt),
            "epoll-lt" => Ok(IoMode::EpollLt),
            other => Err(UnknownIoMode(other.to_owned())),
        }
    }
}

/// Starting a shard or an executor failed.
#[derive(Debug, thiserror::Error)]
pub enum RtError {
    /// The driver could not be set up (epoll/eventfd creation, io_uring setup).
    #[error("cannot start the {mode} driver: {source}")]
    Driver {
        /// The driver that failed.
        mode: IoMode,
        /// Why.
        source: std::io::Error,
    },
    /// The shard thread could not be spawned.
    #[error("cannot spawn shard thread: {0}")]
    Thread(std::io::Error),
    /// A shard's root future panicked.
    #[error("shard {0} panicked")]
    Panicked(usize),
}

thread_local! {
    static CURRENT: Cell<Option<IoMode>> = const { Cell::new(None) };
}

/// The driver of the executor running on this thread, if any.
pub fn current_io() -> Option<IoMode> {
    CURRENT.with(Cell::get)
}

fn driver() -> IoMode {
    current_io().unwrap_or_else(|| panic!("tars runtime function called outside a shard executor"))
}

/// Restores the thread's previous driver marker even if the executor unwinds.
struct CurrentGuard(Option<IoMode>);

impl CurrentGuard {
    fn set(mode: IoMode) -> CurrentGuard {
        CurrentGuard(CURRENT.with(|c| c.replace(Some(mode))))
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Runs `fut` to completion on a new executor of driver `mode` on this thread.
/// `mode` is used as given: call [`IoMode::resolve`] first to get the uring fallback.
pub fn block_on<T: 'static>(mode: IoMode, fut: impl Future<Output = T> + 'static) -> Result<T, RtError> {
    let _guard = CurrentGuard::set(mode);
    match mode {
        IoMode::Uring => uring::block_on(fut),
        IoMode::EpollEt => epoll::block_on(epoll::Trigger::Edge, fut),
        IoMode::EpollLt => epoll::block_on(epoll::Trigger::Level, fut),
    }
    .map_err(|source| RtError::Driver { mode, source })
}

/// A spawned task. Awaiting it gives its output; dropping it cancels the task unless
/// [`Task::detach`] was called.
#[must_use = "dropping a Task cancels it; call detach() to let it run"]
#[derive(Debug)]
pub struct Task<T>(TaskInner<T>);

#[derive(Debug)]
enum TaskInner<T> {
    Uring(glommio::Task<T>),
    Epoll(async_task::Task<T>),
}

impl<T> Task<T> {
    /// Lets the task run to completion on its own.
    pub fn detach(self) {
        match self.0 {
            TaskInner::Uring(t) => {
                t.detach();
            }
            TaskInner::Epoll(t) => t.detach(),
        }
    }
}

impl<T> Future for Task<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match &mut self.get_mut().0 {
            TaskInner::Uring(t) => Pin::new(t).poll(cx),
            TaskInner::Epoll(t) => Pin::new(t).poll(cx),
        }
    }
}

/// Spawns `fut` on this shard.
pub fn spawn<T: 'static>(fut: impl Future<Output = T> + 'static) -> Task<T> {
    match driver() {
        IoMode::Uring => Task(TaskInner::Uring(glommio::spawn_local(fut))),
        IoMode::EpollEt | IoMode::EpollLt => Task(TaskInner::Epoll(epoll::spawn(fut))),
    }
}

/// Completes after `duration`.
pub async fn sleep(duration: Duration) {
    sleep_until(Instant::now() + duration).await;
}

/// Completes at `deadline`.
pub async fn sleep_until(deadline: Instant) {
    match driver() {
        IoMode::Uring => {
            let now = Instant::now();
            if deadline > now {
                glommio::timer::sleep(deadline - now).await;
            }
        }
        IoMode::EpollEt | IoMode::EpollLt => epoll::Sleep::new(deadline).await,
    }
}

/// `fut` ran past its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

/// Runs `fut`, giving up after `duration`.
pub async fn timeout<F: Future>(duration: Duration, fut: F) -> Result<F::Output, Elapsed> {
    futures_lite::future::or(async { Ok(fut.await) }, async {
        sleep(duration).await;
        Err(Elapsed)
    })
    .await
}

/// Lets other tasks on this shard run before continuing.
pub async fn yield_now() {
    futures_lite::future::yield_now().await;
}

/// Declares one `#[test]` per IO driver (`uring`, `epoll_et`, `epoll_lt`) for each
/// `name => function;` pair, inside a module `name`; the function takes the [`IoMode`].
/// Every network test is declared this way, so none runs on one driver only.
#[macro_export]
macro_rules! on_every_driver {
    ($($name:ident => $body:expr;)*) => {
        $(mod $name {
            use super::*;
            #[test] fn uring() { $body($crate::rt::IoMode::Uring) }
            #[test] fn epoll_et() { $body($crate::rt::IoMode::EpollEt) }
            #[test] fn epoll_lt() { $body($crate::rt::IoMode::EpollLt) }
        })*
    };
}

/// The text a panic was raised with, if it has one.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Where a shard sits among its siblings; passed to each shard's root function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    /// 0-based index.
    pub id: usize,
    /// How many shards the set has.
    pub count: usize,
    /// The driver this shard runs.
    pub io: IoMode,
}

/// How many shards to start when the config says 0: one per available core.
pub fn default_shards() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

/// A set of running shard threads.
#[derive(Debug)]
pub struct Shards {
    threads: Vec<std::thread::JoinHandle<Result<(), RtError>>>,
    io: IoMode,
}

impl Shards {
    /// Starts `count` shards (0 = one per core) on driver `io` (resolved, so uring falls back
    /// to epoll-et with a log line), each running `root(info)` to completion.
    pub fn start<F, Fut>(name: &str, count: usize, io: IoMode, root: F) -> Result<Shards, RtError>
    where
        F: Fn(ShardInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        Shards::start_with_death(name, count, io, root, |_| {})
    }

    /// [`Shards::start`], calling `on_death(shard)` from a shard thread that panicked (after
    /// logging it at once), so the owner can stop the rest: a server must not go on half
    /// alive. [`Shards::join`] then reports [`RtError::Panicked`].
    pub fn start_with_death<F, Fut, D>(
        name: &str,
        count: usize,
        io: IoMode,
        root: F,
        on_death: D,
    ) -> Result<Shards, RtError>
    where
        F: Fn(ShardInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
        D: Fn(usize) + Send + Sync + 'static,
    {
        let count = if count == 0 { default_shards() } else { count };
        let io = io.resolve();
        let root = std::sync::Arc::new(root);
        let on_death = std::sync::Arc::new(on_death);
        let mut threads = Vec::with_capacity(count);
        for id in 0..count {
            let (root, on_death) = (root.clone(), on_death.clone());
            let info = ShardInfo { id, count, io };
            let t = std::thread::Builder::new()
                .name(format!("{name}-{id}"))
                .spawn(move || {
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| block_on(io, root(info)))) {
                        Ok(r) => r,
                        Err(panic) => {
                            tracing::error!(shard = id, panic = %panic_message(&*panic), "shard thread died");
                            on_death(id);
                            Err(RtError::Panicked(id))
                        }
                    }
                })
                .map_err(RtError::Thread)?;
            threads.push(t);
        }
        Ok(Shards { threads, io })
    }

    /// The driver the shards run (after fallback).
    pub fn io(&self) -> IoMode {
        self.io
    }

    /// Waits for every shard's root future to finish.
    pub fn join(self) -> Result<(), RtError> {
        let mut first = Ok(());
        for (id, t) in self.threads.into_iter().enumerate() {
            let r = t.join().unwrap_or(Err(RtError::Panicked(id)));
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}
