//! Shard-local synchronisation: cheap because nothing here crosses threads. For work that
//! crosses shards or reaches a blocking thread, use `async_channel` (re-exported as
//! [`channel`]), which works on both drivers.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

pub use async_channel as channel;

#[derive(Debug)]
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    closed: bool,
}

/// Sends one value to the paired [`Receiver`] on the same shard.
#[derive(Debug)]
pub struct Sender<T>(Rc<RefCell<Slot<T>>>);

/// Receives the value of the paired [`Sender`]; resolves to `None` if the sender was dropped
/// without sending.
#[derive(Debug)]
pub struct Receiver<T>(Rc<RefCell<Slot<T>>>);

/// A one-shot channel within one shard.
pub fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Rc::new(RefCell::new(Slot { value: None, waker: None, closed: false }));
    (Sender(slot.clone()), Receiver(slot))
}

impl<T> Sender<T> {
    /// Delivers `value`; it is dropped if the receiver is gone.
    pub fn send(self, value: T) {
        let waker = {
            let mut s = self.0.borrow_mut();
            s.value = Some(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The receiver has been dropped: nobody waits for the value.
    pub fn is_canceled(&self) -> bool {
        Rc::strong_count(&self.0) == 1
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.0.borrow_mut();
            s.closed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.0.borrow_mut();
        if let Some(v) = s.value.take() {
            return Poll::Ready(Some(v));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Wakes one waiting task on the same shard; a notification sent while nobody waits is kept
/// until the next wait.
#[derive(Debug, Default)]
pub struct Notify {
    inner: RefCell<(bool, Option<Waker>)>,
}

impl Notify {
    /// A notifier with nothing pending.
    pub fn new() -> Notify {
        Notify::default()
    }

    /// Wakes the waiter, or marks the notification pending.
    pub fn notify(&self) {
        let w = {
            let mut i = self.inner.borrow_mut();
            i.0 = true;
            i.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Takes a pending notification, or registers `cx` to be woken by the next one.
    pub fn poll_notified(&self, cx: &Context<'_>) -> Poll<()> {
        let mut i = self.inner.borrow_mut();
        if std::mem::take(&mut i.0) {
            return Poll::Ready(());
        }
        match &i.1 {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => i.1 = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Waits for a notification.
    pub async fn notified(&self) {
        std::future::poll_fn(|cx| self.poll_notified(cx)).await;
    }
}
