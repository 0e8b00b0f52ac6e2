//! Per-container memory cap (`limits.memory`), enforced by wasmtime when a memory grows.

use std::sync::Arc;

use wasmtime::ResourceLimiter;

use super::Probe;

/// Grows are refused past the cap, as the wasm spec says (`memory.grow` returns -1); the
/// refusal is remembered so shoal can report "memory limit reached" rather than a bare
/// allocation failure in the guest.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    max_bytes: Option<usize>,
    denied: u64,
    /// Told about every growth, so `ps` can show the memory without entering the store.
    probe: Arc<Probe>,
}

impl MemoryLimiter {
    pub fn new(max_bytes: Option<u64>, probe: Arc<Probe>) -> Self {
        MemoryLimiter {
            max_bytes: max_bytes.map(|b| usize::try_from(b).unwrap_or(usize::MAX)),
            denied: 0,
            probe,
        }
    }

    /// How many grows were refused so far.
    pub fn denied(&self) -> u64 {
        self.denied
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.max_bytes.is_none_or(|max| desired <= max);
        if allowed {
            self.probe.grew(current, desired);
        } else {
            self.denied += 1;
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}
