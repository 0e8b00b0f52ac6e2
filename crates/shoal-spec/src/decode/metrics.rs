//! `metrics: { listen: "127.0.0.1:9464" }`: where `shoal up` serves Prometheus metrics
//! (the same as `shoal up --metrics ADDR`, which wins over it).

use schemars::JsonSchema;

use super::Ctx;
use crate::node::{Key, Node};

/// Prometheus metrics (off unless this section is present).
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct MetricsFile {
    /// Address and port to serve `/metrics` on, e.g. `127.0.0.1:9464` (`0.0.0.0:9464` for every interface).
    #[schemars(regex(pattern = r"^(\[[0-9a-fA-F:.]+\]|[0-9.]+):[0-9]{1,5}$"))]
    pub listen: String,
}

impl MetricsFile {
    pub const KEYS: &'static [&'static str] = &["listen"];
}

/// The listen address, checked to be `IP:PORT`; `None` after an error.
pub(crate) fn decode_metrics(node: &Node, ctx: &mut Ctx) -> Option<String> {
    let entries: &[(Key, Node)] = ctx.map(node, "metrics", "`metrics`")?;
    let known = ctx.check_keys(entries, MetricsFile::KEYS, None, "metrics", "in `metrics`");
    let Some((_, value)) = known.iter().find(|(k, _)| k.name == "listen") else {
        ctx.error(
            node.pos,
            "metrics",
            "`metrics` has no `listen` address",
            Some("add `listen: \"127.0.0.1:9464\"`".to_owned()),
        );
        return None;
    };
    let text = ctx.string(value, "metrics.listen", "`metrics.listen`")?;
    if text.parse::<std::net::SocketAddr>().is_err() {
        ctx.error(
            value.pos,
            "metrics.listen",
            format!("`{text}` is not an IP address and port"),
            Some("write it as `127.0.0.1:9464` (or `[::1]:9464`); host names are not looked up".to_owned()),
        );
        return None;
    }
    Some(text)
}
