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

pub use http::{serve, MetricsError};

use crate::bridge::{BridgeMonitor, BridgeStats};
use crate::broker::{Broker, BrokerStats};
use crate::supervisor::{Board, ContainerInfo};

/// What a scrape reads: cheap clones of the handles the control server holds.
#[derive(Clone)]
pub struct Source {
    pub project: String,
    pub board: Board,
    pub broker: Broker,
    pub bridges: BridgeMonitor,
}

/// Everything one scrape shows, taken at once.
pub struct Snapshot {
    pub project: String,
    pub containers: Vec<ContainerInfo>,
    pub broker: BrokerStats,
    pub bridges: Vec<BridgeStats>,
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
            rss_bytes: crate::procstat::rss_kib().unwrap_or(0) * 1024,
            cpu_seconds: crate::procstat::cpu_time().as_secs_f64(),
        }
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
}

type ContainerValue = fn(&ContainerInfo) -> f64;

/// Per-container families: (name, type, help, value).
const CONTAINER_FAMILIES: [(&str, &str, &str, ContainerValue); 7] = [
    (
        "shoal_container_restarts_total",
        "counter",
        "Restarts of the container since the stack started.",
        |c| f64::from(c.restarts),
    ),
    (
        "shoal_container_memory_bytes",
        "gauge",
        "Linear memory of the running instance.",
        |c| c.memory_bytes as f64,
    ),
    (
        "shoal_container_cpu_seconds_total",
        "counter",
        "Time spent running guest code, all runs.",
        |c| c.cpu_seconds,
    ),
    (
        "shoal_container_messages_in_total",
        "counter",
        "Messages delivered to the container.",
        |c| c.messages_in as f64,
    ),
    (
        "shoal_container_messages_out_total",
        "counter",
        "Messages the container published.",
        |c| c.messages_out as f64,
    ),
    (
        "shoal_container_messages_dropped_total",
        "counter",
        "Messages dropped because the container's mailbox was full.",
        |c| c.dropped as f64,
    ),
    (
        "shoal_container_denied_total",
        "counter",
        "Host calls refused for want of a capability or topic grant.",
        |c| c.denied as f64,
    ),
];

/// The scrape body: the containers' families, the broker's, the bridges', the process's.
pub fn render(snapshot: &Snapshot) -> String {
    let mut w = Writer { text: String::new() };
    render_containers(&mut w, snapshot);
    render_broker(&mut w, snapshot);
    render_bridges(&mut w, snapshot);
    render_process(&mut w, snapshot);
    w.text
}

fn render_containers(w: &mut Writer, snapshot: &Snapshot) {
    let project = snapshot.project.as_str();
    w.family(
        "shoal_container_state",
        "gauge",
        "1 for the container's current state, 0 for the others.",
    );
    for c in &snapshot.containers {
        let current = state_word(&c.state);
        for state in STATES {
            let labels = [
                ("project", project),
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
    for (name, kind, help, value) in CONTAINER_FAMILIES {
        w.family(name, kind, help);
        for c in &snapshot.containers {
            let labels = [
                ("project", project),
                ("container", c.name.as_str()),
                ("service", c.service.as_str()),
            ];
            w.sample(name, &labels, value(c));
        }
    }
}

fn render_broker(w: &mut Writer, snapshot: &Snapshot) {
    let p = [("project", snapshot.project.as_str())];
    let b = &snapshot.broker;
    w.family(
        "shoal_broker_published_total",
        "counter",
        "Messages published on the in-process broker.",
    );
    w.sample("shoal_broker_published_total", &p, b.published as f64);
    w.family("shoal_broker_delivered_total", "counter", "Deliveries into mailboxes.");
    w.sample("shoal_broker_delivered_total", &p, b.delivered as f64);
    w.family(
        "shoal_broker_dropped_total",
        "counter",
        "Deliveries dropped at full mailboxes.",
    );
    w.sample("shoal_broker_dropped_total", &p, b.dropped as f64);
    w.family(
        "shoal_broker_subscriptions",
        "gauge",
        "Subscriptions held by all mailboxes.",
    );
    w.sample("shoal_broker_subscriptions", &p, b.subscriptions as f64);
}

fn render_bridges(w: &mut Writer, snapshot: &Snapshot) {
    let project = snapshot.project.as_str();
    w.family(
        "shoal_bridge_connected",
        "gauge",
        "1 while the bridge's MQTT session is up.",
    );
    for bridge in &snapshot.bridges {
        w.sample(
            "shoal_bridge_connected",
            &[("project", project), ("bridge", &bridge.name)],
            if bridge.connected { 1.0 } else { 0.0 },
        );
    }
    type BridgeValue = fn(&BridgeStats) -> u64;
    let bridge_families: [(&str, &str, &str, BridgeValue); 5] = [
        (
            "shoal_bridge_queued",
            "gauge",
            "Exports waiting or unacknowledged.",
            |s| s.queued,
        ),
        (
            "shoal_bridge_exported_total",
            "counter",
            "Local messages the remote broker has taken.",
            |s| s.exported,
        ),
        (
            "shoal_bridge_imported_total",
            "counter",
            "Remote messages published locally.",
            |s| s.imported,
        ),
        (
            "shoal_bridge_dropped_total",
            "counter",
            "Exports discarded (queue overflow or refused topic).",
            |s| s.dropped,
        ),
        (
            "shoal_bridge_reconnects_total",
            "counter",
            "Successful connects after the first.",
            |s| s.reconnects,
        ),
    ];
    for (name, kind, help, value) in bridge_families {
        w.family(name, kind, help);
        for bridge in &snapshot.bridges {
            w.sample(
                name,
                &[("project", project), ("bridge", &bridge.name)],
                value(bridge) as f64,
            );
        }
    }
}

fn render_process(w: &mut Writer, snapshot: &Snapshot) {
    w.family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory of the shoal process.",
    );
    w.sample("process_resident_memory_bytes", &[], snapshot.rss_bytes as f64);
    w.family(
        "process_cpu_seconds_total",
        "counter",
        "CPU time of the shoal process, user and system.",
    );
    w.sample("process_cpu_seconds_total", &[], snapshot.cpu_seconds);
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
