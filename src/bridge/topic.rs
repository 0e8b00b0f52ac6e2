//! Topic mapping between the stack's prefix-matched topics and MQTT topics.
//!
//! * Export: a local topic under rule `local` becomes `remote + rest` (`rest` is what follows
//!   the prefix). Several matching rules: the longest `local` wins, so a specific rule can
//!   override a general one.
//! * Import: a broker topic matching the MQTT filter `remote` becomes `local + rest`, where
//!   `rest` is what follows the filter's literal part (the levels before its first
//!   wildcard). Several matching rules: the first in file order wins.
//!
//! MQTT topic syntax itself (filter matching, valid topic names) is the spec crate's
//! [`crate::spec::topic`], the same leaf the bridge decoder checks the file's rules with.

use crate::spec::topic::filter_literal_prefix;
pub use crate::spec::topic::{filter_matches, invalid_topic_name};
use crate::spec::{ExportRule, ImportRule};

/// The broker topic for a local topic, and the rule that exports it; `None` when no rule
/// covers it.
pub fn export_topic<'r>(rules: &'r [ExportRule], local_topic: &str) -> Option<(String, &'r ExportRule)> {
    let rule = rules
        .iter()
        .filter(|r| local_topic.starts_with(r.local.as_str()))
        .max_by_key(|r| r.local.len())?;
    let rest = &local_topic[rule.local.len()..];
    Some((format!("{}{rest}", rule.remote), rule))
}

/// The local topic for a broker topic, and the rule that imports it.
pub fn import_topic<'r>(rules: &'r [ImportRule], remote_topic: &str) -> Option<(String, &'r ImportRule)> {
    let rule = rules.iter().find(|r| filter_matches(&r.remote, remote_topic))?;
    let literal = filter_literal_prefix(&rule.remote);
    // `a/#` also matches `a` itself, which is shorter than the literal part `a/`.
    let rest = remote_topic.get(literal.len()..).unwrap_or("");
    Some((format!("{}{rest}", rule.local), rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(local: &str, remote: &str) -> ExportRule {
        ExportRule {
            local: local.into(),
            remote: remote.into(),
            qos: 1,
        }
    }

    fn import(remote: &str, local: &str) -> ImportRule {
        ImportRule {
            remote: remote.into(),
            local: local.into(),
            qos: 1,
        }
    }

    #[test]
    fn export_replaces_the_prefix_and_prefers_the_longest_rule() {
        let rules = [
            export("sensors/", "line-3/sensors/"),
            export("sensors/raw/", "raw/"),
            export("", "all/"),
        ];
        assert_eq!(export_topic(&rules, "sensors/t1").unwrap().0, "line-3/sensors/t1");
        assert_eq!(export_topic(&rules, "sensors/raw/7").unwrap().0, "raw/7");
        assert_eq!(export_topic(&rules, "other").unwrap().0, "all/other");
        assert!(export_topic(&rules[..2], "other").is_none());
        // Ocre prefixes are plain string prefixes, not level-aligned.
        assert_eq!(
            export_topic(&[export("temp", "t")], "temperature").unwrap().0,
            "terature"
        );
    }

    #[test]
    fn import_maps_the_literal_part_to_the_local_prefix() {
        let rules = [
            import("factory/commands/#", "commands/"),
            import("factory/+/alarms/#", "alarms/"),
            import("board-a/sensors/#", "board-a/sensors/"),
        ];
        assert_eq!(
            import_topic(&rules, "factory/commands/valve/1").unwrap().0,
            "commands/valve/1"
        );
        assert_eq!(import_topic(&rules, "factory/commands").unwrap().0, "commands/");
        assert_eq!(
            import_topic(&rules, "factory/line-3/alarms/hot").unwrap().0,
            "alarms/line-3/alarms/hot"
        );
        // A rule without `local` keeps the topic as it is.
        assert_eq!(
            import_topic(&rules, "board-a/sensors/7").unwrap().0,
            "board-a/sensors/7"
        );
        assert!(import_topic(&rules, "elsewhere/x").is_none());
        // First matching rule wins.
        let overlapping = [import("a/#", "first/"), import("a/b/#", "second/")];
        assert_eq!(import_topic(&overlapping, "a/b/c").unwrap().0, "first/b/c");
        // An exact filter maps exactly onto `local`.
        assert_eq!(
            import_topic(&[import("cmd/stop", "stop")], "cmd/stop").unwrap().0,
            "stop"
        );
    }
}
