//! The `bridges:` section: external MQTT brokers the stack's topics are bridged to.
//!
//! Shape (a map of named bridges, like `containers:`):
//!
//! ```yaml
//! bridges:
//!   uplink:
//!     url: mqtts://broker.example:8883
//!     username: board-7
//!     password_env: MQTT_PASSWORD
//!     tls: {ca_file: ./ca.pem}
//!     export: [{local: "sensors/", remote: "line-3/sensors/", qos: 1}]
//!     import: [{remote: "line-3/commands/#", local: "commands/"}]
//! ```
//!
//! Credentials are references only. An inline `password:` is refused with a hint, because a
//! compose file is printed (`shoal config`), shared and committed; the referenced variable
//! or file is checked here and read only when the bridge connects.

//!
//! One file per part: `decode` (each bridge's fields), `url` (the broker address) and
//! `rules` (export / import rules); MQTT topic syntax is the shared [`crate::topic`] leaf.

pub(crate) mod decode;
pub(crate) mod rules;
mod url;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::decode::Ctx;
use crate::diagnostic::Diagnostic;
use crate::model::{BridgeSpec, Location};
use crate::node::{Node, Value};

/// Topic syntax moved to [`crate::topic`]; these paths keep working for existing callers.
pub use crate::topic::{check_filter, check_topic_prefix, filter_literal_prefix, TopicError};
pub use url::{parse_url, BrokerUrl, UrlError};

/// Default bound of a bridge's export queue, in messages.
pub const DEFAULT_QUEUE: usize = 1000;
/// Largest accepted `queue:` (each queued message may hold up to 64 KiB of payload).
pub const MAX_QUEUE: i64 = 1_000_000;
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);
pub const DEFAULT_SESSION_EXPIRY: Duration = Duration::from_secs(3600);
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Shortest accepted `reconnect_max` (the first wait after a lost link is 250 ms).
pub const MIN_RECONNECT_MAX: Duration = Duration::from_millis(250);

/// Decodes `bridges:`. Client ids left empty here are filled by [`fill_client_ids`] once the
/// project name is known.
pub fn decode_bridges(node: &Node, ctx: &mut Ctx) -> Vec<BridgeSpec> {
    let mut out = Vec::new();
    if matches!(node.value, Value::Null) {
        return out;
    }
    let Some(entries) = ctx.map(node, "bridges", "`bridges`") else {
        return out;
    };
    for (key, value) in entries {
        if let Some(bridge) = decode::decode_bridge(key, value, ctx) {
            out.push(bridge);
        }
    }
    out
}

/// Gives every bridge without a `client_id` the default [`default_client_id`] (unique per
/// board, so one file on many boards against one broker does not make the boards take each
/// other's sessions), and reports two bridges of the stack sharing one id (a broker
/// disconnects the older connection when a second one uses the same id, so the two would
/// take turns forever).
pub fn fill_client_ids(bridges: &mut [BridgeSpec], project: &str, ctx: &mut Ctx) {
    let mut seen: BTreeMap<(String, String), Location> = BTreeMap::new();
    let board = board_id(ctx.opts.env);
    for bridge in bridges.iter_mut() {
        if bridge.client_id.is_empty() {
            bridge.client_id = default_client_id(&board, project, &bridge.name);
        }
        let key = (bridge.url.clone(), bridge.client_id.clone());
        if let Some(first) = seen.get(&key) {
            let d = Diagnostic::error(
                Some(bridge.location.clone()),
                format!("bridges.{}.client_id", bridge.name),
                format!(
                    "bridge `{}` uses client id `{}` on {} like the bridge at line {}",
                    bridge.name, bridge.client_id, bridge.url, first.line
                ),
            )
            .with_hint("give each bridge its own `client_id`: the broker keeps only one connection per id");
            ctx.diags.push(d);
        } else {
            seen.insert(key, bridge.location.clone());
        }
    }
}

/// Environment variable that names the board for default client ids (over /etc/machine-id
/// and the host name): for boards cloned from one image before their machine id was reset,
/// and for running two "boards" on one machine.
pub const BOARD_ID_VAR: &str = "SHOAL_BOARD_ID";

/// Longest client id every MQTT broker must accept (MQTT 3.1.1 section 3.1.3.1 and MQTT 5
/// section 3.1.3.1: 1 to 23 bytes; longer ids are allowed but not required).
pub const PORTABLE_CLIENT_ID_LEN: usize = 23;

/// What makes this board's default client ids its own: `SHOAL_BOARD_ID`, else systemd's
/// /etc/machine-id (unique per installation), else the host name. Empty when none exists;
/// the ids are then the same on every such board, as before.
pub fn board_id(env: &std::collections::HashMap<String, String>) -> String {
    if let Some(id) = env.get(BOARD_ID_VAR).filter(|v| !v.trim().is_empty()) {
        return id.trim().to_string();
    }
    [
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
        "/proc/sys/kernel/hostname",
    ]
    .iter()
    .filter_map(|p| crate::source::read_text_file(std::path::Path::new(p)).ok())
    .map(|t| t.trim().to_string())
    .find(|t| !t.is_empty())
    .unwrap_or_default()
}

/// `<project>-<bridge>` (cut to fit) and 8 hex digits of a hash of board, project and
/// bridge: readable in a broker's log, different on each board, the same across restarts
/// (so a persistent session resumes), and at most [`PORTABLE_CLIENT_ID_LEN`] bytes.
pub fn default_client_id(board: &str, project: &str, bridge: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    for part in [board, project, bridge] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let suffix: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let readable: String = format!("{project}-{bridge}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(PORTABLE_CLIENT_ID_LEN - 1 - suffix.len())
        .collect();
    format!("{}-{suffix}", readable.trim_end_matches('-'))
}

#[cfg(test)]
mod client_id_tests {
    use super::*;

    #[test]
    fn default_ids_differ_per_board_and_fit_every_broker() {
        let a = default_client_id("0f3c9d", "line-3", "uplink");
        let b = default_client_id("77aa01", "line-3", "uplink");
        assert_ne!(a, b);
        assert!(a.starts_with("line-3-uplink-"), "{a}");
        assert_eq!(
            a,
            default_client_id("0f3c9d", "line-3", "uplink"),
            "stable across restarts"
        );
        let long = default_client_id("x", &"p".repeat(63), "a bridge with spaces");
        assert!(long.len() <= PORTABLE_CLIENT_ID_LEN, "{long}");
        assert_ne!(long, default_client_id("x", &"p".repeat(63), "another"));
    }
}
