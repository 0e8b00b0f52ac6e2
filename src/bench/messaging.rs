//! `shoal bench messaging`: publish -> deliver latency to parked subscribers, and
//! fan-out throughput, for 1, 10, 100 and 1,000 subscribers.
//!
//! The subscribers are the built-in echo guest (an SDK-style poll loop parked in
//! `ocre_sleep`). The benchmark publishes on `bench/` with its wall-clock time as payload;
//! each subscriber answers on `ack/` with that time and its own receive time (WASI
//! realtime clock, the same system clock), so the latency is one-way: from the publish
//! call to the moment the guest holds the message in its own memory.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::bench_image;
use crate::runtime::Runtime;
use crate::spec::{ContainerSpec, Stack};
use crate::supervisor::Supervisor;

use super::density::CountingSink;

#[derive(Debug, Clone, serde::Serialize)]
pub struct MessagingRow {
    pub subscribers: usize,
    pub latency_samples: usize,
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
    /// Deliveries (message handed to a guest and acknowledged) per second in a burst.
    pub deliveries_per_second: f64,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Measure one subscriber count. `stack` holds exactly that many echo subscribers.
pub async fn run_one(
    runtime: Arc<Runtime>,
    stack: &Stack,
    module: wasmtime::Module,
    rounds: usize,
    burst: usize,
) -> MessagingRow {
    run_beside(runtime, stack, module, &[], rounds, burst).await
}

/// [`run_one`] with `neighbours` (other containers and their modules) running in the same
/// stack, started first: what they cost the subscribers (`shoal bench isolation`).
pub async fn run_beside(
    runtime: Arc<Runtime>,
    stack: &Stack,
    module: wasmtime::Module,
    neighbours: &[(ContainerSpec, wasmtime::Module)],
    rounds: usize,
    burst: usize,
) -> MessagingRow {
    let n = stack.containers.len();
    let mut runner = Supervisor::new(runtime, Arc::new(CountingSink::default()));
    for (spec, neighbour) in neighbours {
        runner.add(spec, Some(bench_image(neighbour)));
    }
    for spec in &stack.containers {
        runner.add(spec, Some(bench_image(&module)));
    }
    let broker = runner.broker().clone();
    while broker.stats().mailboxes < n {
        tokio::task::yield_now().await;
    }
    let acks = broker.mailbox(n * burst.max(1) + 16);
    acks.subscribe("ack/");
    let notify = acks.notify();
    let collect = |want: usize| {
        let acks = &acks;
        let notify = notify.clone();
        async move {
            let mut got = Vec::with_capacity(want);
            while got.len() < want {
                match acks.try_recv() {
                    Some(message) => got.push(message),
                    None => {
                        if tokio::time::timeout(Duration::from_secs(10), notify.notified())
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            got
        }
    };

    // Latency: one message at a time, to subscribers that are parked again each round.
    let mut latencies = Vec::with_capacity(rounds * n);
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let _ = broker.publish("bench/latency", "application/octet-stream", &now_ns().to_le_bytes());
        for ack in collect(n).await {
            if let (Some(sent), Some(received)) = (ack.payload().get(0..8), ack.payload().get(8..16)) {
                let sent = u64::from_le_bytes(sent.try_into().unwrap_or_default());
                let received = u64::from_le_bytes(received.try_into().unwrap_or_default());
                latencies.push(received.saturating_sub(sent) as f64 / 1000.0);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);

    // Throughput: a burst (within every mailbox's bound), until every ack is back.
    let started = Instant::now();
    for _ in 0..burst {
        let _ = broker.publish("bench/burst", "application/octet-stream", &now_ns().to_le_bytes());
    }
    let delivered = collect(n * burst).await.len();
    let elapsed = started.elapsed().as_secs_f64();

    runner.stop_all().await;
    let _ = runner.into_report(true);
    MessagingRow {
        subscribers: n,
        latency_samples: latencies.len(),
        latency_p50_us: percentile(&latencies, 0.50),
        latency_p99_us: percentile(&latencies, 0.99),
        deliveries_per_second: delivered as f64 / elapsed,
    }
}

pub fn render_table(rows: &[MessagingRow]) -> String {
    let mut out = format!(
        "{:>11} | {:>8} | {:>17} | {:>17} | {:>16}\n",
        "Subscribers", "Samples", "Latency p50 (us)", "Latency p99 (us)", "Deliveries/s"
    );
    out.push_str(&format!(
        "{:-<12}|{:-<10}|{:-<19}|{:-<19}|{:-<17}\n",
        "", "", "", "", ""
    ));
    for row in rows {
        out.push_str(&format!(
            "{:>11} | {:>8} | {:>17.1} | {:>17.1} | {:>16.0}\n",
            row.subscribers, row.latency_samples, row.latency_p50_us, row.latency_p99_us, row.deliveries_per_second
        ));
    }
    out
}

/// Fan-out throughput at `subscribers` per executor worker count.
pub fn render_workers(subscribers: usize, rows: &[(usize, MessagingRow)]) -> String {
    let mut out = format!("\nfan-out to {subscribers} subscribers, per worker count:\n");
    out += &format!(
        "{:>7} | {:>16} | {:>17} | {:>17}\n",
        "Workers", "Deliveries/s", "Latency p50 (us)", "Latency p99 (us)"
    );
    out += &format!("{:-<8}|{:-<18}|{:-<19}|{:-<18}\n", "", "", "", "");
    for (workers, row) in rows {
        out += &format!(
            "{:>7} | {:>16.0} | {:>17.1} | {:>17.1}\n",
            workers, row.deliveries_per_second, row.latency_p50_us, row.latency_p99_us
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_pick_ranks() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(super::percentile(&v, 0.5), 51.0);
        assert_eq!(super::percentile(&v, 0.99), 99.0);
        assert!(super::percentile(&[], 0.5).is_nan());
    }
}
