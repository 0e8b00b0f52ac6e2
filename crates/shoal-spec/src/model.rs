//! The validated stack: what the rest of shoal consumes. Everything here has been checked;
//! paths are absolute, defaults are filled, replicas are expanded.
//!
//! These types are the contract between `spec` and the runtime side. They carry no wasmtime
//! or tokio types so that `spec` stays usable by tools that never run a guest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use crate::names::{ContainerName, ProjectName};

/// A place in a source file, 1-based, for messages that point at what to change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// The whole stack after validation.
#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    /// Project name (`name:` or the compose file's folder name).
    pub name: ProjectName,
    /// Absolute path of the compose file.
    pub file: PathBuf,
    /// Folder relative paths are resolved against.
    pub dir: PathBuf,
    /// Containers in start order (dependencies first), replicas expanded.
    pub containers: Vec<ContainerSpec>,
    /// Declared host sensors, by name.
    pub sensors: BTreeMap<String, SensorSpec>,
    /// Declared GPIO lines (`gpio:`), by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gpio: BTreeMap<String, GpioLineSpec>,
    /// `watch: true`: restart containers whose image file changes on disk (development aid).
    pub watch: bool,
    /// MQTT bridges to external brokers, in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bridges: Vec<BridgeSpec>,
    /// Absolute paths of the env files the containers read (`up --watch` watches them).
    #[serde(skip)]
    pub env_files: Vec<PathBuf>,
    /// `metrics.listen`: where `up` serves Prometheus metrics (`--metrics` wins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// compose: the files, env files, project name and profiles this stack was loaded
    /// from, so a reload (and `up -d` on a running project) reads the same.
    #[serde(skip)]
    pub compose: crate::source::ComposeFiles,
}

/// Where a container's image comes from. Serialized as the path or `sha256:<hex>` string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageRef {
    /// A `.wasm` file (absolute path).
    Path(PathBuf),
    /// `sha256:<64 hex>` in the image store.
    Digest(crate::ImageDigest),
    // registry: an OCI registry reference, resolved against the pulled images once, when
    // the file is loaded (see `reference`).
    /// `registry.example/org/x:1` as written, pinned to what the store pulled for it.
    Registry {
        reference: String,
        resolved: crate::ResolvedImage,
    },
}

impl ImageRef {
    /// The digest of the image in the local store, for the variants that live there.
    pub fn store_digest(&self) -> Option<&crate::ImageDigest> {
        match self {
            ImageRef::Path(_) => None,
            ImageRef::Digest(digest) => Some(digest),
            ImageRef::Registry { resolved, .. } => Some(&resolved.digest),
        }
    }

    /// The reference pinned to its registry digest (`ref@sha256:...`), as compose's
    /// `config --resolve-image-digests` prints it; other variants as they serialize.
    pub fn pinned(&self) -> String {
        match self {
            ImageRef::Path(path) => path.display().to_string(),
            ImageRef::Digest(digest) => digest.to_string(),
            ImageRef::Registry { reference, resolved } => {
                let name = reference.split_once('@').map_or(reference.as_str(), |(name, _)| name);
                format!("{name}@{}", resolved.pinned)
            }
        }
    }
}

/// One container (one replica) to run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerSpec {
    /// Unique container name (`svc`, or `svc-1`..`svc-N` for replicas).
    pub name: ContainerName,
    /// The `containers:` key this came from.
    pub service: ContainerName,
    pub image: ImageRef,
    /// Where `image:` is written, for errors found later (missing digest, invalid wasm).
    #[serde(skip)]
    pub image_location: Location,
    /// Where the container's key is written.
    #[serde(skip)]
    pub location: Location,
    pub args: Vec<String>,
    /// Environment, `env_file` first, then `env` (later wins), in a stable order.
    #[serde(serialize_with = "serialize_env")]
    pub env: Vec<(String, String)>,
    pub capabilities: BTreeSet<Capability>,
    /// Where `capabilities:` is written (or the container key when absent).
    #[serde(skip)]
    pub capabilities_location: Location,
    pub mounts: Vec<Mount>,
    pub depends_on: Vec<Dependency>,
    pub restart: RestartPolicy,
    #[serde(with = "humantime_serde_compat")]
    pub restart_delay: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub stop_timeout: Duration,
    pub limits: Limits,
    /// Topic prefixes this container may publish under; `None` = unrestricted.
    pub publish: Option<Vec<String>>,
    /// Topic prefixes this container may subscribe to; `None` = unrestricted.
    pub subscribe: Option<Vec<String>>,
    /// Declared sensors (top-level `sensors:` names) this container may open.
    pub sensors: Vec<String>,
    /// Declared GPIO lines (top-level `gpio:` names) this container may use, in list order
    /// (a line's default SDK pin number is its index here).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpio: Vec<String>,
    /// Cores the container is pinned to (`cpus:`); `None`: any core. Checked against the
    /// machine at `up`, where the spec crate's missing machine knowledge is available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<CoreSet>,
    /// Where `cpus:` is written (the container key when absent), for that check's error.
    #[serde(skip)]
    pub cpus_location: Location,
}

/// A set of core numbers (`cpus: [0, 2]` or `cpus: "0-1"`), as Linux numbers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoreSet(pub BTreeSet<u16>);

impl CoreSet {
    /// The highest core number accepted: Linux's `CPU_SETSIZE` is 1024.
    pub const MAX_CORE: u16 = 1023;
}

impl std::fmt::Display for CoreSet {
    /// `0-1,3`: the form Linux uses in `/sys/devices/system/cpu/online`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        let mut iter = self.0.iter().copied().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

pub use shoal_abi::Capability;

/// A host folder visible to the guest (WASI preopen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Absolute, existing host folder.
    pub host: PathBuf,
    /// Absolute guest path, e.g. `/shared`.
    pub guest: String,
    pub read_only: bool,
    /// `special_files: true`: the guest may open FIFOs, sockets and device files found in
    /// this mount. Off by default: opening a FIFO nobody writes blocks forever, and a device
    /// file is a door to hardware, so both must be asked for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub special_files: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyCondition {
    /// Start once the dependency has started.
    ServiceStarted,
    /// Start once the dependency has exited with code 0.
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    /// Container name (a replicated service expands to each replica).
    pub name: ContainerName,
    pub condition: DependencyCondition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum RestartPolicy {
    No,
    OnFailure { max_retries: Option<u32> },
    Always,
}

/// Per-container resource limits (`limits:`). Every field has a default, so a container
/// without `limits:` is still bounded; see [`Limits::default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Cap on linear memory plus tables, in bytes (`None`: only the module's own maximum;
    /// the file always yields `Some`, default [`Limits::DEFAULT_MEMORY`]).
    pub memory: Option<u64>,
    /// Share of one core the container may use (`None`: no cap; it still yields to its
    /// neighbours at every epoch tick). 1 or more is the same as no cap.
    pub cpu: Option<CpuShare>,
    /// Timers the container may hold at once.
    pub max_timers: u32,
    /// Messages queued for the container before the oldest is dropped.
    pub queue: u32,
    /// Topic prefixes the container may subscribe to.
    pub max_subscriptions: u32,
    /// Bytes of guest memory the host may add to hold copies of received messages.
    pub message_region: u64,
    /// Files and folders the container may hold open at once (`limits.max_open_files`).
    pub max_open_files: u32,
}

impl Limits {
    /// 64 MiB: sixteen times an Ocre-SDK guest's maximum (4 MiB), far above what the
    /// example guests use (1-2 MiB), and small enough that one runaway guest cannot take a
    /// Raspberry Pi's 903 MB.
    pub const DEFAULT_MEMORY: u64 = 64 << 20;
    /// Enough for any real guest; the reference runtime had 5 for the whole process.
    pub const DEFAULT_MAX_TIMERS: u32 = 64;
    /// The broker's default mailbox bound.
    pub const DEFAULT_QUEUE: u32 = 256;
    /// Every publish scans the subscribers' prefixes, so one container subscribing to
    /// millions of prefixes would slow everyone's publishes; 256 is far more than real
    /// guests use (the reference runtime had 32 for the whole process).
    pub const DEFAULT_MAX_SUBSCRIPTIONS: u32 = 256;
    /// Room for four largest messages (64 KiB payload, 1 KiB topic and content type) the
    /// guest has not freed yet: five 64 KiB pages.
    pub const DEFAULT_MESSAGE_REGION: u64 = 5 << 16;
    /// Upper bound of the count limits (`max_timers`, `queue`, `max_subscriptions`).
    pub const MAX_COUNT: u32 = 65_536;
    /// Each open file of a guest is a descriptor of the shoal process, shared with every
    /// neighbour and the control socket; 256 is far more than a real guest holds.
    pub const DEFAULT_MAX_OPEN_FILES: u32 = 256;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: Some(Self::DEFAULT_MEMORY),
            cpu: None,
            max_timers: Self::DEFAULT_MAX_TIMERS,
            queue: Self::DEFAULT_QUEUE,
            max_subscriptions: Self::DEFAULT_MAX_SUBSCRIPTIONS,
            message_region: Self::DEFAULT_MESSAGE_REGION,
            max_open_files: Self::DEFAULT_MAX_OPEN_FILES,
        }
    }
}

/// A share of one core in thousandths (`250` = `0.25` = `25%`), between
/// [`CpuShare::MIN_MILLI`] and [`CpuShare::MAX_MILLI`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CpuShare(u32);

impl CpuShare {
    /// 1%: below that a guest runs one 10 ms tick per second or less.
    pub const MIN_MILLI: u32 = 10;
    /// 1024 cores, as many as Linux can name. A guest runs on one thread, so it can never
    /// use more than one core: any share of 1 or more means "never throttled" (what a
    /// compose user means by `cpus: 1.5`), see [`CpuShare::is_unthrottled`].
    pub const MAX_MILLI: u32 = 1024 * 1000;
    /// One whole core.
    pub const CORE_MILLI: u32 = 1000;

    /// `None` outside `MIN_MILLI..=MAX_MILLI`.
    pub fn from_milli(milli: u32) -> Option<Self> {
        (Self::MIN_MILLI..=Self::MAX_MILLI)
            .contains(&milli)
            .then_some(CpuShare(milli))
    }

    pub fn milli(self) -> u32 {
        self.0
    }

    /// A share of one core or more: the guest is never held off (it still yields at
    /// every epoch tick, and a single guest can use at most one core).
    pub fn is_unthrottled(self) -> bool {
        self.0 >= Self::CORE_MILLI
    }

    /// The share as a fraction of a core (`0.25`).
    pub fn fraction(self) -> f64 {
        f64::from(self.0) / 1000.0
    }
}

impl Serialize for CpuShare {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.fraction())
    }
}

/// A declared host sensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorSpec {
    pub name: String,
    pub kind: SensorKind,
    pub channels: u32,
    /// What each channel measures (`channels` entries; see [`crate::channel_type`]).
    pub channel_types: Vec<crate::ChannelType>,
}

impl SensorSpec {
    /// The type code `ocre_sensors_get_channel_type` reports for channel `index`.
    pub fn channel_type_code(&self, index: u32) -> Option<i32> {
        self.channel_types.get(index as usize).map(|t| t.code(index))
    }

    /// The channel `ocre_sensors_read(sensor, arg)` reads. The SDK passes a channel *type*
    /// (what `get_channel_type` returned), so a channel whose type code is `arg` wins; a
    /// number that is no channel's type is taken as a channel index, which keeps guests
    /// that pass an index (older shoal guests, the shoal Rust SDK) working. The decoder
    /// keeps type codes distinct within a sensor, so the lookup is never ambiguous.
    pub fn channel_for(&self, arg: i32) -> Option<u32> {
        let by_type = (0..self.channels).find(|&i| self.channel_type_code(i) == Some(arg));
        by_type.or_else(|| u32::try_from(arg).ok().filter(|&i| i < self.channels))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SensorKind {
    /// Uniform random values in `[min, max]`.
    Rng { min: f64, max: f64 },
    /// A number read from a file, multiplied by `scale`.
    File { path: PathBuf, scale: f64 },
    /// A hwmon input file (same reading rule as `File`).
    Hwmon { path: PathBuf, scale: f64 },
}

/// A declared GPIO line (top-level `gpio:`), requested when the stack starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpioLineSpec {
    pub name: String,
    pub backend: GpioBackend,
    pub direction: GpioDirection,
    /// Values are logical: with `active_low` a physical low reads as 1.
    pub active_low: bool,
    pub bias: GpioBias,
    /// Kernel debounce period (inputs only).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub debounce: Option<Duration>,
    /// Which edges become events (inputs; `None` for outputs).
    pub edge: GpioEdge,
    /// Value an output starts with.
    pub initial: bool,
    /// The SDK `(port, pin)` this line answers to; `None`: port 0, and the pin is the
    /// line's index in each container's `gpio:` list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<u32>,
    /// Where the line's key is written, for errors found when the stack starts.
    #[serde(skip)]
    pub location: Location,
}

/// Where a line's value lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum GpioBackend {
    /// A simulated line in shoal's memory, driven from outside with `shoal gpio set`.
    Sim,
    /// A line of the kernel's GPIO character device (uAPI v2).
    Cdev {
        /// A device path (`/dev/gpiochip0`) or a chip label (`gpio-sim.0-node0`).
        chip: String,
        line: GpioLineId,
    },
}

/// A line of a chip: its offset or the name the kernel gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum GpioLineId {
    Offset(u32),
    Name(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GpioDirection {
    Input,
    Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GpioBias {
    AsIs,
    PullUp,
    PullDown,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GpioEdge {
    None,
    Rising,
    Falling,
    Both,
}

impl GpioEdge {
    /// Whether a change to `value` (the new logical value) is an edge this setting reports.
    pub fn reports(self, value: bool) -> bool {
        match self {
            GpioEdge::None => false,
            GpioEdge::Rising => value,
            GpioEdge::Falling => !value,
            GpioEdge::Both => true,
        }
    }
}

mod opt_duration {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}

/// One `bridges:` entry: the stack's topics to and from an external MQTT broker.
///
/// Credentials are kept as references (an environment variable's name, a file's path) and
/// read only when the bridge connects, so a printed or serialized stack never holds a secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BridgeSpec {
    /// The key under `bridges:`; logs say `bridge:NAME`.
    pub name: String,
    /// The URL as written (`mqtt://host:port` or `mqtts://host:port`).
    pub url: String,
    /// The broker's host name or address (without IPv6 brackets).
    #[serde(skip)]
    pub host: String,
    #[serde(skip)]
    pub port: u16,
    /// `mqtts://`: TLS (server certificate checked against `tls.ca_file` or the system roots).
    #[serde(skip)]
    pub use_tls: bool,
    /// MQTT client id; default unique per board ([`crate::bridges::default_client_id`]).
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<SecretRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    #[serde(skip_serializing_if = "BridgeTls::is_empty")]
    pub tls: BridgeTls,
    #[serde(with = "humantime_serde_compat")]
    pub keep_alive: Duration,
    /// How long the broker keeps this client's session (its subscriptions and the QoS 1
    /// messages queued for it) while the link is down. Zero: a clean session every time.
    #[serde(with = "humantime_serde_compat")]
    pub session_expiry: Duration,
    /// Exported messages held while the link is down (or faster than it); the oldest is
    /// dropped and counted when full.
    pub queue: usize,
    /// How long a stopping stack waits for the queue to drain before disconnecting.
    #[serde(with = "humantime_serde_compat")]
    pub flush_timeout: Duration,
    /// Longest wait between two reconnection attempts (the wait doubles from 250 ms).
    #[serde(with = "humantime_serde_compat")]
    pub reconnect_max: Duration,
    pub export: Vec<ExportRule>,
    pub import: Vec<ImportRule>,
    /// Where the bridge's key is written.
    #[serde(skip)]
    pub location: Location,
}

/// A credential by reference. Serialized as `{env: NAME}`, `{file: PATH}` or the plain
/// text of a `username:` (user names are not secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretRef {
    /// The value of this environment variable when the bridge connects.
    Env(String),
    /// The contents of this file (absolute path; trailing newline removed) when it connects.
    File(PathBuf),
    /// Written in the file (only allowed for user names).
    #[serde(untagged)]
    Plain(String),
}

/// TLS files for `mqtts://`, all absolute paths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BridgeTls {
    /// PEM CA certificate(s) to check the broker's certificate; default: the system roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for brokers that require client certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

impl BridgeTls {
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.cert_file.is_none() && self.key_file.is_none()
    }
}

/// Local topics under `local` are published on the broker under `remote` (the prefix
/// replaced, the rest of the topic kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportRule {
    pub local: String,
    pub remote: String,
    pub qos: u8,
}

/// Broker messages matching the MQTT filter `remote` are published locally: the part of the
/// topic before the filter's first wildcard is replaced by `local`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRule {
    pub remote: String,
    pub local: String,
    pub qos: u8,
}

mod humantime_serde_compat {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

impl Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ImageRef::Path(path) => path.serialize(s),
            ImageRef::Digest(digest) => digest.serialize(s),
            ImageRef::Registry { reference, .. } => reference.serialize(s), // registry
        }
    }
}

/// The environment as a `KEY: value` map, in its own order, as a user would write it.
fn serialize_env<S: serde::Serializer>(env: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(env.len()))?;
    for (key, value) in env {
        map.serialize_entry(key, value)?;
    }
    map.end()
}
