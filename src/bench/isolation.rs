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

/// The measurements, as `shoal bench isolation` prints them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IsolationReport {
    pub cpu: Vec<CpuRow>,
    pub neighbours: Vec<NeighbourRow>,
    /// `None` when the SDK-built guests are not built (the reason was printed).
    pub pair: Option<PairRow>,
}

/// The 50-message pub/sub pair (one message every 20 ms) beside two spinners, one of
/// them at `limits.cpu: 0.2`: the time from starting the four containers until all 50
/// are delivered into the subscriber's mailbox. Every guest is the SDK-style image from
/// `compose-examples/images/` except the built-in spinner.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairRow {
    pub messages: u64,
    pub period_ms: u64,
    pub delivered: u64,
    pub total_ms: f64,
}

/// Run the pair of [`PairRow`] beside the spinners and time it.
pub async fn pair_beside_spinners(
    runtime: Arc<Runtime>,
    stack: &Stack,
    modules: &std::collections::HashMap<crate::spec::ImageRef, crate::supervisor::LoadedImage>,
) -> PairRow {
    let began = Instant::now();
    let mut runner = Supervisor::new(runtime, Arc::new(CountingSink::default()));
    for spec in &stack.containers {
        runner.add(spec, modules.get(&spec.image).cloned());
    }
    // The publisher exits after its last message; the pair is done once the broker has
    // delivered all 50 into the subscriber's mailbox.
    while let Some((name, _)) = runner.next_end().await {
        if name == "pub" {
            break;
        }
    }
    let broker = runner.broker().clone();
    let delivered = loop {
        let stats = broker.stats();
        if stats.delivered >= PAIR_MESSAGES || began.elapsed() > Duration::from_secs(60) {
            break stats.delivered;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let total_ms = began.elapsed().as_secs_f64() * 1000.0;
    runner.stop_all().await;
    let _ = runner.into_report(true);
    PairRow {
        messages: PAIR_MESSAGES,
        period_ms: PAIR_PERIOD_MS,
        delivered,
        total_ms,
    }
}

const PAIR_MESSAGES: u64 = 50;
const PAIR_PERIOD_MS: u64 = 20;

/// The stack of [`pair_beside_spinners`]: `seq-subscriber`, `seq-publisher` (50 messages,
/// 20 ms apart) and two spinners, one held to `limits.cpu: 0.2`.
pub fn pair_stack(spin: &std::path::Path) -> Result<Stack, super::BenchError> {
    let dirs = super::guests::sdk_image_dirs();
    let publisher = super::guests::find_sdk_image(&dirs, "seq-publisher.wasm")?;
    let subscriber = super::guests::find_sdk_image(&dirs, "seq-subscriber.wasm")?;
    super::stack_from(&serde_json::json!({
        "name": "bench",
        "containers": {
            "spin": {"image": spin, "stop_timeout": "5s"},
            "spin-limited": {"image": spin, "stop_timeout": "5s", "limits": {"cpu": 0.2}},
            "sub": {"image": subscriber, "capabilities": ["messaging"], "stop_timeout": "5s"},
            "pub": {
                "image": publisher,
                "capabilities": ["messaging", "timers"],
                "env": {"COUNT": PAIR_MESSAGES.to_string(), "PERIOD_MS": PAIR_PERIOD_MS.to_string()},
                "depends_on": {"sub": {"condition": "service_started"}},
            },
        }
    }))
}

pub fn render_pair(row: &PairRow) -> String {
    format!(
        "\n| pub/sub pair beside 2 spinners (one at 0.2) | messages | delivered | total |\n|---|---:|---:|---:|\n\
         | {} ms apart | {} | {} | {:.2} s |\n",
        row.period_ms,
        row.messages,
        row.delivered,
        row.total_ms / 1000.0
    )
}

/// [`pair_beside_spinners`] with its stack and images, or `None` (said through `progress`)
/// when the SDK-built guests are not built.
fn pair_row(
    images: &crate::images::ImageStore,
    runtime: &Arc<Runtime>,
    executor: &tokio::runtime::Runtime,
    spin_path: &std::path::Path,
    progress: &mut impl FnMut(&str),
) -> Result<Option<PairRow>, super::BenchError> {
    match pair_stack(spin_path) {
        Ok(stack) => {
            let modules = crate::supervisor::load_modules(runtime, images, &stack, |_, _| {})
                .map_err(|e| super::BenchError::Stack(e.to_string()))?;
            let row = executor.block_on(pair_beside_spinners(runtime.clone(), &stack, &modules));
            progress(&format!(
                "pub/sub pair beside 2 spinners: {:.2} s",
                row.total_ms / 1000.0
            ));
            Ok(Some(row))
        }
        Err(e) => {
            progress(&format!("pub/sub pair skipped: {e}"));
            Ok(None)
        }
    }
}

/// CPU shares for no limit, 50%, 25% and 10%; then neighbour latency alone, beside
/// `cores - 1` and `2 x cores` unlimited spinners (cores: the executor's workers), and
/// beside `spinners` at 10%.
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
    let cores = crate::executor::workers();
    let configurations = [
        (0, None),
        (cores.saturating_sub(1), None),
        (2 * cores, None),
        (spinners, Some("10%")),
    ];
    for (count, share) in configurations {
        let stack = super::limited_stack(&spin_path, count, &[], limits(share))?;
        if count == 0 && !neighbours.is_empty() {
            continue;
        }
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
    let pair = pair_row(images, &runtime, executor, &spin_path, &mut progress)?;
    Ok(IsolationReport { cpu, neighbours, pair })
}
