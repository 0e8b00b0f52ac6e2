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

/// Gives every bridge without a `client_id` the default `shoal-<project>-<bridge>`, and
/// reports two bridges of the stack sharing one id (a broker disconnects the older
/// connection when a second one uses the same id, so the two would take turns forever).
pub fn fill_client_ids(bridges: &mut [BridgeSpec], project: &str, ctx: &mut Ctx) {
    let mut seen: BTreeMap<(String, String), Location> = BTreeMap::new();
    for bridge in bridges.iter_mut() {
        if bridge.client_id.is_empty() {
            bridge.client_id = format!("shoal-{project}-{}", bridge.name);
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
