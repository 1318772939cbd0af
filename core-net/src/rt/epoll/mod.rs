//! Our epoll driver: a single-threaded executor and a reactor written directly over epoll.
//!
//! One [`Reactor`] per shard thread owns an epoll instance, an eventfd for wake-ups from
//! other threads, the readiness state of every registered socket, and the shard's timers.
//! The executor loop runs queued tasks, then waits in `epoll_wait` (no longer than the next
//! timer, not at all when tasks are queued), then wakes the tasks whose sockets or timers
//! became ready.
//!
//! The two trigger modes differ in what a readiness report means:
//! - **Edge** (`EPOLLET`): a socket is registered once for `IN|RDHUP|ET`. Readiness stays set
//!   until a syscall answers `EAGAIN`, so readers and acceptors drain until then and only
//!   then wait for the next edge.
//! - **Level**: readiness is consumed by one read (or one accept); the next attempt waits
//!   for epoll to report the socket again.
//!
//! In both modes `EPOLLOUT` is armed only while a write is blocked (`EAGAIN`) and disarmed
//! once the writer says its output is flushed, so idle connections never wake the loop.
//!
//! Everything here lives on one shard thread; only [`Remote`] is shared, with the threads
//! that wake this shard's tasks.

pub(super) mod net;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use async_task::Runnable;
use concurrent_queue::ConcurrentQueue;
use rustix::event::epoll::{self, EventData, EventFlags};

/// How readiness reports are interpreted (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    Edge,
    Level,
}

/// epoll data value of the eventfd; socket keys never reach it (generation < 2^32 - 1).
const WAKE_KEY: u64 = u64::MAX;
/// Tasks run per loop turn before IO is polled again, so sockets are not starved.
const RUN_BUDGET: usize = 512;
const MAX_EVENTS: usize = 1024;

/// The part of a shard other threads touch: its run queue and the means to wake it.
/// Lives on one shard; shared (via `Arc`) with whoever holds a waker of its tasks.
#[derive(Debug)]
struct Remote {
    queue: ConcurrentQueue<Runnable>,
    /// The loop is in (or about to enter) `epoll_wait` and needs the eventfd poked.
    sleeping: AtomicBool,
    /// The executor has finished: late wake-ups must not drop task futures off-thread.
    closed: AtomicBool,
    eventfd: OwnedFd,
}

impl Remote {
    fn schedule(&self, runnable: Runnable) {
        if self.closed.load(Ordering::Acquire) {
            // The owning thread is gone or going: dropping the future here would run its
            // destructors on a foreign thread, so leak it instead (shutdown only).
            std::mem::forget(runnable);
            return;
        }
        if let Err(e) = self.queue.push(runnable) {
            std::mem::forget(e.into_inner());
            return;
        }
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            // A failed poke only delays the task until the next timer or IO event.
            let _ = rustix::io::write(&self.eventfd, &1u64.to_ne_bytes());
        }
    }
}

/// Readiness and waiters of one registered socket.
#[derive(Debug, Default)]
struct SourceState {
    readable: bool,
    writable: bool,
    hup: bool,
    out_armed: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    state: Option<SourceState>,
}

/// One shard's epoll instance, sockets and timers. Lives on exactly one shard thread.
pub(crate) struct Reactor {
    epfd: OwnedFd,
    trigger: Trigger,
    remote: Arc<Remote>,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_timer: Cell<u64>,
    events: RefCell<Vec<epoll::Event>>,
    wake_buf: RefCell<Vec<Waker>>,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor").field("trigger", &self.trigger).field("sockets", &self.slots.borrow().len()).finish()
    }
}

thread_local! {
    static REACTOR: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
}

/// This thread's reactor. Panics off a shard, like every runtime function (see `rt`).
pub(crate) fn reactor() -> Rc<Reactor> {
    REACTOR.with(|r| r.borrow().clone()).unwrap_or_else(|| panic!("epoll runtime function called outside its shard"))
}

/// Which readiness a waiter wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

impl Reactor {
    fn new(trigger: Trigger) -> io::Result<Reactor> {
        let epfd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let eventfd =
            rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK)?;
        epoll::add(&epfd, &eventfd, EventData::new_u64(WAKE_KEY), EventFlags::IN)?;
        Ok(Reactor {
            epfd,
            trigger,
            remote: Arc::new(Remote {
                queue: ConcurrentQueue::unbounded(),
                sleeping: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                eventfd,
            }),
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            timers: RefCell::new(BTreeMap::new()),
            next_timer: Cell::new(0),
            events: RefCell::new(Vec::with_capacity(MAX_EVENTS)),
            wake_buf: RefCell::new(Vec::new()),
        })
    }

    pub(crate) fn trigger(&self) -> Trigger {
        self.trigger
    }

    fn base_flags(&self) -> EventFlags {
        let f = EventFlags::IN | EventFlags::RDHUP;
        match self.trigger {
            Trigger::Edge => f | EventFlags::ET,
            Trigger::Level => f,
        }
    }

    /// Registers `fd` for read readiness; the returned key names it in later calls.
    pub(crate) fn register(&self, fd: BorrowedFd<'_>) -> io::Result<u64> {
        let idx = match self.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Slot::default());
                u32::try_from(slots.len() - 1).map_err(|_| io::Error::other("too many sockets on one shard"))?
            }
        };
        let key = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[idx as usize];
            slot.generation = slot.generation.wrapping_add(1) & 0x7fff_ffff;
            // Optimistic: the first read or write just tries the syscall.
            slot.state = Some(SourceState { readable: true, writable: true, ..SourceState::default() });
            (u64::from(slot.generation) << 32) | u64::from(idx)
        };
        if let Err(e) = epoll::add(&self.epfd, fd, EventData::new_u64(key), self.base_flags()) {
            self.deregister(key, None);
            return Err(e.into());
        }
        Ok(key)
    }

    /// Forgets `key`; `fd`, when given, is also removed from the epoll set (closing the fd
    /// would do that too, unless it was duplicated).
    pub(crate) fn deregister(&self, key: u64, fd: Option<BorrowedFd<'_>>) {
        if let Some(fd) = fd {
            let _ = epoll::delete(&self.epfd, fd);
        }
        let taken = {
            let mut slots = self.slots.borrow_mut();
            match slots.get_mut(Self::index(key)) {
                Some(slot) if u64::from(slot.generation) == key >> 32 => slot.state.take(),
                _ => None,
            }
        };
        if taken.is_some() {
            self.free.borrow_mut().push(Self::index(key) as u32);
        }
        // The wakers inside are dropped here, after every borrow is released: dropping one
        // may drop a task that deregisters its own sockets.
        drop(taken);
    }

    fn index(key: u64) -> usize {
        (key & 0xffff_ffff) as usize
    }

    fn with_state<R>(&self, key: u64, f: impl FnOnce(&mut SourceState) -> R) -> Option<R> {
        let mut slots = self.slots.borrow_mut();
        match slots.get_mut(Self::index(key)) {
            Some(slot) if u64::from(slot.generation) == key >> 32 => slot.state.as_mut().map(f),
            _ => None,
        }
    }

    /// Is `key` believed ready for `dir`? If not, remembers `cx`'s waker for it.
    pub(crate) fn poll_ready(&self, key: u64, dir: Dir, cx: &Context<'_>) -> bool {
        self.with_state(key, |st| {
            let (ready, slot) = match dir {
                Dir::Read => (st.readable || st.hup, &mut st.read_waker),
                Dir::Write => (st.writable || st.hup, &mut st.write_waker),
            };
            if !ready {
                match slot {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
            }
            ready
        })
        .unwrap_or(true)
    }

    /// Records that a syscall for `dir` answered `EAGAIN` (or, in level mode, that a
    /// readiness report was used up).
    pub(crate) fn clear_ready(&self, key: u64, dir: Dir) {
        self.with_state(key, |st| match dir {
            Dir::Read => st.readable = false,
            Dir::Write => st.writable = false,
        });
    }

    /// Arms or disarms `EPOLLOUT` for `key`.
    pub(crate) fn set_write_interest(&self, key: u64, fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
        let change = self.with_state(key, |st| {
            if st.out_armed == on {
                false
            } else {
                st.out_armed = on;
                true
            }
        });
        if change == Some(true) {
            let flags = if on { self.base_flags() | EventFlags::OUT } else { self.base_flags() };
            epoll::modify(&self.epfd, fd, EventData::new_u64(key), flags)?;
        }
        Ok(())
    }

    fn add_timer(&self, deadline: Instant, id: Option<u64>, waker: &Waker) -> u64 {
        let mut timers = self.timers.borrow_mut();
        let id = match id {
            Some(id) => id,
            None => {
                let id = self.next_timer.get();
                self.next_timer.set(id + 1);
                id
            }
        };
        match timers.get_mut(&(deadline, id)) {
            Some(w) if w.will_wake(waker) => {}
            Some(w) => *w = waker.clone(),
            None => {
                timers.insert((deadline, id), waker.clone());
            }
        }
        id
    }

    fn remove_timer(&self, deadline: Instant, id: u64) {
        let w = self.timers.borrow_mut().remove(&(deadline, id));
        drop(w);
    }

    /// Waits for IO (not at all when `block` is false, at most until the next timer) and
    /// wakes whoever became ready.
    fn poll_io(&self, block: bool) -> io::Result<()> {
        let now = Instant::now();
        let mut timeout = if block {
            self.timers.borrow().keys().next().map(|(d, _)| d.saturating_duration_since(now))
        } else {
            Some(std::time::Duration::ZERO)
        };
        if timeout != Some(std::time::Duration::ZERO) {
            self.remote.sleeping.store(true, Ordering::SeqCst);
            if !self.remote.queue.is_empty() {
                timeout = Some(std::time::Duration::ZERO);
            }
        }
        let ts = timeout.map(|d| rustix::event::Timespec {
            tv_sec: d.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: d.subsec_nanos().into(),
        });
        let mut events = self.events.borrow_mut();
        events.clear();
        let r = epoll::wait(&self.epfd, rustix::buffer::spare_capacity(&mut *events), ts.as_ref());
        self.remote.sleeping.store(false, Ordering::SeqCst);
        match r {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let mut wake = std::mem::take(&mut *self.wake_buf.borrow_mut());
        {
            let mut slots = self.slots.borrow_mut();
            for ev in events.iter() {
                let key = ev.data.u64();
                if key == WAKE_KEY {
                    let mut buf = [0u8; 8];
                    let _ = rustix::io::read(&self.remote.eventfd, &mut buf);
                    continue;
                }
                let flags = ev.flags;
                let Some(slot) = slots.get_mut(Self::index(key)) else { continue };
                if u64::from(slot.generation) != key >> 32 {
                    continue;
                }
                let Some(st) = slot.state.as_mut() else { continue };
                if flags.intersects(EventFlags::HUP | EventFlags::ERR) {
                    st.hup = true;
                }
                if flags.intersects(EventFlags::IN | EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR) {
                    st.readable = true;
                    wake.extend(st.read_waker.take());
                }
                if flags.intersects(EventFlags::OUT | EventFlags::HUP | EventFlags::ERR) {
                    st.writable = true;
                    wake.extend(st.write_waker.take());
                }
            }
        }
        drop(events);
        {
            let now = Instant::now();
            let mut timers = self.timers.borrow_mut();
            while let Some(entry) = timers.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                wake.push(entry.remove());
            }
        }
        for w in wake.drain(..) {
            w.wake();
        }
        *self.wake_buf.borrow_mut() = wake;
        Ok(())
    }
}

/// Removes this thread's reactor when the executor ends, however it ends.
struct Installed(Rc<Reactor>);

impl Drop for Installed {
    fn drop(&mut self) {
        self.0.remote.closed.store(true, Ordering::Release);
        while let Ok(r) = self.0.remote.queue.pop() {
            drop(r);
        }
        let timers = std::mem::take(&mut *self.0.timers.borrow_mut());
        drop(timers);
        REACTOR.with(|r| r.borrow_mut().take());
    }
}

pub(super) fn block_on<T: 'static>(trigger: Trigger, fut: impl Future<Output = T> + 'static) -> io::Result<T> {
    let reactor = Rc::new(Reactor::new(trigger)?);
    REACTOR.with(|r| *r.borrow_mut() = Some(reactor.clone()));
    let installed = Installed(reactor.clone());
    let main = spawn(fut);
    loop {
        let mut ran = 0;
        while ran < RUN_BUDGET {
            match reactor.remote.queue.pop() {
                Ok(r) => {
                    r.run();
                    ran += 1;
                }
                Err(_) => break,
            }
        }
        if main.is_finished() {
            break;
        }
        reactor.poll_io(ran < RUN_BUDGET)?;
    }
    let out = futures_lite::future::block_on(main);
    drop(installed);
    Ok(out)
}

pub(super) fn spawn<T: 'static>(fut: impl Future<Output = T> + 'static) -> async_task::Task<T> {
    let remote = reactor().remote.clone();
    let (runnable, task) = async_task::spawn_local(fut, move |r| remote.schedule(r));
    runnable.schedule();
    task
}

/// A timer on this shard's reactor.
#[derive(Debug)]
pub(super) struct Sleep {
    deadline: Instant,
    id: Option<u64>,
}

impl Sleep {
    pub(super) fn new(deadline: Instant) -> Sleep {
        Sleep { deadline, id: None }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let r = reactor();
        if Instant::now() >= this.deadline {
            if let Some(id) = this.id.take() {
                r.remove_timer(this.deadline, id);
            }
            return Poll::Ready(());
        }
        this.id = Some(r.add_timer(this.deadline, this.id, cx.waker()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            if let Some(r) = REACTOR.with(|r| r.borrow().clone()) {
                r.remove_timer(self.deadline, id);
            }
        }
    }
}
