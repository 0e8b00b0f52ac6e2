//! The guest ABI shoal serves, as one table.
//!
//! Guests built with the public Ocre SDK import these functions from module `env`. The
//! static import check (`shoal config`) and the runtime's linker are both built from
//! [`HOST_FUNCTIONS`] (one named row per function, see [`functions`]), so a function
//! cannot be served without being known to the check, or the reverse; a test in the
//! runtime crate compares the table with what its linker registers. Capabilities are the
//! grants a container's `capabilities:` list names; their names are written here once and
//! parsed with [`Capability::from_str`](std::str::FromStr). [`module`] tells image formats
//! apart and validates modules, for the compose-file check and the image store alike.

pub mod functions;
pub mod module;
pub mod own_memory;
mod sections;
pub mod shape;
pub mod wasi;

use std::str::FromStr;

pub use functions::*;

use serde::Serialize;

/// A fine-grained grant. `ocre:api` in the file expands to every capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Messaging,
    Timers,
    Sensors,
    Gpio,
}

/// The name that grants every capability at once (the reference runtime's only grant).
pub const ALL_CAPABILITIES: &str = "ocre:api";

impl Capability {
    pub const ALL: [Capability; 4] = [
        Capability::Messaging,
        Capability::Timers,
        Capability::Sensors,
        Capability::Gpio,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Messaging => "messaging",
            Capability::Timers => "timers",
            Capability::Sensors => "sensors",
            Capability::Gpio => "gpio",
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
    Unknown,
}

/// Classify an import from module `env`. `memory` is served by the runtime itself.
pub fn classify_env_import(name: &str) -> ImportKind {
    if name == "memory" {
        return ImportKind::Served { capability: None };
    }
    if let Some(f) = HostFn::find(name) {
        return ImportKind::Served {
            capability: f.capability,
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
        assert_eq!(
            classify_env_import("ocre_gpio_pin_set"),
            ImportKind::Served {
                capability: Some(Capability::Gpio)
            }
        );
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
        assert_eq!(Capability::parse_grant("gpio"), Some(&[Capability::Gpio][..]));
        assert_eq!(Capability::parse_grant("gpios"), None);
        assert_eq!(Capability::names().count(), Capability::ALL.len() + 1);
    }

    #[test]
    fn every_row_is_listed_once() {
        let mut names: Vec<&str> = HOST_FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HOST_FUNCTIONS.len(), "a name is listed twice");
        assert_eq!(HostFn::find("ocre_sensors_read"), Some(&OCRE_SENSORS_READ));
        assert_eq!(OCRE_SENSORS_READ.signature(), "(param i32 i32) (result f64)");
        assert_eq!(OCRE_SENSORS_INIT.signature(), "(result i32)");
    }

    #[test]
    fn the_static_check_classifies_every_row_as_the_table_says() {
        for f in HOST_FUNCTIONS {
            assert_eq!(
                classify_env_import(f.name),
                ImportKind::Served {
                    capability: f.capability
                },
                "{}",
                f.name
            );
        }
    }
}
