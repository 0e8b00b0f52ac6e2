//! The status rows `ps` and `stats` read: a snapshot shared with the control server, so a
//! reader never waits for the supervisor's task (which may be busy stopping a container).

use std::sync::{Arc, Mutex, MutexGuard};

use super::container::{ContainerInfo, ContainerStatus};
use crate::spec::ContainerSpec;

/// A snapshot source for `ps` and `stats`, readable while the supervisor is busy.
#[derive(Clone, Default)]
pub struct Board {
    rows: Arc<Mutex<Vec<BoardRow>>>,
}

/// One container as the board shows it; `status` is live, the rest is fixed per instance.
#[derive(Clone)]
pub(super) struct BoardRow {
    /// The supervisor's own copy, shared.
    pub spec: Arc<ContainerSpec>,
    /// `None` when the image did not load.
    pub digest: Option<crate::spec::ImageDigest>,
    pub status: Arc<ContainerStatus>,
}

impl Board {
    /// Forget every row (the stack is gone).
    pub fn clear(&self) {
        *self.lock() = Vec::new();
    }

    /// One row per container, in start order.
    pub fn infos(&self) -> Vec<ContainerInfo> {
        let rows = self.lock().clone();
        rows.iter()
            .map(|row| row.status.info(&row.spec, row.digest.as_ref()))
            .collect()
    }

    /// Each container's `gpio:` list, by container name (for `ps`).
    pub fn gpio_grants(&self) -> Vec<(String, Vec<String>)> {
        self.lock()
            .iter()
            .filter(|row| !row.spec.gpio.is_empty())
            .map(|row| (row.spec.name.to_string(), row.spec.gpio.clone()))
            .collect()
    }

    /// Add one row, not a new board: `shoal bench` adds 10,000 containers one by one.
    pub(super) fn push(&self, row: BoardRow) {
        self.lock().push(row);
    }

    /// Replace every row (after a reload reordered, replaced or removed containers).
    pub(super) fn set(&self, rows: Vec<BoardRow>) {
        *self.lock() = rows;
    }

    /// A thread that panicked holding the lock cannot have left the rows half-written (each change is one
    /// assignment or push), so a poisoned lock is still good to read.
    fn lock(&self) -> MutexGuard<'_, Vec<BoardRow>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }
}
