//! A loaded stack written back as a compose file (`shoal config`): the merged result of
//! every `-f` file, `.env` and profile, in a form shoal loads again to the same stack.
//!
//! What makes it load again: `containers` is a mapping with replicas folded back into
//! `replicas:`, dependencies name containers (not replicas), sizes and durations carry units
//! (`64MiB`, `5s`), paths are absolute, every `$` in a value is written `$$` (the values
//! are final; interpolating them again must not change them), and `env_file` is folded into
//! `env`. A bridge's client id is written only when it is not this board's default, so the
//! printed file still gives each board its own id.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Serialize, Serializer};

use crate::model::{
    BridgeSpec, ContainerSpec, DependencyCondition, GpioBackend, GpioDirection, GpioLineId, GpioLineSpec,
    RestartPolicy, SecretRef, SensorKind, SensorSpec, Stack,
};
use crate::units::ByteSize;

/// Entries in the order given, serialized as a mapping.
#[derive(Debug)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T: Serialize> Serialize for Ordered<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The whole file.
#[derive(Debug, Serialize)]
pub struct ComposeOut {
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub watch: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sensors: BTreeMap<String, SensorOut>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gpio: BTreeMap<String, GpioOut>,
    #[serde(skip_serializing_if = "is_empty")]
    pub bridges: Ordered<BridgeOut>,
    pub containers: Ordered<ContainerOut>,
}

fn is_empty<T>(o: &Ordered<T>) -> bool {
    o.0.is_empty()
}

/// One `containers:` entry (a service; replicas folded).
#[derive(Debug, Serialize)]
pub struct ContainerOut {
    pub image: String,
    /// The image's content digest, for the reader (an `x-` key: ignored when loaded).
    #[serde(rename = "x-digest", skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "is_empty")]
    pub env: Ordered<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountOut>,
    #[serde(skip_serializing_if = "is_empty")]
    pub depends_on: Ordered<DependencyOut>,
    pub restart: String,
    pub restart_delay: String,
    pub stop_timeout: String,
    pub limits: Ordered<serde_json::Value>,
    #[serde(skip_serializing_if = "is_one")]
    pub replicas: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sensors: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpio: Vec<String>,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

#[derive(Debug, Serialize)]
pub struct MountOut {
    pub source: String,
    pub target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

#[derive(Debug, Serialize)]
pub struct DependencyOut {
    pub condition: &'static str,
}

#[derive(Debug, Serialize)]
pub struct SensorOut {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    pub channel_types: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct GpioOut {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<serde_json::Value>,
    pub direction: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub active_low: bool,
    pub bias: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debounce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct BridgeOut {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tls: BTreeMap<&'static str, String>,
    pub keep_alive: String,
    pub session_expiry: String,
    pub queue: usize,
    pub flush_timeout: String,
    pub reconnect_max: String,
    pub export: Vec<serde_json::Value>,
    pub import: Vec<serde_json::Value>,
}

/// `$` written as `$$`, so loading the text again gives the same value.
fn esc(s: &str) -> String {
    s.replace('$', "$$")
}

fn path(p: &Path) -> String {
    esc(&p.display().to_string())
}

fn duration(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The stack as a compose file. `env` is the environment the stack was loaded with (for
/// this board's default bridge client ids); `digest_of` gives an image's digest if known.
pub fn to_compose(
    stack: &Stack,
    env: &HashMap<String, String>,
    digest_of: &dyn Fn(&ContainerSpec) -> Option<String>,
) -> ComposeOut {
    let board = crate::bridges::board_id(env);
    let service_of: HashMap<&str, &str> = stack
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.service.as_str()))
        .collect();
    let mut containers: Vec<(String, ContainerOut)> = Vec::new();
    for c in &stack.containers {
        match containers.iter_mut().find(|(name, _)| name == c.service.as_str()) {
            Some((_, out)) => out.replicas += 1,
            None => containers.push((c.service.to_string(), container(c, &service_of, digest_of))),
        }
    }
    ComposeOut {
        name: stack.name.to_string(),
        watch: stack.watch,
        sensors: stack.sensors.iter().map(|(k, s)| (k.clone(), sensor(s))).collect(),
        gpio: stack.gpio.iter().map(|(k, g)| (k.clone(), gpio(g))).collect(),
        bridges: Ordered(
            stack
                .bridges
                .iter()
                .map(|b| (b.name.clone(), bridge(b, &board, &stack.name)))
                .collect(),
        ),
        containers: Ordered(containers),
    }
}

fn container(
    c: &ContainerSpec,
    service_of: &HashMap<&str, &str>,
    digest_of: &dyn Fn(&ContainerSpec) -> Option<String>,
) -> ContainerOut {
    let image = match &c.image {
        crate::ImageRef::Path(p) => path(p),
        crate::ImageRef::Digest(d) => d.to_string(),
        crate::ImageRef::Registry { reference, .. } => reference.clone(),
    };
    let mut depends_on: Vec<(String, DependencyOut)> = Vec::new();
    for dep in &c.depends_on {
        let service = service_of.get(dep.name.as_str()).copied().unwrap_or(dep.name.as_str());
        if !depends_on.iter().any(|(n, _)| n == service) {
            let condition = match dep.condition {
                DependencyCondition::ServiceStarted => "service_started",
                DependencyCondition::ServiceCompletedSuccessfully => "service_completed_successfully",
            };
            depends_on.push((service.to_string(), DependencyOut { condition }));
        }
    }
    let restart = match c.restart {
        RestartPolicy::No => "no".to_string(),
        RestartPolicy::Always => "always".to_string(),
        RestartPolicy::OnFailure { max_retries: None } => "on-failure".to_string(),
        RestartPolicy::OnFailure { max_retries: Some(n) } => format!("on-failure:{n}"),
    };
    let l = &c.limits;
    let mut limits: Vec<(String, serde_json::Value)> = Vec::new();
    if let Some(memory) = l.memory {
        limits.push(("memory".into(), ByteSize(memory).to_string().into()));
    }
    if let Some(cpu) = l.cpu {
        limits.push(("cpu".into(), format!("{}%", f64::from(cpu.milli()) / 10.0).into()));
    }
    limits.push(("max_timers".into(), l.max_timers.into()));
    limits.push(("queue".into(), l.queue.into()));
    limits.push(("max_subscriptions".into(), l.max_subscriptions.into()));
    limits.push(("message_region".into(), ByteSize(l.message_region).to_string().into()));
    ContainerOut {
        image,
        digest: digest_of(c),
        args: c.args.iter().map(|a| esc(a)).collect(),
        env: Ordered(c.env.iter().map(|(k, v)| (k.clone(), esc(v))).collect()),
        capabilities: c.capabilities.iter().map(|c| c.as_str()).collect(),
        mounts: c
            .mounts
            .iter()
            .map(|m| MountOut {
                source: path(&m.host),
                target: esc(&m.guest),
                read_only: m.read_only,
            })
            .collect(),
        depends_on: Ordered(depends_on),
        restart,
        restart_delay: duration(c.restart_delay),
        stop_timeout: duration(c.stop_timeout),
        limits: Ordered(limits),
        replicas: 1,
        publish: c.publish.as_ref().map(|v| v.iter().map(|s| esc(s)).collect()),
        subscribe: c.subscribe.as_ref().map(|v| v.iter().map(|s| esc(s)).collect()),
        sensors: c.sensors.iter().map(|s| esc(s)).collect(),
        gpio: c.gpio.iter().map(|s| esc(s)).collect(),
    }
}

fn sensor(s: &SensorSpec) -> SensorOut {
    let channel_types = s.channel_types.iter().map(|t| t.name().to_string()).collect();
    match &s.kind {
        SensorKind::Rng { min, max } => SensorOut {
            kind: "rng",
            channels: Some(s.channels),
            range: Some([*min, *max]),
            path: None,
            scale: None,
            channel_types,
        },
        SensorKind::File { path: p, scale } | SensorKind::Hwmon { path: p, scale } => SensorOut {
            kind: if matches!(s.kind, SensorKind::File { .. }) {
                "file"
            } else {
                "hwmon"
            },
            channels: None,
            range: None,
            path: Some(path(p)),
            scale: Some(*scale),
            channel_types,
        },
    }
}

fn gpio(g: &GpioLineSpec) -> GpioOut {
    let (kind, chip, line) = match &g.backend {
        GpioBackend::Sim => ("sim", None, None),
        GpioBackend::Cdev { chip, line } => {
            let line = match line {
                GpioLineId::Offset(n) => serde_json::Value::from(*n),
                GpioLineId::Name(name) => esc(name).into(),
            };
            ("cdev", Some(esc(chip)), Some(line))
        }
    };
    let input = g.direction == GpioDirection::Input;
    GpioOut {
        kind,
        chip,
        line,
        direction: if input { "input" } else { "output" },
        active_low: g.active_low,
        bias: serde_json::to_value(g.bias).unwrap_or_default(),
        debounce: g.debounce.filter(|_| input).map(duration),
        edge: input.then(|| serde_json::to_value(g.edge).unwrap_or_default()),
        initial: (!input).then_some(u8::from(g.initial)),
        port: g.port,
        pin: g.pin,
    }
}

fn bridge(b: &BridgeSpec, board: &str, project: &str) -> BridgeOut {
    let (mut username, mut username_env) = (None, None);
    match &b.username {
        Some(SecretRef::Plain(s)) => username = Some(esc(s)),
        Some(SecretRef::Env(v)) => username_env = Some(esc(v)),
        Some(SecretRef::File(_)) | None => {}
    }
    let (mut password_env, mut password_file) = (None, None);
    match &b.password {
        Some(SecretRef::Env(v)) => password_env = Some(esc(v)),
        Some(SecretRef::File(p)) => password_file = Some(path(p)),
        Some(SecretRef::Plain(_)) | None => {}
    }
    let mut tls = BTreeMap::new();
    for (key, file) in [
        ("ca_file", &b.tls.ca_file),
        ("cert_file", &b.tls.cert_file),
        ("key_file", &b.tls.key_file),
    ] {
        if let Some(file) = file {
            tls.insert(key, path(file));
        }
    }
    let default_id = crate::bridges::default_client_id(board, project, &b.name);
    BridgeOut {
        url: esc(&b.url),
        client_id: (b.client_id != default_id).then(|| esc(&b.client_id)),
        username,
        username_env,
        password_env,
        password_file,
        tls,
        keep_alive: duration(b.keep_alive),
        session_expiry: duration(b.session_expiry),
        queue: b.queue,
        flush_timeout: duration(b.flush_timeout),
        reconnect_max: duration(b.reconnect_max),
        export: b
            .export
            .iter()
            .map(|r| serde_json::json!({"local": esc(&r.local), "remote": esc(&r.remote), "qos": r.qos}))
            .collect(),
        import: b
            .import
            .iter()
            .map(|r| serde_json::json!({"remote": esc(&r.remote), "local": esc(&r.local), "qos": r.qos}))
            .collect(),
    }
}
