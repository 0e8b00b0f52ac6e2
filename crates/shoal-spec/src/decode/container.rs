//! One `containers:` entry: its name, its fields one by one, then the checks that need
//! several fields (an image is set, `publish`/`sensors` come with their capability), and
//! the environment merged from `env_file` and `env`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{depends_on, env, gpio, limits, mounts, restart, Ctx, Declared, Draft, Scope};
use crate::diagnostic::did_you_mean_hint;
use crate::model::{Capability, Limits, RestartPolicy};
use crate::names::{check_name, sanitize_name, InvalidName};
use crate::node::{Key, Node, Pos, Value};
use crate::schema::ContainerFile;

/// Replicas above this are almost certainly a typo; each replica is a full wasm instance.
pub const MAX_REPLICAS: i64 = 100_000;

/// What every field's decoder may need to know about the container it is in.
struct Container<'a> {
    name: &'a str,
    /// Every sensor the file declares (references are checked against these).
    sensors: &'a BTreeSet<String>,
    /// Every GPIO line the file declares.
    gpio: &'a BTreeSet<String>,
    /// `env_file` and `env` as written, merged once every field is read.
    env_file: Vec<(String, String)>,
    env: Vec<(String, String)>,
}

pub(super) fn decode_container(key: &Key, node: &Node, declared: &Declared, ctx: &mut Ctx) -> Option<Draft> {
    let name = &key.name;
    let path = format!("containers.{name}");
    match check_name(name) {
        Ok(()) => {}
        Err(InvalidName::Characters(_)) => ctx.error(
            key.pos,
            &path,
            format!("invalid container name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"),
            Some(format!("for example `{}`", sanitize_name(name))),
        ),
        Err(e @ InvalidName::TooLong(_)) => ctx.error(key.pos, &path, format!("container {e}"), Some(e.hint())),
    }
    let entries = container_entries(name, node, &path, ctx)?;
    let fields = ctx.check_keys(
        entries,
        ContainerFile::KEYS,
        Some(Scope::Container),
        &path,
        &format!("in container `{name}`"),
    );
    let mut d = new_draft(name, key.pos);
    let mut c = Container {
        name,
        sensors: declared.sensors,
        gpio: declared.gpio,
        env_file: Vec::new(),
        env: Vec::new(),
    };
    for (k, v) in fields {
        // A key with no value means "not set", as in Compose.
        if matches!(v.value, Value::Null) && k.name != "image" {
            continue;
        }
        decode_field(&mut d, &mut c, k, v, &format!("{path}.{}", k.name), ctx);
    }
    if d.image.is_none() && !entries.iter().any(|(k, _)| k.name == "image") {
        ctx.error(
            key.pos,
            &format!("{path}.image"),
            format!("container `{name}` has no `image`"),
            Some("add `image: path/to/module.wasm`".into()),
        );
    }
    check_capabilities_cover_fields(&d, entries, &path, ctx);
    d.env = merge_env(c.env_file, c.env);
    Some(d)
}

/// The container's entries; no value at all is a container with no fields (reported later
/// for its missing `image`), anything else but a mapping is an error.
fn container_entries<'n>(name: &str, node: &'n Node, path: &str, ctx: &mut Ctx) -> Option<&'n [(Key, Node)]> {
    match &node.value {
        Value::Map(m) => Some(m),
        Value::Null => Some(&[]),
        _ => {
            let hint = matches!(node.value, Value::Str(_))
                .then(|| format!("write `{name}: {{image: ...}}`; the container's settings go in a mapping"));
            ctx.error(
                node.pos,
                path,
                format!("container `{name}` must be a mapping, found {}", node.value.kind()),
                hint,
            );
            None
        }
    }
}

/// A container with every field at its default.
fn new_draft(name: &str, pos: Pos) -> Draft {
    Draft {
        service: name.to_string(),
        pos,
        image: None,
        args: Vec::new(),
        env: Vec::new(),
        capabilities: Default::default(),
        capabilities_pos: pos,
        mounts: Vec::new(),
        deps: Vec::new(),
        restart: RestartPolicy::No,
        restart_delay: Duration::from_secs(1),
        stop_timeout: Duration::from_secs(10),
        limits: Limits::default(),
        replicas: 1,
        publish: None,
        subscribe: None,
        sensors: Vec::new(),
        sensors_pos: None,
        gpio: Vec::new(),
        gpio_pos: None,
        profiles: Vec::new(),
        cpus: None,
        cpus_pos: None,
    }
}

/// One known field into the draft; `kp` is its key path (`containers.app.image`).
fn decode_field(d: &mut Draft, c: &mut Container, k: &Key, v: &Node, kp: &str, ctx: &mut Ctx) {
    let what = format!("`{}`", k.name);
    match k.name.as_str() {
        "image" => d.image = decode_image(v, kp, ctx).or(d.image.take()),
        "args" => {
            if let Some(items) = ctx.strings(v, kp, "`args`", true) {
                d.args = items.into_iter().map(|(s, _)| s).collect();
            }
        }
        "env" => c.env = env::decode_env(v, kp, ctx),
        "env_file" => c.env_file = env::decode_env_file(v, kp, ctx),
        "capabilities" => {
            d.capabilities_pos = k.pos;
            decode_capabilities(d, c.name, v, kp, ctx);
        }
        "mounts" => d.mounts = mounts::decode_mounts(v, kp, c.name, ctx),
        "depends_on" => d.deps = depends_on::decode_depends_on(v, kp, ctx),
        "restart" => {
            if let Some(s) = ctx.string(v, kp, "`restart`") {
                d.restart = restart::parse_restart(&s, v.pos, kp, ctx).unwrap_or(d.restart);
            }
        }
        "restart_delay" => d.restart_delay = ctx.duration(v, kp, &what, "5s").unwrap_or(d.restart_delay),
        "stop_timeout" => d.stop_timeout = ctx.duration(v, kp, &what, "5s").unwrap_or(d.stop_timeout),
        "limits" => {
            if let Some(m) = ctx.map(v, kp, "`limits`") {
                d.limits = limits::decode_limits(m, kp, ctx);
            }
        }
        "replicas" => d.replicas = decode_replicas(v, kp, ctx).unwrap_or(d.replicas),
        "publish" => d.publish = decode_topic_prefixes(v, kp, &what, false, ctx).or(d.publish.take()),
        "subscribe" => d.subscribe = decode_topic_prefixes(v, kp, &what, true, ctx).or(d.subscribe.take()),
        "sensors" => {
            d.sensors_pos = Some(k.pos);
            decode_sensor_refs(d, c, v, kp, ctx);
        }
        "gpio" => {
            d.gpio_pos = Some(k.pos);
            d.gpio = gpio::decode_refs(c.name, c.gpio, v, kp, ctx);
        }
        // compose: `profiles:` (see `crate::profiles`)
        "profiles" => d.profiles = decode_profiles(v, kp, ctx),
        "cpus" => {
            d.cpus_pos = Some(k.pos);
            d.cpus = super::cpus::decode_cpus(v, kp, ctx);
        }
        _ => {}
    }
}

/// `profiles:`: names as Compose allows them (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), duplicates dropped.
fn decode_profiles(v: &Node, kp: &str, ctx: &mut Ctx) -> Vec<(String, Pos)> {
    let mut out: Vec<(String, Pos)> = Vec::new();
    for (name, pos) in ctx.strings(v, kp, "`profiles`", false).unwrap_or_default() {
        if !crate::profiles::is_valid_profile(&name) {
            ctx.error(
                pos,
                kp,
                format!("invalid profile name `{name}`"),
                Some("use letters, digits, `_`, `.` and `-`, starting with a letter or digit".into()),
            );
        } else if !out.iter().any(|(p, _)| *p == name) {
            out.push((name, pos));
        }
    }
    out
}

fn decode_image(v: &Node, kp: &str, ctx: &mut Ctx) -> Option<(String, Pos)> {
    let s = ctx.string(v, kp, "`image`")?;
    if s.trim().is_empty() {
        ctx.error(
            v.pos,
            kp,
            "`image` is empty",
            Some(
                "point it at a .wasm file, a `sha256:` digest or a registry reference (`registry.example/org/app:1`)"
                    .into(),
            ),
        );
        return None;
    }
    Some((s, v.pos))
}

/// `capabilities:`, each name parsed over the one table in `shoal-abi`.
fn decode_capabilities(d: &mut Draft, name: &str, v: &Node, kp: &str, ctx: &mut Ctx) {
    let Some(items) = ctx.strings(v, kp, "`capabilities`", false) else {
        return;
    };
    for (c, pos) in items {
        match Capability::parse_grant(&c) {
            Some(granted) => d.capabilities.extend(granted.iter().copied()),
            None => {
                let hint = did_you_mean_hint(&c, Capability::names()).or_else(|| {
                    Some(format!(
                        "known capabilities: {}",
                        Capability::names().collect::<Vec<_>>().join(", ")
                    ))
                });
                ctx.error(pos, kp, format!("unknown capability `{c}` in container `{name}`"), hint);
            }
        }
    }
}

fn decode_replicas(v: &Node, kp: &str, ctx: &mut Ctx) -> Option<u32> {
    let n = ctx.int_at_most(v, kp, "`replicas`", MAX_REPLICAS)?;
    if n < 1 {
        ctx.error(
            v.pos,
            kp,
            format!("`replicas` must be at least 1, found {n}"),
            Some("remove the container to not run it".into()),
        );
    } else if n > MAX_REPLICAS {
        ctx.error(
            v.pos,
            kp,
            format!("`replicas: {n}` is too many (at most {MAX_REPLICAS})"),
            None,
        );
    } else {
        return Some(n as u32);
    }
    None
}

/// `publish:` or `subscribe:`: non-empty topic prefixes. A wildcard in a subscription is
/// kept (shoal matches prefixes literally) with a warning, since it is an MQTT habit.
fn decode_topic_prefixes(v: &Node, kp: &str, what: &str, subscribe: bool, ctx: &mut Ctx) -> Option<Vec<String>> {
    let items = ctx.strings(v, kp, what, false)?;
    let mut prefixes = Vec::new();
    for (p, pos) in items {
        if p.is_empty() {
            ctx.error(
                pos,
                kp,
                format!("empty topic prefix in {what}"),
                Some("to allow every topic, remove the key".into()),
            );
        } else if p.contains('\0') {
            ctx.error(
                pos,
                kp,
                format!("topic prefix in {what} contains a NUL character"),
                None,
            );
        } else {
            if subscribe && (p.contains('#') || p.contains('+')) {
                ctx.warn(
                    pos,
                    kp,
                    format!("topic prefix `{p}` contains an MQTT wildcard (`#` or `+`), which shoal matches literally"),
                    Some(format!(
                        "subscriptions match by prefix: `{}` already covers everything under it",
                        p.split(['#', '+']).next().unwrap_or_default()
                    )),
                );
            }
            prefixes.push(p);
        }
    }
    Some(prefixes)
}

/// The container's `sensors:` list: each a declared sensor, duplicates dropped.
fn decode_sensor_refs(d: &mut Draft, c: &Container, v: &Node, kp: &str, ctx: &mut Ctx) {
    let Some(items) = ctx.strings(v, kp, "`sensors`", false) else {
        return;
    };
    let sensors = c.sensors;
    for (s, pos) in items {
        if sensors.contains(&s) {
            if !d.sensors.iter().any(|(x, _)| *x == s) {
                d.sensors.push((s, pos));
            }
            continue;
        }
        let hint = did_you_mean_hint(&s, sensors.iter().map(String::as_str)).or_else(|| {
            Some(if sensors.is_empty() {
                "declare it under the top-level `sensors:`".to_string()
            } else {
                format!(
                    "declared sensors: {}",
                    sensors.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                )
            })
        });
        ctx.error(pos, kp, format!("unknown sensor `{s}` in container `{}`", c.name), hint);
    }
}

/// Fields that do nothing without a capability: topic lists without `messaging` are harmless
/// but certainly a mistake (a warning); sensors without `sensors` cannot be read (an error).
fn check_capabilities_cover_fields(d: &Draft, entries: &[(Key, Node)], path: &str, ctx: &mut Ctx) {
    let name = &d.service;
    if !d.capabilities.contains(&Capability::Messaging) {
        for field in ["publish", "subscribe"] {
            if let Some((fk, _)) = entries
                .iter()
                .find(|(k, v)| k.name == field && !matches!(v.value, Value::Null))
            {
                ctx.warn(
                    fk.pos,
                    &format!("{path}.{field}"),
                    format!("container `{name}` sets `{field}` but lacks the `messaging` capability"),
                    Some("add `messaging` to `capabilities`".into()),
                );
            }
        }
    }
    if let Some(pos) = d.sensors_pos {
        if !d.sensors.is_empty() && !d.capabilities.contains(&Capability::Sensors) {
            ctx.error(
                pos,
                &format!("{path}.sensors"),
                format!("container `{name}` lists `sensors` but lacks the `sensors` capability"),
                Some("add `sensors` to `capabilities`".into()),
            );
        }
    }
    if let Some(pos) = d.gpio_pos {
        if !d.gpio.is_empty() && !d.capabilities.contains(&Capability::Gpio) {
            ctx.error(
                pos,
                &format!("{path}.gpio"),
                format!("container `{name}` lists `gpio` lines but lacks the `gpio` capability"),
                Some("add `gpio` to `capabilities`".into()),
            );
        }
    }
}

/// env_file first, then env overrides; keep first-seen order for stability.
fn merge_env(env_file: Vec<(String, String)>, env: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in env_file.into_iter().chain(env) {
        if let Some(slot) = merged.iter_mut().find(|(mk, _)| *mk == k) {
            slot.1 = v;
        } else {
            merged.push((k, v));
        }
    }
    merged
}
