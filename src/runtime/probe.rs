//! What the supervisor can see and steer of a container while its store is busy running it:
//! CPU time spent in guest code, the size of its linear memory, and the pause switch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// One per container, kept across its restarts. Cheap to read from any task.
#[derive(Debug)]
pub struct Probe {
    cpu_nanos: AtomicU64,
    memory_bytes: AtomicU64,
    paused: watch::Sender<bool>,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            cpu_nanos: AtomicU64::new(0),
            memory_bytes: AtomicU64::new(0),
            paused: watch::Sender::new(false),
        }
    }
}

impl Probe {
    /// Time spent executing this container's guest code (host calls excluded), all runs.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed))
    }

    /// Bytes of linear memory of the current instance (0 when none runs).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes.load(Ordering::Relaxed)
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Pause or resume. Returns false when the state was already the requested one.
    pub fn set_paused(&self, paused: bool) -> bool {
        self.paused.send_if_modified(|p| std::mem::replace(p, paused) != paused)
    }

    /// A receiver for host calls that must hold a paused container.
    pub fn pause_receiver(&self) -> watch::Receiver<bool> {
        self.paused.subscribe()
    }

    pub(crate) fn add_cpu(&self, spent: Duration) {
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.cpu_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn grew(&self, from: usize, to: usize) {
        let delta = u64::try_from(to.saturating_sub(from)).unwrap_or(0);
        self.memory_bytes.fetch_add(delta, Ordering::Relaxed);
    }

    pub(crate) fn instance_gone(&self) {
        self.memory_bytes.store(0, Ordering::Relaxed);
    }
}

/// The store-side half: times guest execution between call-hook transitions.
#[derive(Debug, Default)]
pub(crate) struct CpuClock {
    entered: Option<Instant>,
}

impl CpuClock {
    pub fn enter(&mut self) {
        self.entered.get_or_insert_with(Instant::now);
    }

    pub fn leave(&mut self, probe: &Probe) {
        if let Some(since) = self.entered.take() {
            probe.add_cpu(since.elapsed());
        }
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
