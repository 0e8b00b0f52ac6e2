//! Walks the spanned tree and turns it into per-service drafts, reporting every problem.
//!
//! Each field is checked on its own so one mistake does not hide the next; cross-container
//! checks (dependencies, cycles, replicas, image files) are in [`super::validate`].
//!
//! One file per section: `ctx` (diagnostics and typed accessors), `docker` (unknown and
//! Docker-only keys), this file (the top level), then sensors, containers, and the container
//! fields with rules of their own: env / env_file, restart, limits, mounts, depends_on.

mod container;
pub(crate) mod cpus;
mod ctx;
pub(crate) mod depends_on;
mod docker;
mod env;
pub(crate) mod gpio;
pub(crate) mod limits;
// Operations (issue 19): `metrics: { listen }`.
pub(crate) mod metrics;
pub(crate) mod mounts;
mod restart;
pub(crate) mod sensors;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::diagnostic::{did_you_mean_hint, Diagnostic};
use crate::model::{
    BridgeSpec, Capability, DependencyCondition, GpioLineSpec, Limits, Mount, RestartPolicy, SensorSpec,
};
use crate::node::{Key, Node, Pos, Value};
use crate::schema::ComposeFile;

use crate::names::{check_name, InvalidName, ProjectName};
pub use crate::names::{is_valid_name, sanitize_name};
pub use container::MAX_REPLICAS;
pub use ctx::{normalize, Ctx};
pub use docker::{Scope, DOCKER_KEYS};
pub use env::parse_env_lines;
pub use gpio::sdk_address;

/// Everything about one `containers:` entry that can be checked on its own.
#[derive(Debug)]
pub struct Draft {
    pub service: String,
    pub pos: Pos,
    pub image: Option<(String, Pos)>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub capabilities: BTreeSet<Capability>,
    pub capabilities_pos: Pos,
    pub mounts: Vec<Mount>,
    pub deps: Vec<(String, Pos, DependencyCondition)>,
    pub restart: RestartPolicy,
    pub restart_delay: Duration,
    pub stop_timeout: Duration,
    pub limits: Limits,
    pub replicas: u32,
    pub publish: Option<Vec<String>>,
    pub subscribe: Option<Vec<String>>,
    pub sensors: Vec<(String, Pos)>,
    pub sensors_pos: Option<Pos>,
    /// Declared GPIO lines this container may use, in list order.
    pub gpio: Vec<(String, Pos)>,
    pub gpio_pos: Option<Pos>,
    /// `profiles:` (compose); empty: always runs.
    pub profiles: Vec<(String, Pos)>,
    /// `cpus:`: the cores the container is pinned to, and where it is written.
    pub cpus: Option<crate::model::CoreSet>,
    pub cpus_pos: Option<Pos>,
}

/// The file's top level, decoded.
#[derive(Debug, Default)]
pub struct Decoded {
    pub name: Option<ProjectName>,
    pub containers: Vec<Draft>,
    pub sensors: BTreeMap<String, SensorSpec>,
    pub watch: bool,
    pub bridges: Vec<BridgeSpec>,
    pub gpio: BTreeMap<String, GpioLineSpec>,
    /// `metrics.listen`, checked to be `IP:PORT`.
    pub metrics: Option<String>,
}

/// Decodes the whole document.
pub fn decode(root: &Node, ctx: &mut Ctx) -> Decoded {
    let mut out = Decoded::default();
    let Some(entries) = top_entries(root, ctx) else {
        return out;
    };
    let known = ctx.check_keys(entries, ComposeFile::KEYS, Some(Scope::Top), "", "at the top level");
    // Sensors first: containers refer to them. References are checked against every declared
    // name, so a sensor with its own error does not also make each user of it an error.
    let mut declared_sensors = BTreeSet::new();
    if let Some((_, v)) = known.iter().find(|(k, _)| k.name == "sensors") {
        if let Value::Map(m) = &v.value {
            declared_sensors.extend(m.iter().map(|(k, _)| k.name.clone()));
        }
        out.sensors = sensors::decode_sensors(v, ctx);
    }
    let mut declared_gpio = BTreeSet::new();
    if let Some((_, v)) = known.iter().find(|(k, _)| k.name == "gpio") {
        if let Value::Map(m) = &v.value {
            declared_gpio.extend(m.iter().map(|(k, _)| k.name.clone()));
        }
        out.gpio = gpio::decode_gpio(v, ctx);
    }
    let declared = Declared {
        sensors: &declared_sensors,
        gpio: &declared_gpio,
    };
    let mut containers = None;
    for (k, v) in known {
        match k.name.as_str() {
            "name" => out.name = project_name(v, ctx).or(out.name),
            "watch" => out.watch = ctx.bool(v, "watch", "`watch`").unwrap_or(out.watch),
            "containers" => containers = Some((k, v)),
            "bridges" => out.bridges = crate::bridges::decode_bridges(v, ctx),
            "metrics" => out.metrics = metrics::decode_metrics(v, ctx),
            _ => {}
        }
    }
    decode_containers(root, entries, containers, &declared, &mut out, ctx);
    gpio::check_claims(&out, ctx);
    out
}

/// The names declared at the top level that containers refer to.
pub(crate) struct Declared<'a> {
    pub sensors: &'a BTreeSet<String>,
    pub gpio: &'a BTreeSet<String>,
}

/// The top level's entries; an empty file or a non-mapping is reported.
fn top_entries<'n>(root: &'n Node, ctx: &mut Ctx) -> Option<&'n [(Key, Node)]> {
    match &root.value {
        Value::Map(m) => Some(m.as_slice()),
        Value::Null => {
            ctx.diags.push(
                Diagnostic::error(Some(ctx.loc(root.pos)), "", "the compose file is empty")
                    .with_hint("declare at least one container under `containers:`"),
            );
            None
        }
        _ => {
            ctx.type_error(root, "", "the compose file", "a mapping");
            None
        }
    }
}

/// `name:`, when it is a valid project name.
fn project_name(v: &Node, ctx: &mut Ctx) -> Option<ProjectName> {
    let s = ctx.string(v, "name", "`name`")?;
    let message = match ProjectName::try_from(s.clone()) {
        Ok(name) => return Some(name),
        Err(InvalidName::Characters(_)) => {
            format!("invalid project name `{s}`: use lowercase letters, digits, `-` and `_`")
        }
        Err(e @ InvalidName::TooLong(_)) => format!("project {e}"),
    };
    let hint = check_name(&s).err().map(|e| e.hint());
    ctx.error(v.pos, "name", message, hint);
    None
}

/// The `containers:` section: missing, empty, or each entry decoded.
fn decode_containers(
    root: &Node,
    entries: &[(Key, Node)],
    containers: Option<(&Key, &Node)>,
    declared: &Declared,
    out: &mut Decoded,
    ctx: &mut Ctx,
) {
    // A `services:` section or a misspelt `containers` key has been reported already.
    let near_miss = entries
        .iter()
        .any(|(k, _)| k.name == "services" || did_you_mean_hint(&k.name, ["containers"]).is_some());
    match containers {
        None if near_miss => {}
        None => ctx.diags.push(
            Diagnostic::error(Some(ctx.loc(root.pos)), "containers", "no `containers:` section")
                .with_hint("declare at least one container: `containers: {app: {image: app.wasm}}`"),
        ),
        Some((k, v)) => {
            if matches!(v.value, Value::Null) || matches!(&v.value, Value::Map(m) if m.is_empty()) {
                ctx.error(
                    k.pos,
                    "containers",
                    "`containers` is empty",
                    Some("declare at least one container: `app: {image: app.wasm}`".into()),
                );
            } else if let Some(m) = ctx.map(v, "containers", "`containers`") {
                for (ck, cv) in m {
                    if let Some(d) = container::decode_container(ck, cv, declared, ctx) {
                        out.containers.push(d);
                    }
                }
            }
        }
    }
}
