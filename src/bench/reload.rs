//! `shoal bench reload`: the time from saving the compose file to the changed container
//! running again, through the real watcher, validation, diff and apply.
//!
//! A three-container stack (two untouched neighbours and `changed`) runs under a
//! [`Controller`] with `--watch` on; each round rewrites the file with new `args` for
//! `changed` and waits for that container's `start` event. The figure includes the
//! watcher's debounce ([`crate::watch::DEBOUNCE`]), which is most of it by design.
//!
//! Then [`BIG_ROUNDS`] reloads point `changed` at a generated ~2 MB image (different bytes
//! each time, so each is compiled, not read from the compile cache) while neighbours
//! sleep 10 ms in a loop on the same executor ([`neighbours_sleeping`], two per worker so
//! every worker has some) and note how late each wakes: a compile on an executor thread
//! would show as lateness of its length.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::BenchError;
use crate::controller::{Controller, Options};
use crate::images::ImageStore;
use crate::logs::{LogSink, Stream};
use crate::runtime::Runtime;
use crate::supervisor;

/// Save -> running figures, in milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    pub rounds: usize,
    /// Save to the changed container's `start` event.
    pub save_to_running_ms: Vec<f64>,
    /// Validation + diff + apply alone, as each reload event reports it.
    pub apply_ms: Vec<f64>,
    /// Size of the generated image the big reloads compile, in bytes.
    pub big_image_bytes: usize,
    /// Each big reload's validation + compile + diff + apply, from its reload event.
    pub big_apply_ms: Vec<f64>,
    /// How late each 10 ms sleep of the neighbours woke during the big reloads.
    pub neighbour_late_ms: Vec<f64>,
}

/// Reloads that compile the generated big image.
pub const BIG_ROUNDS: usize = 3;

/// A valid guest of about 2 MB: `_start` returns at once, and 2,500 functions of
/// arithmetic that nothing calls but the compiler must still translate. `round` is in
/// an exported global, so every round's bytes (and compile-cache key) differ.
pub fn big_image(round: usize) -> wasmtime::Result<Vec<u8>> {
    let mut text = String::with_capacity(12 << 20);
    text.push_str("(module (memory (export \"memory\") 1)\n");
    text.push_str(&format!("(global (export \"round\") i32 (i32.const {round}))\n"));
    text.push_str("(func (export \"_start\"))\n");
    for f in 0..2500 {
        text.push_str("(func (param i32) (result i32) local.get 0\n");
        for k in 0..80 {
            text.push_str(&format!(
                "i32.const {} i32.add i32.const {} i32.xor\n",
                f * 131 + k,
                k * 7919 + 1
            ));
        }
        text.push_str(")\n");
    }
    text.push(')');
    super::guests::assemble(&text)
}

/// Tasks on the current executor that sleep 10 ms in a loop until `stop` and record how
/// late each wake was (in ms), `count` of them.
fn neighbours_sleeping(count: usize, stop: CancellationToken) -> Vec<tokio::task::JoinHandle<Vec<f64>>> {
    (0..count)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut late = Vec::new();
                let nap = Duration::from_millis(10);
                while !stop.is_cancelled() {
                    let began = Instant::now();
                    tokio::time::sleep(nap).await;
                    late.push(began.elapsed().saturating_sub(nap).as_secs_f64() * 1000.0);
                }
                late
            })
        })
        .collect()
}

fn compose_big(image: &Path, big: &Path) -> String {
    let (image, big) = (image.display(), big.display());
    format!(
        "name: bench-reload\ncontainers:\n  left:\n    image: {image}\n    capabilities: [messaging]\n  right:\n    image: {image}\n    capabilities: [messaging]\n  changed:\n    image: {big}\n"
    )
}

struct Quiet;

impl LogSink for Quiet {
    fn line(&self, _: &str, _: Stream, _: &str) {}
}

fn compose(image: &Path, round: usize) -> String {
    let image = image.display();
    format!(
        "name: bench-reload\ncontainers:\n  left:\n    image: {image}\n    capabilities: [messaging]\n  right:\n    image: {image}\n    capabilities: [messaging]\n  changed:\n    image: {image}\n    capabilities: [messaging]\n    args: [\"round-{round}\"]\n"
    )
}

pub async fn run(
    runtime: Arc<Runtime>,
    images: ImageStore,
    image: &Path,
    dir: &Path,
    rounds: usize,
    mut progress: impl FnMut(usize, f64),
) -> Result<ReloadReport, BenchError> {
    let file = dir.join("shoal.yaml");
    let write = |text: String| {
        std::fs::write(&file, text).map_err(|source| BenchError::Write {
            path: file.clone(),
            source,
        })
    };
    write(compose(image, 0))?;
    let (stack, _) = crate::check::load_checked(&file, &images, &crate::check::Engines::Existing(runtime.engine()))
        .map_err(|d| BenchError::Stack(crate::spec::render_diagnostics(&d)))?;
    let modules =
        supervisor::load_modules(&runtime, &images, &stack, |_, _| {}).map_err(|e| BenchError::Stack(e.to_string()))?;
    let options = Options {
        watch: true,
        exit_when_done: false,
        selection: Vec::new(),
        book: None,
    };
    let controller = Controller::new(runtime, images, stack, Arc::new(Quiet), options);
    let events = controller.supervisor().events().clone();
    let (_commands_tx, commands_rx) = mpsc::channel(1);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(controller.run(modules, commands_rx, shutdown.clone()));
    let (_, mut live) = events.subscribe();
    let mut report = ReloadReport {
        rounds,
        save_to_running_ms: Vec::new(),
        apply_ms: Vec::new(),
        big_image_bytes: 0,
        big_apply_ms: Vec::new(),
        neighbour_late_ms: Vec::new(),
    };
    // Let the first start and the watcher settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for round in 1..=rounds {
        while live.try_recv().is_ok() {}
        let saved = Instant::now();
        write(compose(image, round))?;
        let deadline = saved + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, live.recv()).await {
                Ok(Ok(event)) if event.action == "reload" => {
                    if let Some(ms) = took_ms(&event.detail) {
                        report.apply_ms.push(ms);
                    }
                }
                Ok(Ok(event)) if event.action == "start" && event.container.as_deref() == Some("changed") => {
                    let ms = saved.elapsed().as_secs_f64() * 1000.0;
                    progress(round, ms);
                    report.save_to_running_ms.push(ms);
                    break;
                }
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                _ => {
                    shutdown.cancel();
                    return Err(BenchError::Stack(format!(
                        "round {round}: the reload did not happen within 10 s"
                    )));
                }
            }
        }
    }
    // Reloads that compile a 2 MB image, with neighbours sleeping 10 ms beside them.
    let stop_neighbours = CancellationToken::new();
    let neighbours = neighbours_sleeping(2 * crate::executor::workers(), stop_neighbours.clone());
    if let Err(e) = big_reloads(&file, image, dir, &mut live, &mut report).await {
        stop_neighbours.cancel();
        shutdown.cancel();
        return Err(e);
    }
    stop_neighbours.cancel();
    for neighbour in neighbours {
        report.neighbour_late_ms.extend(neighbour.await.unwrap_or_default());
    }
    shutdown.cancel();
    let _ = running.await;
    Ok(report)
}

/// The [`BIG_ROUNDS`] reloads onto a freshly generated big image, each awaited through
/// its `reload` (or `reload-failed`) event; their durations go into `report`.
async fn big_reloads(
    file: &Path,
    image: &Path,
    dir: &Path,
    live: &mut tokio::sync::broadcast::Receiver<crate::supervisor::Event>,
    report: &mut ReloadReport,
) -> Result<(), BenchError> {
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|source| BenchError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    for round in 1..=BIG_ROUNDS {
        let bytes = big_image(round).map_err(|e| BenchError::Guest(format!("{e:#}")))?;
        report.big_image_bytes = bytes.len();
        let big = dir.join(format!("big-{round}.wasm"));
        write(&big, &bytes)?;
        while live.try_recv().is_ok() {}
        write(file, compose_big(image, &big).as_bytes())?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, live.recv()).await {
                Ok(Ok(event)) if event.action == "reload" || event.action == "reload-failed" => {
                    if let Some(ms) = took_ms(&event.detail) {
                        report.big_apply_ms.push(ms);
                    }
                    break;
                }
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                _ => {
                    return Err(BenchError::Stack(format!(
                        "big reload {round}: the reload did not happen within 120 s"
                    )))
                }
            }
        }
    }
    Ok(())
}

/// The `took N ms` of a reload event's detail.
fn took_ms(detail: &str) -> Option<f64> {
    detail.split("took ").nth(1)?.split(" ms").next()?.parse().ok()
}

/// `(p50, p99, max)` of `values`.
pub fn summary(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[rank.min(sorted.len() - 1)]
    };
    (at(0.5), at(0.99), sorted.last().copied().unwrap_or(0.0))
}
