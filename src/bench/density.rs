//! `shoal bench density`: the article's experiment as a command.
//!
//! Containers of one image are started one after another in one stack, through the same
//! supervisor, broker, host API and log path as `shoal up`; `VmRSS` is read at the
//! article's checkpoints; then the stack is torn down and read again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bench_image;
use crate::logs::{LogSink, Stream};
use crate::procstat;
use crate::runtime::Runtime;
use crate::spec::Stack;
use crate::supervisor::Supervisor;

/// How the benchmark's containers behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Long-lived subscribers parked in the SDK poll loop.
    Idle,
    /// Hello-style guests that print and return.
    Exited,
}

/// One row of the article's table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Checkpoint {
    pub containers: usize,
    pub rss_kib: u64,
    /// Time since the first container was started until all of these were running
    /// (idle: subscribed and parked; exited: ended).
    pub elapsed_ms: f64,
}

/// What a run measures: the image's file name and what kind of guest it is (the table
/// says it, since the per-container figure depends on the guest).
#[derive(Debug, Clone)]
pub struct Subject {
    pub image: String,
    pub guest: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DensityReport {
    pub mode: Mode,
    pub image: String,
    /// Which guest ran (`DensityGuest::describe`, or the `--image` path).
    pub guest: String,
    pub checkpoints: Vec<Checkpoint>,
    /// Process CPU time while every container sat idle, as a share of one core.
    pub idle_cpu_percent: Option<f64>,
    pub idle_seconds: f64,
    pub teardown: procstat::Reclamation,
    pub lines_logged: u64,
    /// Host heap (malloc's bytes in use) per container at the last checkpoint, above the
    /// baseline: the part of the per-container figure that is shoal's and wasmtime's own
    /// bookkeeping rather than guest pages. `None` where the C library cannot tell.
    pub heap_per_container_bytes: Option<f64>,
    /// Bytes of one container task's future (tokio keeps it allocated while the container
    /// lives): the largest single item of the host heap before issue 15 boxed its rare parts.
    pub task_future_bytes: usize,
}

impl DensityReport {
    pub fn baseline_kib(&self) -> u64 {
        self.checkpoints.first().map_or(0, |c| c.rss_kib)
    }

    /// Average RSS per container at the last checkpoint, above the baseline.
    pub fn per_container_kib(&self) -> f64 {
        match self.checkpoints.last() {
            Some(last) if last.containers > 0 => {
                last.rss_kib.saturating_sub(self.baseline_kib()) as f64 / last.containers as f64
            }
            _ => 0.0,
        }
    }
}

/// The article's checkpoints (0, 1, 2, 3, 5, 10, 20, 50, 100), then 200, 500, 1000, ...
/// up to `max`, always ending at `max`.
pub fn checkpoints(max: usize) -> Vec<usize> {
    let mut points = vec![0, 1, 2, 3, 5, 10, 20, 50, 100];
    let mut decade = 100;
    while decade < max {
        points.extend([decade * 2, decade * 5, decade * 10]);
        decade *= 10;
    }
    points.retain(|&n| n <= max);
    if points.last() != Some(&max) {
        points.push(max);
    }
    points
}

/// Counts guest lines instead of printing them: a benchmark of 10,000 containers must not
/// measure the terminal.
#[derive(Default)]
pub struct CountingSink(AtomicU64);

impl LogSink for CountingSink {
    fn line(&self, _container: &str, _stream: Stream, _text: &str) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Run the experiment. `stack` holds the containers (already validated and expanded);
/// `module` is the loaded image.
pub async fn run(
    runtime: Arc<Runtime>,
    stack: &Stack,
    module: wasmtime::Module,
    mode: Mode,
    idle_for: Duration,
    subject: Subject,
    mut progress: impl FnMut(&Checkpoint),
) -> DensityReport {
    let sink = Arc::new(CountingSink::default());
    let mut runner = Supervisor::new(runtime, sink.clone());
    let points = checkpoints(stack.containers.len());
    let mut results = Vec::new();
    procstat::release_free_memory();
    let mut next = points.iter().copied().peekable();
    let baseline_anon_kib = procstat::anon_kib().unwrap_or(0);
    let baseline_heap_kib = procstat::heap_in_use_kib();
    // N = 0: everything up but no container.
    if next.peek() == Some(&0) {
        next.next();
        let row = Checkpoint {
            containers: 0,
            rss_kib: procstat::rss_kib().unwrap_or(0),
            elapsed_ms: 0.0,
        };
        progress(&row);
        results.push(row);
    }
    let started = Instant::now();
    for (index, spec) in stack.containers.iter().enumerate() {
        runner.add(spec, Some(bench_image(&module)));
        let count = index + 1;
        if next.peek() != Some(&count) {
            continue;
        }
        next.next();
        settled(&mut runner, mode, count).await;
        let row = Checkpoint {
            containers: count,
            rss_kib: procstat::rss_kib().unwrap_or(0),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        progress(&row);
        results.push(row);
    }
    let heap_per_container_bytes = match (baseline_heap_kib, procstat::heap_in_use_kib()) {
        (Some(before), Some(after)) if !stack.containers.is_empty() => {
            Some((after as f64 - before as f64) * 1024.0 / stack.containers.len() as f64)
        }
        _ => None,
    };
    let idle_cpu_percent = if mode == Mode::Idle && !idle_for.is_zero() {
        Some(idle_cpu(idle_for).await)
    } else {
        None
    };
    let baseline_kib = results.first().map_or(0, |c| c.rss_kib);
    let teardown = tear_down(runner, baseline_kib, baseline_anon_kib).await;
    DensityReport {
        mode,
        image: subject.image,
        guest: subject.guest,
        checkpoints: results,
        idle_cpu_percent,
        idle_seconds: idle_for.as_secs_f64(),
        teardown,
        lines_logged: sink.0.load(Ordering::Relaxed),
        heap_per_container_bytes,
        task_future_bytes: crate::supervisor::task_future_bytes(),
    }
}

/// Wait until the first `count` containers count as running: parked (idle) or ended (exited).
async fn settled(runner: &mut Supervisor, mode: Mode, count: usize) {
    match mode {
        Mode::Idle => {
            // Parked = subscribed: an SDK subscriber subscribes right before its first
            // wait. An image that never subscribes counts once it has been started and
            // had a moment to reach its first wait.
            let since = Instant::now();
            while runner.broker().stats().mailboxes < count
                && !(since.elapsed() > Duration::from_secs(1) && runner.started() >= count)
            {
                tokio::task::yield_now().await;
            }
        }
        Mode::Exited => runner.wait_ended(count).await,
    }
}

/// How long the idle window waits before it starts. A container counts as settled once it
/// has subscribed, right before its first wait; the last of 10,000 are then still
/// reaching that wait (their first park gives back their start-up stack), a few
/// milliseconds of CPU that belong to the start, not to idling. Without this wait they fell
/// inside the window or not depending on how the workers were scheduled: 0.004% or 0.1%
/// of a core from the same binary.
const IDLE_SETTLE: Duration = Duration::from_secs(1);

/// The process's CPU time over `window` of wall time (after [`IDLE_SETTLE`]), as a
/// percentage of one core.
async fn idle_cpu(window: Duration) -> f64 {
    tokio::time::sleep(IDLE_SETTLE).await;
    let cpu_before = procstat::cpu_time();
    let wall = Instant::now();
    tokio::time::sleep(window).await;
    let spent = procstat::cpu_time().saturating_sub(cpu_before);
    spent.as_secs_f64() / wall.elapsed().as_secs_f64() * 100.0
}

/// Stop every container, give free memory back, and compare what stays with the baseline
/// (the peak is read before the teardown).
async fn tear_down(mut runner: Supervisor, baseline_kib: u64, baseline_anon_kib: u64) -> procstat::Reclamation {
    let peak_kib = procstat::peak_rss_kib().unwrap_or(0);
    runner.stop_all().await;
    let _ = runner.into_report(true);
    procstat::release_free_memory();
    procstat::Reclamation {
        baseline_kib,
        peak_kib,
        after_kib: procstat::rss_kib().unwrap_or(0),
        baseline_anon_kib,
        after_anon_kib: procstat::anon_kib().unwrap_or(0),
    }
}

/// The article's table, plus the start time column.
pub fn render_table(report: &DensityReport) -> String {
    let mut out = format!("guest: {}\n", report.guest);
    out.push_str(&format!(
        "{:>10} | {:>12} | {:>9} | {:>24} | {:>19} | {:>10}\n",
        "Containers", "VmRSS (KB)", "VmRSS (MB)", "Delta from previous", "Per-container avg", "Started in"
    ));
    out.push_str(&format!(
        "{:-<11}|{:-<14}|{:-<11}|{:-<26}|{:-<21}|{:-<11}\n",
        "", "", "", "", "", ""
    ));
    let baseline = report.baseline_kib();
    let mut previous: Option<&Checkpoint> = None;
    for row in &report.checkpoints {
        let delta = match previous {
            None => "-".to_string(),
            Some(p) => {
                let added = row.containers - p.containers;
                let delta = row.rss_kib as i64 - p.rss_kib as i64;
                if added == 1 {
                    format!("{delta:+} KB")
                } else {
                    format!("{delta:+} KB ({added} more)")
                }
            }
        };
        let average = if row.containers == 0 {
            "-".to_string()
        } else {
            format!(
                "{:.1} KB",
                (row.rss_kib as f64 - baseline as f64) / row.containers as f64
            )
        };
        let started = if row.containers == 0 {
            "-".to_string()
        } else {
            format!("{:.0} ms", row.elapsed_ms)
        };
        out.push_str(&format!(
            "{:>10} | {:>12} | {:>9.1} | {:>24} | {:>19} | {:>10}\n",
            row.containers,
            row.rss_kib,
            row.rss_kib as f64 / 1024.0,
            delta,
            average,
            started
        ));
        previous = Some(row);
    }
    out.push_str(&format!(
        "{:>10} | {:>12} | {:>9.1} |\n",
        "teardown",
        report.teardown.after_kib,
        report.teardown.after_kib as f64 / 1024.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_follow_the_article_then_decades() {
        assert_eq!(checkpoints(100), [0, 1, 2, 3, 5, 10, 20, 50, 100]);
        assert_eq!(checkpoints(1000), [0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000]);
        assert_eq!(checkpoints(10_000).last(), Some(&10_000));
        assert_eq!(checkpoints(7), [0, 1, 2, 3, 5, 7]);
        assert_eq!(
            checkpoints(1500),
            [0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 1500]
        );
    }
}
