//! Walks the spanned tree and turns it into per-service drafts, reporting every problem.
//!
//! Each field is checked on its own so one mistake does not hide the next; cross-container
//! checks (dependencies, cycles, replicas, image files) are in [`super::validate`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::diagnostic::{did_you_mean_hint, Diagnostic};
use super::model::{
    Capability, CpuShare, DependencyCondition, Limits, Location, Mount, RestartPolicy, SensorKind, SensorSpec,
};
use super::node::{Key, Node, Pos, Value};
use super::schema::{ComposeFile, ContainerFile, DependencyFile, LimitsFile, MountLongFile, SensorFile};
use super::units::{cpu_milli, parse_cpu, parse_duration, parse_memory};
use super::LoadOptions;

/// Replicas above this are almost certainly a typo; each replica is a full wasm instance.
pub const MAX_REPLICAS: i64 = 100_000;

/// Where a key is: the top level or inside a container. Docker-only keys differ per scope.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    Top,
    Container,
}

/// Keys from Docker Compose that shoal deliberately lacks, with why and what to use instead.
/// One table so the wording stays consistent and is easy to extend. A warning entry is
/// accepted and ignored; everything else is an error.
#[rustfmt::skip]
pub const DOCKER_KEYS: &[(Scope, &str, bool, &str, &str)] = &[
    // (scope, key, is_warning, message, hint)
    (Scope::Top, "services", false, "shoal calls them `containers`", "rename `services:` to `containers:`"),
    (Scope::Top, "version", true, "`version` is obsolete and ignored (as in Docker Compose)", "remove the `version:` line"),
    (Scope::Top, "volumes", false, "shoal has no named volumes", "mount a host folder with `mounts: [./data:/data]` in the container"),
    (Scope::Top, "networks", false, "shoal containers have no network; they exchange messages over topics", "use `publish`/`subscribe` in the containers"),
    (Scope::Top, "configs", false, "shoal has no configs", "mount a host folder with `mounts:` or use `env_file`"),
    (Scope::Top, "secrets", false, "shoal has no secrets store", "mount a read-only host folder with `mounts: [./secrets:/run/secrets:ro]`"),
    (Scope::Container, "ports", false, "shoal containers have no network, so there are no ports to publish", "containers talk over topics: use `publish`/`subscribe`"),
    (Scope::Container, "expose", false, "shoal containers have no network, so there are no ports to expose", "containers talk over topics: use `publish`/`subscribe`"),
    (Scope::Container, "networks", false, "shoal containers have no network; they exchange messages over topics", "use `publish`/`subscribe`"),
    (Scope::Container, "network_mode", false, "shoal containers have no network; they exchange messages over topics", "use `publish`/`subscribe`"),
    (Scope::Container, "privileged", false, "shoal has no privileged mode: a guest gets exactly the host APIs it is granted", "list what it needs in `capabilities`"),
    (Scope::Container, "cap_add", false, "Linux capabilities do not apply to WebAssembly guests", "grant host APIs with `capabilities: [messaging, timers, sensors]`"),
    (Scope::Container, "cap_drop", false, "Linux capabilities do not apply to WebAssembly guests", "a guest only gets what `capabilities` lists; remove `cap_drop`"),
    (Scope::Container, "build", false, "shoal runs prebuilt .wasm images", "build with cargo/clang and point `image` at the .wasm"),
    (Scope::Container, "volumes", false, "shoal has no volumes", "use `mounts: [host:guest]`"),
    (Scope::Container, "environment", false, "shoal calls it `env`", "rename `environment:` to `env:`"),
    (Scope::Container, "command", false, "a wasm module has one entry point; shoal passes arguments with `args`", "use `args: [...]`"),
    (Scope::Container, "entrypoint", false, "a wasm module has one entry point; shoal passes arguments with `args`", "use `args: [...]`"),
    (Scope::Container, "healthcheck", false, "shoal has no health checks", "for an init step, use `depends_on: {NAME: {condition: service_completed_successfully}}`"),
    (Scope::Container, "user", false, "WebAssembly guests run as no OS user; access is limited by `mounts` and `capabilities`", "remove `user`"),
    (Scope::Container, "devices", false, "WebAssembly guests cannot open host devices", "declare a top-level `sensors:` entry and list it in the container's `sensors`"),
    (Scope::Container, "deploy", false, "shoal has no `deploy` section", "use `replicas` and `limits` directly in the container"),
    (Scope::Container, "scale", false, "shoal calls it `replicas`", "use `replicas: N`"),
    (Scope::Container, "mem_limit", false, "shoal sets memory under `limits`", "use `limits: {memory: 1MiB}`"),
    (Scope::Container, "container_name", false, "the key under `containers:` is the container's name", "rename the key instead"),
    (Scope::Container, "restart_policy", false, "shoal calls it `restart`", "use `restart: on-failure:5`"),
];

/// Everything about one `containers:` entry that can be checked on its own.
#[derive(Debug)]
pub struct Draft {
    pub service: String,
    pub pos: Pos,
    pub image: Option<(String, Pos)>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub capabilities: std::collections::BTreeSet<Capability>,
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
}

/// The file's top level, decoded.
#[derive(Debug, Default)]
pub struct Decoded {
    pub name: Option<String>,
    pub containers: Vec<Draft>,
    pub sensors: BTreeMap<String, SensorSpec>,
    pub watch: bool,
    pub bridges: Vec<super::model::BridgeSpec>,
}

/// Collects diagnostics and knows how to turn a [`Pos`] into a [`Location`].
pub struct Ctx<'a> {
    /// The compose file as the caller named it (messages use this).
    pub file: PathBuf,
    /// Absolute folder of the compose file (relative paths are resolved against it).
    pub dir: PathBuf,
    pub opts: &'a LoadOptions<'a>,
    pub diags: Vec<Diagnostic>,
    /// Every env file the stack reads (absolute), for `up --watch`.
    pub env_files: Vec<PathBuf>,
}

impl Ctx<'_> {
    pub fn loc(&self, pos: Pos) -> Location {
        Location {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
        }
    }

    pub fn error(&mut self, pos: Pos, key: &str, message: impl Into<String>, hint: Option<String>) {
        let d = Diagnostic::error(Some(self.loc(pos)), key, message).with_hint_opt(hint);
        self.diags.push(d);
    }

    pub fn warn(&mut self, pos: Pos, key: &str, message: impl Into<String>, hint: Option<String>) {
        let d = Diagnostic::warning(Some(self.loc(pos)), key, message).with_hint_opt(hint);
        self.diags.push(d);
    }

    /// Resolves a path written in the file against the compose file's folder.
    pub fn resolve(&self, p: &str) -> PathBuf {
        normalize(&self.dir.join(p))
    }

    pub(super) fn type_error(&mut self, node: &Node, key: &str, what: &str, expected: &str) {
        self.error(
            node.pos,
            key,
            format!("{what} must be {expected}, found {}", node.value.kind()),
            None,
        );
    }

    /// A mapping's entries; reports a type error otherwise.
    pub(super) fn map<'n>(&mut self, node: &'n Node, key: &str, what: &str) -> Option<&'n [(Key, Node)]> {
        match &node.value {
            Value::Map(m) => Some(m),
            _ => {
                self.type_error(node, key, what, "a mapping");
                None
            }
        }
    }

    /// A string scalar; numbers and booleans are accepted as their text when `loose`.
    pub(super) fn string(&mut self, node: &Node, key: &str, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.type_error(node, key, what, "a string");
                None
            }
        }
    }

    /// An integer; a string that is an integer is accepted (it may come from `${VAR}`).
    pub(super) fn int(&mut self, node: &Node, key: &str, what: &str) -> Option<i64> {
        match &node.value {
            Value::Int(i) => Some(*i),
            Value::Str(s) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
            _ => {
                self.type_error(node, key, what, "an integer");
                None
            }
        }
    }

    /// A number; an integer or numeric string is accepted.
    fn float(&mut self, node: &Node, key: &str, what: &str) -> Option<f64> {
        let f = match &node.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match f {
            Some(f) if f.is_finite() => Some(f),
            _ => {
                self.type_error(node, key, what, "a finite number");
                None
            }
        }
    }

    /// A boolean; `"true"`/`"false"` strings are accepted (they may come from `${VAR}`).
    fn bool(&mut self, node: &Node, key: &str, what: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if s == "true" => Some(true),
            Value::Str(s) if s == "false" => Some(false),
            _ => {
                self.type_error(node, key, what, "`true` or `false`");
                None
            }
        }
    }

    /// A list of strings (scalars converted to text when `loose`). Bad items are reported
    /// and skipped.
    fn strings(&mut self, node: &Node, key: &str, what: &str, loose: bool) -> Option<Vec<(String, Pos)>> {
        let Value::Seq(items) = &node.value else {
            self.type_error(node, key, what, "a list");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let text = if loose {
                item.value.scalar_text()
            } else if let Value::Str(s) = &item.value {
                Some(s.clone())
            } else {
                None
            };
            match text {
                Some(t) => out.push((t, item.pos)),
                None => self.type_error(
                    item,
                    &format!("{key}[{i}]"),
                    &format!("each item of {what}"),
                    "a string",
                ),
            }
        }
        Some(out)
    }

    /// Reports keys not in `known`: Docker-only keys with their specific message, others with a
    /// did-you-mean hint. Returns the entries whose keys are known.
    pub(super) fn check_keys<'n>(
        &mut self,
        entries: &'n [(Key, Node)],
        known: &[&str],
        scope: Option<Scope>,
        prefix: &str,
        context: &str,
    ) -> Vec<&'n (Key, Node)> {
        let mut out = Vec::new();
        for entry in entries {
            let k = &entry.0;
            if known.contains(&k.name.as_str()) {
                out.push(entry);
                continue;
            }
            // Compose's extension fields (`x-common: &common ...`) hold YAML anchors for reuse;
            // they are ignored, as in Compose.
            if scope.is_some() && k.name.starts_with("x-") {
                continue;
            }
            let path = join_key(prefix, &k.name);
            let docker = scope.and_then(|s| DOCKER_KEYS.iter().find(|d| d.0 == s && d.1 == k.name));
            if let Some(&(_, name, warning, msg, hint)) = docker {
                let message = if warning {
                    msg.to_string()
                } else {
                    format!("`{name}` is not supported: {msg}")
                };
                if warning {
                    self.warn(k.pos, &path, message, Some(hint.to_string()));
                } else {
                    self.error(k.pos, &path, message, Some(hint.to_string()));
                }
            } else {
                let hint = did_you_mean_hint(&k.name, known.iter().copied());
                self.error(k.pos, &path, format!("unknown key `{}` {context}", k.name), hint);
            }
        }
        out
    }
}

fn join_key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Lexically cleans a path (drops `.`, folds `..`) so messages show the path a user would type.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// True for names made of `[a-z0-9][a-z0-9_-]*` (container names become replica names, log
/// prefixes and file names, so keep them plain).
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A valid name derived from arbitrary text (folder names may have capitals or spaces).
pub fn sanitize_name(s: &str) -> String {
    let lowered: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let trimmed = lowered.trim_start_matches(['_', '-']);
    if trimmed.is_empty() {
        "default".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Decodes the whole document.
pub fn decode(root: &Node, ctx: &mut Ctx) -> Decoded {
    let mut out = Decoded::default();
    let entries = match &root.value {
        Value::Map(m) => m.as_slice(),
        Value::Null => {
            ctx.diags.push(
                Diagnostic::error(Some(ctx.loc(root.pos)), "", "the compose file is empty")
                    .with_hint("declare at least one container under `containers:`"),
            );
            return out;
        }
        _ => {
            ctx.type_error(root, "", "the compose file", "a mapping");
            return out;
        }
    };
    let known = ctx.check_keys(entries, ComposeFile::KEYS, Some(Scope::Top), "", "at the top level");
    // Sensors first: containers refer to them. References are checked against every declared
    // name, so a sensor with its own error does not also make each user of it an error.
    let mut declared_sensors = std::collections::BTreeSet::new();
    if let Some((_, v)) = known.iter().find(|(k, _)| k.name == "sensors") {
        if let Value::Map(m) = &v.value {
            declared_sensors.extend(m.iter().map(|(k, _)| k.name.clone()));
        }
        out.sensors = decode_sensors(v, ctx);
    }
    let mut containers = None;
    for (k, v) in known {
        match k.name.as_str() {
            "name" => {
                if let Some(s) = ctx.string(v, "name", "`name`") {
                    if is_valid_name(&s) {
                        out.name = Some(s);
                    } else {
                        ctx.error(
                            v.pos,
                            "name",
                            format!("invalid project name `{s}`: use lowercase letters, digits, `-` and `_`"),
                            Some(format!("for example `{}`", sanitize_name(&s))),
                        );
                    }
                }
            }
            "watch" => {
                if let Some(b) = ctx.bool(v, "watch", "`watch`") {
                    out.watch = b;
                }
            }
            "containers" => containers = Some((k, v)),
            "bridges" => out.bridges = super::bridges::decode_bridges(v, ctx),
            _ => {}
        }
    }
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
                    if let Some(d) = decode_container(ck, cv, &declared_sensors, ctx) {
                        out.containers.push(d);
                    }
                }
            }
        }
    }
    out
}

fn decode_sensors(node: &Node, ctx: &mut Ctx) -> BTreeMap<String, SensorSpec> {
    let mut out = BTreeMap::new();
    if matches!(node.value, Value::Null) {
        return out;
    }
    let Some(entries) = ctx.map(node, "sensors", "`sensors`") else {
        return out;
    };
    for (k, v) in entries {
        let path = format!("sensors.{}", k.name);
        if k.name.trim().is_empty() || k.name.contains('\0') {
            ctx.error(k.pos, &path, "sensor names must not be empty", None);
            continue;
        }
        let context = format!("in sensor `{}`", k.name);
        let Some(m) = ctx.map(v, &path, &format!("sensor `{}`", k.name)) else {
            continue;
        };
        let fields = ctx.check_keys(m, SensorFile::KEYS, None, &path, &context);
        let get = |name: &str| fields.iter().find(|(fk, _)| fk.name == name).map(|(fk, fv)| (fk, fv));
        let Some((_, kind_node)) = get("kind") else {
            ctx.error(
                k.pos,
                &path,
                format!("sensor `{}` has no `kind`", k.name),
                Some("add `kind: rng`, `kind: file` or `kind: hwmon`".into()),
            );
            continue;
        };
        let Some(kind) = ctx.string(kind_node, &format!("{path}.kind"), "`kind`") else {
            continue;
        };
        let not_for = |ctx: &mut Ctx, field: &str, kind: &str| {
            if let Some((fk, _)) = get(field) {
                ctx.error(
                    fk.pos,
                    &format!("{path}.{field}"),
                    format!("`{field}` does not apply to `{kind}` sensors"),
                    None,
                );
            }
        };
        match kind.as_str() {
            "rng" => {
                not_for(ctx, "path", "rng");
                not_for(ctx, "scale", "rng");
                let mut channels = 1u32;
                if let Some((_, cn)) = get("channels") {
                    if let Some(c) = ctx.int(cn, &format!("{path}.channels"), "`channels`") {
                        if (1..=1024).contains(&c) {
                            channels = c as u32;
                        } else {
                            ctx.error(
                                cn.pos,
                                &format!("{path}.channels"),
                                format!("`channels` must be between 1 and 1024, found {c}"),
                                None,
                            );
                        }
                    }
                }
                let (mut min, mut max) = (0.0, 100.0);
                if let Some((_, rn)) = get("range") {
                    let rkey = format!("{path}.range");
                    match &rn.value {
                        Value::Seq(items) if items.len() == 2 => {
                            let a = ctx.float(&items[0], &rkey, "`range` bounds");
                            let b = ctx.float(&items[1], &rkey, "`range` bounds");
                            if let (Some(a), Some(b)) = (a, b) {
                                if a < b {
                                    (min, max) = (a, b);
                                } else {
                                    ctx.error(
                                        rn.pos,
                                        &rkey,
                                        format!("`range` must be `[min, max]` with min < max, found [{a}, {b}]"),
                                        None,
                                    );
                                }
                            }
                        }
                        _ => ctx.error(
                            rn.pos,
                            &rkey,
                            "`range` must be a list `[min, max]`",
                            Some("for example `range: [0, 100]`".into()),
                        ),
                    }
                }
                out.insert(
                    k.name.clone(),
                    SensorSpec {
                        name: k.name.clone(),
                        kind: SensorKind::Rng { min, max },
                        channels,
                    },
                );
            }
            "file" | "hwmon" => {
                not_for(ctx, "range", &kind);
                if let Some((_, cn)) = get("channels") {
                    if let Some(c) = ctx.int(cn, &format!("{path}.channels"), "`channels`") {
                        if c != 1 {
                            ctx.error(
                                cn.pos,
                                &format!("{path}.channels"),
                                format!("a `{kind}` sensor has exactly 1 channel, found {c}"),
                                None,
                            );
                        }
                    }
                }
                let mut scale = 1.0;
                if let Some((_, sn)) = get("scale") {
                    if let Some(s) = ctx.float(sn, &format!("{path}.scale"), "`scale`") {
                        scale = s;
                    }
                }
                let Some((_, pn)) = get("path") else {
                    ctx.error(
                        k.pos,
                        &path,
                        format!("`{kind}` sensor `{}` has no `path`", k.name),
                        Some("add the file to read, e.g. `path: /sys/class/thermal/thermal_zone0/temp`".into()),
                    );
                    continue;
                };
                let Some(p) = ctx.string(pn, &format!("{path}.path"), "`path`") else {
                    continue;
                };
                if p.is_empty() {
                    ctx.error(pn.pos, &format!("{path}.path"), "`path` must not be empty", None);
                    continue;
                }
                let abs = ctx.resolve(&p);
                if !abs.exists() {
                    ctx.warn(
                        pn.pos,
                        &format!("{path}.path"),
                        format!("sensor file {} does not exist (yet)", abs.display()),
                        Some("reads fail until it appears".into()),
                    );
                }
                let kind = if kind == "file" {
                    SensorKind::File { path: abs, scale }
                } else {
                    SensorKind::Hwmon { path: abs, scale }
                };
                out.insert(
                    k.name.clone(),
                    SensorSpec {
                        name: k.name.clone(),
                        kind,
                        channels: 1,
                    },
                );
            }
            other => {
                let hint =
                    did_you_mean_hint(other, ["rng", "file", "hwmon"]).or(Some("use `rng`, `file` or `hwmon`".into()));
                ctx.error(
                    kind_node.pos,
                    &format!("{path}.kind"),
                    format!("unknown sensor kind `{other}`"),
                    hint,
                );
            }
        }
    }
    out
}

fn decode_container(
    key: &Key,
    node: &Node,
    sensors: &std::collections::BTreeSet<String>,
    ctx: &mut Ctx,
) -> Option<Draft> {
    let name = &key.name;
    let path = format!("containers.{name}");
    if !is_valid_name(name) {
        ctx.error(
            key.pos,
            &path,
            format!("invalid container name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"),
            Some(format!("for example `{}`", sanitize_name(name))),
        );
    }
    let entries: &[(Key, Node)] = match &node.value {
        Value::Map(m) => m,
        Value::Null => &[],
        _ => {
            let hint = matches!(node.value, Value::Str(_))
                .then(|| format!("write `{name}: {{image: ...}}`; the container's settings go in a mapping"));
            ctx.error(
                node.pos,
                &path,
                format!("container `{name}` must be a mapping, found {}", node.value.kind()),
                hint,
            );
            return None;
        }
    };
    let fields = ctx.check_keys(
        entries,
        ContainerFile::KEYS,
        Some(Scope::Container),
        &path,
        &format!("in container `{name}`"),
    );
    let mut d = Draft {
        service: name.clone(),
        pos: key.pos,
        image: None,
        args: Vec::new(),
        env: Vec::new(),
        capabilities: Default::default(),
        capabilities_pos: key.pos,
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
    };
    let mut env_file: Vec<(String, String)> = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    for (k, v) in fields {
        let kp = format!("{path}.{}", k.name);
        let what = format!("`{}`", k.name);
        // A key with no value means "not set", as in Compose.
        if matches!(v.value, Value::Null) && k.name != "image" {
            continue;
        }
        match k.name.as_str() {
            "image" => {
                if let Some(s) = ctx.string(v, &kp, "`image`") {
                    if s.trim().is_empty() {
                        ctx.error(
                            v.pos,
                            &kp,
                            "`image` is empty",
                            Some("point it at a .wasm file or a `sha256:` digest".into()),
                        );
                    } else {
                        d.image = Some((s, v.pos));
                    }
                }
            }
            "args" => {
                if let Some(items) = ctx.strings(v, &kp, "`args`", true) {
                    d.args = items.into_iter().map(|(s, _)| s).collect();
                }
            }
            "env" => env = decode_env(v, &kp, ctx),
            "env_file" => env_file = decode_env_file(v, &kp, ctx),
            "capabilities" => {
                d.capabilities_pos = k.pos;
                if let Some(items) = ctx.strings(v, &kp, "`capabilities`", false) {
                    for (c, pos) in items {
                        match Capability::parse_grant(&c) {
                            Some(granted) => d.capabilities.extend(granted.iter().copied()),
                            None => {
                                let other = c.as_str();
                                let hint = did_you_mean_hint(other, Capability::names()).or_else(|| {
                                    Some(format!(
                                        "known capabilities: {}",
                                        Capability::names().collect::<Vec<_>>().join(", ")
                                    ))
                                });
                                ctx.error(
                                    pos,
                                    &kp,
                                    format!("unknown capability `{other}` in container `{name}`"),
                                    hint,
                                );
                            }
                        }
                    }
                }
            }
            "mounts" => d.mounts = decode_mounts(v, &kp, name, ctx),
            "depends_on" => d.deps = decode_depends_on(v, &kp, ctx),
            "restart" => {
                if let Some(s) = ctx.string(v, &kp, "`restart`") {
                    if let Some(r) = parse_restart(&s, v.pos, &kp, ctx) {
                        d.restart = r;
                    }
                }
            }
            "restart_delay" | "stop_timeout" => {
                let parsed = match &v.value {
                    Value::Str(s) => parse_duration(s),
                    Value::Int(i) => parse_duration(&i.to_string()),
                    _ => Err(format!(
                        "{what} must be a duration such as `5s`, found {}",
                        v.value.kind()
                    )),
                };
                match parsed {
                    Ok(dur) if k.name == "restart_delay" => d.restart_delay = dur,
                    Ok(dur) => d.stop_timeout = dur,
                    Err(e) => ctx.error(v.pos, &kp, e, None),
                }
            }
            "limits" => {
                if let Some(m) = ctx.map(v, &kp, "`limits`") {
                    d.limits = decode_limits(m, &kp, ctx);
                }
            }
            "replicas" => {
                if let Some(n) = ctx.int(v, &kp, "`replicas`") {
                    if n < 1 {
                        ctx.error(
                            v.pos,
                            &kp,
                            format!("`replicas` must be at least 1, found {n}"),
                            Some("remove the container to not run it".into()),
                        );
                    } else if n > MAX_REPLICAS {
                        ctx.error(
                            v.pos,
                            &kp,
                            format!("`replicas: {n}` is too many (at most {MAX_REPLICAS})"),
                            None,
                        );
                    } else {
                        d.replicas = n as u32;
                    }
                }
            }
            "publish" | "subscribe" => {
                if let Some(items) = ctx.strings(v, &kp, &what, false) {
                    let mut prefixes = Vec::new();
                    for (p, pos) in items {
                        if p.is_empty() {
                            ctx.error(
                                pos,
                                &kp,
                                format!("empty topic prefix in {what}"),
                                Some("to allow every topic, remove the key".into()),
                            );
                        } else if p.contains('\0') {
                            ctx.error(
                                pos,
                                &kp,
                                format!("topic prefix in {what} contains a NUL character"),
                                None,
                            );
                        } else {
                            if k.name == "subscribe" && (p.contains('#') || p.contains('+')) {
                                ctx.warn(pos, &kp, format!("topic prefix `{p}` contains an MQTT wildcard (`#` or `+`), which shoal matches literally"), Some(format!("subscriptions match by prefix: `{}` already covers everything under it", p.split(['#', '+']).next().unwrap_or_default())));
                            }
                            prefixes.push(p);
                        }
                    }
                    if k.name == "publish" {
                        d.publish = Some(prefixes);
                    } else {
                        d.subscribe = Some(prefixes);
                    }
                }
            }
            "sensors" => {
                d.sensors_pos = Some(k.pos);
                if let Some(items) = ctx.strings(v, &kp, "`sensors`", false) {
                    for (s, pos) in items {
                        if sensors.contains(&s) {
                            if !d.sensors.iter().any(|(x, _)| *x == s) {
                                d.sensors.push((s, pos));
                            }
                        } else {
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
                            ctx.error(pos, &kp, format!("unknown sensor `{s}` in container `{name}`"), hint);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if d.image.is_none() && !entries.iter().any(|(k, _)| k.name == "image") {
        ctx.error(
            key.pos,
            &format!("{path}.image"),
            format!("container `{name}` has no `image`"),
            Some("add `image: path/to/module.wasm`".into()),
        );
    }
    // Topic lists without the capability to use them are harmless but certainly a mistake.
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
    // env_file first, then env overrides; keep first-seen order for stability.
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in env_file.into_iter().chain(env) {
        if let Some(slot) = merged.iter_mut().find(|(mk, _)| *mk == k) {
            slot.1 = v;
        } else {
            merged.push((k, v));
        }
    }
    d.env = merged;
    Some(d)
}

fn check_env_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        Err("environment variable name is empty".into())
    } else if k.contains('=') || k.contains('\0') {
        Err(format!("invalid environment variable name `{k}`"))
    } else {
        Ok(())
    }
}

fn decode_env(node: &Node, key: &str, ctx: &mut Ctx) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match &node.value {
        Value::Map(m) => {
            for (k, v) in m {
                if let Err(e) = check_env_key(&k.name) {
                    ctx.error(k.pos, key, e, None);
                    continue;
                }
                match &v.value {
                    // `KEY:` with no value: Compose would pass the host's value; shoal does not
                    // leak the host environment implicitly, so it is empty, with a warning
                    // showing how to say either thing explicitly.
                    Value::Null => {
                        let name = &k.name;
                        ctx.warn(
                            v.pos,
                            &format!("{key}.{name}"),
                            format!("`{name}` in `env` has no value; using an empty string"),
                            Some(format!(
                                "write `{name}: ${{{name}}}` to pass the host's value, or `{name}: \"\"`"
                            )),
                        );
                        out.push((k.name.clone(), String::new()));
                    }
                    val => match val.scalar_text() {
                        Some(t) => out.push((k.name.clone(), t)),
                        None => ctx.type_error(
                            v,
                            &format!("{key}.{}", k.name),
                            &format!("env value `{}`", k.name),
                            "a string",
                        ),
                    },
                }
            }
        }
        Value::Seq(_) => {
            if let Some(items) = ctx.strings(node, key, "`env`", false) {
                for (s, pos) in items {
                    match s.split_once('=') {
                        Some((k, v)) => match check_env_key(k) {
                            Ok(()) => out.push((k.to_string(), v.to_string())),
                            Err(e) => ctx.error(pos, key, e, None),
                        },
                        None => ctx.error(
                            pos,
                            key,
                            format!("`{s}` in `env` is not `KEY=VALUE`"),
                            Some(format!("write `{s}=value`, or `{s}=${{{s}}}` to pass the host's value")),
                        ),
                    }
                }
            }
        }
        _ => ctx.type_error(node, key, "`env`", "a mapping or a list of `KEY=VALUE`"),
    }
    out
}

fn decode_env_file(node: &Node, key: &str, ctx: &mut Ctx) -> Vec<(String, String)> {
    let paths: Vec<(String, Pos)> = match &node.value {
        Value::Str(s) => vec![(s.clone(), node.pos)],
        Value::Seq(_) => ctx.strings(node, key, "`env_file`", false).unwrap_or_default(),
        _ => {
            ctx.type_error(node, key, "`env_file`", "a path or a list of paths");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (p, pos) in paths {
        let abs = ctx.resolve(&p);
        ctx.env_files.push(abs.clone());
        // Point into the env file with a path shaped like the compose file's (relative if the
        // caller's was), so the message is clickable from where shoal was started.
        let shown = match ctx.file.parent() {
            Some(parent) if Path::new(&p).is_relative() => normalize(&parent.join(&p)),
            _ => abs.clone(),
        };
        match std::fs::read_to_string(&abs) {
            Ok(text) => {
                for (k, v, line) in parse_env_lines(&text, &mut |line, msg| {
                    ctx.diags.push(Diagnostic::error(
                        Some(Location {
                            file: shown.clone(),
                            line,
                            column: 1,
                        }),
                        key,
                        msg,
                    ));
                }) {
                    let _ = line;
                    out.push((k, v));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                ctx.error(pos, key, format!("env file {} does not exist", abs.display()), None)
            }
            Err(e) => ctx.error(pos, key, format!("cannot read env file {}: {e}", abs.display()), None),
        }
    }
    out
}

/// Parses `KEY=VALUE` lines: `#` comments, blank lines, an optional `export ` prefix, and one
/// pair of matching quotes around the value stripped (as Compose does).
pub fn parse_env_lines(text: &str, report: &mut dyn FnMut(u64, String)) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i as u64 + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            report(lineno, format!("expected `KEY=VALUE`, found `{line}`"));
            continue;
        };
        let k = k.trim();
        if let Err(e) = check_env_key(k) {
            report(lineno, e);
            continue;
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            v
        };
        out.push((k.to_string(), v.to_string(), lineno));
    }
    out
}

fn parse_restart(s: &str, pos: Pos, key: &str, ctx: &mut Ctx) -> Option<RestartPolicy> {
    match s {
        "no" => Some(RestartPolicy::No),
        "always" => Some(RestartPolicy::Always),
        "on-failure" => Some(RestartPolicy::OnFailure { max_retries: None }),
        // Docker's `unless-stopped` differs from `always` only across daemon restarts, which
        // shoal does not have; refusing it (rather than silently aliasing) keeps files honest.
        "unless-stopped" => {
            ctx.error(
                pos,
                key,
                "`restart: unless-stopped` is not supported: shoal has no daemon that outlives the stack",
                Some("use `restart: always`".into()),
            );
            None
        }
        _ => {
            if let Some(n) = s.strip_prefix("on-failure:") {
                match n.trim().parse::<u32>() {
                    Ok(n) => return Some(RestartPolicy::OnFailure { max_retries: Some(n) }),
                    Err(_) => {
                        ctx.error(
                            pos,
                            key,
                            format!("invalid retry count in `restart: {s}`"),
                            Some("write `on-failure:N` with N a whole number, e.g. `on-failure:5`".into()),
                        );
                        return None;
                    }
                }
            }
            let hint = did_you_mean_hint(s, ["no", "always", "on-failure"])
                .or(Some("use `no`, `on-failure`, `on-failure:N` or `always`".into()));
            ctx.error(pos, key, format!("unknown restart policy `{s}`"), hint);
            None
        }
    }
}

/// Keys people write under `limits:` that shoal does not have, with what to write instead.
const LIMIT_LOOKALIKES: &[(&str, &str, &str)] = &[
    // (key, message, hint)
    (
        "cpus",
        "shoal calls it `limits.cpu`",
        "write `cpu: 0.5` (a share of one core) or `cpu: 50%`",
    ),
    ("timers", "shoal calls it `limits.max_timers`", "write `max_timers: 16`"),
    (
        "subscriptions",
        "shoal calls it `limits.max_subscriptions`",
        "write `max_subscriptions: 64`",
    ),
    (
        "mailbox",
        "shoal calls it `limits.queue`",
        "write `queue: 64` (messages)",
    ),
    (
        "stack",
        "the wasm stack depth is one setting for the whole process (wasmtime sets it per engine), not per container",
        "start shoal with `--max-wasm-stack SIZE` (default 512KiB)",
    ),
    (
        "fuel",
        "shoal meters CPU by time, not by fuel",
        "write `cpu: 0.5` (a share of one core)",
    ),
    ("pids", "a WebAssembly guest cannot start processes", "remove `pids`"),
];

fn decode_limits(m: &[(Key, Node)], key: &str, ctx: &mut Ctx) -> Limits {
    let mut limits = Limits::default();
    for (k, v) in m {
        let kp = format!("{key}.{}", k.name);
        if let Some((_, message, hint)) = LIMIT_LOOKALIKES.iter().find(|(name, ..)| *name == k.name) {
            ctx.error(
                k.pos,
                &kp,
                format!("`limits.{}`: {message}", k.name),
                Some((*hint).into()),
            );
            continue;
        }
        if !LimitsFile::KEYS.contains(&k.name.as_str()) {
            let hint = did_you_mean_hint(&k.name, LimitsFile::KEYS.iter().copied());
            ctx.error(k.pos, &kp, format!("unknown key `{}` in `limits`", k.name), hint);
            continue;
        }
        if matches!(v.value, Value::Null) {
            continue;
        }
        match k.name.as_str() {
            "memory" => {
                if let Some(bytes) = decode_memory_limit(v, &kp, ctx) {
                    limits.memory = Some(bytes);
                }
            }
            "cpu" => limits.cpu = decode_cpu_limit(v, &kp, ctx).or(limits.cpu),
            name => {
                let Some(n) = decode_count_limit(v, &kp, name, ctx) else {
                    continue;
                };
                match name {
                    "max_timers" => limits.max_timers = n,
                    "queue" => limits.queue = n,
                    _ => limits.max_subscriptions = n,
                }
            }
        }
    }
    limits
}

/// Largest `limits.memory`: a wasm32 memory cannot be larger.
const MAX_MEMORY_LIMIT: u64 = 4 << 30;

fn decode_memory_limit(v: &Node, kp: &str, ctx: &mut Ctx) -> Option<u64> {
    let parsed = match &v.value {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Str(s) => parse_memory(s),
        other => Err(format!(
            "`limits.memory` must be a size such as `1MiB`, found {}",
            other.kind()
        )),
    };
    match parsed {
        Ok(b) if b < 65536 => ctx.error(
            v.pos,
            kp,
            format!("`limits.memory` must be at least 64KiB (one wasm page), found {b} bytes"),
            None,
        ),
        Ok(b) if b > MAX_MEMORY_LIMIT => ctx.error(
            v.pos,
            kp,
            format!("`limits.memory` must be at most 4GiB (a wasm32 memory cannot grow further), found {b} bytes"),
            None,
        ),
        Ok(b) => return Some(b),
        Err(e) => ctx.error(v.pos, kp, e, None),
    }
    None
}

fn decode_cpu_limit(v: &Node, kp: &str, ctx: &mut Ctx) -> Option<CpuShare> {
    let milli = match &v.value {
        Value::Int(i) => u32::try_from(*i).ok().and_then(|i| i.checked_mul(1000)).ok_or(()),
        Value::Float(f) => cpu_milli(f * 1000.0).ok_or(()),
        Value::Str(s) => match parse_cpu(s) {
            Ok(m) => Ok(m),
            Err(e) => {
                ctx.error(v.pos, kp, e, None);
                return None;
            }
        },
        other => {
            ctx.error(
                v.pos,
                kp,
                format!(
                    "`limits.cpu` must be a share of one core such as `0.25` or `25%`, found {}",
                    other.kind()
                ),
                None,
            );
            return None;
        }
    };
    if let Some(share) = milli.ok().and_then(CpuShare::from_milli) {
        return Some(share);
    }
    let written = match &v.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        _ => String::new(),
    };
    ctx.error(
        v.pos,
        kp,
        format!("`limits.cpu` must be between 0.01 (1%) and 1 (one core), found `{written}`"),
        Some("every container runs on shoal's one executor thread, so one core is the most a container can get".into()),
    );
    None
}

fn decode_count_limit(v: &Node, kp: &str, name: &str, ctx: &mut Ctx) -> Option<u32> {
    let max = Limits::MAX_COUNT;
    match &v.value {
        Value::Int(i) if (1..=i64::from(max)).contains(i) => u32::try_from(*i).ok(),
        Value::Int(i) => {
            ctx.error(
                v.pos,
                kp,
                format!("`limits.{name}` must be between 1 and {max}, found {i}"),
                None,
            );
            None
        }
        other => {
            ctx.error(
                v.pos,
                kp,
                format!("`limits.{name}` must be a whole number, found {}", other.kind()),
                None,
            );
            None
        }
    }
}

fn decode_mounts(node: &Node, key: &str, container: &str, ctx: &mut Ctx) -> Vec<Mount> {
    let Value::Seq(items) = &node.value else {
        ctx.type_error(node, key, "`mounts`", "a list");
        return Vec::new();
    };
    let mut out: Vec<Mount> = Vec::new();
    let mut seen: HashMap<String, Pos> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let ik = format!("{key}[{i}]");
        let parsed = match &item.value {
            Value::Str(s) => parse_short_mount(s, item.pos, &ik, ctx),
            Value::Map(m) => parse_long_mount(m, item.pos, &ik, ctx),
            _ => {
                ctx.type_error(
                    item,
                    &ik,
                    "a mount",
                    "`host:guest[:ro]` or `{source, target, read_only}`",
                );
                None
            }
        };
        let Some(m) = parsed else { continue };
        let norm_guest = if m.guest.len() > 1 {
            m.guest.trim_end_matches('/').to_string()
        } else {
            m.guest.clone()
        };
        if let Some(first) = seen.get(&norm_guest) {
            ctx.error(
                item.pos,
                &ik,
                format!(
                    "guest path `{}` is mounted twice in container `{container}` (first at line {})",
                    m.guest, first.line
                ),
                None,
            );
            continue;
        }
        seen.insert(norm_guest, item.pos);
        out.push(m);
    }
    out
}

fn parse_short_mount(s: &str, pos: Pos, key: &str, ctx: &mut Ctx) -> Option<Mount> {
    let parts: Vec<&str> = s.split(':').collect();
    let (host, guest, ro) = match parts.as_slice() {
        [h, g] => (*h, *g, false),
        [h, g, "ro"] => (*h, *g, true),
        [h, g, "rw"] => (*h, *g, false),
        [_, _, mode] => {
            ctx.error(
                pos,
                key,
                format!("unknown mount mode `{mode}` in `{s}`"),
                Some("use `:ro` or `:rw`".into()),
            );
            return None;
        }
        _ => {
            ctx.error(
                pos,
                key,
                format!("invalid mount `{s}`: expected `host:guest[:ro|:rw]`"),
                Some("for example `./data:/data:ro`".into()),
            );
            return None;
        }
    };
    check_mount(host, guest, ro, pos, pos, key, ctx, true)
}

fn parse_long_mount(m: &[(Key, Node)], pos: Pos, key: &str, ctx: &mut Ctx) -> Option<Mount> {
    let fields = ctx.check_keys(m, MountLongFile::KEYS, None, key, "in mount");
    let mut source = None;
    let mut target = None;
    let mut ro = false;
    let mut ok = true;
    for (k, v) in fields {
        let kp = format!("{key}.{}", k.name);
        match k.name.as_str() {
            "source" => source = ctx.string(v, &kp, "`source`").map(|s| (s, v.pos)),
            "target" => target = ctx.string(v, &kp, "`target`").map(|s| (s, v.pos)),
            "read_only" => match ctx.bool(v, &kp, "`read_only`") {
                Some(b) => ro = b,
                None => ok = false,
            },
            _ => {}
        }
    }
    for (name, val) in [("source", &source), ("target", &target)] {
        if val.is_none() && !m.iter().any(|(k, _)| k.name == name) {
            ctx.error(pos, key, format!("mount has no `{name}`"), None);
            ok = false;
        }
    }
    let ((s, spos), (t, tpos)) = (source?, target?);
    if !ok {
        return None;
    }
    check_mount(&s, &t, ro, spos, tpos, key, ctx, false)
}

#[allow(clippy::too_many_arguments)]
fn check_mount(
    host: &str,
    guest: &str,
    ro: bool,
    hpos: Pos,
    gpos: Pos,
    key: &str,
    ctx: &mut Ctx,
    short: bool,
) -> Option<Mount> {
    let mut ok = true;
    if host.is_empty() {
        ctx.error(hpos, key, "mount source is empty", None);
        return None;
    }
    let abs = ctx.resolve(host);
    if !abs.exists() {
        // `/logs:./logs` is a Docker-order mistake when the "guest" part exists on the host.
        let swapped = !guest.is_empty() && ctx.resolve(guest).is_dir();
        let hint = if swapped {
            let mode = if ro { ":ro" } else { "" };
            Some(if short {
                format!("the order is host:guest, as in Docker: write `{guest}:{host}{mode}`")
            } else {
                "`source` is the host folder and `target` the guest path, as in Docker".to_string()
            })
        } else {
            Some("create the folder or fix the path (relative paths start at the compose file's folder)".to_string())
        };
        ctx.error(
            hpos,
            key,
            format!("mount source {} does not exist", abs.display()),
            hint,
        );
        ok = false;
    } else if !abs.is_dir() {
        ctx.error(
            hpos,
            key,
            format!("mount source {} is not a directory", abs.display()),
            Some("mounts share folders; mount the folder that holds the file".into()),
        );
        ok = false;
    }
    if !guest.starts_with('/') {
        ctx.error(
            gpos,
            key,
            format!("guest path `{guest}` must be absolute"),
            Some(format!("write `/{}`", guest.trim_start_matches("./"))),
        );
        ok = false;
    } else if guest.split('/').any(|c| c == "..") || guest.contains('\0') {
        ctx.error(gpos, key, format!("guest path `{guest}` must not contain `..`"), None);
        ok = false;
    }
    ok.then(|| Mount {
        host: abs,
        guest: guest.to_string(),
        read_only: ro,
    })
}

fn decode_depends_on(node: &Node, key: &str, ctx: &mut Ctx) -> Vec<(String, Pos, DependencyCondition)> {
    let mut out = Vec::new();
    match &node.value {
        Value::Seq(_) => {
            for (s, pos) in ctx.strings(node, key, "`depends_on`", false).unwrap_or_default() {
                out.push((s, pos, DependencyCondition::ServiceStarted));
            }
        }
        Value::Map(m) => {
            for (k, v) in m {
                let kp = format!("{key}.{}", k.name);
                let mut cond = DependencyCondition::ServiceStarted;
                match &v.value {
                    Value::Null => {}
                    Value::Map(fields) => {
                        for (fk, fv) in ctx.check_keys(fields, DependencyFile::KEYS, None, &kp, "in dependency") {
                            if fk.name != "condition" {
                                continue;
                            }
                            let Some(c) = ctx.string(fv, &format!("{kp}.condition"), "`condition`") else {
                                continue;
                            };
                            match c.as_str() {
                                "service_started" => cond = DependencyCondition::ServiceStarted,
                                "service_completed_successfully" => {
                                    cond = DependencyCondition::ServiceCompletedSuccessfully
                                }
                                "service_healthy" => ctx.error(
                                    fv.pos,
                                    &format!("{kp}.condition"),
                                    "`service_healthy` is not supported: shoal has no health checks",
                                    Some(
                                        "use `service_started`, or `service_completed_successfully` for an init step"
                                            .into(),
                                    ),
                                ),
                                other => {
                                    let hint =
                                        did_you_mean_hint(other, ["service_started", "service_completed_successfully"])
                                            .or(Some(
                                                "use `service_started` or `service_completed_successfully`".into(),
                                            ));
                                    ctx.error(
                                        fv.pos,
                                        &format!("{kp}.condition"),
                                        format!("unknown dependency condition `{other}`"),
                                        hint,
                                    );
                                }
                            }
                        }
                    }
                    _ => ctx.type_error(v, &kp, "a dependency", "a mapping `{condition: ...}`"),
                }
                out.push((k.name.clone(), k.pos, cond));
            }
        }
        _ => ctx.type_error(node, key, "`depends_on`", "a list of names or a mapping"),
    }
    out
}
