//! An opt-in Prometheus endpoint (`shoal up --metrics ADDR`): per-container state,
//! restarts, memory, CPU and message counters, the broker's totals, each bridge's
//! connection and queue, and the process's RSS, so a fleet's monitoring sees what `shoal
//! stats` shows.
//!
//! The text exposition format (version 0.0.4) is written here by hand: every scrape is a
//! snapshot of counters shoal keeps anyway (the same board `ps` and `stats` read), so a
//! metrics library's registry of live metric objects would only duplicate them; the
//! format is `# HELP`, `# TYPE` and one line per series, with three characters to escape.

mod http;

use std::fmt::Write;
use std::sync::Arc;

pub use http::{serve, MetricsError};

use crate::bridge::{BridgeMonitor, BridgeStats};
use crate::broker::{Broker, BrokerStats};
use crate::logs::{LogBook, Stream};
use crate::supervisor::{Board, ContainerInfo};

/// What a scrape reads: cheap clones of the handles the control server holds.
#[derive(Clone)]
pub struct Source {
    pub project: String,
    pub board: Board,
    pub broker: Broker,
    pub bridges: BridgeMonitor,
    /// Where the containers' lines go, counting their bytes.
    pub book: Arc<LogBook>,
}

/// Everything one scrape shows, taken at once.
pub struct Snapshot {
    pub project: String,
    pub containers: Vec<ContainerInfo>,
    pub broker: BrokerStats,
    pub bridges: Vec<BridgeStats>,
    /// Bytes written per container and stream, one entry per pair.
    pub logs: Vec<LogCounts>,
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
}

impl Source {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            project: self.project.clone(),
            containers: self.board.infos(),
            broker: self.broker.stats(),
            bridges: self.bridges.stats(),
            logs: LogCounts::from_book(&self.book),
            rss_bytes: crate::procstat::rss_kib().unwrap_or(0) * 1024,
            cpu_seconds: crate::procstat::cpu_time().as_secs_f64(),
        }
    }
}

/// The bytes one stream of one container wrote.
pub struct LogCounts {
    pub container: String,
    pub stream: Stream,
    pub written: u64,
}

impl LogCounts {
    /// Every container's four streams, zeros included: a counter that appears only after
    /// its first line would hide that line's increase from `rate()`.
    fn from_book(book: &LogBook) -> Vec<LogCounts> {
        book.written()
            .into_iter()
            .flat_map(|(container, written)| {
                Stream::ALL.into_iter().map(move |stream| LogCounts {
                    container: container.clone(),
                    stream,
                    written: written[stream.index()],
                })
            })
            .collect()
    }
}

/// The states a container can be in, each exported as its own `shoal_container_state`
/// series (1 for the current one) so that a query can count running containers.
const STATES: [&str; 10] = [
    "waiting",
    "running",
    "paused",
    "restarting",
    "exited",
    "trapped",
    "killed",
    "failed",
    "stopped",
    "other",
];

/// The state word of a `ps` state text (`restarting in 2s` -> `restarting`).
fn state_word(state: &str) -> &'static str {
    let first = state.split_whitespace().next().unwrap_or("");
    STATES.iter().copied().find(|s| *s == first).unwrap_or("other")
}

/// A label value in the exposition format: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Writer {
    text: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// Every family of `table`, each with one sample per item, labelled by `labels`.
    fn table<'a, T>(&mut self, table: &[Family<T>], items: &'a [T], labels: impl Fn(&'a T) -> Vec<(&'a str, &'a str)>) {
        for family in table {
            self.family(family.name, family.kind, family.help);
            for item in items {
                self.sample(family.name, &labels(item), (family.value)(item));
            }
        }
    }
}

/// One metric family read from a `T` (a container's info, the broker's counters, a
/// bridge's, the process's): every family of the scrape is a row of one of the tables
/// below, so its name, type and help are written once.
struct Family<T> {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&T) -> f64,
}

const fn family<T>(name: &'static str, kind: &'static str, help: &'static str, value: fn(&T) -> f64) -> Family<T> {
    Family {
        name,
        kind,
        help,
        value,
    }
}

const COUNTER: &str = "counter";
const GAUGE: &str = "gauge";

/// Per-container families (beside `shoal_container_state` and the log families, which
/// have a sample per state or stream).
const CONTAINER_FAMILIES: [Family<ContainerInfo>; 7] = [
    family(
        "shoal_container_restarts_total",
        COUNTER,
        "Restarts of the container since the stack started.",
        |c| f64::from(c.restarts),
    ),
    family(
        "shoal_container_memory_bytes",
        GAUGE,
        "Linear memory of the running instance.",
        |c| c.memory_bytes as f64,
    ),
    family(
        "shoal_container_cpu_seconds_total",
        COUNTER,
        "Time spent running guest code, all runs.",
        |c| c.cpu_seconds,
    ),
    family(
        "shoal_container_messages_in_total",
        COUNTER,
        "Messages delivered to the container.",
        |c| c.messages_in as f64,
    ),
    family(
        "shoal_container_messages_out_total",
        COUNTER,
        "Messages the container published.",
        |c| c.messages_out as f64,
    ),
    family(
        "shoal_container_messages_dropped_total",
        COUNTER,
        "Messages dropped because the container's mailbox was full.",
        |c| c.dropped as f64,
    ),
    family(
        "shoal_container_denied_total",
        COUNTER,
        "Host calls refused for want of a capability or topic grant.",
        |c| c.denied as f64,
    ),
];

/// The log families, per container and stream (`stdout`, `stderr`, and shoal's own
/// `system` and `warning` lines about the container).
const LOG_FAMILIES: [Family<LogCounts>; 1] = [family(
    "shoal_container_log_bytes_total",
    COUNTER,
    "Bytes of output lines (with their newlines) the container's streams wrote, before clipping.",
    |l| l.written as f64,
)];

/// The broker's families.
const BROKER_FAMILIES: [Family<BrokerStats>; 4] = [
    family(
        "shoal_broker_published_total",
        COUNTER,
        "Messages published on the in-process broker.",
        |b| b.published as f64,
    ),
    family(
        "shoal_broker_delivered_total",
        COUNTER,
        "Deliveries into mailboxes.",
        |b| b.delivered as f64,
    ),
    family(
        "shoal_broker_dropped_total",
        COUNTER,
        "Deliveries dropped at full mailboxes.",
        |b| b.dropped as f64,
    ),
    family(
        "shoal_broker_subscriptions",
        GAUGE,
        "Subscriptions held by all mailboxes.",
        |b| b.subscriptions as f64,
    ),
];

/// Each bridge's families.
const BRIDGE_FAMILIES: [Family<BridgeStats>; 6] = [
    family(
        "shoal_bridge_connected",
        GAUGE,
        "1 while the bridge's MQTT session is up.",
        |s| if s.connected { 1.0 } else { 0.0 },
    ),
    family(
        "shoal_bridge_queued",
        GAUGE,
        "Exports waiting or unacknowledged.",
        |s| s.queued as f64,
    ),
    family(
        "shoal_bridge_exported_total",
        COUNTER,
        "Local messages the remote broker has taken.",
        |s| s.exported as f64,
    ),
    family(
        "shoal_bridge_imported_total",
        COUNTER,
        "Remote messages published locally.",
        |s| s.imported as f64,
    ),
    family(
        "shoal_bridge_dropped_total",
        COUNTER,
        "Exports discarded (queue overflow or refused topic).",
        |s| s.dropped as f64,
    ),
    family(
        "shoal_bridge_reconnects_total",
        COUNTER,
        "Successful connects after the first.",
        |s| s.reconnects as f64,
    ),
];

/// The process's families (no labels, the names client libraries use).
const PROCESS_FAMILIES: [Family<Snapshot>; 2] = [
    family(
        "process_resident_memory_bytes",
        GAUGE,
        "Resident memory of the shoal process.",
        |s| s.rss_bytes as f64,
    ),
    family(
        "process_cpu_seconds_total",
        COUNTER,
        "CPU time of the shoal process, user and system.",
        |s| s.cpu_seconds,
    ),
];

/// The scrape body: the containers' families, the broker's, the bridges', the process's.
pub fn render(snapshot: &Snapshot) -> String {
    let mut w = Writer { text: String::new() };
    let project = snapshot.project.as_str();
    render_states(&mut w, snapshot);
    w.table(&CONTAINER_FAMILIES, &snapshot.containers, |c| {
        vec![
            ("project", project),
            ("container", c.name.as_str()),
            ("service", c.service.as_str()),
        ]
    });
    w.table(&LOG_FAMILIES, &snapshot.logs, |l| {
        vec![
            ("project", project),
            ("container", l.container.as_str()),
            ("stream", l.stream.name()),
        ]
    });
    w.table(&BROKER_FAMILIES, std::slice::from_ref(&snapshot.broker), |_| {
        vec![("project", project)]
    });
    w.table(&BRIDGE_FAMILIES, &snapshot.bridges, |b| {
        vec![("project", project), ("bridge", b.name.as_str())]
    });
    w.table(&PROCESS_FAMILIES, std::slice::from_ref(snapshot), |_| Vec::new());
    w.text
}

/// `shoal_container_state`: one series per container and state, 1 for the current one.
fn render_states(w: &mut Writer, snapshot: &Snapshot) {
    w.family(
        "shoal_container_state",
        GAUGE,
        "1 for the container's current state, 0 for the others.",
    );
    for c in &snapshot.containers {
        let current = state_word(&c.state);
        for state in STATES {
            let labels = [
                ("project", snapshot.project.as_str()),
                ("container", c.name.as_str()),
                ("service", c.service.as_str()),
                ("state", state),
            ];
            w.sample(
                "shoal_container_state",
                &labels,
                if state == current { 1.0 } else { 0.0 },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_states_reduced_to_a_word() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(state_word("restarting in 2s"), "restarting");
        assert_eq!(state_word("out of memory"), "other");
        assert_eq!(state_word("running"), "running");
    }

    #[test]
    fn an_empty_stack_still_has_the_process_series() {
        let text = render(&Snapshot {
            project: "p".into(),
            containers: Vec::new(),
            broker: BrokerStats::default(),
            bridges: Vec::new(),
            logs: Vec::new(),
            rss_bytes: 4096,
            cpu_seconds: 0.5,
        });
        assert!(text.contains("process_resident_memory_bytes 4096\n"), "{text}");
        assert!(
            text.contains("shoal_broker_published_total{project=\"p\"} 0\n"),
            "{text}"
        );
    }
}
