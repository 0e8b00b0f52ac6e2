//! `shoal bench bridge`: what an MQTT bridge costs, through a real broker.
//!
//! Two stacks' brokers live in this process, "board A" and "board B", each with its own
//! bridge to the same MQTT broker: A exports `bench/` under a topic prefix unique to this
//! run, B imports it back to `bench/`. Measured, per QoS:
//!
//! * **latency**: one message at a time, from `Broker::publish` on A until a task waiting
//!   on a mailbox of B holds it (A's queue -> MQTT client -> broker -> B's client -> B's
//!   broker), p50/p99; and the same wait on a mailbox of A itself (the in-process path), so
//!   the difference is what the bridge adds;
//! * **throughput**: a burst of messages published on A as fast as possible, until all have
//!   arrived on B (A's queue holds the whole burst, so none is dropped).
//!
//! The broker is `--broker URL`, or a private Mosquitto on a free loopback port.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bridge::{self, mosquitto::Mosquitto};
use crate::broker::{Broker, Mailbox};
use crate::logs::{LogSink, Stream};
use crate::spec::{bridges::parse_url, BridgeSpec, BridgeTls, ExportRule, ImportRule, Location};

use super::messaging::percentile;
use super::BenchError;

/// Longest wait for one message before the benchmark gives up (a broken link, not a figure).
const GIVE_UP: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, serde::Serialize)]
pub struct PathRow {
    pub path: String,
    pub latency_samples: usize,
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
    pub messages_per_second: f64,
    /// Messages of the burst that arrived.
    pub delivered: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BridgeReport {
    pub broker: String,
    pub payload_bytes: usize,
    pub burst: usize,
    pub rows: Vec<PathRow>,
    /// Anonymous memory one connected exporting bridge added, in KiB (RssAnon after the
    /// bridge connected minus before it started, free heap given back both times).
    pub one_bridge_anon_kib: i64,
}

/// Prints the bridges' warnings (a benchmark that cannot connect should say why).
struct WarningsToStderr;

impl LogSink for WarningsToStderr {
    fn line(&self, name: &str, stream: Stream, text: &str) {
        if stream == Stream::Warning {
            eprintln!("{name}: warning: {text}");
        }
    }
}

/// Start a private Mosquitto when no broker URL is given.
pub fn broker_url(given: Option<String>) -> Result<(String, Option<Mosquitto>), BenchError> {
    match given {
        Some(url) => Ok((url, None)),
        None => {
            let mosquitto = Mosquitto::start()
                .map_err(|e| BenchError::Guest(format!("cannot start mosquitto: {e}; pass --broker URL")))?;
            Ok((mosquitto.url(), Some(mosquitto)))
        }
    }
}

fn bridge_spec(
    name: &str,
    url: &str,
    qos: u8,
    prefix: &str,
    export: bool,
    queue: usize,
) -> Result<BridgeSpec, BenchError> {
    let parsed = parse_url(url).map_err(|e| BenchError::Stack(e.message))?;
    let (export, import) = if export {
        (
            vec![ExportRule {
                local: "bench/".into(),
                remote: prefix.into(),
                qos,
            }],
            Vec::new(),
        )
    } else {
        (
            Vec::new(),
            vec![ImportRule {
                remote: format!("{prefix}#"),
                local: "bench/".into(),
                qos,
            }],
        )
    };
    Ok(BridgeSpec {
        name: name.into(),
        url: url.into(),
        host: parsed.host,
        port: parsed.port,
        use_tls: parsed.use_tls,
        client_id: format!("shoal-bench-{}-{name}-{qos}", std::process::id()),
        username: None,
        password: None,
        tls: BridgeTls::default(),
        keep_alive: Duration::from_secs(30),
        session_expiry: Duration::ZERO,
        queue,
        flush_timeout: Duration::from_secs(1),
        reconnect_max: Duration::from_secs(1),
        export,
        import,
        location: Location {
            file: "<bench>".into(),
            line: 1,
            column: 1,
        },
    })
}

/// Wait until `mailbox` holds a message; `None` after [`GIVE_UP`].
async fn receive(mailbox: &Mailbox) -> Option<Arc<crate::broker::Message>> {
    let signal = mailbox.signal();
    let deadline = Instant::now() + GIVE_UP;
    loop {
        if let Some(message) = mailbox.try_recv() {
            return Some(message);
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        let _ = tokio::time::timeout(left, signal.wait()).await;
    }
}

/// Latency samples (microseconds) of `rounds` single messages from `publish_on` to `mailbox`.
async fn latencies(
    publish_on: &Broker,
    mailbox: &Mailbox,
    rounds: usize,
    payload: &[u8],
) -> Result<Vec<f64>, BenchError> {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let _ = publish_on.publish("bench/latency", "application/octet-stream", payload);
        if receive(mailbox).await.is_none() {
            return Err(BenchError::Stack("a message did not arrive within 20 s".into()));
        }
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples)
}

/// A burst of `count` from `publish_on` until all are in `mailbox` (or nothing more came for
/// a second: QoS 0 may lose messages under load): messages delivered and their rate.
async fn throughput(publish_on: &Broker, mailbox: &Mailbox, count: usize, payload: &[u8]) -> (usize, f64) {
    let started = Instant::now();
    for i in 0..count {
        let _ = publish_on.publish("bench/burst", "application/octet-stream", payload);
        if i % 256 == 255 {
            // Let the bridge start sending while the burst is still being published.
            tokio::task::yield_now().await;
        }
    }
    let signal = mailbox.signal();
    let mut got = 0;
    let mut last = started.elapsed();
    while got < count {
        match mailbox.try_recv() {
            Some(_) => {
                got += 1;
                last = started.elapsed();
            }
            None => {
                if tokio::time::timeout(Duration::from_secs(1), signal.wait())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    (got, got as f64 / last.as_secs_f64().max(1e-9))
}

/// What one bridge costs in anonymous memory: start one exporting bridge on an otherwise
/// idle broker, wait until it is connected, and compare RssAnon (KiB) with before. Runs
/// first, before any message has grown a pool.
async fn one_bridge_anon_kib(url: &str) -> Result<i64, BenchError> {
    let prefix = format!("shoal-bench/{}/memory/", std::process::id());
    let broker = Broker::new();
    crate::procstat::release_free_memory();
    let before = crate::procstat::anon_kib().unwrap_or(0) as i64;
    let set = bridge::start(
        &[bridge_spec("memory", url, 1, &prefix, true, 64)?],
        &broker,
        Arc::new(WarningsToStderr),
    );
    let deadline = Instant::now() + GIVE_UP;
    while !set.stats().first().is_some_and(|s| s.connected) {
        if Instant::now() > deadline {
            return Err(BenchError::Stack(format!(
                "the bridge did not connect to {url} within 20 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // One message through it, so the figure includes a used connection, not a fresh one.
    let _ = broker.publish("bench/memory", "text/plain", b"m");
    tokio::time::sleep(Duration::from_millis(100)).await;
    crate::procstat::release_free_memory();
    let after = crate::procstat::anon_kib().unwrap_or(0) as i64;
    set.shutdown().await;
    Ok(after - before)
}

/// Run the benchmark against `url`.
pub async fn run(url: &str, rounds: usize, burst: usize, payload_bytes: usize) -> Result<BridgeReport, BenchError> {
    let payload = vec![0x5a_u8; payload_bytes];
    let mut rows = Vec::new();
    let one_bridge_anon_kib = one_bridge_anon_kib(url).await?;

    // The in-process path: publish and receive on one broker.
    let local = Broker::new();
    let mailbox = local.mailbox(burst + 16);
    mailbox.subscribe("bench/");
    let samples = latencies(&local, &mailbox, rounds, &payload).await?;
    let rate = throughput(&local, &mailbox, burst, &payload).await;
    rows.push(row("in-process (one broker)", &samples, rate));

    for qos in [0u8, 1] {
        let prefix = format!("shoal-bench/{}/qos{qos}/", std::process::id());
        let (a, b) = (Broker::new(), Broker::new());
        let log: Arc<dyn LogSink> = Arc::new(WarningsToStderr);
        let exporter = bridge::start(
            &[bridge_spec("a", url, qos, &prefix, true, burst + 16)?],
            &a,
            log.clone(),
        );
        let importer = bridge::start(&[bridge_spec("b", url, qos, &prefix, false, 16)?], &b, log);
        if exporter.is_empty() || importer.is_empty() {
            return Err(BenchError::Stack(
                "a bridge did not start (see the warning above)".into(),
            ));
        }
        let mailbox = b.mailbox(burst + 16);
        mailbox.subscribe("bench/");
        // Probe until the path works end to end (both connected, B subscribed).
        let deadline = Instant::now() + GIVE_UP;
        loop {
            let _ = a.publish("bench/probe", "text/plain", b"probe");
            if tokio::time::timeout(Duration::from_millis(100), receive(&mailbox))
                .await
                .is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(BenchError::Stack(format!(
                    "no message made it through {url} within 20 s"
                )));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        while mailbox.try_recv().is_some() {}
        let samples = latencies(&a, &mailbox, rounds, &payload).await?;
        let rate = throughput(&a, &mailbox, burst, &payload).await;
        rows.push(row(&format!("bridged, QoS {qos}"), &samples, rate));
        let counted = exporter.monitor().stats();
        eprintln!(
            "  QoS {qos}: exported {}, dropped {}, reconnects {}",
            counted[0].exported, counted[0].dropped, counted[0].reconnects
        );
        exporter.shutdown().await;
        importer.shutdown().await;
    }
    Ok(BridgeReport {
        broker: url.to_string(),
        payload_bytes,
        burst,
        rows,
        one_bridge_anon_kib,
    })
}

fn row(path: &str, samples: &[f64], (delivered, rate): (usize, f64)) -> PathRow {
    PathRow {
        path: path.to_string(),
        latency_samples: samples.len(),
        latency_p50_us: percentile(samples, 0.50),
        latency_p99_us: percentile(samples, 0.99),
        messages_per_second: rate,
        delivered,
    }
}

pub fn render(report: &BridgeReport) -> String {
    let mut out = format!(
        "broker {}, {}-byte payloads, bursts of {}\n{:<24} | {:>8} | {:>12} | {:>12} | {:>12} | {:>9}\n{:-<25}|{:-<10}|{:-<14}|{:-<14}|{:-<14}|{:-<10}\n",
        report.broker,
        report.payload_bytes,
        report.burst,
        "path",
        "samples",
        "p50 (us)",
        "p99 (us)",
        "msgs/s",
        "delivered",
        "",
        "",
        "",
        "",
        "",
        ""
    );
    for r in &report.rows {
        out.push_str(&format!(
            "{:<24} | {:>8} | {:>12.1} | {:>12.1} | {:>12.0} | {:>9}\n",
            r.path, r.latency_samples, r.latency_p50_us, r.latency_p99_us, r.messages_per_second, r.delivered
        ));
    }
    if let Some(local) = report.rows.first() {
        for r in &report.rows[1..] {
            out.push_str(&format!(
                "added by the bridge ({}): p50 +{:.1} us, p99 +{:.1} us\n",
                r.path,
                r.latency_p50_us - local.latency_p50_us,
                r.latency_p99_us - local.latency_p99_us
            ));
        }
    }
    out.push_str(&format!(
        "one connected bridge holds {:+} KB of anonymous memory (RssAnon with it minus without)\n",
        report.one_bridge_anon_kib
    ));
    out
}

/// `shoal bench bridge`: print the table (and write JSON when asked).
pub fn command(
    executor: &tokio::runtime::Runtime,
    broker: Option<String>,
    rounds: usize,
    burst: usize,
    payload_bytes: usize,
    json: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let (url, _mosquitto) = broker_url(broker)?;
    if let Some(m) = &_mosquitto {
        eprintln!("started mosquitto on {} (in {})", m.url(), m.dir().display());
    }
    let payload_bytes = payload_bytes.min(crate::broker::MAX_PAYLOAD);
    let report = executor.block_on(run(&url, rounds.max(1), burst.max(1), payload_bytes))?;
    print!("{}", render(&report));
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole benchmark once, small, against a private Mosquitto: every path delivers.
    #[tokio::test]
    async fn measures_every_path_through_a_real_broker() {
        let (url, _mosquitto) = broker_url(None).expect("mosquitto (scripts/setup.sh installs it)");
        let report = run(&url, 20, 500, 16).await.unwrap();
        let paths: Vec<&str> = report.rows.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["in-process (one broker)", "bridged, QoS 0", "bridged, QoS 1"]);
        for r in &report.rows {
            assert_eq!(r.latency_samples, 20);
            assert!(r.messages_per_second > 0.0);
            if r.path != "bridged, QoS 0" {
                assert_eq!(r.delivered, 500, "{}", render(&report));
            }
        }
        assert!(render(&report).contains("added by the bridge (bridged, QoS 1)"));
    }
}
