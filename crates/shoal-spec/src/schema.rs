//! The FILE format as Rust types, only to generate the JSON schema (`schemas/shoal.schema.json`)
//! that editors use for completion and checks.
//!
//! The decoder does not deserialize into these types (serde stops at the first error; we
//! want all of them), so the two must be kept in step by hand. The `KEYS` lists next to each
//! struct are what the decoder accepts, and a unit test checks that each struct's schema
//! properties are exactly its `KEYS`, so adding a key in one place and not the other fails.

use std::collections::BTreeMap;

use schemars::JsonSchema;

/// A shoal compose file: a stack of WebAssembly containers run in one process.
#[derive(JsonSchema)]
#[schemars(title = "shoal compose file", deny_unknown_fields)]
#[schemars(extend("patternProperties" = {"^x-": {"description": "Extension field, ignored (a place for YAML anchors)."}}))]
pub struct ComposeFile {
    /// Project name: lowercase letters, digits, `-` and `_`. Default: the compose file's folder name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub name: Option<String>,
    /// The containers to run, by name (`[a-z0-9][a-z0-9_-]*`). Required, not empty.
    pub containers: BTreeMap<String, ContainerFile>,
    /// Host sensors containers may read, by name. A container lists the ones it may open in its own `sensors:`.
    pub sensors: Option<BTreeMap<String, SensorFile>>,
    /// Restart containers whose image file changes on disk (development aid).
    pub watch: Option<bool>,
    /// MQTT bridges to external brokers, by name (`[a-z0-9][a-z0-9_-]*`): which local topics are published on the broker, and which broker topics are delivered to local subscribers.
    pub bridges: Option<BTreeMap<String, BridgeFile>>,
    /// GPIO lines containers may use, by name (`[a-z0-9][a-z0-9_-]*`): simulated, or a line of a kernel GPIO chip. A container lists the ones it may use in its own `gpio:`.
    pub gpio: Option<BTreeMap<String, GpioLineFile>>,
}

impl ComposeFile {
    pub const KEYS: &'static [&'static str] = &["name", "containers", "sensors", "watch", "bridges", "gpio"];
}

/// One MQTT bridge (MQTT 5). Credentials are references only: an inline `password` is refused.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BridgeFile {
    /// Broker URL: `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (TLS, default port 8883).
    #[schemars(regex(pattern = r"^mqtts?://"))]
    pub url: String,
    /// MQTT client id. Default `shoal-<project>-<bridge>`. Two boards on one broker need different ids.
    pub client_id: Option<String>,
    /// User name, written here (not a secret). Or use `username_env`.
    pub username: Option<String>,
    /// Environment variable holding the user name.
    pub username_env: Option<String>,
    /// Environment variable holding the password (read when the bridge connects).
    pub password_env: Option<String>,
    /// File holding the password (relative to the compose file; one trailing newline is ignored).
    pub password_file: Option<String>,
    /// TLS files for `mqtts://`.
    pub tls: Option<BridgeTlsFile>,
    /// Keep-alive interval, from `5s` to `65535s`; default `30s`.
    pub keep_alive: Option<String>,
    /// How long the broker keeps this bridge's session (subscriptions, QoS 1 messages queued for it) while disconnected, e.g. `1h` (default). `0s`: a clean session on every connect.
    pub session_expiry: Option<String>,
    /// Exported messages held while the link is down; when full the oldest is dropped and counted. Default 1000.
    #[schemars(range(min = 1, max = 1000000))]
    pub queue: Option<u32>,
    /// How long a stopping stack waits for queued exports to reach the broker, e.g. `5s` (default).
    pub flush_timeout: Option<String>,
    /// Longest wait between reconnection attempts, e.g. `30s` (default). The wait starts at 250ms and doubles.
    pub reconnect_max: Option<String>,
    /// Local topics to publish on the broker. A bare string is `{local: STRING}`.
    pub export: Option<Vec<ExportFile>>,
    /// Broker topics to deliver to local subscribers. A bare string is `{remote: STRING}`.
    pub import: Option<Vec<ImportFile>>,
}

impl BridgeFile {
    pub const KEYS: &'static [&'static str] = &[
        "url",
        "client_id",
        "username",
        "username_env",
        "password_env",
        "password_file",
        "tls",
        "keep_alive",
        "session_expiry",
        "queue",
        "flush_timeout",
        "reconnect_max",
        "export",
        "import",
    ];
}

/// An export rule, or a bare local prefix exported under the same name.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ExportFile {
    Short(String),
    Long(ExportRuleFile),
}

/// An import rule, or a bare MQTT filter imported under the same topics.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ImportFile {
    Short(String),
    Long(ImportRuleFile),
}

/// TLS files (PEM), relative to the compose file.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BridgeTlsFile {
    /// CA certificate(s) the broker's certificate must chain to. Default: the system's roots.
    pub ca_file: Option<String>,
    /// Client certificate (chain), for brokers that require one. Needs `key_file`.
    pub cert_file: Option<String>,
    /// Private key of `cert_file`.
    pub key_file: Option<String>,
}

impl BridgeTlsFile {
    pub const KEYS: &'static [&'static str] = &["ca_file", "cert_file", "key_file"];
}

/// Export rule: local topics starting with `local` go to the broker with `local` replaced by `remote`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ExportRuleFile {
    /// Local topic prefix (Ocre prefix match, as in `subscribe`).
    pub local: String,
    /// Broker topic prefix replacing `local` (no `+` or `#`). Default: the same as `local`.
    pub remote: Option<String>,
    /// MQTT QoS: 0 (at most once) or 1 (at least once, the default).
    #[schemars(range(min = 0, max = 1))]
    pub qos: Option<u8>,
}

impl ExportRuleFile {
    pub const KEYS: &'static [&'static str] = &["local", "remote", "qos"];
}

/// Import rule: broker messages matching the MQTT filter `remote` are published locally.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ImportRuleFile {
    /// MQTT topic filter; `+` matches one level, a final `#` any number of levels.
    pub remote: String,
    /// Local topic prefix replacing the part of the topic before the filter's first wildcard. Default: that part itself (topics arrive unchanged).
    pub local: Option<String>,
    /// MQTT QoS of the subscription: 0 or 1 (the default).
    #[schemars(range(min = 0, max = 1))]
    pub qos: Option<u8>,
}

impl ImportRuleFile {
    pub const KEYS: &'static [&'static str] = &["remote", "local", "qos"];
}

/// A scalar written where text is expected; numbers and booleans are taken as written.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ScalarFile {
    String(String),
    Integer(i64),
    Number(f64),
    Boolean(bool),
}

/// One container. Replicas (`replicas: N`) run as `name-1`..`name-N`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(extend("patternProperties" = {"^x-": {"description": "Extension field, ignored (a place for YAML anchors)."}}))]
pub struct ContainerFile {
    /// The WebAssembly module: a `.wasm` path relative to the compose file, or `sha256:<64 hex>` from the image store (`shoal images add FILE`).
    pub image: String,
    /// Command-line arguments passed to the guest (`argv[1..]`).
    pub args: Option<Vec<ScalarFile>>,
    /// Environment variables: a mapping `KEY: value` or a list of `KEY=VALUE`. Overrides `env_file`.
    pub env: Option<EnvFile>,
    /// File(s) of `KEY=VALUE` lines (`#` comments), relative to the compose file. Read before `env`.
    pub env_file: Option<OneOrMany>,
    /// Host APIs the guest may use. `ocre:api` means all of them.
    pub capabilities: Option<Vec<CapabilityFile>>,
    /// Host folders visible to the guest: `host:guest[:ro|:rw]` (Docker's order) or `{source, target, read_only}`.
    pub mounts: Option<Vec<MountFile>>,
    /// Containers to start first: a list of names, or a mapping name -> `{condition}`.
    pub depends_on: Option<DependsOnFile>,
    /// Restart policy: `no` (default), `on-failure`, `on-failure:N` (at most N restarts), `always`.
    #[schemars(regex(pattern = r"^(no|always|on-failure(:[0-9]+)?)$"))]
    pub restart: Option<String>,
    /// Wait before a restart, e.g. `1s`, `250ms`. Default `1s`.
    pub restart_delay: Option<String>,
    /// Grace time between asking a container to stop and killing it, e.g. `10s` (default).
    pub stop_timeout: Option<String>,
    /// Resource limits.
    pub limits: Option<LimitsFile>,
    /// Number of copies to run (default 1). Other containers depending on this one wait for every copy.
    #[schemars(range(min = 1, max = 100000))]
    pub replicas: Option<u32>,
    /// Topic prefixes this container may publish under. Absent: unrestricted.
    pub publish: Option<Vec<String>>,
    /// Topic prefixes this container may subscribe to (prefix match, no MQTT wildcards). Absent: unrestricted.
    pub subscribe: Option<Vec<String>>,
    /// Names of top-level `sensors:` this container may open; needs the `sensors` capability.
    pub sensors: Option<Vec<String>>,
    /// Names of top-level `gpio:` lines this container may use; needs the `gpio` capability. Without `pin:` on the line, the SDK reaches it as port 0, pin = its index in this list.
    pub gpio: Option<Vec<String>>,
}

impl ContainerFile {
    pub const KEYS: &'static [&'static str] = &[
        "image",
        "args",
        "env",
        "env_file",
        "capabilities",
        "mounts",
        "depends_on",
        "restart",
        "restart_delay",
        "stop_timeout",
        "limits",
        "replicas",
        "publish",
        "subscribe",
        "sensors",
        "gpio",
    ];
}

/// `KEY: value` mapping or `KEY=VALUE` list.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum EnvFile {
    Map(BTreeMap<String, ScalarFile>),
    List(Vec<String>),
}

/// One path or a list of paths.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

// The names are `shoal_abi::Capability`'s table written out again, on purpose: each value
// carries a description editors show, and the leaf crate stays free of schemars. The test
// `capability_names_match_the_abi_table` fails when the two lists disagree. (A plain
// comment: a doc comment here would become the schema's description.)
/// A capability name.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub enum CapabilityFile {
    /// Publish and subscribe to topics.
    #[serde(rename = "messaging")]
    Messaging,
    /// One-shot and periodic timers.
    #[serde(rename = "timers")]
    Timers,
    /// Read declared host sensors.
    #[serde(rename = "sensors")]
    Sensors,
    /// Use the GPIO lines listed in the container's `gpio:`.
    #[serde(rename = "gpio")]
    Gpio,
    /// All of the above (the Ocre API).
    #[serde(rename = "ocre:api")]
    OcreApi,
}

/// A mount, short (`host:guest[:ro|:rw]`) or long form.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum MountFile {
    /// `host:guest[:ro|:rw]`, host path first as in Docker.
    Short(String),
    Long(MountLongFile),
}

/// Long-form mount.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct MountLongFile {
    /// Host folder, relative to the compose file. Must exist.
    pub source: String,
    /// Absolute guest path, e.g. `/data`.
    pub target: String,
    /// Mount read-only (default false).
    pub read_only: Option<bool>,
}

impl MountLongFile {
    pub const KEYS: &'static [&'static str] = &["source", "target", "read_only"];
}

/// Dependencies: a list of names, or a mapping name -> condition.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum DependsOnFile {
    List(Vec<String>),
    Map(BTreeMap<String, DependencyFile>),
}

/// One dependency in the long form.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DependencyFile {
    /// When the dependency counts as ready. Default `service_started`.
    pub condition: Option<ConditionFile>,
}

impl DependencyFile {
    pub const KEYS: &'static [&'static str] = &["condition"];
}

/// Dependency condition (Compose's names; shoal has no health checks, so no `service_healthy`).
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ConditionFile {
    /// The dependency has started.
    ServiceStarted,
    /// The dependency has exited with code 0 (an init step).
    ServiceCompletedSuccessfully,
}

/// Resource limits.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LimitsFile {
    /// Cap on linear memory plus tables: bytes, or with a unit (`512KiB`, `1MiB`, `4MB`). From 64KiB (one wasm page) to 4GiB. Growth past it fails as wasm specifies (`memory.grow` returns -1) and is reported. Default `64MiB`.
    pub memory: Option<ScalarFile>,
    /// Share of one core: a fraction (`0.25`) or a percentage (`25%`), from 0.01 to 1. A guest over its share is paused at the next epoch tick (10 ms) until it is back within it. Default: no cap (a busy guest still yields to the others every tick).
    pub cpu: Option<ScalarFile>,
    /// Timers the container may hold at once (1 to 65536); `ocre_timer_create` beyond returns -12. Default 64.
    #[schemars(range(min = 1, max = 65536))]
    pub max_timers: Option<u32>,
    /// Messages queued for the container (1 to 65536); when full the oldest is dropped and counted. Default 256.
    #[schemars(range(min = 1, max = 65536))]
    pub queue: Option<u32>,
    /// Topic prefixes the container may subscribe to (1 to 65536); `ocre_subscribe_message` beyond returns -12. Default 256.
    #[schemars(range(min = 1, max = 65536))]
    pub max_subscriptions: Option<u32>,
}

impl LimitsFile {
    pub const KEYS: &'static [&'static str] = &["memory", "cpu", "max_timers", "queue", "max_subscriptions"];
}

/// A host sensor.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SensorFile {
    /// Where readings come from.
    pub kind: SensorKindFile,
    /// Number of channels (`rng` only; default 1).
    #[schemars(range(min = 1, max = 1024))]
    pub channels: Option<u32>,
    /// `[min, max]` of generated values (`rng` only; default `[0, 100]`).
    pub range: Option<[f64; 2]>,
    /// File holding one number (`file`/`hwmon` only), absolute or relative to the compose file.
    pub path: Option<String>,
    /// Factor applied to the number read (`file`/`hwmon` only; default 1.0).
    pub scale: Option<f64>,
}

impl SensorFile {
    pub const KEYS: &'static [&'static str] = &["kind", "channels", "range", "path", "scale"];
}

/// Sensor kind.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SensorKindFile {
    /// Uniform random values (for demos and tests).
    Rng,
    /// A number read from a file.
    File,
    /// A Linux hwmon input file.
    Hwmon,
}

/// A GPIO line.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GpioLineFile {
    /// `cdev` (default): a line of the kernel's GPIO character device; `sim`: a simulated line in shoal's memory, set from outside with `shoal gpio set`.
    pub kind: Option<GpioKindFile>,
    /// `cdev` only: the chip's device path (`/dev/gpiochip0`) or its label (`gpio-sim.0-node0`).
    pub chip: Option<String>,
    /// `cdev` only: the line's offset on the chip, or the kernel's name for it.
    pub line: Option<GpioLineIdFile>,
    /// `input` or `output`. Required.
    pub direction: GpioDirectionFile,
    /// Values are logical: with `active_low: true` a physical low reads as 1. Default false.
    pub active_low: Option<bool>,
    /// `as-is` (default), `pull-up`, `pull-down` or `disabled`.
    pub bias: Option<GpioBiasFile>,
    /// Inputs only: debounce period, e.g. `5ms`. Default none.
    pub debounce: Option<String>,
    /// Inputs only: edges that become events, `both` (default), `rising`, `falling` or `none`.
    pub edge: Option<GpioEdgeFile>,
    /// Outputs only: starting value, 0 (default) or 1.
    #[schemars(range(min = 0, max = 1))]
    pub initial: Option<u8>,
    /// The SDK port number this line answers to. Default 0.
    pub port: Option<u32>,
    /// The SDK pin number this line answers to. Default: its index in the container's `gpio:` list.
    pub pin: Option<u32>,
}

impl GpioLineFile {
    pub const KEYS: &'static [&'static str] = &[
        "kind",
        "chip",
        "line",
        "direction",
        "active_low",
        "bias",
        "debounce",
        "edge",
        "initial",
        "port",
        "pin",
    ];
}

/// GPIO line backend.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum GpioKindFile {
    /// The kernel's GPIO character device (uAPI v2).
    Cdev,
    /// A simulated line (laptops, tests, examples).
    Sim,
}

/// A line offset or a kernel line name.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum GpioLineIdFile {
    Offset(u32),
    Name(String),
}

/// GPIO direction.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum GpioDirectionFile {
    Input,
    Output,
}

/// GPIO bias.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum GpioBiasFile {
    AsIs,
    PullUp,
    PullDown,
    Disabled,
}

/// GPIO edge detection.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum GpioEdgeFile {
    Both,
    Rising,
    Falling,
    None,
}

/// JSON schema of the compose file, generated from the types above.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(ComposeFile);
    schema.to_value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const SCHEMA_PATH: &str = "schemas/shoal.schema.json";

    fn rendered() -> String {
        let mut s = serde_json::to_string_pretty(&json_schema()).unwrap();
        s.push('\n');
        s
    }

    /// The committed schema must match the types. Regenerate with
    /// `SHOAL_UPDATE_SCHEMA=1 cargo test -p shoal-spec schema`.
    #[test]
    fn schema_file_is_up_to_date() {
        crate::tests::at_repo_root();
        let want = rendered();
        if std::env::var_os("SHOAL_UPDATE_SCHEMA").is_some_and(|v| v == "1") {
            std::fs::create_dir_all("schemas").unwrap();
            std::fs::write(SCHEMA_PATH, &want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
        assert!(
            have == want,
            "{SCHEMA_PATH} is out of date with the types in crates/shoal-spec/src/schema.rs; \
             regenerate it with `SHOAL_UPDATE_SCHEMA=1 cargo test -p shoal-spec schema`"
        );
    }

    fn props(schema: &serde_json::Value, def: Option<&str>) -> BTreeSet<String> {
        let obj = match def {
            None => schema,
            Some(d) => &schema["$defs"][d],
        };
        obj["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no properties for {def:?}"))
            .keys()
            .cloned()
            .collect()
    }

    fn keys(k: &[&str]) -> BTreeSet<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    /// The decoder's known keys and the schema's properties come from the same lists.
    #[test]
    fn schema_properties_match_known_keys() {
        let s = json_schema();
        assert_eq!(props(&s, None), keys(ComposeFile::KEYS));
        assert_eq!(props(&s, Some("ContainerFile")), keys(ContainerFile::KEYS));
        assert_eq!(props(&s, Some("MountLongFile")), keys(MountLongFile::KEYS));
        assert_eq!(props(&s, Some("DependencyFile")), keys(DependencyFile::KEYS));
        assert_eq!(props(&s, Some("LimitsFile")), keys(LimitsFile::KEYS));
        assert_eq!(props(&s, Some("SensorFile")), keys(SensorFile::KEYS));
        assert_eq!(props(&s, Some("GpioLineFile")), keys(GpioLineFile::KEYS));
        assert_eq!(props(&s, Some("BridgeFile")), keys(BridgeFile::KEYS));
        assert_eq!(props(&s, Some("BridgeTlsFile")), keys(BridgeTlsFile::KEYS));
        assert_eq!(props(&s, Some("ExportRuleFile")), keys(ExportRuleFile::KEYS));
        assert_eq!(props(&s, Some("ImportRuleFile")), keys(ImportRuleFile::KEYS));
    }

    /// The schema's capability names are exactly the ones `capabilities:` accepts.
    #[test]
    fn capability_names_match_the_abi_table() {
        let s = json_schema();
        let values: BTreeSet<String> = s["$defs"]["CapabilityFile"]["oneOf"]
            .as_array()
            .expect("CapabilityFile is a oneOf of constants")
            .iter()
            .map(|v| v["const"].as_str().expect("each capability is a constant").to_string())
            .collect();
        let table: BTreeSet<String> = shoal_abi::Capability::names().map(str::to_string).collect();
        assert_eq!(values, table);
    }

    #[test]
    fn schema_has_descriptions() {
        let s = json_schema();
        assert!(s["$defs"]["ContainerFile"]["properties"]["image"]["description"]
            .as_str()
            .unwrap()
            .contains("sha256"));
    }
}
