//! `stats`: the process's memory and CPU, the broker's and bridges' counters and one row
//! per container. One struct on both sides of the socket, so a renamed field fails to
//! compile instead of printing zeros.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::print::{flush, header, human_bytes, print_table};
use super::Request;
use crate::bridge::BridgeStats;
use crate::broker::BrokerStats;
use crate::control::server::{Connection, ServerContext};
use crate::control::{Client, ControlError, OutputFormat, ProjectArgs};
use crate::supervisor::ContainerInfo;

/// The reply to `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub cpu_seconds: f64,
    pub broker: BrokerCounters,
    pub bridges: Vec<BridgeStats>,
    pub containers: Vec<ContainerInfo>,
    /// Bytes of output kept per container for `shoal logs` (bounded by `up --log-buffer`).
    #[serde(default)]
    pub log_bytes: std::collections::BTreeMap<String, u64>,
}

/// The broker's counters as they travel (the broker's own type stays free of serde).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerCounters {
    pub mailboxes: usize,
    pub subscriptions: usize,
    pub published: u64,
    pub delivered: u64,
    pub dropped: u64,
}

impl From<BrokerStats> for BrokerCounters {
    fn from(stats: BrokerStats) -> Self {
        BrokerCounters {
            mailboxes: stats.mailboxes,
            subscriptions: stats.subscriptions,
            published: stats.published,
            delivered: stats.delivered,
            dropped: stats.dropped,
        }
    }
}

pub(super) async fn serve(conn: &mut Connection, context: &ServerContext) {
    let stats = Stats {
        rss_kib: crate::procstat::rss_kib().unwrap_or(0),
        peak_rss_kib: crate::procstat::peak_rss_kib().unwrap_or(0),
        cpu_seconds: crate::procstat::cpu_time().as_secs_f64(),
        broker: context.broker.stats().into(),
        bridges: context.bridges.stats(),
        containers: context.board.infos(),
        log_bytes: context.book.bytes(),
    };
    conn.send_ok(&stats).await;
}

/// `shoal stats`: once (`--no-stream`) or every second, redrawing a terminal.
pub fn stats(client: &Client, no_stream: bool, json: bool) -> Result<ExitCode, ControlError> {
    let terminal = std::io::stdout().is_terminal();
    loop {
        let stats: Stats = client.call_as(Request::Stats)?;
        if json {
            // Through a `Value`, as before: its keys print sorted.
            let value = serde_json::to_value(&stats)?;
            println!("{value}");
        } else {
            if terminal && !no_stream {
                print!("\x1b[2J\x1b[H");
            }
            print_stats(&stats);
        }
        flush();
        if no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn print_stats(stats: &Stats) {
    let broker = &stats.broker;
    println!(
        "process: {} RSS (peak {}), {:.2}s CPU; broker: {} published, {} delivered, {} dropped",
        human_bytes(stats.rss_kib * 1024),
        human_bytes(stats.peak_rss_kib * 1024),
        stats.cpu_seconds,
        broker.published,
        broker.delivered,
        broker.dropped,
    );
    for b in &stats.bridges {
        println!(
            "bridge {} ({}): {}, exported {}, imported {}, queued {}, dropped {}, rejected {}, reconnects {}",
            b.name,
            b.url,
            if b.connected { "connected" } else { "disconnected" },
            b.exported,
            b.imported,
            b.queued,
            b.dropped,
            b.rejected,
            b.reconnects
        );
    }
    let mut table = vec![header(&[
        "NAME", "STATE", "MEMORY", "CPU", "IN", "OUT", "DROPPED", "DENIED", "LOGS",
    ])];
    for row in &stats.containers {
        table.push(vec![
            row.name.clone(),
            row.state.clone(),
            human_bytes(row.memory_bytes),
            format!("{:.2}s", row.cpu_seconds),
            row.messages_in.to_string(),
            row.messages_out.to_string(),
            row.dropped.to_string(),
            row.denied.to_string(),
            human_bytes(stats.log_bytes.get(&row.name).copied().unwrap_or(0)),
        ]);
    }
    print_table(&table);
}

/// `shoal stats`'s arguments.
#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print once and exit
    #[arg(long)]
    pub no_stream: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    Ok(stats(
        &args.project.client()?,
        args.no_stream,
        args.format == OutputFormat::Json,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_keeps_the_keys_the_old_untyped_one_had() {
        let stats = Stats {
            rss_kib: 1,
            peak_rss_kib: 2,
            cpu_seconds: 0.5,
            broker: BrokerCounters {
                published: 3,
                ..BrokerCounters::default()
            },
            bridges: vec![],
            containers: vec![],
            log_bytes: Default::default(),
        };
        let value = serde_json::to_value(&stats).expect("json");
        let old = serde_json::json!({
            "rss_kib": 1, "peak_rss_kib": 2, "cpu_seconds": 0.5,
            "broker": {"mailboxes": 0, "subscriptions": 0, "published": 3, "delivered": 0, "dropped": 0},
            "bridges": [], "containers": [],
        });
        let mut with_logs = old.clone();
        with_logs["log_bytes"] = serde_json::json!({});
        assert_eq!(value, with_logs, "the old keys and one new one");
        let back: Stats = serde_json::from_value(old).expect("typed");
        assert_eq!(back, stats);
    }
}
