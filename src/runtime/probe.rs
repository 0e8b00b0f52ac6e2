//! What the supervisor can see and steer of a container while its store is busy running it:
//! CPU time spent running the guest, the size of its linear memory, and the pause switch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

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
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            cpu_nanos: AtomicU64::new(0),
            memory_bytes: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            resume: Notify::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
