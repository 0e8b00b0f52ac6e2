//! `mounts:`: host folders shared with the guest, short (`host:guest[:ro]`) or long form.

use std::collections::HashMap;

use super::Ctx;
use crate::model::Mount;
use crate::node::{Key, Node, Pos, Value};
use schemars::JsonSchema;

pub(super) fn decode_mounts(node: &Node, key: &str, container: &str, ctx: &mut Ctx) -> Vec<Mount> {
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
    let mut special = false;
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
            "special_files" => match ctx.bool(v, &kp, "`special_files`") {
                Some(b) => special = b,
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
    let mut mount = check_mount(&s, &t, ro, spos, tpos, key, ctx, false)?;
    mount.special_files = special;
    Some(mount)
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
        special_files: false,
    })
}

// The file format of this section, as the JSON schema describes it (see `schema.rs`).

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
    /// Let the guest open FIFOs, sockets and device files found in this folder (default false: such opens are refused with `EACCES`, since a FIFO nobody writes would block the guest's I/O forever and a device is hardware).
    pub special_files: Option<bool>,
}

impl MountLongFile {
    pub const KEYS: &'static [&'static str] = &["source", "target", "read_only", "special_files"];
}
