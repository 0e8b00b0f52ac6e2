//! `shoal bench isolation`: what `limits.cpu` holds a spinning guest to, and what spinning
//! guests cost their neighbours' message latency, with and without a CPU limit.
//!
//! The spinner is a built-in guest that loops without any host call. Its CPU share is the
//! process's CPU time (user + system, all threads) over a window divided by the window:
//! nothing else runs in the process then. The latency is `shoal bench messaging`'s (one
//! echo subscriber, one-way, publish to the guest holding the message) with the spinners
//! running in the same stack.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bench_image;
use crate::procstat;
use crate::runtime::Runtime;
use crate::spec::{ContainerSpec, Stack};
use crate::supervisor::Supervisor;

use super::density::CountingSink;
use super::messaging::{run_beside, MessagingRow};

#[derive(Debug, Clone, serde::Serialize)]
pub struct CpuRow {
    /// `limits.cpu` in percent; `None`: no limit.
    pub limit_percent: Option<f64>,
    /// Share of one core the spinner used over the window, in percent.
    pub used_percent: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NeighbourRow {
    pub spinners: usize,
    pub limit_percent: Option<f64>,
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
}

fn percent(stack: &Stack) -> Option<f64> {
    stack
        .containers
        .first()
        .and_then(|c| c.limits.cpu)
        .map(|share| share.fraction() * 100.0)
}

/// Run the one spinner of `stack` for `window` (after a short warm-up) and measure its share.
pub async fn cpu_share(runtime: Arc<Runtime>, stack: &Stack, module: wasmtime::Module, window: Duration) -> CpuRow {
    let mut runner = Supervisor::new(runtime, Arc::new(CountingSink::default()));
    for spec in &stack.containers {
        runner.add(spec, Some(bench_image(&module)));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (cpu, wall) = (procstat::cpu_time(), Instant::now());
    tokio::time::sleep(window).await;
    let used = procstat::cpu_time().saturating_sub(cpu).as_secs_f64() / wall.elapsed().as_secs_f64();
    runner.stop_all().await;
    let _ = runner.into_report(true);
    CpuRow {
        limit_percent: percent(stack),
        used_percent: used * 100.0,
    }
}

/// Publish -> deliver latency to one echo subscriber while the spinners of `spinners` run.
pub async fn neighbour_latency(
    runtime: Arc<Runtime>,
    echo: &Stack,
    echo_module: wasmtime::Module,
    spinners: &Stack,
    spin_module: wasmtime::Module,
    rounds: usize,
) -> NeighbourRow {
    let neighbours: Vec<(ContainerSpec, wasmtime::Module)> = spinners
        .containers
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut spec = spec.clone();
            spec.name = format!("spin-{}", i + 1).parse().expect("`spin-<n>` is a valid name");
            (spec, spin_module.clone())
        })
        .collect();
    let row: MessagingRow = run_beside(runtime, echo, echo_module, &neighbours, rounds, 1).await;
    NeighbourRow {
        spinners: neighbours.len(),
        limit_percent: percent(spinners),
        latency_p50_us: row.latency_p50_us,
        latency_p99_us: row.latency_p99_us,
    }
}

fn limit_text(limit: Option<f64>) -> String {
    limit.map_or_else(|| "none".to_string(), |p| format!("{p:.0}%"))
}

pub fn render(cpu: &[CpuRow], neighbours: &[NeighbourRow]) -> String {
    let mut out = String::from("| limits.cpu | spinner's CPU (one core = 100%) |\n|---:|---:|\n");
    for row in cpu {
        out += &format!("| {} | {:.1}% |\n", limit_text(row.limit_percent), row.used_percent);
    }
    out += "\n| spinners | their limits.cpu | neighbour latency p50 | p99 |\n|---:|---:|---:|---:|\n";
    for row in neighbours {
        out += &format!(
            "| {} | {} | {:.0} us | {:.0} us |\n",
            row.spinners,
            limit_text(row.limit_percent),
            row.latency_p50_us,
            row.latency_p99_us
        );
    }
    out
}

/// Both measurements, as `shoal bench isolation` prints them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IsolationReport {
    pub cpu: Vec<CpuRow>,
    pub neighbours: Vec<NeighbourRow>,
}

/// CPU shares for no limit, 50%, 25% and 10%; then neighbour latency alone, beside
/// `spinners` unlimited spinners, and beside as many at 10%.
pub fn run(
    images: &crate::images::ImageStore,
    runtime: Arc<Runtime>,
    executor: &tokio::runtime::Runtime,
    window: Duration,
    spinners: usize,
    rounds: usize,
    mut progress: impl FnMut(&str),
) -> Result<IsolationReport, super::BenchError> {
    let guest = |name: &str, bytes: wasmtime::Result<Vec<u8>>| {
        let bytes = bytes.map_err(|e| super::BenchError::Guest(format!("{e:#}")))?;
        let path = super::built_in_image(images, name, &bytes)?;
        let module = images
            .load_module(runtime.engine(), &path)
            .map_err(|e| super::BenchError::Guest(e.to_string()))?
            .module;
        Ok::<_, super::BenchError>((path, module))
    };
    let (spin_path, spin) = guest("spin", super::guests::spin())?;
    let (echo_path, echo) = guest("echo-subscriber", super::guests::echo_subscriber())?;
    let limits = |cpu: Option<&str>| cpu.map_or(serde_json::Value::Null, |c| serde_json::json!({ "cpu": c }));

    let mut cpu = Vec::new();
    for share in [None, Some("50%"), Some("25%"), Some("10%")] {
        let stack = super::limited_stack(&spin_path, 1, &[], limits(share))?;
        let row = executor.block_on(cpu_share(runtime.clone(), &stack, spin.clone(), window));
        progress(&format!(
            "limits.cpu {}: {:.1}%",
            limit_text(row.limit_percent),
            row.used_percent
        ));
        cpu.push(row);
    }
    let echo_stack = super::replicated_stack(&echo_path, 1, &["messaging"])?;
    let mut neighbours = Vec::new();
    for (count, share) in [(0, None), (spinners, None), (spinners, Some("10%"))] {
        let stack = super::limited_stack(&spin_path, count, &[], limits(share))?;
        let stack_spinners = if count == 0 {
            Stack {
                containers: Vec::new(),
                ..stack
            }
        } else {
            stack
        };
        let row = executor.block_on(neighbour_latency(
            runtime.clone(),
            &echo_stack,
            echo.clone(),
            &stack_spinners,
            spin.clone(),
            rounds,
        ));
        progress(&format!(
            "{} spinners at {}: p50 {:.0} us",
            row.spinners,
            limit_text(row.limit_percent),
            row.latency_p50_us
        ));
        neighbours.push(row);
        crate::procstat::release_free_memory();
    }
    Ok(IsolationReport { cpu, neighbours })
}
