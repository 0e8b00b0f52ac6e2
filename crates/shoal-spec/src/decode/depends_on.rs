//! `depends_on:`: a list of names, or a mapping name -> `{condition: ...}` (Compose's form).

use super::Ctx;
use crate::diagnostic::did_you_mean_hint;
use crate::model::DependencyCondition;
use crate::node::{Node, Pos, Value};
use schemars::JsonSchema;
use std::collections::BTreeMap;

pub(super) fn decode_depends_on(node: &Node, key: &str, ctx: &mut Ctx) -> Vec<(String, Pos, DependencyCondition)> {
    let mut out = Vec::new();
    match &node.value {
        Value::Seq(_) => {
            for (s, pos) in ctx.strings(node, key, "`depends_on`", false).unwrap_or_default() {
                out.push((s, pos, DependencyCondition::ServiceStarted));
            }
        }
        Value::Map(m) => {
            for (k, v) in m {
                let kp = format!("{key}.{}", k.name);
                let cond = match &v.value {
                    Value::Null => DependencyCondition::ServiceStarted,
                    Value::Map(fields) => {
                        let mut cond = DependencyCondition::ServiceStarted;
                        for (fk, fv) in ctx.check_keys(fields, DependencyFile::KEYS, None, &kp, "in dependency") {
                            if fk.name == "condition" {
                                cond = decode_condition(fv, &format!("{kp}.condition"), ctx).unwrap_or(cond);
                            }
                        }
                        cond
                    }
                    _ => {
                        ctx.type_error(v, &kp, "a dependency", "a mapping `{condition: ...}`");
                        DependencyCondition::ServiceStarted
                    }
                };
                out.push((k.name.clone(), k.pos, cond));
            }
        }
        _ => ctx.type_error(node, key, "`depends_on`", "a list of names or a mapping"),
    }
    out
}

/// `condition:` by Compose's names; `service_healthy` gets its own message (no health checks).
fn decode_condition(fv: &Node, kp: &str, ctx: &mut Ctx) -> Option<DependencyCondition> {
    let c = ctx.string(fv, kp, "`condition`")?;
    match c.as_str() {
        "service_started" => Some(DependencyCondition::ServiceStarted),
        "service_completed_successfully" => Some(DependencyCondition::ServiceCompletedSuccessfully),
        "service_healthy" => {
            ctx.error(
                fv.pos,
                kp,
                "`service_healthy` is not supported: shoal has no health checks",
                Some("use `service_started`, or `service_completed_successfully` for an init step".into()),
            );
            None
        }
        other => {
            let hint = did_you_mean_hint(other, ["service_started", "service_completed_successfully"])
                .or(Some("use `service_started` or `service_completed_successfully`".into()));
            ctx.error(fv.pos, kp, format!("unknown dependency condition `{other}`"), hint);
            None
        }
    }
}

// The file format of this section, as the JSON schema describes it (see `schema.rs`).

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
    /// The dependency has started: it has reached its first wait (an event wait, a sleep;
    /// a subscriber has subscribed by then), runs without waiting, or has ended.
    ServiceStarted,
    /// The dependency has exited with code 0 (an init step).
    ServiceCompletedSuccessfully,
}
