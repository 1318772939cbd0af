//! [`NodeHandle`]: the node's control API, for AdminReg's push commands and for the
//! `NodeObj` servant. Every method submits without waiting and answers through a
//! [`Pending`] (wait with a timeout from a plain thread, or `.recv().await` from a shard).
//!
//! Server commands run on the manager thread; the log and load readers (file IO) run on a
//! short-lived `tars-node-io` thread each, at most [`MAX_IO_JOBS`] at a time. Return codes and
//! result strings are upstream's (`ServerManager.cpp`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use tars_protocol::tars::ServerStateInfo;

use crate::logview::LogDir;
use crate::manager::{Cmd, Msg};

/// Log and load reads running at once; more are refused with [`BUSY`].
pub const MAX_IO_JOBS: usize = 8;

/// `EM_TARS_SUCCESS`.
pub const SUCCESS: i32 = 0;
/// `EM_TARS_UNKNOWN_ERR`.
pub const UNKNOWN_ERR: i32 = -1;
/// `EM_TARS_LOAD_SERVICE_DESC_ERR`.
pub const LOAD_SERVICE_DESC_ERR: i32 = 1003;
/// `EM_TARS_SERVICE_STATE_ERR`.
pub const SERVICE_STATE_ERR: i32 = 1004;
/// Answer of a log or load read refused because [`MAX_IO_JOBS`] run already.
pub const BUSY: &str = "node busy: too many log reads at once";

/// One answer on its way. `Send`; wait for it from any thread or task.
#[derive(Debug)]
pub struct Pending<T>(async_channel::Receiver<T>);

impl<T> Pending<T> {
    /// Waits up to `timeout`; `None` when the node gave no answer in time (or stopped).
    /// Polls with a sleep of at most 2 ms: for plain threads (tests, tools), never a shard.
    pub fn wait(self, timeout: Duration) -> Option<T> {
        let deadline = std::time::Instant::now() + timeout;
        let mut nap = Duration::from_micros(100);
        loop {
            match self.0.try_recv() {
                Ok(v) => return Some(v),
                Err(async_channel::TryRecvError::Closed) => return None,
                Err(async_channel::TryRecvError::Empty) => {}
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return None;
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(2));
        }
    }

    /// Waits without a limit; `None` when the node stopped first.
    pub fn recv_blocking(self) -> Option<T> {
        self.0.recv_blocking().ok()
    }

    /// Awaits the answer (from an IO shard: this never blocks the thread).
    pub async fn recv(self) -> Option<T> {
        self.0.recv().await.ok()
    }
}

/// A reply callback's sending half.
pub(crate) fn pending<T: Send + 'static>() -> (impl FnOnce(T) + Send + 'static, Pending<T>) {
    let (tx, rx) = async_channel::bounded(1);
    (move |v: T| drop(tx.try_send(v)), Pending(rx))
}

/// `getStateInfo`'s answer: the code, the state and upstream's result string.
pub type StateAnswer = (i32, ServerStateInfo, String);

/// Controls a running node. Cheap to clone, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    pub(crate) tx: Sender<Msg>,
    pub(crate) log_dir: Arc<LogDir>,
    pub(crate) io_jobs: Arc<AtomicUsize>,
    pub(crate) node_name: Arc<str>,
}

impl NodeHandle {
    /// The node's name (its IP, as upstream).
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    fn submit<T: Send + 'static>(&self, make: impl FnOnce(Box<dyn FnOnce(T) + Send>) -> Cmd) -> Pending<T> {
        let (reply, p) = pending::<T>();
        // A stopped manager drops the command and with it the reply: the Pending answers None.
        let _ = self.tx.send(Msg::Cmd(make(Box::new(reply))));
        p
    }

    /// `startServer`: reloads the descriptor (the cache when the registry is away), enables
    /// the server and starts it. Answers once the pid is known (or the start failed).
    pub fn start(&self, app: &str, server: &str) -> Pending<(i32, String)> {
        let id = id(app, server);
        self.submit(|reply| Cmd::Start { id, reply })
    }

    /// `stopServer`: disables the server (no automatic restart) and stops it: AdminObj.shutdown,
    /// SIGTERM, SIGKILL after `deactivating-timeout`.
    pub fn stop(&self, app: &str, server: &str) -> Pending<(i32, String)> {
        let id = id(app, server);
        self.submit(|reply| Cmd::Stop { id, reply })
    }

    /// Stop, then start.
    pub fn restart(&self, app: &str, server: &str) -> Pending<(i32, String)> {
        let id = id(app, server);
        self.submit(|reply| Cmd::Restart { id, reply })
    }

    /// `notifyServer`: `AdminObj.notify(cmd)` on the server's `local` endpoint.
    pub fn notify(&self, app: &str, server: &str, cmd: &str) -> Pending<(i32, String)> {
        let (id, command) = (id(app, server), cmd.to_owned());
        self.submit(|reply| Cmd::Notify { id, command, reply })
    }

    /// `loadServer`: re-fetches the descriptor and regenerates the config.
    pub fn load(&self, app: &str, server: &str) -> Pending<(i32, String)> {
        let id = id(app, server);
        self.submit(|reply| Cmd::Load { id, reply })
    }

    /// `destroyServer`: only an Inactive server; removes its directory and log directory.
    pub fn destroy(&self, app: &str, server: &str) -> Pending<(i32, String)> {
        let id = id(app, server);
        self.submit(|reply| Cmd::Destroy { id, reply })
    }

    /// `getStateInfo`. `exState` holds `PROC_START_TIME` and `RUN_SECONDS` (upstream's) and
    /// ours: `LAST_EXIT_TO_START_MS` (the last crash's exit-to-restart time) and `STARTS`.
    pub fn get_state_info(&self, app: &str, server: &str) -> Pending<StateAnswer> {
        let id = id(app, server);
        self.submit(|reply| Cmd::StateInfo { id, reply })
    }

    /// `stopAllServers`.
    pub fn stop_all(&self) -> Pending<(i32, String)> {
        self.submit(|reply| Cmd::StopAll { reply })
    }

    /// `shutdown`: stops the node itself (its servers keep running, as upstream).
    pub fn shutdown(&self) -> Pending<(i32, String)> {
        self.submit(|reply| Cmd::Shutdown { reply })
    }

    /// Answers once the manager thread has handled everything submitted before.
    pub fn ping(&self) -> Pending<()> {
        self.submit(|reply| Cmd::Ping { reply })
    }

    /// `getLogFileList`: the `*.log` files of `<logpath>/<App>/<Server>/`.
    pub fn get_log_file_list(&self, app: &str, server: &str) -> Pending<Vec<String>> {
        let (dir, app, server) = (self.log_dir.clone(), app.to_owned(), server.to_owned());
        self.io_job(Vec::new(), move || dir.list(&app, &server).unwrap_or_default())
    }

    /// `getLogData`: TarsWeb's `cmd` over one log file, run in-process (no shell).
    pub fn get_log_data(&self, app: &str, server: &str, file: &str, cmd: &str) -> Pending<String> {
        let (dir, app, server, file, cmd) =
            (self.log_dir.clone(), app.to_owned(), server.to_owned(), file.to_owned(), cmd.to_owned());
        self.io_job(BUSY.to_owned(), move || dir.data(&app, &server, &file, &cmd).unwrap_or_else(|e| e.to_string()))
    }

    /// [`NodeHandle::get_log_data`], with a refusal or a missing file as `Err(text)`.
    pub fn get_log_data_result(
        &self,
        app: &str,
        server: &str,
        file: &str,
        cmd: &str,
    ) -> Pending<Result<String, String>> {
        let (dir, app, server, file, cmd) =
            (self.log_dir.clone(), app.to_owned(), server.to_owned(), file.to_owned(), cmd.to_owned());
        self.io_job(Err(BUSY.to_owned()), move || dir.data(&app, &server, &file, &cmd).map_err(|e| e.to_string()))
    }

    /// `getNodeLoad`: the node's load, memory and the process `pid` (upstream runs `top`).
    pub fn get_node_load(&self, pid: i32) -> Pending<String> {
        self.io_job(BUSY.to_owned(), move || crate::load::node_load_text(pid))
    }

    fn io_job<T: Send + 'static>(&self, busy: T, job: impl FnOnce() -> T + Send + 'static) -> Pending<T> {
        let (reply, p) = pending::<T>();
        if self.io_jobs.fetch_add(1, Ordering::AcqRel) >= MAX_IO_JOBS {
            self.io_jobs.fetch_sub(1, Ordering::AcqRel);
            reply(busy);
            return p;
        }
        let jobs = self.io_jobs.clone();
        let spawned = std::thread::Builder::new().name("tars-node-io".into()).spawn(move || {
            reply(job());
            jobs.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            self.io_jobs.fetch_sub(1, Ordering::AcqRel);
        }
        p
    }
}

fn id(app: &str, server: &str) -> String {
    format!("{app}.{server}")
}

/// The log root of [`NodeHandle`]'s log readers.
pub(crate) fn log_dir(path: &str) -> Arc<LogDir> {
    Arc::new(LogDir::new(PathBuf::from(path)))
}
