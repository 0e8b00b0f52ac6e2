//! `shoal bench soak`: many up/down cycles of one stack in one process. Memory that any
//! part of shoal forgets to give back shows up as RSS growing from cycle to cycle.

use std::sync::Arc;

use super::bench_image;
use crate::procstat;
use crate::runtime::Runtime;
use crate::spec::Stack;
use crate::supervisor::Supervisor;

use super::density::CountingSink;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakSample {
    pub cycles: usize,
    pub rss_kib: u64,
    /// The anonymous part of `rss_kib` (heap, stacks): what a leak would grow. The rest is
    /// file-backed, mostly shoal's own code pages faulted in the first time a path runs.
    pub anon_kib: u64,
    /// Live heap (see [`procstat::heap_in_use_kib`]); 0 where it cannot be read.
    pub heap_kib: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakReport {
    pub containers_per_cycle: usize,
    pub samples: Vec<SoakSample>,
}

impl SoakReport {
    /// RSS growth from the first sample after warm-up to the last, in percent.
    pub fn growth_percent(&self) -> f64 {
        match (self.samples.get(1).or(self.samples.first()), self.samples.last()) {
            (Some(first), Some(last)) if first.rss_kib > 0 => {
                (last.rss_kib as f64 - first.rss_kib as f64) / first.rss_kib as f64 * 100.0
            }
            _ => 0.0,
        }
    }
}

/// Run `cycles` cycles: start every container of `stack`, wait until all are parked
/// (subscribed), stop them all, give freed heap back; sample RSS every `every` cycles.
pub async fn run(
    runtime: Arc<Runtime>,
    stack: &Stack,
    module: wasmtime::Module,
    cycles: usize,
    every: usize,
    mut progress: impl FnMut(&SoakSample),
) -> SoakReport {
    let sink = Arc::new(CountingSink::default());
    let every = every.max(1);
    let mut samples = Vec::new();
    let record = |cycles: usize, samples: &mut Vec<SoakSample>, progress: &mut dyn FnMut(&SoakSample)| {
        let sample = SoakSample {
            cycles,
            rss_kib: procstat::rss_kib().unwrap_or(0),
            anon_kib: procstat::anon_kib().unwrap_or(0),
            heap_kib: procstat::heap_in_use_kib().unwrap_or(0),
        };
        progress(&sample);
        samples.push(sample);
    };
    record(0, &mut samples, &mut progress);
    for cycle in 1..=cycles {
        let mut runner = Supervisor::new(runtime.clone(), sink.clone());
        for spec in &stack.containers {
            runner.add(spec, Some(bench_image(&module)));
        }
        let n = stack.containers.len();
        while runner.broker().stats().mailboxes < n && runner.ended() < n {
            tokio::task::yield_now().await;
        }
        runner.stop_all().await;
        drop(runner);
        procstat::release_free_memory();
        if cycle % every == 0 {
            record(cycle, &mut samples, &mut progress);
        }
    }
    SoakReport {
        containers_per_cycle: stack.containers.len(),
        samples,
    }
}
