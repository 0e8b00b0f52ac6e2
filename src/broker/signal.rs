//! [`Signal`]: the wake-up a delivery gives the one reader of a mailbox (or a GPIO inbox).
//!
//! Why not `tokio::sync::Notify`: a `Notify` keeps a list of waiters behind a mutex, so a
//! delivery and every wait take that lock, and a waiting `Notified` future is ~70 bytes of
//! state. A mailbox has exactly one reader, so a flag and an [`AtomicWaker`] do the same job
//! without a lock, in a few words: at 1,000 subscribers a fan-out raises 1,000 signals and
//! each subscriber waits on its own once per message (issue 15).
//!
//! Semantics (those of `Notify::notify_one` with one waiter): [`Signal::raise`] wakes the
//! waiting reader, or, when none waits, leaves one permit that ends the next wait at once.
//! Raising again before the permit is taken adds nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;

/// A one-permit wake-up for a single waiter at a time. A second concurrent waiter would
/// replace the first one's waker (it is not lost, but only the last one is woken).
#[derive(Default)]
pub struct Signal {
    raised: AtomicBool,
    waker: AtomicWaker,
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("raised", &self.raised.load(Ordering::Relaxed))
            .finish()
    }
}

impl Signal {
    /// Wake the reader, or leave a permit for its next wait. Call it after the item is
    /// queued: a reader that takes the permit then finds the item.
    ///
    /// Raised already, it wakes no one: the reader has not taken that permit yet, so it
    /// has not looked at its queue since and will find this item too. A stream into a busy
    /// reader's mailbox then writes one flag per item and leaves the waker alone (one
    /// atomic read-modify-write less per delivery).
    pub fn raise(&self) {
        if !self.raised.swap(true, Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    /// Take the permit, if one is left. A reader about to look at its queue takes it first,
    /// so that items it is about to read do not end its next wait spuriously.
    pub fn take(&self) -> bool {
        self.raised.load(Ordering::Relaxed) && self.raised.swap(false, Ordering::AcqRel)
    }

    /// Ready (taking the permit) once raised; registers the task's waker otherwise.
    pub fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.take() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // Raised between the check and the registration: its wake may have found no waker.
        if self.raised.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Wait until raised (at once when a permit is left). Cancel-safe: a dropped wait
    /// leaves nothing behind but a waker that may be woken once for nothing.
    pub fn wait(&self) -> Wait<'_> {
        Wait(self)
    }
}

/// The future of [`Signal::wait`].
pub struct Wait<'a>(&'a Signal);

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_wait(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_raise_before_the_wait_leaves_one_permit() {
        let signal = Signal::default();
        signal.raise();
        signal.raise();
        signal.wait().await;
        let second = tokio::time::timeout(Duration::from_millis(50), signal.wait()).await;
        assert!(second.is_err(), "two raises leave one permit, not two");
    }

    #[tokio::test]
    async fn a_raise_wakes_the_waiting_reader() {
        let signal = Arc::new(Signal::default());
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "nothing raised yet");
        signal.raise();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the raise must wake the reader")
            .expect("waiter task");
    }

    #[test]
    fn take_consumes_the_permit() {
        let signal = Signal::default();
        assert!(!signal.take());
        signal.raise();
        assert!(signal.take());
        assert!(!signal.take());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_raise_is_lost_between_threads() {
        // A reader that drains a counter and waits, against a writer on another thread: if
        // a raise between the check and the registration were lost, the reader would hang.
        let signal = Arc::new(Signal::default());
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        const N: u64 = 20_000;
        let writer = std::thread::spawn({
            let (signal, sent) = (signal.clone(), sent.clone());
            move || {
                for _ in 0..N {
                    sent.fetch_add(1, Ordering::SeqCst);
                    signal.raise();
                }
            }
        });
        let reader = async {
            let mut seen = 0;
            while seen < N {
                signal.take();
                seen = sent.load(Ordering::SeqCst);
                if seen < N {
                    signal.wait().await;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("a raise was lost: the reader hung");
        writer.join().expect("writer thread");
    }
}
