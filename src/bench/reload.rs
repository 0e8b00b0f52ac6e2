//! `shoal bench reload`: the time from saving the compose file to the changed container
//! running again, through the real watcher, validation, diff and apply.
//!
//! A three-container stack (two untouched neighbours and `changed`) runs under a
//! [`Controller`] with `--watch` on; each round rewrites the file with new `args` for
//! `changed` and waits for that container's `start` event. The figure includes the
//! watcher's debounce ([`crate::watch::DEBOUNCE`]), which is most of it by design.

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
                    if let Some(ms) = event
                        .detail
                        .split("took ")
                        .nth(1)
                        .and_then(|rest| rest.split(" ms").next())
                        .and_then(|ms| ms.parse::<f64>().ok())
                    {
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
    shutdown.cancel();
    let _ = running.await;
    Ok(report)
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
