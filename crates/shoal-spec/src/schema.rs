//! The FILE format as Rust types, only to generate the JSON schema (`schemas/shoal.schema.json`)
//! that editors use for completion and checks.
//!
//! The decoder does not deserialize into these types (serde stops at the first error; we
//! want all of them), so the two must be kept in step by hand. Each section's types live
//! beside its decoder (`decode/limits.rs` holds `LimitsFile`, ...), so a new key is written
//! in one file next to the code that reads it; this module gathers them and holds the
//! root. The `KEYS` list of each struct is what the decoder accepts, and a unit test
//! checks that each struct's schema properties are exactly its `KEYS`, so adding a key in
//! one place and not the other fails.

use std::collections::BTreeMap;

pub use crate::bridges::decode::{BridgeFile, BridgeTlsFile};
pub use crate::bridges::rules::{ExportFile, ExportRuleFile, ImportFile, ImportRuleFile};
pub use crate::decode::depends_on::{ConditionFile, DependencyFile, DependsOnFile};
pub use crate::decode::gpio::{
    GpioBiasFile, GpioDirectionFile, GpioEdgeFile, GpioKindFile, GpioLineFile, GpioLineIdFile,
};
pub use crate::decode::limits::LimitsFile;
pub use crate::decode::metrics::MetricsFile;
pub use crate::decode::mounts::{MountFile, MountLongFile};
pub use crate::decode::sensors::{ChannelTypeFile, SensorFile, SensorKindFile};
use schemars::JsonSchema;

/// A shoal compose file: a stack of WebAssembly containers run in one process.
#[derive(JsonSchema)]
#[schemars(title = "shoal compose file", deny_unknown_fields)]
#[schemars(extend("patternProperties" = {"^x-": {"description": "Extension field, ignored (a place for YAML anchors)."}}))]
pub struct ComposeFile {
    /// Project name: lowercase letters, digits, `-` and `_`, at most 63 characters. Default: the compose file's folder name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"), length(max = 63))]
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
    /// Serve Prometheus metrics (`shoal up --metrics ADDR` does the same and wins).
    pub metrics: Option<MetricsFile>,
}

impl ComposeFile {
    pub const KEYS: &'static [&'static str] = &["name", "containers", "sensors", "watch", "bridges", "gpio", "metrics"];
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
    /// The WebAssembly module: a `.wasm` path relative to the compose file, `sha256:<64 hex>` from the image store (`shoal images add FILE`), or a registry reference pulled with `shoal images pull` (`registry.example/org/app:1`).
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
    /// Profiles this container belongs to: it runs only when one is enabled (`--profile NAME` or `SHOAL_PROFILES`). Without it, it always runs.
    pub profiles: Option<Vec<String>>,
    /// Cores to pin this container to: a core number (`2`), a list (`[0, 2]`) or a Linux cpu list (`"0-1,3"`). The container then runs on an executor thread allowed only on those cores. Checked against the machine at `up`. Not a CPU share: for that write `limits.cpu`.
    pub cpus: Option<crate::decode::cpus::CpusFile>,
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
        "profiles",
        "cpus",
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

/// JSON schema of the compose file, generated from the types above, then typed further
/// by [`refine`].
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(ComposeFile);
    let mut value = schema.to_value();
    refine(&mut value);
    value
}

/// The schema's identifier (`shoal schema` prints it; editors cache by it).
pub const SCHEMA_ID: &str = "urn:shoal:compose-file:1";

/// What `parse_duration` takes (humantime): one or more `<number><unit>`, e.g. `1m 30s`.
pub const DURATION_PATTERN: &str = r"^\s*([0-9]+\s*(nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y)\s*)+$";
/// What `parse_memory` takes: bytes, or a number with `k`/`m`/`g`, `KiB`.., `KB`.. (any case).
pub const SIZE_PATTERN: &str = r"^\s*[0-9]+(\.[0-9]+)?\s*([bB]|[kKmMgG]([iI]?[bB])?)?\s*$";

/// Fields whose text is a duration: (definition, property). A test checks each exists, so
/// a renamed key fails here rather than silently losing its type.
const DURATION_FIELDS: &[(&str, &str)] = &[
    ("ContainerFile", "restart_delay"),
    ("ContainerFile", "stop_timeout"),
    ("GpioLineFile", "debounce"),
    ("BridgeFile", "keep_alive"),
    ("BridgeFile", "session_expiry"),
    ("BridgeFile", "flush_timeout"),
    ("BridgeFile", "reconnect_max"),
];
/// Fields whose value is a size (a byte count or a text with a unit).
const SIZE_FIELDS: &[(&str, &str)] = &[("LimitsFile", "memory"), ("LimitsFile", "message_region")];

/// Type durations and sizes with patterns, accept `${VAR}` interpolation wherever a pattern
/// applies (the file is interpolated before it is decoded, so `${MQTT_URL:-mqtt://...}` is
/// valid where a URL is expected), and set `$id`.
fn refine(schema: &mut serde_json::Value) {
    use serde_json::json;
    for (def, prop) in DURATION_FIELDS {
        if let Some(field) = schema["$defs"][def]["properties"].get_mut(*prop) {
            field["pattern"] = json!(DURATION_PATTERN);
        }
    }
    for (def, prop) in SIZE_FIELDS {
        if let Some(field) = schema["$defs"][def]["properties"].get_mut(*prop) {
            let description = field.get("description").cloned().unwrap_or(json!(""));
            *field = json!({
                "description": description,
                "anyOf": [
                    {"type": "integer", "minimum": 0},
                    {"type": "string", "pattern": SIZE_PATTERN},
                    {"type": "null"}
                ]
            });
        }
    }
    allow_interpolation(schema);
    if let Some(root) = schema.as_object_mut() {
        root.insert("$id".to_owned(), json!(SCHEMA_ID));
    }
}

/// Every `pattern` also matches a text holding `${`: what the variable expands to is
/// checked by shoal when it loads the file, not by an editor that cannot know it.
fn allow_interpolation(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(pattern)) = map.get_mut("pattern") {
                *pattern = format!("(?:{pattern})|\\$\\{{");
            }
            for (key, child) in map.iter_mut() {
                if key != "pattern" {
                    allow_interpolation(child);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(allow_interpolation),
        _ => {}
    }
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
        let have = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
        if crate::golden::update_requested("SHOAL_UPDATE_SCHEMA") {
            let rewritten = usize::from(have != want);
            if rewritten == 1 {
                std::fs::create_dir_all("schemas").unwrap();
                std::fs::write(SCHEMA_PATH, &want).unwrap();
            }
            crate::golden::updated("SHOAL_UPDATE_SCHEMA", rewritten, 1);
        }
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
        assert_eq!(props(&s, Some("MetricsFile")), keys(MetricsFile::KEYS));
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

    /// The schema's channel type names are exactly the ones `channel_types:` accepts.
    #[test]
    fn channel_type_names_match_the_table() {
        let s = json_schema();
        let def = &s["$defs"]["ChannelTypeFile"];
        let values: BTreeSet<String> = match def["enum"].as_array() {
            Some(list) => list.iter().filter_map(|v| v.as_str()).map(str::to_string).collect(),
            None => def["oneOf"]
                .as_array()
                .expect("ChannelTypeFile is an enum of strings")
                .iter()
                .filter_map(|v| v["const"].as_str())
                .map(str::to_string)
                .collect(),
        };
        assert_eq!(values, keys(&crate::ChannelType::NAMES));
    }

    /// Every typed field still exists (a renamed key must not silently lose its type).
    #[test]
    fn duration_and_size_fields_exist() {
        let s = json_schema();
        for (def, prop) in DURATION_FIELDS.iter().chain(SIZE_FIELDS) {
            let field = &s["$defs"][def]["properties"][prop];
            assert!(field.is_object(), "{def}.{prop} is not in the schema");
            assert!(field.to_string().contains(r#"|\\$\\{"#), "{def}.{prop}: {field}");
        }
        assert_eq!(s["$id"], SCHEMA_ID);
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
