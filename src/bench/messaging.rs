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
use crate::broker::{Broker, Mailbox, Message, Origin, SHOAL_PUBLISHER};
use crate::host::Counters;
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
    /// The first message after the subscribers started, not counted in the percentiles:
    /// how long until the last of them had it. Each subscriber then touches for the first
    /// time the pages its delivery uses (page faults, cold caches): on 2 vCPUs this round
    /// took 19-35 ms at 1,000 subscribers where later ones took 2-5 ms, so counted among
    /// 200 rounds it alone made up half the samples above the p99.
    pub first_round_max_us: f64,
    /// Deliveries per second (a message copied into a guest's memory by its
    /// `ocre_get_event`, read and freed), in a stream that keeps every mailbox fed.
    pub deliveries_per_second: f64,
    /// The same with every message answered: the guest publishes an ack, which the bench
    /// receives (a delivery and a publish each).
    pub echoed_per_second: f64,
    /// Messages the subscribers read in the stream, and acks back in the echoed one: each
    /// is `subscribers` x the messages per subscriber unless something was lost.
    pub stream_delivered: usize,
    pub stream_echoed: usize,
}

/// Messages each subscriber gets in a throughput stream of `deliveries` deliveries in all
/// (at least one each).
pub fn messages_per_subscriber(deliveries: usize, subscribers: usize) -> usize {
    deliveries.div_ceil(subscribers.max(1)).max(1)
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

/// Measure one subscriber count. `stack` holds exactly that many echo subscribers; the
/// throughput stream sends each of them `per_subscriber` messages.
pub async fn run_one(
    runtime: Arc<Runtime>,
    stack: &Stack,
    module: wasmtime::Module,
    rounds: usize,
    per_subscriber: usize,
) -> MessagingRow {
    run_beside(runtime, stack, module, &[], rounds, per_subscriber).await
}

/// [`run_one`] with `neighbours` (other containers and their modules) running in the same
/// stack, started first: what they cost the subscribers (`shoal bench isolation`).
pub async fn run_beside(
    runtime: Arc<Runtime>,
    stack: &Stack,
    module: wasmtime::Module,
    neighbours: &[(ContainerSpec, wasmtime::Module)],
    rounds: usize,
    per_subscriber: usize,
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
    // Room for every ack a stream can send: the collector may run behind (its queue grows
    // only as far as it is used).
    let acks = broker.mailbox(n * per_subscriber.max(1) + 16);
    acks.subscribe("ack/");

    // Latency: one message at a time, to subscribers that are parked again each round. The
    // first round is reported on its own (see `first_round_max_us`).
    let first_round = latency_round(&broker, &acks, n).await;
    let first_round_max_us = first_round.iter().copied().fold(f64::NAN, f64::max);
    let mut latencies = Vec::with_capacity(rounds * n);
    for _ in 0..rounds {
        latencies.extend(latency_round(&broker, &acks, n).await);
    }
    latencies.sort_by(f64::total_cmp);

    // Throughput: a stream that keeps every mailbox fed, until every message is read. A
    // stream, not one burst: a burst of at most a mailbox (256 messages) to one subscriber
    // lasts ~150 us, of which the first wake-up is a fifth, so it measured the wake-up
    // more than the deliveries.
    let counters = runner.counters().split_off(neighbours.len());
    let (delivered, elapsed) = stream(&broker, &counters, &acks, per_subscriber, false).await;
    let deliveries_per_second = delivered as f64 / elapsed;
    let (echoed, elapsed) = stream(&broker, &counters, &acks, per_subscriber, true).await;
    let echoed_per_second = echoed as f64 / elapsed;

    runner.stop_all().await;
    let _ = runner.into_report(true);
    MessagingRow {
        subscribers: n,
        latency_samples: latencies.len(),
        latency_p50_us: percentile(&latencies, 0.50),
        latency_p99_us: percentile(&latencies, 0.99),
        first_round_max_us,
        deliveries_per_second,
        echoed_per_second,
        stream_delivered: delivered,
        stream_echoed: echoed,
    }
}

/// One latency round: after 2 ms (the subscribers park again), publish one stamped message
/// to the `n` subscribers and return each one's publish -> receive latency in microseconds.
async fn latency_round(broker: &Broker, acks: &Mailbox, n: usize) -> Vec<f64> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    let _ = broker.publish("bench/latency", "application/octet-stream", &now_ns().to_le_bytes());
    let mut latencies = Vec::with_capacity(n);
    for ack in collect_acks(acks, n).await {
        if let (Some(sent), Some(received)) = (ack.payload().get(0..8), ack.payload().get(8..16)) {
            let sent = u64::from_le_bytes(sent.try_into().unwrap_or_default());
            let received = u64::from_le_bytes(received.try_into().unwrap_or_default());
            latencies.push(received.saturating_sub(sent) as f64 / 1000.0);
        }
    }
    latencies
}

/// Take `want` acks from `acks`, or fewer if none comes for 10 s.
///
/// Looks every millisecond rather than waking on each ack: the acks carry the guests' own
/// receive times, so when the bench reads them changes no figure, but a wake-up of the
/// bench's (non-worker) thread per ack cost the worker that published it a futex call.
async fn collect_acks(acks: &Mailbox, want: usize) -> Vec<Arc<Message>> {
    const GIVE_UP: Duration = Duration::from_secs(10);
    const LOOK_EVERY: Duration = Duration::from_millis(1);
    let mut got = Vec::with_capacity(want);
    let mut last_ack = Instant::now();
    while got.len() < want {
        let before = got.len();
        got.extend(std::iter::from_fn(|| acks.try_recv()).take(want - before));
        if got.len() > before {
            last_ack = Instant::now();
        } else if last_ack.elapsed() > GIVE_UP {
            break;
        }
        if got.len() < want {
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }
    got
}

/// The payload of a stream message whose content nobody reads: 4 bytes, which the echo
/// guest reads and frees without answering (it answers 8 or more).
const UNREAD: [u8; 4] = [0; 4];

/// Publish `per_subscriber` messages to every subscriber, waiting for room in their
/// mailboxes (none is dropped), and return the deliveries confirmed and the seconds taken.
///
/// With `echo`, every message carries the 8-byte stamp the echo guest answers, and a
/// delivery counts once its ack is back. Without, the messages carry 4 bytes, which the
/// guest reads and frees without answering, and only the last one asks for an ack: it is
/// read after all the others (one publisher, one mailbox, in order), so once every
/// subscriber has answered it the stream is through. The deliveries are then counted by
/// the containers' own `messages_in` counters.
async fn stream(
    broker: &Broker,
    counters: &[Arc<Counters>],
    acks: &Mailbox,
    per_subscriber: usize,
    echo: bool,
) -> (usize, f64) {
    let n = counters.len();
    let read_before: u64 = counters.iter().map(|c| Counters::get(&c.messages_in)).sum();
    let started = Instant::now();
    // The publisher is a task on the executor, as a bridge or a publishing container is,
    // not this (non-worker) thread: from outside, every hand-over to the subscriber's
    // worker and back is a wake-up of another thread, which on a virtual machine whose idle
    // vCPUs halt costs tens of microseconds each way (see the README), so the stream
    // measured those wake-ups rather than the deliveries.
    let publish = tokio::spawn({
        let broker = broker.clone();
        async move {
            for k in 0..per_subscriber {
                // The clock is read only for a stamp that is read back (an echo, the last
                // message): it is the bench's cost, not a delivery's, and was ~3% of a
                // one-subscriber stream's samples.
                let stamp;
                let payload: &[u8] = if echo || k + 1 == per_subscriber {
                    stamp = now_ns().to_le_bytes();
                    &stamp
                } else {
                    &UNREAD
                };
                let _ = broker
                    .publish_with_room(
                        Origin::Local,
                        SHOAL_PUBLISHER,
                        "bench/stream",
                        "application/octet-stream",
                        payload,
                        Duration::from_secs(10),
                    )
                    .await;
            }
        }
    });
    let want = if echo { n * per_subscriber } else { n };
    let acks = collect_acks(acks, want).await;
    // It ended before the last ack came (or the collector gave up): nothing to wait for
    // but a task that is through.
    let _ = publish.await;
    let elapsed = started.elapsed().as_secs_f64();
    if echo {
        return (acks.len(), elapsed);
    }
    let read_after: u64 = counters.iter().map(|c| Counters::get(&c.messages_in)).sum();
    let read = usize::try_from(read_after.saturating_sub(read_before)).unwrap_or(usize::MAX);
    (read, elapsed)
}

pub fn render_table(rows: &[MessagingRow]) -> String {
    let mut out = format!(
        "{:>11} | {:>8} | {:>17} | {:>17} | {:>16} | {:>16} | {:>12}\n",
        "Subscribers",
        "Samples",
        "Latency p50 (us)",
        "Latency p99 (us)",
        "First round (us)",
        "Deliveries/s",
        "Echoed/s"
    );
    out.push_str(&format!(
        "{:-<12}|{:-<10}|{:-<19}|{:-<19}|{:-<18}|{:-<18}|{:-<13}\n",
        "", "", "", "", "", "", ""
    ));
    for row in rows {
        out.push_str(&format!(
            "{:>11} | {:>8} | {:>17.1} | {:>17.1} | {:>16.1} | {:>16.0} | {:>12.0}\n",
            row.subscribers,
            row.latency_samples,
            row.latency_p50_us,
            row.latency_p99_us,
            row.first_round_max_us,
            row.deliveries_per_second,
            row.echoed_per_second
        ));
    }
    out.push_str(
        "First round: the first message after the subscribers started, until the last one had \
         it (first touches of their pages; not among the samples). Deliveries/s: a stream that \
         keeps every mailbox fed, each message read and freed by its guest; Echoed/s: the \
         same, each message answered with an ack the bench receives.\n",
    );
    out
}

/// One executor worker count's rows: the fan-out to many subscribers, and the stream to
/// one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkersRow {
    pub workers: usize,
    pub row: MessagingRow,
    pub one: MessagingRow,
}

/// Fan-out throughput at `subscribers`, and the stream to one subscriber, per executor
/// worker count.
pub fn render_workers(subscribers: usize, rows: &[WorkersRow]) -> String {
    let mut out = format!("\nfan-out to {subscribers} subscribers, per worker count:\n");
    out += &format!(
        "{:>7} | {:>16} | {:>12} | {:>17} | {:>17} | {:>16}\n",
        "Workers", "Deliveries/s", "Echoed/s", "Latency p50 (us)", "Latency p99 (us)", "To 1: deliv./s"
    );
    out += &format!(
        "{:-<8}|{:-<18}|{:-<14}|{:-<19}|{:-<19}|{:-<17}\n",
        "", "", "", "", "", ""
    );
    for WorkersRow { workers, row, one } in rows {
        out += &format!(
            "{:>7} | {:>16.0} | {:>12.0} | {:>17.1} | {:>17.1} | {:>16.0}\n",
            workers,
            row.deliveries_per_second,
            row.echoed_per_second,
            row.latency_p50_us,
            row.latency_p99_us,
            one.deliveries_per_second
        );
    }
    out.push_str(
        "To 1: the stream to one subscriber on that many workers (one reader and its \
         publisher: it does not grow with workers).\n",
    );
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
