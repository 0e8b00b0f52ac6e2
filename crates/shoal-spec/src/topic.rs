//! MQTT topic syntax, in one place for the two sides that need it: the bridge decoder
//! checks the prefixes and filters a file writes ([`check_topic_prefix`], [`check_filter`]),
//! and the running bridge (`src/bridge/topic.rs` in the binary) matches broker topics
//! against the same filters ([`filter_matches`], [`filter_literal_prefix`]) and refuses
//! mapped names a broker would reject ([`invalid_topic_name`]). Pure functions on strings:
//! no MQTT client here.

/// A topic prefix or filter that MQTT does not allow, with a hint for the file's author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TopicError {
    pub message: String,
    pub hint: Option<String>,
}

impl TopicError {
    fn new(message: String, hint: Option<String>) -> Self {
        TopicError { message, hint }
    }
}

/// A prefix of MQTT topic names: no wildcards, not a `$` system topic.
pub fn check_topic_prefix(prefix: &str) -> Result<(), TopicError> {
    if prefix.contains(['+', '#']) {
        return Err(TopicError::new(
            format!(
                "topic prefix `{prefix}` contains an MQTT wildcard (`+` or `#`); a published topic cannot hold one"
            ),
            Some(format!(
                "write `{}`",
                prefix.split(['+', '#']).next().unwrap_or_default()
            )),
        ));
    }
    if prefix.starts_with('$') {
        return Err(TopicError::new(
            format!("topic prefix `{prefix}` starts with `$`, which brokers reserve for their own topics"),
            None,
        ));
    }
    Ok(())
}

/// An MQTT topic filter: `+` a whole level, `#` a whole last level.
pub fn check_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::new(
            "empty MQTT filter".into(),
            Some("use `#` for every topic".into()),
        ));
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(TopicError::new(
                format!("invalid MQTT filter `{filter}`: `#` must be a whole level at the end"),
                Some("for example `factory/#`".into()),
            ));
        }
        if level.contains('+') && *level != "+" {
            return Err(TopicError::new(
                format!("invalid MQTT filter `{filter}`: `+` must be a whole level"),
                Some("for example `factory/+/temperature`".into()),
            ));
        }
    }
    Ok(())
}

/// The part of a filter before its first wildcard level (`a/b/` for `a/b/+/c/#`; the
/// whole filter when it has none).
pub fn filter_literal_prefix(filter: &str) -> &str {
    let mut end = 0;
    for level in filter.split_inclusive('/') {
        let bare = level.strip_suffix('/').unwrap_or(level);
        if bare == "+" || bare == "#" {
            return &filter[..end];
        }
        end += level.len();
    }
    filter
}

/// MQTT filter matching: `+` is exactly one level, a final `#` is any number of levels
/// (including none: `a/#` matches `a`). Topics starting with `$` match no filter that
/// starts with a wildcard, as the MQTT specification requires.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Why a topic name (not a filter) cannot be published on an MQTT broker.
pub fn invalid_topic_name(topic: &str) -> Option<&'static str> {
    if topic.is_empty() {
        Some("it is empty")
    } else if topic.contains(['+', '#']) {
        Some("it contains an MQTT wildcard (`+` or `#`)")
    } else if topic.contains('\0') {
        Some("it contains a NUL character")
    } else if topic.len() > usize::from(u16::MAX) {
        Some("it is longer than 65535 bytes")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        for good in ["#", "a/#", "+", "a/+/b", "+/+", "a/b", "a//b", "/"] {
            assert!(check_filter(good).is_ok(), "{good}");
        }
        for bad in ["", "a#", "a/#/b", "a+/b", "a/b+", "#/a"] {
            assert!(check_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(filter_literal_prefix("factory/commands/#"), "factory/commands/");
        assert_eq!(filter_literal_prefix("a/+/b/#"), "a/");
        assert_eq!(filter_literal_prefix("#"), "");
        assert_eq!(filter_literal_prefix("+/x"), "");
        assert_eq!(filter_literal_prefix("a/b"), "a/b");
    }

    #[test]
    fn topic_prefixes() {
        assert!(check_topic_prefix("line-3/sensors/").is_ok());
        assert!(check_topic_prefix("").is_ok());
        assert!(check_topic_prefix("a/#").unwrap_err().hint.unwrap().contains("`a/`"));
        assert!(check_topic_prefix("$SYS/").is_err());
    }

    #[test]
    fn invalid_names_for_a_broker() {
        assert!(invalid_topic_name("a/b").is_none());
        assert!(invalid_topic_name("").is_some());
        assert!(invalid_topic_name("a/#").is_some());
        assert!(invalid_topic_name("a/+/b").is_some());
        assert!(invalid_topic_name(&"x".repeat(70_000)).is_some());
    }

    #[test]
    fn filters_match_like_mqtt() {
        assert!(filter_matches("a/#", "a/b/c"));
        assert!(filter_matches("a/#", "a"));
        assert!(filter_matches("#", "anything/at/all"));
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(!filter_matches("a/+/c", "a/b/d"));
        assert!(!filter_matches("a/+/c", "a/b/c/d"));
        assert!(filter_matches("a/+", "a/"));
        assert!(!filter_matches("a/+", "a"));
        assert!(filter_matches("+/+", "/x"));
        assert!(filter_matches("a/b", "a/b"));
        assert!(!filter_matches("a/b", "a/bc"));
        assert!(!filter_matches("a/b", "a/b/c"));
        assert!(!filter_matches("#", "$SYS/broker/load"));
        assert!(!filter_matches("+/broker", "$SYS/broker"));
        assert!(filter_matches("$SYS/#", "$SYS/broker"));
    }
}
