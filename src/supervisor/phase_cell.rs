//! A container's [`Phase`] for the containers that depend on it: one writer (the
//! container's task) and any number of readers that wait for a change.
//!
//! Why not `tokio::sync::watch`: its shared block holds eight wakers for its receivers
//! and cost every container 376 bytes of heap; a flag, a lock and one `Notify` do the
//! same for the one or two readers a container has (issue 15).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::Phase;

struct Shared {
    /// The phase and how many times it was set (a reader compares with what it saw).
    phase: Mutex<(Phase, u64)>,
    changed: Notify,
    /// Live [`PhaseSender`]s: at zero the phase can no longer change.
    senders: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, (Phase, u64)> {
        // Each change is one assignment: a poisoned lock still holds a whole phase.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new phase cell starting at `phase`: its one writer and a first reader.
pub(super) fn phase_cell(phase: Phase) -> (PhaseSender, PhaseReceiver) {
    let shared = Arc::new(Shared {
        phase: Mutex::new((phase, 0)),
        changed: Notify::new(),
        senders: AtomicUsize::new(1),
    });
    (PhaseSender(shared.clone()), PhaseReceiver { shared, seen: 0 })
}

/// Sets the phase (the container's task).
pub(super) struct PhaseSender(Arc<Shared>);

impl PhaseSender {
    pub fn send(&self, phase: Phase) {
        {
            let mut slot = self.0.lock();
            slot.0 = phase;
            slot.1 += 1;
        }
        self.0.changed.notify_waiters();
    }
}

impl Clone for PhaseSender {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::SeqCst);
        PhaseSender(self.0.clone())
    }
}

impl Drop for PhaseSender {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

/// Reads the phase and waits for it to change (dependants, `Supervisor::started`).
#[derive(Clone)]
pub(super) struct PhaseReceiver {
    shared: Arc<Shared>,
    /// The change count this reader has seen.
    seen: u64,
}

/// The phase can no longer change: its container's task (this run of it) is gone.
#[derive(Debug)]
pub(super) struct Closed;

impl PhaseReceiver {
    pub fn current(&self) -> Phase {
        self.shared.lock().0.clone()
    }

    /// The phase now, marked as seen.
    pub fn current_and_update(&mut self) -> Phase {
        let slot = self.shared.lock();
        self.seen = slot.1;
        slot.0.clone()
    }

    /// Wait until the phase changed since this reader last looked; `Err` when it never
    /// will again.
    pub async fn changed(&mut self) -> Result<(), Closed> {
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            // Registered before the checks, so a change between them is not lost.
            notified.as_mut().enable();
            {
                let slot = self.shared.lock();
                if slot.1 != self.seen {
                    self.seen = slot.1;
                    return Ok(());
                }
            }
            if self.shared.senders.load(Ordering::SeqCst) == 0 {
                return Err(Closed);
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ExitStatus;
    use crate::supervisor::Outcome;

    #[tokio::test]
    async fn readers_see_each_change_and_the_end_of_the_writer() {
        let (tx, mut rx) = phase_cell(Phase::Waiting);
        let mut late = rx.clone();
        assert_eq!(rx.current_and_update(), Phase::Waiting);
        let waiter = tokio::spawn(async move {
            let mut seen = Vec::new();
            while rx.changed().await.is_ok() {
                seen.push(rx.current_and_update());
            }
            seen
        });
        tokio::task::yield_now().await;
        tx.send(Phase::Running);
        tokio::task::yield_now().await;
        let second = tx.clone();
        drop(tx);
        second.send(Phase::Ended(Outcome::Finished(ExitStatus::Exited(0))));
        drop(second);
        // The waiter ends (with every writer gone it is told, not left waiting), having
        // seen the last phase.
        let seen = waiter.await.unwrap();
        assert_eq!(seen.first(), Some(&Phase::Running));
        assert!(matches!(seen.last(), Some(Phase::Ended(_))));
        // A reader that never looked sees that something changed, then the end.
        assert!(late.changed().await.is_ok());
        assert!(matches!(late.current_and_update(), Phase::Ended(_)));
        assert!(late.changed().await.is_err());
    }
}
