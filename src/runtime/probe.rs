//! What the supervisor can see and steer of a container while its store is busy running it:
//! CPU time spent running the guest, the size of its linear memory, and the pause switch;
//! and how its call notices its stop token ([`Probe::until_stopped`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use tokio::sync::Notify;

/// One per container, kept across its restarts. Cheap to read from any task.
#[derive(Debug)]
pub struct Probe {
    cpu_nanos: AtomicU64,
    memory_bytes: AtomicU64,
    /// The pause switch. A flag and a `Notify` inline rather than a `watch` channel, whose
    /// shared block (eight wakers) cost every container 344 bytes of heap (issue 15).
    paused: AtomicBool,
    resume: Notify,
    /// Set by the stop token's wake-up (see [`Probe::until_stopped`]), which then wakes
    /// `stop_task`, the container's task.
    stop_fired: AtomicBool,
    stop_task: AtomicWaker,
    /// Times the guest was held at an epoch deadline (a yield at a tick, a pause, a wait
    /// for its CPU share): how the supervisor tells a `_start` that stopped at a tick from
    /// one that reached its first wait.
    deadline_holds: AtomicU64,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            cpu_nanos: AtomicU64::new(0),
            memory_bytes: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            resume: Notify::new(),
            stop_fired: AtomicBool::new(false),
            stop_task: AtomicWaker::new(),
            deadline_holds: AtomicU64::new(0),
        }
    }
}

impl Probe {
    /// Time spent running this container (its wasm and the host calls it makes, the time
    /// it is parked excluded), all runs.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed))
    }

    /// Bytes of linear memory of the current instance (0 when none runs).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes.load(Ordering::Relaxed)
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Pause or resume. Returns false when the state was already the requested one.
    pub fn set_paused(&self, paused: bool) -> bool {
        let changed = self.paused.swap(paused, Ordering::SeqCst) != paused;
        if changed && !paused {
            self.resume.notify_waiters();
        }
        changed
    }

    /// Wait while the container is paused (returns at once when it is not): what host
    /// calls and the epoch callback of a paused container wait in.
    pub async fn resumed(&self) {
        // Not paused (nearly always): return without registering a waiter, which takes
        // the `Notify`'s lock twice; this runs at every wake-up of every container.
        if !self.is_paused() {
            return;
        }
        loop {
            let notified = self.resume.notified();
            tokio::pin!(notified);
            // Registered before the flag is read, so a resume between the two is not lost.
            notified.as_mut().enable();
            if !self.is_paused() {
                return;
            }
            notified.await;
        }
    }

    /// Poll `call` until it ends (`Some`) or `stopped` (a stop token's wait) is ready
    /// (`None`, checked first, as in a biased `select!`).
    ///
    /// Why not `select!`: it polls the token's wait at every wake-up of the container, and
    /// tokio-util's wait takes the token's mutex and its `Notify`'s lock each time, work on
    /// every delivery to every parked subscriber. Here the token's wait is polled once with
    /// a waker of this probe's, which marks the probe and wakes the task when the token is
    /// cancelled; later polls look at that mark only (a line `polled` touches anyway).
    ///
    /// Both come pinned by the caller, which keeps them once in its own state (see
    /// `runtime::polled`).
    pub async fn until_stopped<S: Future, F: Future>(
        self: &Arc<Self>,
        mut stopped: Pin<&mut S>,
        mut call: Pin<&mut F>,
    ) -> Option<F::Output> {
        let waker = Waker::from(self.clone());
        let mut task: Option<Waker> = None;
        self.stop_fired.store(true, Ordering::SeqCst);
        std::future::poll_fn(|cx| {
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                self.stop_task.register(cx.waker());
                task = Some(cx.waker().clone());
            }
            if self.stop_fired.load(Ordering::Acquire) && self.stop_fired.swap(false, Ordering::AcqRel) {
                if stopped.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                    return Poll::Ready(None);
                }
                // A wake-up that was not the stop took the task's waker out of `stop_task`:
                // register it again.
                self.stop_task.register(cx.waker());
            }
            call.as_mut().poll(cx).map(Some)
        })
        .await
    }

    /// Times the guest was held at an epoch deadline so far, all runs.
    pub fn deadline_holds(&self) -> u64 {
        self.deadline_holds.load(Ordering::Relaxed)
    }

    /// Called by the epoch-deadline callback each time it holds the guest.
    pub(crate) fn note_deadline_hold(&self) {
        self.deadline_holds.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_cpu(&self, spent: Duration) {
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.cpu_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn grew(&self, from: usize, to: usize) {
        let delta = u64::try_from(to.saturating_sub(from)).unwrap_or(0);
        self.memory_bytes.fetch_add(delta, Ordering::Relaxed);
    }

    /// A growth that was allowed and then failed.
    pub(crate) fn shrank(&self, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(0);
        let _ = self
            .memory_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| Some(m.saturating_sub(bytes)));
    }

    pub(crate) fn instance_gone(&self) {
        self.memory_bytes.store(0, Ordering::Relaxed);
    }
}

/// The waker the stop token's wait is polled with: a cancelled token marks the probe and
/// wakes the container's task.
impl Wake for Probe {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.stop_fired.store(true, Ordering::SeqCst);
        self.stop_task.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_runs_to_its_end_unless_stopped() {
        let probe = Arc::new(Probe::default());
        let stop = tokio_util::sync::CancellationToken::new();
        let done = probe
            .until_stopped(std::pin::pin!(stop.cancelled()), std::pin::pin!(async { 7 }))
            .await;
        assert_eq!(done, Some(7));
        // Cancelled while the call waits: the call ends at once with `None`.
        let waiting = tokio::spawn({
            let (probe, stop) = (probe.clone(), stop.clone());
            async move {
                let stopped = std::pin::pin!(stop.cancelled());
                probe
                    .until_stopped(stopped, std::pin::pin!(std::future::pending::<()>()))
                    .await
            }
        });
        for _ in 0..5 {
            // Wake-ups that are not the stop (a parked container's deliveries) change nothing.
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished());
        stop.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(ended.expect("a stop must end the call").expect("task"), None);
        // Already cancelled: the stop wins over a call that is ready too (biased).
        let stopped = std::pin::pin!(stop.cancelled());
        assert_eq!(probe.until_stopped(stopped, std::pin::pin!(async { 1 })).await, None);
    }

    #[test]
    fn pause_switch_reports_changes_only() {
        let probe = Probe::default();
        assert!(!probe.is_paused());
        assert!(probe.set_paused(true));
        assert!(!probe.set_paused(true), "already paused");
        assert!(probe.is_paused());
        assert!(probe.set_paused(false));
    }

    #[tokio::test]
    async fn a_paused_waiter_goes_on_when_resumed() {
        let probe = std::sync::Arc::new(Probe::default());
        probe.resumed().await;
        assert!(probe.set_paused(true));
        let waiter = tokio::spawn({
            let probe = probe.clone();
            async move { probe.resumed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a paused container must wait");
        assert!(probe.set_paused(false));
        waiter.await.unwrap();
    }

    #[test]
    fn memory_follows_growth_and_resets() {
        let probe = Probe::default();
        probe.grew(0, 65536);
        probe.grew(65536, 3 * 65536);
        assert_eq!(probe.memory_bytes(), 3 * 65536);
        probe.instance_gone();
        assert_eq!(probe.memory_bytes(), 0);
    }
}
