//! The top-level `sensors:` section: named host sensors (`rng`, `file`, `hwmon`) that
//! containers list by name.

use std::collections::BTreeMap;

use super::ctx::{named_section, Fields};
use super::Ctx;
use crate::channel_type::ChannelType;
use crate::diagnostic::did_you_mean_hint;
use crate::model::{SensorKind, SensorSpec};
use crate::node::{Key, Node, Pos, Value};
use schemars::JsonSchema;

/// Largest `channels:` of an `rng` sensor.
const MAX_CHANNELS: i64 = 1024;

pub(super) fn decode_sensors(node: &Node, ctx: &mut Ctx) -> BTreeMap<String, SensorSpec> {
    named_section(node, "sensors", ctx, decode_sensor)
}

/// The checks only sensors make of their fields.
impl Fields<'_> {
    /// Reports `field` when it is set on a sensor whose `kind` has no use for it.
    fn not_for_kind(&self, ctx: &mut Ctx, field: &str, kind: &str) {
        if let Some((fk, _)) = self.get(field) {
            ctx.error(
                fk.pos,
                &self.key(field),
                format!("`{field}` does not apply to `{kind}` sensors"),
                None,
            );
        }
    }
}

fn decode_sensor(k: &Key, v: &Node, ctx: &mut Ctx) -> Option<SensorSpec> {
    let path = format!("sensors.{}", k.name);
    if k.name.trim().is_empty() || k.name.contains('\0') {
        ctx.error(k.pos, &path, "sensor names must not be empty", None);
        return None;
    }
    let context = format!("in sensor `{}`", k.name);
    let m = ctx.map(v, &path, &format!("sensor `{}`", k.name))?;
    let fields = ctx.check_keys(m, SensorFile::KEYS, None, &path, &context);
    let f = Fields { path, fields };
    let Some((_, kind_node)) = f.get("kind") else {
        ctx.error(
            k.pos,
            &f.path,
            format!("sensor `{}` has no `kind`", k.name),
            Some("add `kind: rng`, `kind: file` or `kind: hwmon`".into()),
        );
        return None;
    };
    let kind = ctx.string(kind_node, &format!("{}.kind", f.path), "`kind`")?;
    match kind.as_str() {
        "rng" => Some(decode_rng(k, &f, ctx)),
        "file" | "hwmon" => decode_file_sensor(k, &kind, &f, ctx),
        other => {
            let hint =
                did_you_mean_hint(other, ["rng", "file", "hwmon"]).or(Some("use `rng`, `file` or `hwmon`".into()));
            ctx.error(
                kind_node.pos,
                &format!("{}.kind", f.path),
                format!("unknown sensor kind `{other}`"),
                hint,
            );
            None
        }
    }
}

/// An `rng` sensor: `channels` (default 1) and `range` (default `[0, 100]`); a bad value is
/// reported and its default kept.
fn decode_rng(k: &Key, f: &Fields, ctx: &mut Ctx) -> SensorSpec {
    let path = &f.path;
    f.not_for_kind(ctx, "path", "rng");
    f.not_for_kind(ctx, "scale", "rng");
    let mut channels = None;
    if let Some((_, cn)) = f.get("channels") {
        if let Some(c) = ctx.int(cn, &format!("{path}.channels"), "`channels`") {
            if (1..=MAX_CHANNELS).contains(&c) {
                channels = Some((c as u32, cn.pos));
            } else {
                ctx.error(
                    cn.pos,
                    &format!("{path}.channels"),
                    format!("`channels` must be between 1 and {MAX_CHANNELS}, found {c}"),
                    None,
                );
            }
        }
    }
    let (min, max) = f
        .get("range")
        .and_then(|(_, rn)| decode_range(rn, path, ctx))
        .unwrap_or((0.0, 100.0));
    let types = decode_channel_types(f, ctx);
    let channel_types = match (types, channels) {
        (Some((types, tpos)), Some((n, npos))) if types.len() != n as usize => {
            ctx.error(
                tpos,
                &format!("{path}.channel_types"),
                format!(
                    "`channel_types` lists {} type{} but `channels` (line {}) is {n}",
                    types.len(),
                    if types.len() == 1 { "" } else { "s" },
                    npos.line
                ),
                Some("give one type per channel, or drop `channels`: it defaults to the list's length".into()),
            );
            vec![ChannelType::Custom; n as usize]
        }
        (Some((types, _)), _) => types,
        (None, n) => vec![ChannelType::Custom; n.map_or(1, |(n, _)| n as usize)],
    };
    SensorSpec {
        name: k.name.clone(),
        kind: SensorKind::Rng { min, max },
        channels: channel_types.len() as u32,
        channel_types,
    }
}

/// `channel_types: [temperature, humidity, ...]`: one known type per channel, each type
/// other than `custom` at most once (`read` finds a channel by its type). Returns the
/// types and the list's position; `None` when absent or unusable (errors reported).
fn decode_channel_types(f: &Fields, ctx: &mut Ctx) -> Option<(Vec<ChannelType>, Pos)> {
    let (_, node) = f.get("channel_types")?;
    let key = format!("{}.channel_types", f.path);
    let items = ctx.strings(node, &key, "`channel_types`", false)?;
    if items.is_empty() || items.len() as i64 > MAX_CHANNELS {
        ctx.error(
            node.pos,
            &key,
            format!(
                "`channel_types` must list 1 to {MAX_CHANNELS} types, found {}",
                items.len()
            ),
            Some("for example `channel_types: [temperature, humidity]`".into()),
        );
        return None;
    }
    let mut types: Vec<ChannelType> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, (name, pos)) in items.iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        let Ok(t) = name.parse::<ChannelType>() else {
            let hint = did_you_mean_hint(name, ChannelType::NAMES)
                .unwrap_or_else(|| format!("use one of: {}", ChannelType::NAMES.join(", ")));
            ctx.error(*pos, &item_key, format!("unknown channel type `{name}`"), Some(hint));
            ok = false;
            continue;
        };
        if let Some(first) = types.iter().position(|&u| u == t && t != ChannelType::Custom) {
            ctx.error(
                *pos,
                &item_key,
                format!("channel type `{t}` is already channel {first}'s type"),
                Some(
                    "guests read a channel by its type, so each type may appear once per sensor; \
                     use `custom` for further channels, or declare a second sensor"
                        .into(),
                ),
            );
            ok = false;
        }
        types.push(t);
    }
    ok.then_some((types, node.pos))
}

/// `range: [min, max]` with min < max.
fn decode_range(rn: &Node, path: &str, ctx: &mut Ctx) -> Option<(f64, f64)> {
    let rkey = format!("{path}.range");
    match &rn.value {
        Value::Seq(items) if items.len() == 2 => {
            let a = ctx.float(&items[0], &rkey, "`range` bounds");
            let b = ctx.float(&items[1], &rkey, "`range` bounds");
            let (a, b) = (a?, b?);
            if a < b {
                return Some((a, b));
            }
            ctx.error(
                rn.pos,
                &rkey,
                format!("`range` must be `[min, max]` with min < max, found [{a}, {b}]"),
                None,
            );
            None
        }
        _ => {
            ctx.error(
                rn.pos,
                &rkey,
                "`range` must be a list `[min, max]`",
                Some("for example `range: [0, 100]`".into()),
            );
            None
        }
    }
}

/// A `file` or `hwmon` sensor: one channel, a `path` (a missing file is only a warning: it
/// may appear later) and a `scale`.
fn decode_file_sensor(k: &Key, kind: &str, f: &Fields, ctx: &mut Ctx) -> Option<SensorSpec> {
    let path = &f.path;
    f.not_for_kind(ctx, "range", kind);
    if let Some((_, cn)) = f.get("channels") {
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
    if let Some((_, sn)) = f.get("scale") {
        if let Some(s) = ctx.float(sn, &format!("{path}.scale"), "`scale`") {
            scale = s;
        }
    }
    let Some((_, pn)) = f.get("path") else {
        ctx.error(
            k.pos,
            path,
            format!("`{kind}` sensor `{}` has no `path`", k.name),
            Some("add the file to read, e.g. `path: /sys/class/thermal/thermal_zone0/temp`".into()),
        );
        return None;
    };
    let p = ctx.string(pn, &format!("{path}.path"), "`path`")?;
    if p.is_empty() {
        ctx.error(pn.pos, &format!("{path}.path"), "`path` must not be empty", None);
        return None;
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
    let channel_type = file_channel_type(kind, &abs, f, ctx);
    let kind = if kind == "file" {
        SensorKind::File { path: abs, scale }
    } else {
        SensorKind::Hwmon { path: abs, scale }
    };
    Some(SensorSpec {
        name: k.name.clone(),
        kind,
        channels: 1,
        channel_types: vec![channel_type],
    })
}

/// The one channel's type of a `file` or `hwmon` sensor: declared, else told by a hwmon
/// file's name (`temp1_input`), else `custom`.
fn file_channel_type(kind: &str, file: &std::path::Path, f: &Fields, ctx: &mut Ctx) -> ChannelType {
    let told = (kind == "hwmon")
        .then(|| {
            file.file_name()
                .and_then(|n| n.to_str())
                .and_then(ChannelType::from_hwmon_file)
        })
        .flatten()
        .unwrap_or(ChannelType::Custom);
    match decode_channel_types(f, ctx) {
        Some((types, _)) if types.len() == 1 => types[0],
        Some((types, pos)) => {
            ctx.error(
                pos,
                &format!("{}.channel_types", f.path),
                format!(
                    "a `{kind}` sensor has exactly 1 channel, but `channel_types` lists {}",
                    types.len()
                ),
                Some(format!("for example `channel_types: [{told}]`")),
            );
            told
        }
        None => told,
    }
}

// The file format of this section, as the JSON schema describes it (see `schema.rs`).

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
    /// What each channel measures, one entry per channel: the type code guests get from
    /// `ocre_sensors_get_channel_type` and pass to `ocre_sensors_read`. Default: `custom`
    /// for every channel, except `hwmon` files named `temp*_input` (temperature),
    /// `in*_input` (voltage), `curr*_input` (current), `power*_input` (power) and
    /// `humidity*_input` (humidity). A type other than `custom` appears at most once per
    /// sensor.
    pub channel_types: Option<Vec<ChannelTypeFile>>,
}

impl SensorFile {
    pub const KEYS: &'static [&'static str] = &["kind", "channels", "range", "path", "scale", "channel_types"];
}

/// What a sensor channel measures, as the schema lists it: the names of
/// [`crate::ChannelType::NAMES`], so the table of types is written once.
pub struct ChannelTypeFile;

impl JsonSchema for ChannelTypeFile {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ChannelTypeFile".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "What a sensor channel measures (codes: acceleration 0 ... temperature 7 as in the Ocre\nSDK, voltage 8, current 9, power 10, custom 0x8000 + channel index).",
            "enum": crate::ChannelType::NAMES,
            "type": "string",
        })
    }
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
