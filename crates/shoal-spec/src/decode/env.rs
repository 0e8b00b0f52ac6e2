//! `env:` (a mapping or a `KEY=VALUE` list) and `env_file:` (files of `KEY=VALUE` lines).
//! The host environment is never passed implicitly: `KEY: ${KEY}` passes it explicitly.

use std::path::Path;

use super::{normalize, Ctx};
use crate::diagnostic::Diagnostic;
use crate::model::Location;
use crate::node::{Node, Pos, Value};

fn check_env_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        Err("environment variable name is empty".into())
    } else if k.contains('=') || k.contains('\0') {
        Err(format!("invalid environment variable name `{k}`"))
    } else {
        Ok(())
    }
}

pub(super) fn decode_env(node: &Node, key: &str, ctx: &mut Ctx) -> Vec<(String, String)> {
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

pub(super) fn decode_env_file(node: &Node, key: &str, ctx: &mut Ctx) -> Vec<(String, String)> {
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
