//! The queue between the IO shards and the writer threads, and the writers.
//!
//! A shard turns one request into one [`Batch`] (the file it goes to and its lines, prefixed,
//! as one buffer) and [`Queue::push`]es it: an atomic add against the byte bound, then a
//! non-blocking send on the channel of the writer that owns the file (files are spread over
//! `logthread` writers by a hash of their family, so each file has one writer and lines of
//! one family stay in order). A batch that does not fit is dropped and counted; a shard
//! never waits for a writer and the queue never holds more than its bound.
//!
//! Each writer thread (`tars-log-writer-<n>`) owns its open files: at most `maxOpenFiles`
//! buffered handles (the least recently used closed beyond that), a family's handle closed
//! when its period rolls, every handle closed `reopenSecs` after it was opened (so a file an
//! operator deleted is created again, as TarsCpp's reopening every 10 s). Buffers are flushed
//! every `flushMs` (upstream's 100 ms) and on stop; `fsync` is `never` (upstream), `interval`
//! (the files written to, every `fsyncMs`) or `always` (after every round of batches taken
//! off the queue).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// When written data is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Never (upstream: lines still buffered are lost in a crash).
    #[default]
    Never,
    /// Every `fsyncMs`, the files written since the last one.
    Interval,
    /// After every round of batches a writer takes off its queue.
    Always,
}

impl std::str::FromStr for Fsync {
    type Err = ();
    fn from_str(s: &str) -> Result<Fsync, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "never" | "" => Ok(Fsync::Never),
            "interval" => Ok(Fsync::Interval),
            "always" => Ok(Fsync::Always),
            _ => Err(()),
        }
    }
}

/// How the writers work.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Writer threads (`logthread`).
    pub threads: usize,
    /// Bytes the queue may hold.
    pub queue_bytes: usize,
    /// Buffer flush period.
    pub flush: Duration,
    /// The fsync policy.
    pub fsync: Fsync,
    /// Period of [`Fsync::Interval`].
    pub fsync_every: Duration,
    /// Open handles per writer.
    pub max_open: usize,
    /// A handle is closed this long after it was opened.
    pub reopen: Duration,
    /// Buffer per open file.
    pub buffer: usize,
}

impl Default for WriterSettings {
    fn default() -> WriterSettings {
        WriterSettings {
            threads: 1,
            queue_bytes: 64 << 20,
            flush: Duration::from_millis(100),
            fsync: Fsync::Never,
            fsync_every: Duration::from_secs(1),
            max_open: 256,
            reopen: Duration::from_secs(10),
            buffer: 64 << 10,
        }
    }
}

/// What the service counts; shared by the shards and the writers (atomics only).
#[derive(Debug, Default)]
pub struct Counters {
    /// Lines received.
    pub received: AtomicU64,
    /// Lines written (into a file's buffer).
    pub written: AtomicU64,
    /// Lines dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Requests refused for a bad path component or format.
    pub refused: AtomicU64,
    /// Lines of refused requests.
    pub refused_lines: AtomicU64,
    /// Trace lines over the 1 MB bound, dropped.
    pub too_long: AtomicU64,
    /// Lines a write or open failed for.
    pub failed: AtomicU64,
    /// Files open across the writers.
    pub files_open: AtomicU64,
    /// Bytes in the queue now.
    pub bytes_queued: AtomicU64,
    /// Files opened so far.
    pub opened: AtomicU64,
    /// fsync calls.
    pub fsyncs: AtomicU64,
}

impl Counters {
    /// The counters as the admin command shows them.
    pub fn describe(&self, bound: usize) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "lines received: {}\nlines written: {}\nlines dropped (queue full): {}\nrequests refused (bad path): {} ({} lines)\n\
             trace lines too long: {}\nlines failed (write error): {}\nfiles open: {}\nfiles opened: {}\nfsyncs: {}\n\
             bytes queued: {} of {}\n",
            g(&self.received),
            g(&self.written),
            g(&self.dropped),
            g(&self.refused),
            g(&self.refused_lines),
            g(&self.too_long),
            g(&self.failed),
            g(&self.files_open),
            g(&self.opened),
            g(&self.fsyncs),
            g(&self.bytes_queued),
            bound
        )
    }
}

/// One request's lines for one file.
#[derive(Debug)]
pub struct Batch {
    /// The file family ([`crate::naming::Target::key`]).
    pub key: String,
    /// Directory components under the root (already checked).
    pub dir: Vec<String>,
    /// The file name (already checked).
    pub name: String,
    /// The lines, prefixed, concatenated.
    pub data: Vec<u8>,
    /// How many lines `data` holds.
    pub lines: u64,
}

impl Batch {
    /// What the batch is charged against the queue's bound.
    fn cost(&self) -> u64 {
        let dir: usize = self.dir.iter().map(|d| d.len() + 24).sum();
        (self.data.capacity() + self.key.len() + self.name.len() + dir + 128) as u64
    }
}

enum Msg {
    Batch(Batch, u64),
    Stop,
}

/// The shards' end of the queue; clones are cheap (one per shard's servant). Lives on the
/// IO shards; pushing is an atomic add and a lock-free channel send.
#[derive(Clone)]
pub struct Queue {
    senders: Arc<[Sender<Msg>]>,
    counters: Arc<Counters>,
    bound: u64,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("writers", &self.senders.len()).field("bound", &self.bound).finish()
    }
}

impl Queue {
    /// Queues `batch` for its file's writer; `false` (and counted as dropped) when it does
    /// not fit in the bound or the writers are gone.
    pub fn push(&self, batch: Batch) -> bool {
        let cost = batch.cost();
        let before = self.counters.bytes_queued.fetch_add(cost, Ordering::Relaxed);
        if before.saturating_add(cost) > self.bound {
            self.counters.bytes_queued.fetch_sub(cost, Ordering::Relaxed);
            self.counters.dropped.fetch_add(batch.lines, Ordering::Relaxed);
            return false;
        }
        let mut h = std::hash::DefaultHasher::new();
        batch.key.hash(&mut h);
        let i = (h.finish() % self.senders.len() as u64) as usize;
        let lines = batch.lines;
        match self.senders.get(i).map(|s| s.send(Msg::Batch(batch, cost))) {
            Some(Ok(())) => true,
            _ => {
                self.counters.bytes_queued.fetch_sub(cost, Ordering::Relaxed);
                self.counters.dropped.fetch_add(lines, Ordering::Relaxed);
                false
            }
        }
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The byte bound.
    pub fn bound(&self) -> usize {
        usize::try_from(self.bound).unwrap_or(usize::MAX)
    }
}

/// The writer threads; dropping stops them after they wrote and flushed what is queued
/// (waiting at most 5 s for each, a writer stuck in the file system is left behind).
pub struct Writers {
    queue: Queue,
    threads: Vec<(JoinHandle<()>, Receiver<()>)>,
}

impl std::fmt::Debug for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writers").field("threads", &self.threads.len()).finish()
    }
}

impl Writers {
    /// Starts `settings.threads` writers under `root` (created when missing).
    pub fn start(root: PathBuf, settings: &WriterSettings, counters: Arc<Counters>) -> std::io::Result<Writers> {
        std::fs::create_dir_all(&root)?;
        let n = settings.threads.clamp(1, 64);
        let mut senders = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = crossbeam_channel::unbounded();
            let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
            let mut w = Writer {
                root: root.clone(),
                settings: settings.clone(),
                counters: counters.clone(),
                files: HashMap::new(),
                unsynced: Vec::new(),
            };
            let handle = std::thread::Builder::new().name(format!("tars-log-writer-{i}")).spawn(move || {
                w.run(&rx);
                drop(done_tx);
            })?;
            senders.push(tx);
            threads.push((handle, done_rx));
        }
        let bound = settings.queue_bytes as u64;
        Ok(Writers { queue: Queue { senders: senders.into(), counters, bound }, threads })
    }

    /// The shards' end.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        for s in self.queue.senders.iter() {
            let _ = s.send(Msg::Stop);
        }
        for (handle, done) in self.threads.drain(..) {
            match done.recv_timeout(Duration::from_secs(5)) {
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = handle.join();
                }
                _ => tracing::warn!("log: a writer did not stop within 5 s (stuck in the file system); left behind"),
            }
        }
    }
}

struct Open {
    path: PathBuf,
    out: BufWriter<File>,
    opened: Instant,
    used: Instant,
    dirty: bool,
}

/// One writer thread's state: lives on its `tars-log-writer-<n>` thread only.
struct Writer {
    root: PathBuf,
    settings: WriterSettings,
    counters: Arc<Counters>,
    files: HashMap<String, Open>,
    /// Families written since the last fsync.
    unsynced: Vec<String>,
}

impl Writer {
    fn run(&mut self, rx: &Receiver<Msg>) {
        let mut next_flush = Instant::now() + self.settings.flush;
        let mut next_sync = Instant::now() + self.settings.fsync_every;
        loop {
            let stop = match rx.recv_deadline(next_flush) {
                Ok(Msg::Batch(b, cost)) => {
                    self.write(b, cost);
                    // Take what else is queued, up to a round's worth.
                    let mut stop = false;
                    for _ in 0..1024 {
                        match rx.try_recv() {
                            Ok(Msg::Batch(b, cost)) => self.write(b, cost),
                            Ok(Msg::Stop) => {
                                stop = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if self.settings.fsync == Fsync::Always {
                        self.sync();
                    }
                    stop
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => true,
                Err(RecvTimeoutError::Timeout) => false,
            };
            if stop {
                while let Ok(Msg::Batch(b, cost)) = rx.try_recv() {
                    self.write(b, cost);
                }
                self.flush(true);
                if self.settings.fsync != Fsync::Never {
                    self.sync();
                }
                self.close_all();
                return;
            }
            let now = Instant::now();
            if now >= next_flush {
                self.flush(false);
                next_flush = now + self.settings.flush;
            }
            if self.settings.fsync == Fsync::Interval && now >= next_sync {
                self.sync();
                next_sync = now + self.settings.fsync_every;
            }
        }
    }

    fn write(&mut self, b: Batch, cost: u64) {
        let lines = b.lines;
        let ok = self.append(&b);
        self.counters.bytes_queued.fetch_sub(cost, Ordering::Relaxed);
        if ok {
            self.counters.written.fetch_add(lines, Ordering::Relaxed);
        } else {
            self.counters.failed.fetch_add(lines, Ordering::Relaxed);
        }
    }

    fn append(&mut self, b: &Batch) -> bool {
        let path = match self.path_of(b) {
            Some(p) => p,
            None => {
                tars_core_net::limited!(error, key = %b.key, "log: a path outside the log root; not written");
                return false;
            }
        };
        let rolled = self.files.get(&b.key).is_some_and(|o| o.path != path);
        if rolled {
            self.close(&b.key);
        }
        if !self.files.contains_key(&b.key) {
            if self.files.len() >= self.settings.max_open.max(1) {
                self.evict_lru();
            }
            match open(&path, self.settings.buffer) {
                Ok(out) => {
                    let now = Instant::now();
                    self.files.insert(b.key.clone(), Open { path, out, opened: now, used: now, dirty: false });
                    self.counters.files_open.fetch_add(1, Ordering::Relaxed);
                    self.counters.opened.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tars_core_net::limited!(error, path = %path.display(), error = %e, "log: cannot open the file");
                    return false;
                }
            }
        }
        let Some(o) = self.files.get_mut(&b.key) else { return false };
        o.used = Instant::now();
        match o.out.write_all(&b.data) {
            Ok(()) => {
                if !o.dirty {
                    o.dirty = true;
                }
                if self.settings.fsync != Fsync::Never && !self.unsynced.contains(&b.key) {
                    self.unsynced.push(b.key.clone());
                }
                true
            }
            Err(e) => {
                tars_core_net::limited!(error, path = %o.path.display(), error = %e, "log: write failed");
                self.close(&b.key);
                false
            }
        }
    }

    /// `root/dir.../name`, or `None` when it would not stay under the root.
    fn path_of(&self, b: &Batch) -> Option<PathBuf> {
        let mut p = self.root.clone();
        for d in &b.dir {
            p.push(d);
        }
        p.push(&b.name);
        let rest = p.strip_prefix(&self.root).ok()?;
        let depth = rest.components().count();
        let all_normal = rest.components().all(|c| matches!(c, Component::Normal(_)));
        (all_normal && depth == b.dir.len() + 1).then_some(p)
    }

    fn flush(&mut self, all: bool) {
        let now = Instant::now();
        let reopen = self.settings.reopen;
        let mut old = Vec::new();
        for (key, o) in &mut self.files {
            if o.dirty || all {
                if let Err(e) = o.out.flush() {
                    tars_core_net::limited!(error, path = %o.path.display(), error = %e, "log: flush failed");
                }
                o.dirty = false;
            }
            if now.duration_since(o.opened) >= reopen && !self.unsynced.contains(key) {
                old.push(key.clone());
            }
        }
        for key in old {
            self.close(&key);
        }
    }

    fn sync(&mut self) {
        for key in std::mem::take(&mut self.unsynced) {
            if let Some(o) = self.files.get_mut(&key) {
                let _ = o.out.flush();
                o.dirty = false;
                if let Err(e) = o.out.get_ref().sync_data() {
                    tars_core_net::limited!(error, path = %o.path.display(), error = %e, "log: fsync failed");
                }
                self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn evict_lru(&mut self) {
        let oldest = self.files.iter().min_by_key(|(_, o)| o.used).map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.close(&k);
        }
    }

    fn close(&mut self, key: &str) {
        if let Some(mut o) = self.files.remove(key) {
            if let Err(e) = o.out.flush() {
                tars_core_net::limited!(error, path = %o.path.display(), error = %e, "log: flush failed");
            }
            if self.unsynced.iter().any(|k| k == key) {
                let _ = o.out.get_ref().sync_data();
                self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.unsynced.retain(|k| k != key);
            }
            self.counters.files_open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<String> = self.files.keys().cloned().collect();
        for k in keys {
            self.close(&k);
        }
    }
}

fn open(path: &Path, buffer: usize) -> std::io::Result<BufWriter<File>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = OpenOptions::new().append(true).create(true).open(path)?;
    Ok(BufWriter::with_capacity(buffer, f))
}
