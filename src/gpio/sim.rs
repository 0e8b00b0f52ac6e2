//! The `sim` backend: a line whose value is a cell in shoal's memory.

use std::sync::atomic::{AtomicBool, Ordering};

pub(super) struct SimLine {
    value: AtomicBool,
}

impl SimLine {
    pub fn new(initial: bool) -> Self {
        SimLine {
            value: AtomicBool::new(initial),
        }
    }

    pub fn get(&self) -> bool {
        self.value.load(Ordering::SeqCst)
    }

    pub fn set(&self, value: bool) {
        self.value.store(value, Ordering::SeqCst);
    }
}
