//! Per-container memory cap (`limits.memory`), enforced by wasmtime whenever a linear
//! memory or a table is created or grows.
//!
//! The cap covers everything the container's store allocates through wasmtime: every
//! linear memory (the guest's own growth and the pages the host adds for message copies)
//! plus every table (8 bytes per element). Growth past the cap is refused as the wasm spec
//! says (`memory.grow` returns -1, `table.grow` returns -1); it is not a trap. The first
//! refusal is reported to the operator as a warning, and the runtime remembers it so that a
//! trap that follows (an allocator that aborts) is reported as "out of memory".

use std::sync::Arc;

use wasmtime::ResourceLimiter;

use super::Probe;
use crate::logs::{LogSink, Stream};

/// Bytes counted per table element (a function reference is one pointer).
const TABLE_ELEMENT_BYTES: usize = 8;

/// The first refused growth: what the container held and how much more it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    /// Memories plus tables held when the growth was asked for, in bytes.
    pub held: u64,
    /// The growth asked for, in bytes.
    pub extra: u64,
    /// The cap, in bytes.
    pub limit: u64,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`limits.memory` ({}) refused a growth of {} (it held {})",
            size(self.limit),
            size(self.extra),
            size(self.held)
        )
    }
}

/// A byte count as people read it: `1 MiB`, `1.5 MiB`, `640 KiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            let value = bytes as f64 / scale as f64;
            return if bytes % scale == 0 {
                format!("{} {unit}", bytes / scale)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

/// Where the first refusal is reported.
struct Report {
    container: Arc<str>,
    log: Arc<dyn LogSink>,
}

#[derive(Default)]
pub struct MemoryLimiter {
    max_bytes: Option<usize>,
    /// Bytes of all linear memories of the store.
    memories: usize,
    /// Bytes of all tables of the store.
    tables: usize,
    /// The last growth allowed, taken back if wasmtime then fails to perform it.
    pending_memory: usize,
    pending_table: usize,
    denied: u64,
    first_denial: Option<Denial>,
    report: Option<Report>,
    /// Told about every change of the memories' size, so `ps` can show it without entering
    /// the store.
    probe: Option<Arc<Probe>>,
}

impl std::fmt::Debug for MemoryLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLimiter")
            .field("max_bytes", &self.max_bytes)
            .field("memories", &self.memories)
            .field("tables", &self.tables)
            .field("denied", &self.denied)
            .finish()
    }
}

impl MemoryLimiter {
    /// `max_bytes`: the cap (`None`: only the modules' own maximums apply).
    pub fn new(max_bytes: Option<u64>) -> Self {
        MemoryLimiter {
            max_bytes: max_bytes.map(|b| usize::try_from(b).unwrap_or(usize::MAX)),
            ..MemoryLimiter::default()
        }
    }

    /// Report the first refusal as a warning about `container` on `log`.
    pub fn reporting_to(mut self, container: impl Into<Arc<str>>, log: Arc<dyn LogSink>) -> Self {
        self.report = Some(Report {
            container: container.into(),
            log,
        });
        self
    }

    /// Keep `probe`'s memory figure up to date.
    pub fn with_probe(mut self, probe: Arc<Probe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// How many grows were refused so far.
    pub fn denied(&self) -> u64 {
        self.denied
    }

    /// The first refusal, if any.
    pub fn first_denial(&self) -> Option<Denial> {
        self.first_denial
    }

    /// Bytes currently held by the store's memories and tables.
    pub fn in_use(&self) -> u64 {
        (self.memories + self.tables) as u64
    }

    /// Decide a growth by `extra` bytes on top of what the store holds.
    fn allow(&mut self, extra: usize) -> bool {
        let held = self.memories.saturating_add(self.tables);
        let Some(max) = self.max_bytes else { return true };
        if held.saturating_add(extra) <= max {
            return true;
        }
        self.denied += 1;
        if self.first_denial.is_none() {
            let denial = Denial {
                held: held as u64,
                extra: extra as u64,
                limit: max as u64,
            };
            self.first_denial = Some(denial);
            if let Some(report) = &self.report {
                report.log.line(
                    &report.container,
                    Stream::Warning,
                    &format!(
                        "{denial}: the growth fails as wasm specifies (memory.grow returns -1); raise `limits.memory` if the container needs more"
                    ),
                );
            }
        }
        false
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let extra = desired.saturating_sub(current);
        let allowed = self.allow(extra);
        if allowed {
            self.memories = self.memories.saturating_add(extra);
            self.pending_memory = extra;
            if let Some(probe) = &self.probe {
                probe.grew(current, desired);
            }
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        let pending = std::mem::take(&mut self.pending_memory);
        self.memories = self.memories.saturating_sub(pending);
        if let Some(probe) = &self.probe {
            probe.shrank(pending);
        }
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let extra = desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES);
        let allowed = self.allow(extra);
        if allowed {
            self.tables = self.tables.saturating_add(extra);
            self.pending_table = extra;
        }
        Ok(allowed)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.tables = self.tables.saturating_sub(std::mem::take(&mut self.pending_table));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<String>>);
    impl LogSink for Collect {
        fn line(&self, _: &str, stream: Stream, text: &str) {
            assert_eq!(stream, Stream::Warning);
            self.0.lock().unwrap().push(text.to_string());
        }
    }

    const PAGE: usize = 65536;

    #[test]
    fn memories_and_tables_share_one_cap_and_the_first_refusal_is_reported() {
        let log = Arc::new(Collect::default());
        let mut l = MemoryLimiter::new(Some(4 * PAGE as u64)).reporting_to("c", log.clone());
        assert!(l.memory_growing(0, 2 * PAGE, None).unwrap());
        assert!(l.table_growing(0, 1000, None).unwrap());
        assert!(l.memory_growing(2 * PAGE, 3 * PAGE, None).unwrap());
        // 3 pages + 8000 bytes of table: a fourth page no longer fits.
        assert!(!l.memory_growing(3 * PAGE, 4 * PAGE, None).unwrap());
        assert!(!l.table_growing(1000, 100_000, None).unwrap());
        assert_eq!(l.denied(), 2);
        assert_eq!(
            l.first_denial(),
            Some(Denial {
                held: (3 * PAGE + 8000) as u64,
                extra: PAGE as u64,
                limit: 4 * PAGE as u64
            })
        );
        let lines = log.0.lock().unwrap().clone();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("`limits.memory` (256 KiB) refused a growth of 64 KiB (it held 199.8 KiB)"),
            "{lines:?}"
        );
        assert_eq!(l.in_use(), (3 * PAGE + 8000) as u64);
    }

    #[test]
    fn a_growth_wasmtime_could_not_perform_is_taken_back() {
        let mut l = MemoryLimiter::new(Some(2 * PAGE as u64));
        assert!(l.memory_growing(0, 2 * PAGE, None).unwrap());
        l.memory_grow_failed(wasmtime::Error::msg("mmap failed")).unwrap();
        assert_eq!(l.in_use(), 0);
        assert!(l.memory_growing(0, 2 * PAGE, None).unwrap());
    }

    #[test]
    fn no_cap_allows_everything() {
        let mut l = MemoryLimiter::new(None);
        assert!(l.memory_growing(0, usize::MAX, None).unwrap());
        assert!(l.table_growing(0, usize::MAX, None).unwrap());
        assert_eq!(l.denied(), 0);
    }

    #[test]
    fn sizes() {
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(3 << 19), "1.5 MiB");
        assert_eq!(size(640 << 10), "640 KiB");
        assert_eq!(size(100), "100 B");
        assert_eq!(size(4 << 30), "4 GiB");
    }
}
