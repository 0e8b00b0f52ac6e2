//! `shoal bench grow`: one guest grows its linear memory one page at a time up to its
//! `limits.memory`, touching every new page as an allocator would; the bench prints how
//! long that took and the process's peak RSS (VmHWM) against the limit.
//!
//! Why it exists: a memory that outgrows its address-space reservation is moved, and
//! wasmtime moves it by copying every byte into a new mapping. With a 1 MiB growth
//! reservation a guest growing to 512 MiB page by page was copied ~500 times (78 s, most
//! of it system time) and held both copies at the moment of each move (peak RSS 1 GB for a
//! 512 MiB limit). The engine's growth reservation ([`crate::runtime::RuntimeConfig`])
//! is what this figure checks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{bench_image, density::CountingSink, BenchError};
use crate::procstat;
use crate::runtime::{ExitStatus, Runtime};
use crate::supervisor::{Outcome, Supervisor};

/// Bytes of a wasm page.
pub const PAGE: u64 = 65536;

/// The guest: grow by one page until `pages` pages, writing one byte into every 4 KiB of
/// each new page (so every host page is resident, as after an allocator used it); exit 0
/// when it got there, 1 when a growth was refused first.
const GROWER: &str = r#"
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $at i32)
    (local $end i32)
    (block $done
      (loop $grow
        (br_if $done (i32.ge_u (memory.size) (i32.const PAGES)))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
          (then (call $exit (i32.const 1))))
        (local.set $at (i32.mul (i32.sub (memory.size) (i32.const 1)) (i32.const 65536)))
        (local.set $end (i32.add (local.get $at) (i32.const 65536)))
        (loop $touch
          (i32.store8 (local.get $at) (i32.const 1))
          (local.set $at (i32.add (local.get $at) (i32.const 4096)))
          (br_if $touch (i32.lt_u (local.get $at) (local.get $end))))
        (br $grow)))
    (call $exit (i32.const 0))))
"#;

/// The grower guest's bytes, for `pages` pages (at least 1).
pub fn grower(pages: u32) -> wasmtime::Result<Vec<u8>> {
    super::guests::assemble(&GROWER.replace("PAGES", &pages.max(1).to_string()))
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GrowReport {
    /// The container's `limits.memory`, in bytes (the size it grows to).
    pub limit_bytes: u64,
    pub pages: u32,
    /// From start to exit, including instantiation.
    pub elapsed: Duration,
    /// VmHWM after the run.
    pub peak_rss_kib: u64,
    /// VmRSS before the container started.
    pub baseline_rss_kib: u64,
    /// What the run added at its peak: VmHWM minus the baseline. A memory that was moved
    /// by copying shows here as up to twice its size.
    pub peak_above_baseline_kib: u64,
    /// How the container ended (exit 0: it reached the limit).
    pub outcome: String,
    pub reached: bool,
}

impl GrowReport {
    /// Peak RSS as a share of the limit (1.0 = exactly the limit).
    pub fn peak_over_limit(&self) -> f64 {
        (self.peak_rss_kib * 1024) as f64 / self.limit_bytes.max(1) as f64
    }
}

impl std::fmt::Display for GrowReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "grew to {} pages ({}) one page at a time in {:.2} s: {}",
            self.pages,
            crate::runtime::size(self.limit_bytes),
            self.elapsed.as_secs_f64(),
            self.outcome
        )?;
        write!(
            f,
            "peak RSS (VmHWM) {:.1} MiB = {:.1}% of the limit; {:.1} MiB above the {:.1} MiB before the start",
            self.peak_rss_kib as f64 / 1024.0,
            self.peak_over_limit() * 100.0,
            self.peak_above_baseline_kib as f64 / 1024.0,
            self.baseline_rss_kib as f64 / 1024.0
        )
    }
}

/// Run the grower once in a one-container stack with `limits.memory = limit_bytes`.
pub async fn run(
    runtime: Arc<Runtime>,
    image: &std::path::Path,
    module: wasmtime::Module,
    limit_bytes: u64,
) -> Result<GrowReport, BenchError> {
    let pages = u32::try_from(limit_bytes / PAGE).unwrap_or(u32::MAX);
    let stack = super::limited_stack(image, 1, &[], serde_json::json!({ "memory": limit_bytes.to_string() }))?;
    let Some(spec) = stack.containers.first() else {
        return Err(BenchError::Stack("the stack has no container".into()));
    };
    procstat::release_free_memory();
    let baseline_rss_kib = procstat::rss_kib().unwrap_or(0);
    let mut runner = Supervisor::new(runtime, Arc::new(CountingSink::default()));
    let started = Instant::now();
    runner.add(spec, Some(bench_image(&module)));
    let outcome = runner.next_end().await.map(|(_, outcome)| outcome);
    let elapsed = started.elapsed();
    let peak_rss_kib = procstat::peak_rss_kib().unwrap_or(0);
    let _ = runner.into_report(false);
    let reached = matches!(outcome, Some(Outcome::Finished(ExitStatus::Exited(0))));
    let outcome = match outcome {
        Some(Outcome::Finished(ExitStatus::Exited(0))) => "reached the limit".to_string(),
        Some(Outcome::Finished(ExitStatus::Exited(1))) => "a growth was refused before the limit".to_string(),
        Some(other) => other.to_string(),
        None => "it never ended".to_string(),
    };
    Ok(GrowReport {
        limit_bytes,
        pages,
        elapsed,
        peak_rss_kib,
        baseline_rss_kib,
        peak_above_baseline_kib: peak_rss_kib.saturating_sub(baseline_rss_kib),
        outcome,
        reached,
    })
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::*;

    #[test]
    fn the_grower_is_valid_wasm() {
        let bytes = grower(3).unwrap();
        wasmparser::Validator::new().validate_all(&bytes).unwrap();
    }
}
