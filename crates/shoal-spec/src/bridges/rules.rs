//! A bridge's `export:` and `import:` rules. Each rule is a mapping or a bare string (the
//! local prefix of an export, the remote filter of an import); topic syntax is checked by
//! the shared [`crate::topic`] leaf the running bridge also matches with.

use crate::decode::Ctx;
use crate::model::{ExportRule, ImportRule};
use crate::node::{Node, Pos, Value};

use crate::topic::{check_filter, check_topic_prefix, filter_literal_prefix, TopicError};
use schemars::JsonSchema;

/// A list of rules, each a mapping or the short string form.
pub(super) fn rules<T>(
    ctx: &mut Ctx,
    node: &Node,
    path: &str,
    ok: &mut bool,
    one: fn(&mut Ctx, &Node, &str) -> Option<T>,
) -> Vec<T> {
    let Value::Seq(items) = &node.value else {
        ctx.error(
            node.pos,
            path,
            format!(
                "`{}` must be a list of rules, found {}",
                path.rsplit('.').next().unwrap_or(path),
                node.value.kind()
            ),
            None,
        );
        *ok = false;
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match one(ctx, item, &format!("{path}[{i}]")) {
            Some(rule) => out.push(rule),
            None => *ok = false,
        }
    }
    out
}

/// The fields of one rule: a mapping checked against `known`, or a bare string standing for
/// `short_key`.
fn rule_fields(ctx: &mut Ctx, node: &Node, path: &str, known: &[&str], short_key: &str) -> Option<Vec<(String, Node)>> {
    match &node.value {
        Value::Str(_) => Some(vec![(short_key.to_string(), node.clone())]),
        Value::Map(m) => {
            let fields = ctx.check_keys(m, known, None, path, "in rule");
            Some(
                fields
                    .into_iter()
                    .filter(|(_, v)| !matches!(v.value, Value::Null))
                    .map(|(k, v)| (k.name.clone(), v.clone()))
                    .collect(),
            )
        }
        other => {
            ctx.error(
                node.pos,
                path,
                format!(
                    "a rule must be a mapping such as `{{{short_key}: ...}}`, found {}",
                    other.kind()
                ),
                None,
            );
            None
        }
    }
}

fn qos(ctx: &mut Ctx, fields: &[(String, Node)], path: &str) -> Option<u8> {
    let Some((_, v)) = fields.iter().find(|(k, _)| k == "qos") else {
        return Some(1);
    };
    let kp = format!("{path}.qos");
    match ctx.int(v, &kp, "`qos`")? {
        n @ (0 | 1) => Some(n as u8),
        2 => {
            ctx.error(
                v.pos,
                &kp,
                "QoS 2 is not supported by shoal's bridge",
                Some("use `qos: 1` (at least once; a duplicate is possible after a lost link)".into()),
            );
            None
        }
        n => {
            ctx.error(v.pos, &kp, format!("`qos` must be 0 or 1, found {n}"), None);
            None
        }
    }
}

fn text_field(ctx: &mut Ctx, fields: &[(String, Node)], name: &str, path: &str) -> Option<Option<(String, Pos)>> {
    match fields.iter().find(|(k, _)| k == name) {
        None => Some(None),
        Some((_, v)) => {
            let s = ctx.string(v, &format!("{path}.{name}"), &format!("`{name}`"))?;
            if s.contains('\0') {
                ctx.error(
                    v.pos,
                    &format!("{path}.{name}"),
                    format!("`{name}` contains a NUL character"),
                    None,
                );
                return None;
            }
            Some(Some((s, v.pos)))
        }
    }
}

pub(super) fn export_rule(ctx: &mut Ctx, node: &Node, path: &str) -> Option<ExportRule> {
    let fields = rule_fields(ctx, node, path, ExportRuleFile::KEYS, "local")?;
    let local = text_field(ctx, &fields, "local", path);
    let remote = text_field(ctx, &fields, "remote", path);
    let qos = qos(ctx, &fields, path);
    let (local, remote, qos) = (local?, remote?, qos?);
    let Some((local, _)) = local else {
        ctx.error(
            node.pos,
            path,
            "export rule has no `local` prefix",
            Some("for example `{local: \"sensors/\", remote: \"line-3/sensors/\"}`".into()),
        );
        return None;
    };
    let remote = match remote {
        None => {
            if let Err(TopicError { message, hint }) = check_topic_prefix(&local) {
                ctx.error(
                    node.pos,
                    &format!("{path}.local"),
                    message,
                    hint.or(Some("set `remote:` to a prefix without them".into())),
                );
                return None;
            }
            local.clone()
        }
        Some((remote, pos)) => {
            if let Err(TopicError { message, hint }) = check_topic_prefix(&remote) {
                ctx.error(pos, &format!("{path}.remote"), message, hint);
                return None;
            }
            remote
        }
    };
    Some(ExportRule { local, remote, qos })
}

pub(super) fn import_rule(ctx: &mut Ctx, node: &Node, path: &str) -> Option<ImportRule> {
    let fields = rule_fields(ctx, node, path, ImportRuleFile::KEYS, "remote")?;
    let remote = text_field(ctx, &fields, "remote", path);
    let local = text_field(ctx, &fields, "local", path);
    let qos = qos(ctx, &fields, path);
    let (remote, local, qos) = (remote?, local?, qos?);
    let Some((remote, remote_pos)) = remote else {
        ctx.error(
            node.pos,
            path,
            "import rule has no `remote` filter",
            Some("for example `{remote: \"line-3/commands/#\", local: \"commands/\"}`".into()),
        );
        return None;
    };
    if let Err(TopicError { message, hint }) = check_filter(&remote) {
        ctx.error(remote_pos, &format!("{path}.remote"), message, hint);
        return None;
    }
    let local = match local {
        None => filter_literal_prefix(&remote).to_string(),
        Some((local, pos)) => {
            if local.contains(['+', '#']) {
                let plain = local.split(['+', '#']).next().unwrap_or_default();
                ctx.error(
                    pos,
                    &format!("{path}.local"),
                    format!("local prefix `{local}` contains an MQTT wildcard; local topics are matched by prefix"),
                    Some(format!("write `{plain}`")),
                );
                return None;
            }
            local
        }
    };
    Some(ImportRule { remote, local, qos })
}

// The file format of this section, as the JSON schema describes it (see `schema.rs`).

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
