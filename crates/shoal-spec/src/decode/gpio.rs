//! The top-level `gpio:` section (named GPIO lines, simulated or on a kernel GPIO chip),
//! the containers' `gpio:` lists that grant them, and the checks across containers: one
//! output line has one driver, and one container's lines answer to distinct SDK
//! `(port, pin)` numbers.

use std::collections::BTreeMap;

use super::ctx::{named_section, Fields};
use super::{Ctx, Decoded};
use crate::diagnostic::did_you_mean_hint;
use crate::model::{GpioBackend, GpioBias, GpioDirection, GpioEdge, GpioLineId, GpioLineSpec};
use crate::names::is_valid_name;
use crate::node::{Key, Node, Pos, Value};
use schemars::JsonSchema;

/// Largest `port:` / `pin:` (the SDK passes them as `int`).
const MAX_NUMBER: i64 = i32::MAX as i64;

pub(super) fn decode_gpio(node: &Node, ctx: &mut Ctx) -> BTreeMap<String, GpioLineSpec> {
    named_section(node, "gpio", ctx, decode_line)
}

/// The checks only GPIO lines make of their fields.
impl Fields<'_> {
    /// Reports `field` when it is set on a line that has no use for it.
    fn not_for(&self, ctx: &mut Ctx, field: &str, what: &str, hint: &str) {
        if let Some((fk, _)) = self.value(field) {
            ctx.error(
                fk.pos,
                &self.key(field),
                format!("`{field}` does not apply to {what}"),
                Some(hint.to_string()),
            );
        }
    }

    /// One of `choices` (`None` when absent or wrong, the error reported).
    fn choice(&self, ctx: &mut Ctx, field: &str, choices: &[&str]) -> Option<String> {
        let (_, v) = self.value(field)?;
        let s = ctx.string(v, &self.key(field), &format!("`{field}`"))?;
        if choices.contains(&s.as_str()) {
            return Some(s);
        }
        let list = choices.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
        let hint = did_you_mean_hint(&s, choices.iter().copied()).or(Some(format!("use one of {list}")));
        ctx.error(v.pos, &self.key(field), format!("unknown {field} `{s}`"), hint);
        None
    }

    fn number(&self, ctx: &mut Ctx, field: &str) -> Option<u32> {
        let (_, v) = self.value(field)?;
        let n = ctx.int(v, &self.key(field), &format!("`{field}`"))?;
        if (0..=MAX_NUMBER).contains(&n) {
            return u32::try_from(n).ok();
        }
        ctx.error(
            v.pos,
            &self.key(field),
            format!("`{field}` must be between 0 and {MAX_NUMBER}, found {n}"),
            None,
        );
        None
    }
}

fn decode_line(k: &Key, v: &Node, ctx: &mut Ctx) -> Option<GpioLineSpec> {
    let path = format!("gpio.{}", k.name);
    if !is_valid_name(&k.name) {
        ctx.error(
            k.pos,
            &path,
            format!("invalid GPIO line name `{}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit", k.name),
            Some(format!("for example `{}`", crate::names::sanitize_name(&k.name))),
        );
        return None;
    }
    let m = ctx.map(v, &path, &format!("GPIO line `{}`", k.name))?;
    let fields = ctx.check_keys(
        m,
        GpioLineFile::KEYS,
        None,
        &path,
        &format!("in GPIO line `{}`", k.name),
    );
    let f = Fields { path, fields };
    let backend = decode_backend(k, &f, ctx);
    let direction = match f.choice(ctx, "direction", &["input", "output"]).as_deref() {
        Some("output") => GpioDirection::Output,
        Some(_) => GpioDirection::Input,
        None => {
            if f.get("direction").is_none() {
                ctx.error(
                    k.pos,
                    &f.key("direction"),
                    format!("GPIO line `{}` has no `direction`", k.name),
                    Some("add `direction: input` or `direction: output`".into()),
                );
            }
            return None;
        }
    };
    let active_low = f
        .get("active_low")
        .and_then(|(_, v)| ctx.bool(v, &f.key("active_low"), "`active_low`"))
        .unwrap_or(false);
    let bias = match f
        .choice(ctx, "bias", &["as-is", "pull-up", "pull-down", "disabled"])
        .as_deref()
    {
        Some("pull-up") => GpioBias::PullUp,
        Some("pull-down") => GpioBias::PullDown,
        Some("disabled") => GpioBias::Disabled,
        _ => GpioBias::AsIs,
    };
    let (debounce, edge, initial) = match direction {
        GpioDirection::Input => decode_input(&f, ctx),
        GpioDirection::Output => decode_output(&f, ctx),
    };
    let (port, pin) = (f.number(ctx, "port"), f.number(ctx, "pin"));
    Some(GpioLineSpec {
        name: k.name.clone(),
        backend: backend?,
        direction,
        active_low,
        bias,
        debounce,
        edge,
        initial,
        port,
        pin,
        location: ctx.loc(k.pos),
    })
}

/// `kind: sim` (no chip) or `kind: cdev` (the default; `chip` and `line` required).
fn decode_backend(k: &Key, f: &Fields, ctx: &mut Ctx) -> Option<GpioBackend> {
    let kind = f.choice(ctx, "kind", &["cdev", "sim"]);
    if f.get("kind").is_some() && kind.is_none() {
        return None;
    }
    if kind.as_deref() == Some("sim") {
        let hint = "a `kind: sim` line lives in shoal's memory; remove the key, or drop `kind: sim` to use a chip";
        f.not_for(ctx, "chip", "`kind: sim` lines", hint);
        f.not_for(ctx, "line", "`kind: sim` lines", hint);
        return Some(GpioBackend::Sim);
    }
    let mut missing = |field: &str, example: &str| {
        ctx.error(
            k.pos,
            &f.key(field),
            format!("GPIO line `{}` has no `{field}`", k.name),
            Some(format!("add `{field}: {example}`, or `kind: sim` for a simulated line")),
        );
    };
    let chip = f.get("chip");
    let line = f.get("line");
    if chip.is_none() {
        missing("chip", "/dev/gpiochip0");
    }
    if line.is_none() {
        missing("line", "0");
    }
    let chip = ctx.string(chip?.1, &f.key("chip"), "`chip`")?;
    if chip.trim().is_empty() {
        ctx.error(
            f.get("chip")?.1.pos,
            &f.key("chip"),
            "`chip` is empty",
            Some("a device path such as `/dev/gpiochip0`, or a chip label".into()),
        );
        return None;
    }
    let (_, ln) = line?;
    let line = match &ln.value {
        Value::Int(n) if (0..=MAX_NUMBER).contains(n) => GpioLineId::Offset(u32::try_from(*n).ok()?),
        Value::Str(s) if !s.is_empty() => GpioLineId::Name(s.clone()),
        _ => {
            ctx.error(
                ln.pos,
                &f.key("line"),
                format!(
                    "`line` must be an offset (0, 1, ...) or a line name, found {}",
                    ln.value.kind()
                ),
                Some("for example `line: 3` or `line: \"BTN\"`".into()),
            );
            return None;
        }
    };
    Some(GpioBackend::Cdev { chip, line })
}

/// An input's `debounce` and `edge` (default both); `initial` is an output's.
fn decode_input(f: &Fields, ctx: &mut Ctx) -> (Option<std::time::Duration>, GpioEdge, bool) {
    f.not_for(
        ctx,
        "initial",
        "inputs",
        "an input's value comes from outside; remove `initial`",
    );
    let debounce = f
        .get("debounce")
        .and_then(|(_, v)| ctx.duration(v, &f.key("debounce"), "`debounce`", "5ms"));
    let edge = match f.choice(ctx, "edge", &["both", "rising", "falling", "none"]).as_deref() {
        Some("rising") => GpioEdge::Rising,
        Some("falling") => GpioEdge::Falling,
        Some("none") => GpioEdge::None,
        _ => GpioEdge::Both,
    };
    (debounce, edge, false)
}

/// An output's `initial` (0 or 1, default 0); `debounce` and `edge` are an input's.
fn decode_output(f: &Fields, ctx: &mut Ctx) -> (Option<std::time::Duration>, GpioEdge, bool) {
    let hint = "outputs have no edges; use `direction: input` to read the line";
    f.not_for(ctx, "debounce", "outputs", hint);
    f.not_for(ctx, "edge", "outputs", hint);
    let mut initial = false;
    if let Some((_, v)) = f.get("initial") {
        match ctx.int(v, &f.key("initial"), "`initial`") {
            Some(0) => {}
            Some(1) => initial = true,
            Some(n) => ctx.error(
                v.pos,
                &f.key("initial"),
                format!("`initial` must be 0 or 1, found {n}"),
                None,
            ),
            None => {}
        }
    }
    (None, GpioEdge::None, initial)
}

/// A container's `gpio:` list: each a declared line, duplicates dropped.
pub(super) fn decode_refs(
    name: &str,
    declared: &std::collections::BTreeSet<String>,
    v: &Node,
    kp: &str,
    ctx: &mut Ctx,
) -> Vec<(String, Pos)> {
    let mut out: Vec<(String, Pos)> = Vec::new();
    let Some(items) = ctx.strings(v, kp, "`gpio`", false) else {
        return out;
    };
    for (s, pos) in items {
        if declared.contains(&s) {
            if !out.iter().any(|(x, _)| *x == s) {
                out.push((s, pos));
            }
            continue;
        }
        let hint = did_you_mean_hint(&s, declared.iter().map(String::as_str)).or_else(|| {
            Some(if declared.is_empty() {
                "declare it under the top-level `gpio:`".to_string()
            } else {
                let list = declared.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>();
                format!("declared GPIO lines: {}", list.join(", "))
            })
        });
        ctx.error(pos, kp, format!("unknown GPIO line `{s}` in container `{name}`"), hint);
    }
    out
}

/// The SDK `(port, pin)` a container reaches line `spec` by, at `index` in its `gpio:` list.
pub fn sdk_address(spec: &GpioLineSpec, index: usize) -> (u32, u32) {
    let pin = spec.pin.unwrap_or_else(|| u32::try_from(index).unwrap_or(u32::MAX));
    (spec.port.unwrap_or(0), pin)
}

/// Checks across containers: an output line has one driver (a replicated container counts
/// as several), and a container's lines have distinct `(port, pin)` numbers.
pub(super) fn check_claims(out: &Decoded, ctx: &mut Ctx) {
    let mut drivers: BTreeMap<&str, (&str, Pos)> = BTreeMap::new();
    for d in &out.containers {
        let mut addresses: BTreeMap<(u32, u32), &str> = BTreeMap::new();
        for (i, (line, pos)) in d.gpio.iter().enumerate() {
            let Some(spec) = out.gpio.get(line) else { continue };
            let kp = format!("containers.{}.gpio", d.service);
            let address = sdk_address(spec, i);
            if let Some(other) = addresses.insert(address, line) {
                ctx.error(
                    *pos,
                    &kp,
                    format!(
                        "GPIO lines `{other}` and `{line}` of container `{}` both answer to port {}, pin {}",
                        d.service, address.0, address.1
                    ),
                    Some("give one of them its own `pin:` (or `port:`) under the top-level `gpio:`".into()),
                );
            }
            if spec.direction != GpioDirection::Output {
                continue;
            }
            if d.replicas > 1 {
                ctx.error(
                    *pos,
                    &kp,
                    format!(
                        "output GPIO line `{line}` would be driven by all {} replicas of `{}`",
                        d.replicas, d.service
                    ),
                    Some("an output has one driver: run one replica, or give each its own line".into()),
                );
            }
            if let Some((first, first_pos)) = drivers.get(line.as_str()) {
                let first_loc = ctx.loc(*first_pos);
                ctx.error(
                    *pos,
                    &kp,
                    format!("output GPIO line `{line}` is claimed by container `{}` and by container `{first}` at {first_loc}", d.service),
                    Some("an output has one driver: remove it from one of the two lists".into()),
                );
            } else {
                drivers.insert(line, (&d.service, *pos));
            }
        }
    }
}

// The file format of this section, as the JSON schema describes it (see `schema.rs`).

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
