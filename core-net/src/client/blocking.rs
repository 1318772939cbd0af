//! Calling from plain threads: a communicator on a dedicated thread of its own.
//!
//! ```text
//! let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt)?;
//! let reply = client.invoke("App.S.Obj@tcp -h 127.0.0.1 -p 10000", request)?;
//! let n = client.run(|comm| async move {
//!     let echo = EchoProxy::new(comm.proxy("App.S.EchoObj").unwrap(), "App.S.EchoObj");
//!     echo.count().await
//! });
//! ```
//!
//! Each job runs as a task on the client thread, so jobs from many threads run concurrently
//! and share that thread's connections. The handle is `Send + Sync`; dropping it stops the
//! thread (closing its connections) and waits for it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::thread::JoinHandle;

use super::communicator::{ClientError, Communicator};
use super::config::ClientConfig;
use crate::rt::{self, sync::channel, IoMode, RtError};
use tars_proto::packet::RequestPacket;
use tars_proto::rpc::{CallError, Reply, Transport};

type Job = Box<dyn FnOnce(Rc<Communicator>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A [`Communicator`] running on its own thread, called from any thread.
pub struct BlockingClient {
    jobs: channel::Sender<Job>,
    thread: Option<JoinHandle<Result<(), RtError>>>,
    io: IoMode,
}

impl fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingClient").field("io", &self.io).field("running", &!self.jobs.is_closed()).finish()
    }
}

impl BlockingClient {
    /// Starts the client thread on driver `io` (uring falls back to epoll-et where it is
    /// unavailable, with a log line).
    pub fn start(config: ClientConfig, io: IoMode) -> Result<BlockingClient, ClientError> {
        BlockingClient::start_with(config, None, io)
    }

    /// Like [`BlockingClient::start`], with the calls' statistics sent to `stats` (an
    /// application's call-statistics duty).
    pub fn start_with(
        config: ClientConfig,
        stats: Option<crate::app::stat::StatSink>,
        io: IoMode,
    ) -> Result<BlockingClient, ClientError> {
        let io = io.resolve();
        let (jobs, rx) = channel::unbounded::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tars-client".into())
            .spawn(move || {
                rt::block_on(io, async move {
                    let comm = match stats {
                        Some(sink) => Communicator::with_stats(config, sink),
                        None => Communicator::new(config),
                    };
                    let _ = ready_tx.send(());
                    while let Ok(job) = rx.recv().await {
                        rt::spawn(job(comm.clone())).detach();
                    }
                })
            })
            .map_err(|e| ClientError::Start(e.to_string()))?;
        if ready_rx.recv().is_err() {
            let why = match thread.join() {
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(())) => "the client thread exited".to_owned(),
                Err(_) => "the client thread panicked".to_owned(),
            };
            return Err(ClientError::Start(why));
        }
        Ok(BlockingClient { jobs, thread: Some(thread), io })
    }

    /// The driver the client thread runs.
    pub fn io(&self) -> IoMode {
        self.io
    }

    /// Runs `f(communicator)` on the client thread and blocks until its future completes.
    ///
    /// # Panics
    ///
    /// If the client thread has stopped (it panicked), or the job panicked.
    pub fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(Rc<Communicator>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        match self.try_run(f) {
            Some(v) => v,
            None => panic!("the tars client thread has stopped"),
        }
    }

    /// Like [`BlockingClient::run`], but `None` instead of a panic when the job could not run
    /// to completion.
    pub fn try_run<F, Fut, T>(&self, f: F) -> Option<T>
    where
        F: FnOnce(Rc<Communicator>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<T>(1);
        let job: Job = Box::new(move |comm| {
            Box::pin(async move {
                let _ = tx.send(f(comm).await);
            })
        });
        self.jobs.send_blocking(job).ok()?;
        rx.recv().ok()
    }

    /// Runs `f(communicator)` on the client thread without waiting for it; `false` when the
    /// client thread has stopped.
    pub fn spawn<F, Fut>(&self, f: F) -> bool
    where
        F: FnOnce(Rc<Communicator>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let job: Job = Box::new(move |comm| Box::pin(f(comm)));
        self.jobs.try_send(job).is_ok()
    }

    /// Calls `object` (an object string, as [`Communicator::proxy`] takes) with `request`
    /// and blocks for the reply. An object string the communicator refuses is reported as
    /// `CallError::Send` with the reason.
    pub fn invoke(&self, object: &str, request: RequestPacket) -> Result<Reply, CallError> {
        let object = object.to_owned();
        self.try_run(move |comm| async move {
            let proxy = comm.proxy(&object).map_err(|e| CallError::Send(e.to_string()))?;
            proxy.invoke(request).await
        })
        .unwrap_or_else(|| Err(CallError::Send("the tars client thread has stopped".into())))
    }
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        self.jobs.close();
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "tars client thread failed"),
                Err(_) => tracing::warn!("tars client thread panicked"),
            }
        }
    }
}
