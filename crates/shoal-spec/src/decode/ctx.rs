//! The decoding context: where diagnostics go, and typed accessors that read one node and
//! report a type error when it is not what the key needs, so each section's decoder states
//! only its own rules.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::diagnostic::Diagnostic;
use crate::model::Location;
use crate::node::{Key, Node, Pos, Value};
use crate::units::parse_duration;
use crate::LoadOptions;

/// Collects diagnostics and knows how to turn a [`Pos`] into a [`Location`].
pub struct Ctx<'a> {
    /// The compose file as the caller named it (messages use this).
    pub file: PathBuf,
    /// Every merged compose file as the caller named it, in merge order (`files[0]` is
    /// `file`); a [`Pos`]'s `file` indexes this list.
    pub files: Vec<PathBuf>,
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
            file: self.files.get(usize::from(pos.file)).unwrap_or(&self.file).clone(),
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

    pub(crate) fn type_error(&mut self, node: &Node, key: &str, what: &str, expected: &str) {
        self.error(
            node.pos,
            key,
            format!("{what} must be {expected}, found {}", node.value.kind()),
            None,
        );
    }

    /// A mapping's entries; reports a type error otherwise.
    pub(crate) fn map<'n>(&mut self, node: &'n Node, key: &str, what: &str) -> Option<&'n [(Key, Node)]> {
        match &node.value {
            Value::Map(m) => Some(m),
            _ => {
                self.type_error(node, key, what, "a mapping");
                None
            }
        }
    }

    /// A string scalar.
    pub(crate) fn string(&mut self, node: &Node, key: &str, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.type_error(node, key, what, "a string");
                None
            }
        }
    }

    /// An integer; a string that is an integer is accepted (it may come from `${VAR}`).
    pub(crate) fn int(&mut self, node: &Node, key: &str, what: &str) -> Option<i64> {
        self.int_at_most(node, key, what, i64::MAX)
    }

    /// An integer, where one too large for 64 bits (YAML reads it as a float) is told as
    /// "too large" with `max`, the largest the key takes, rather than as the wrong type.
    pub(crate) fn int_at_most(&mut self, node: &Node, key: &str, what: &str, max: i64) -> Option<i64> {
        match &node.value {
            Value::Int(i) => Some(*i),
            Value::Str(s) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
            Value::Float(f) if f.fract() == 0.0 && f.abs() >= i64::MAX as f64 => {
                let message = if *f > 0.0 {
                    format!("{what} is too large (at most {max})")
                } else {
                    format!("{what} is too small: it must be an integer of at most {max}")
                };
                self.error(node.pos, key, message, None);
                None
            }
            _ => {
                self.type_error(node, key, what, "an integer");
                None
            }
        }
    }

    /// A number; an integer or numeric string is accepted.
    pub(crate) fn float(&mut self, node: &Node, key: &str, what: &str) -> Option<f64> {
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
    pub(crate) fn bool(&mut self, node: &Node, key: &str, what: &str) -> Option<bool> {
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

    /// A duration such as `5s` or `1m 30s` ([`parse_duration`]). An integer is read as its
    /// text so that `5` gets the "no unit" message rather than a type error. `example` is the
    /// duration the type error suggests (`5s`, `30s`): one a user would write for this key.
    pub(crate) fn duration(&mut self, node: &Node, key: &str, what: &str, example: &str) -> Option<Duration> {
        let parsed = match &node.value {
            Value::Str(s) => parse_duration(s).map_err(|e| e.to_string()),
            Value::Int(i) => parse_duration(&i.to_string()).map_err(|e| e.to_string()),
            other => Err(format!(
                "{what} must be a duration such as `{example}`, found {}",
                other.kind()
            )),
        };
        match parsed {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(node.pos, key, e, None);
                None
            }
        }
    }

    /// A list of strings (scalars converted to text when `loose`). Bad items are reported
    /// and skipped.
    pub(crate) fn strings(&mut self, node: &Node, key: &str, what: &str, loose: bool) -> Option<Vec<(String, Pos)>> {
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

/// Decode every entry of a top-level section that maps names to entries (`sensors:`,
/// `gpio:`); an entry `decode_one` refuses is left out, its errors reported.
pub(super) fn named_section<T>(
    node: &Node,
    section: &str,
    ctx: &mut Ctx,
    mut decode_one: impl FnMut(&Key, &Node, &mut Ctx) -> Option<T>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    if matches!(node.value, Value::Null) {
        return out;
    }
    let Some(entries) = ctx.map(node, section, &format!("`{section}`")) else {
        return out;
    };
    for (k, v) in entries {
        if let Some(entry) = decode_one(k, v, ctx) {
            out.insert(k.name.clone(), entry);
        }
    }
    out
}

/// The known fields of one entry of a named section, with the key path messages use.
pub(super) struct Fields<'n> {
    pub(super) path: String,
    pub(super) fields: Vec<&'n (Key, Node)>,
}

impl<'n> Fields<'n> {
    /// The field `name` as written (an empty value included).
    pub(super) fn get(&self, name: &str) -> Option<(&'n Key, &'n Node)> {
        self.fields
            .iter()
            .find(|(fk, _)| fk.name == name)
            .map(|(fk, fv)| (fk, fv))
    }

    /// The field `name` when it has a value (`name:` alone counts as absent).
    pub(super) fn value(&self, name: &str) -> Option<(&'n Key, &'n Node)> {
        self.get(name).filter(|(_, v)| !matches!(v.value, Value::Null))
    }

    /// The key path of `field` in this entry, for messages.
    pub(super) fn key(&self, field: &str) -> String {
        format!("{}.{field}", self.path)
    }
}
