//! `plan = diff(running, desired)`: what a reload must do, computed without any I/O.
//!
//! A container is compared by two things: the sha256 of its image's bytes (so a touched
//! file, or the same bytes under another path, restarts nothing) and its run-relevant
//! configuration as canonical JSON (everything the container's instance is built from,
//! source positions excluded, so adding a comment above it restarts nothing either).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::spec::{ContainerSpec, SensorSpec, Stack};

/// One container as deployed (or as the file wants it deployed).
#[derive(Debug, Clone, PartialEq)]
pub struct Deployed {
    pub name: String,
    /// `sha256:<hex>` of the image bytes.
    pub digest: String,
    /// The configuration an instance is built from, image path excluded.
    pub config: serde_json::Value,
}

impl Deployed {
    /// Describe `spec` as deployed from an image with `digest`; `sensors` are the stack's
    /// sensor declarations (a container using a sensor whose declaration changed restarts).
    pub fn new(spec: &ContainerSpec, digest: &str, sensors: &BTreeMap<String, SensorSpec>) -> Self {
        let mut config = serde_json::to_value(spec).unwrap_or(serde_json::Value::Null);
        if let Some(map) = config.as_object_mut() {
            map.remove("image");
            let used: BTreeMap<&String, Option<&SensorSpec>> =
                spec.sensors.iter().map(|name| (name, sensors.get(name))).collect();
            map.insert(
                "sensor_declarations".into(),
                serde_json::to_value(used).unwrap_or(serde_json::Value::Null),
            );
        }
        Deployed {
            name: spec.name.to_string(),
            digest: digest.to_owned(),
            config,
        }
    }

    /// Every container of `stack`, given the digest of each image path or reference.
    pub fn all(stack: &Stack, digest_of: impl Fn(&ContainerSpec) -> String) -> Vec<Deployed> {
        stack
            .containers
            .iter()
            .map(|spec| Deployed::new(spec, &digest_of(spec), &stack.sensors))
            .collect()
    }
}

/// Why a container restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub image_changed: bool,
    /// Top-level keys whose value changed (`args`, `env`, `limits`, ...).
    pub changed_keys: Vec<String>,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.image_changed {
            parts.push("image changed".to_owned());
        }
        if !self.changed_keys.is_empty() {
            parts.push(format!("{} changed", self.changed_keys.join(", ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// What a reload does. Names are in the order the steps run: `stop` in reverse start
/// order (dependents before what they depend on), `restart` and `start` in the desired
/// file's start order (dependencies first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub stop: Vec<String>,
    pub restart: Vec<(String, Reason)>,
    pub start: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.stop.is_empty() && self.restart.is_empty() && self.start.is_empty()
    }

    /// One line per change: `+ added`, `- removed`, `~ changed (why)`.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        lines.extend(self.start.iter().map(|name| format!("+ {name}")));
        lines.extend(self.stop.iter().map(|name| format!("- {name}")));
        lines.extend(self.restart.iter().map(|(name, why)| format!("~ {name} ({why})")));
        lines
    }

    /// A one-line summary for events: `+a -b ~c`, or `no changes`.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "no changes".into();
        }
        let mut parts: Vec<String> = self.start.iter().map(|n| format!("+{n}")).collect();
        parts.extend(self.stop.iter().map(|n| format!("-{n}")));
        parts.extend(self.restart.iter().map(|(n, _)| format!("~{n}")));
        parts.join(" ")
    }
}

/// Compare what runs with what the file wants. Both lists are in start order.
pub fn diff(running: &[Deployed], desired: &[Deployed]) -> Plan {
    let now: HashMap<&str, &Deployed> = running.iter().map(|d| (d.name.as_str(), d)).collect();
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    let mut plan = Plan {
        stop: running
            .iter()
            .rev()
            .filter(|d| !wanted.contains(d.name.as_str()))
            .map(|d| d.name.clone())
            .collect(),
        ..Plan::default()
    };
    for want in desired {
        match now.get(want.name.as_str()) {
            None => plan.start.push(want.name.clone()),
            Some(have) => {
                let reason = Reason {
                    image_changed: have.digest != want.digest,
                    changed_keys: changed_keys(&have.config, &want.config),
                };
                if reason.image_changed || !reason.changed_keys.is_empty() {
                    plan.restart.push((want.name.clone(), reason));
                } else {
                    plan.unchanged.push(want.name.clone());
                }
            }
        }
    }
    plan
}

fn changed_keys(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    match (old.as_object(), new.as_object()) {
        (Some(old), Some(new)) => {
            let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            keys.into_iter()
                .filter(|key| old.get(*key) != new.get(*key))
                .map(|key| key.to_string())
                .collect()
        }
        _ if old != new => vec!["configuration".into()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(name: &str, digest: &str, config: serde_json::Value) -> Deployed {
        Deployed {
            name: name.into(),
            digest: digest.into(),
            config,
        }
    }

    #[test]
    fn identical_stacks_change_nothing() {
        let stack = vec![d("a", "sha256:1", json!({"args": []})), d("b", "sha256:2", json!({}))];
        let plan = diff(&stack, &stack);
        assert!(plan.is_empty());
        assert_eq!(plan.unchanged, ["a", "b"]);
        assert_eq!(plan.summary(), "no changes");
    }

    #[test]
    fn args_change_restarts_only_that_container() {
        let running = vec![
            d("a", "sha256:1", json!({"args": ["1"]})),
            d("b", "sha256:2", json!({"args": []})),
        ];
        let desired = vec![
            d("a", "sha256:1", json!({"args": ["2"]})),
            d("b", "sha256:2", json!({"args": []})),
        ];
        let plan = diff(&running, &desired);
        assert_eq!(plan.restart.len(), 1);
        assert_eq!(plan.restart[0].0, "a");
        assert_eq!(plan.restart[0].1.to_string(), "args changed");
        assert_eq!(plan.unchanged, ["b"]);
        assert_eq!(plan.lines(), ["~ a (args changed)"]);
    }

    #[test]
    fn new_bytes_restart_same_bytes_do_not() {
        let running = vec![d("a", "sha256:1", json!({})), d("b", "sha256:1", json!({}))];
        let desired = vec![d("a", "sha256:9", json!({})), d("b", "sha256:1", json!({}))];
        let plan = diff(&running, &desired);
        assert_eq!(plan.lines(), ["~ a (image changed)"]);
    }

    #[test]
    fn added_and_removed_in_dependency_order() {
        // Both lists are in start order, as the supervisor gives them: `z-api` depends on
        // `a-db`, `a-app` on `z-store`. The names sort the other way round, so an order
        // by name (or by position reversed wrongly) fails.
        let running = vec![
            d("base", "sha256:1", json!({})),
            d("a-db", "sha256:1", json!({})),
            d("z-api", "sha256:1", json!({})),
        ];
        let desired = vec![
            d("base", "sha256:1", json!({})),
            d("z-store", "sha256:1", json!({})),
            d("a-app", "sha256:1", json!({})),
        ];
        let plan = diff(&running, &desired);
        assert_eq!(plan.stop, ["z-api", "a-db"], "dependents stop first");
        assert_eq!(plan.start, ["z-store", "a-app"], "dependencies start first");
        assert_eq!(plan.summary(), "+z-store +a-app -z-api -a-db");
    }

    #[test]
    fn both_reasons_are_named() {
        let plan = diff(
            &[d("a", "sha256:1", json!({"env": {}}))],
            &[d("a", "sha256:2", json!({"env": {"X": "1"}, "limits": {}}))],
        );
        assert_eq!(plan.restart[0].1.to_string(), "image changed; env, limits changed");
    }

    #[test]
    fn positions_in_the_file_do_not_count() {
        let file = |prefix: &str| {
            format!(
                "{prefix}name: s\ncontainers:\n  a:\n    image: a.wasm\n    args: [x]\n    capabilities: [sensors]\n    sensors: [t]\nsensors:\n  t:\n    kind: rng\n    range: [0, 1]\n"
            )
        };
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.wasm"), b"\0asm\x01\0\0\0").expect("write");
        let env = HashMap::new();
        let opts = crate::spec::LoadOptions {
            env: &env,
            lookup_digest: &|_| None,
            resolve_reference: &crate::spec::no_registry,
        };
        let load = |text: &str| match crate::spec::load_str(text, &dir.path().join("shoal.yaml"), &opts) {
            Ok((stack, _)) => stack,
            Err(diagnostics) => panic!("{diagnostics:?}"),
        };
        let one = load(&file(""));
        let two = load(&file("# a comment\n\n"));
        let digest = |_: &ContainerSpec| "sha256:1".to_string();
        let plan = diff(&Deployed::all(&one, digest), &Deployed::all(&two, digest));
        assert!(plan.is_empty(), "{plan:?}");
    }
}
