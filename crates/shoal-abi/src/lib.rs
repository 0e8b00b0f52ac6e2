//! The guest ABI shoal serves, as one table.
//!
//! Guests built with the public Ocre SDK import these functions from module `env`. The
//! static import check (`shoal config`) and the runtime's linker are both built from
//! [`SERVED`], so a function cannot be served without being known to the check, or the
//! reverse. Capabilities are the grants a container's `capabilities:` list names; their
//! names are written here once and parsed with [`Capability::from_str`](std::str::FromStr).

use std::str::FromStr;

use serde::Serialize;

/// A fine-grained grant. `ocre:api` in the file expands to every capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Messaging,
    Timers,
    Sensors,
}

/// The name that grants every capability at once (the reference runtime's only grant).
pub const ALL_CAPABILITIES: &str = "ocre:api";

impl Capability {
    pub const ALL: [Capability; 3] = [Capability::Messaging, Capability::Timers, Capability::Sensors];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Messaging => "messaging",
            Capability::Timers => "timers",
            Capability::Sensors => "sensors",
        }
    }

    /// Every name a `capabilities:` list accepts: each capability, then [`ALL_CAPABILITIES`].
    pub fn names() -> impl Iterator<Item = &'static str> {
        Capability::ALL
            .iter()
            .map(|c| c.as_str())
            .chain(std::iter::once(ALL_CAPABILITIES))
    }

    /// The capabilities a name in a `capabilities:` list grants (`ocre:api`: all of them).
    pub fn parse_grant(name: &str) -> Option<&'static [Capability]> {
        if name == ALL_CAPABILITIES {
            return Some(&Capability::ALL);
        }
        let index = Capability::ALL.iter().position(|c| c.as_str() == name)?;
        Some(std::slice::from_ref(&Capability::ALL[index]))
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capability name that is not one of [`Capability::names`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCapability(pub String);

impl std::fmt::Display for UnknownCapability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown capability `{}`", self.0)
    }
}

impl std::error::Error for UnknownCapability {}

impl FromStr for Capability {
    type Err = UnknownCapability;

    /// One capability by its own name (`ocre:api`, which names several, is not one).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == name)
            .ok_or_else(|| UnknownCapability(name.to_string()))
    }
}

/// What an `env` import needs, for validate-time checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// shoal serves it; `capability` is the grant it needs (`None`: always available, or
    /// depends on arguments, like `ocre_register_dispatcher`).
    Served {
        capability: Option<Capability>,
    },
    /// Part of the Ocre API, not served yet.
    NotYet {
        reason: &'static str,
    },
    Unknown,
}

/// Every `env` function the runtime registers, with the capability it needs.
pub const SERVED: &[(&str, Option<Capability>)] = &[
    ("ocre_sleep", None),
    ("ocre_get_event", None),
    ("ocre_register_dispatcher", None),
    ("uname", None),
    ("ocre_publish_message", Some(Capability::Messaging)),
    ("ocre_subscribe_message", Some(Capability::Messaging)),
    ("ocre_messaging_free_module_event_data", Some(Capability::Messaging)),
    ("ocre_timer_create", Some(Capability::Timers)),
    ("ocre_timer_start", Some(Capability::Timers)),
    ("ocre_timer_stop", Some(Capability::Timers)),
    ("ocre_timer_delete", Some(Capability::Timers)),
    ("ocre_timer_get_remaining", Some(Capability::Timers)),
    ("ocre_sensors_init", Some(Capability::Sensors)),
    ("ocre_sensors_discover", Some(Capability::Sensors)),
    ("ocre_sensors_open", Some(Capability::Sensors)),
    ("ocre_sensors_get_handle", Some(Capability::Sensors)),
    ("ocre_sensors_get_channel_count", Some(Capability::Sensors)),
    ("ocre_sensors_get_channel_type", Some(Capability::Sensors)),
    ("ocre_sensors_read", Some(Capability::Sensors)),
    ("ocre_sensors_open_by_name", Some(Capability::Sensors)),
    ("ocre_sensors_get_handle_by_name", Some(Capability::Sensors)),
    ("ocre_sensors_get_channel_count_by_name", Some(Capability::Sensors)),
    ("ocre_sensors_get_channel_type_by_name", Some(Capability::Sensors)),
    ("ocre_sensors_read_by_name", Some(Capability::Sensors)),
    ("ocre_sensors_get_list", Some(Capability::Sensors)),
];

/// Classify an import from module `env`. `memory` is served by the runtime itself.
pub fn classify_env_import(name: &str) -> ImportKind {
    if name == "memory" {
        return ImportKind::Served { capability: None };
    }
    if let Some((_, cap)) = SERVED.iter().find(|(n, _)| *n == name) {
        return ImportKind::Served { capability: *cap };
    }
    if name.starts_with("ocre_gpio_") {
        return ImportKind::NotYet {
            reason: "GPIO is not supported yet",
        };
    }
    ImportKind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify() {
        assert_eq!(
            classify_env_import("ocre_publish_message"),
            ImportKind::Served {
                capability: Some(Capability::Messaging)
            }
        );
        assert_eq!(
            classify_env_import("ocre_sleep"),
            ImportKind::Served { capability: None }
        );
        assert!(matches!(
            classify_env_import("ocre_gpio_pin_set"),
            ImportKind::NotYet { .. }
        ));
        assert_eq!(classify_env_import("printf"), ImportKind::Unknown);
    }

    #[test]
    fn capability_names_parse_back() {
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>(), Ok(c));
            assert_eq!(Capability::parse_grant(c.as_str()), Some(&[c][..]));
        }
        assert_eq!(Capability::parse_grant("ocre:api"), Some(&Capability::ALL[..]));
        assert!("ocre:api".parse::<Capability>().is_err());
        assert_eq!(Capability::parse_grant("gpio"), None);
        assert_eq!(Capability::names().count(), Capability::ALL.len() + 1);
    }
}
