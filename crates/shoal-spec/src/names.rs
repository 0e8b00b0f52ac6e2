//! Names of projects, containers and bridges: the one rule for what a valid name is, and the
//! one way to derive a project name from a folder.
//!
//! Container names become replica names, log prefixes and file names, and the project name
//! becomes the control socket's name, so they are kept plain: `[a-z0-9][a-z0-9_-]*`, at most
//! [`MAX_NAME_LEN`] characters.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::str::FromStr;

/// Longest project or container name. The project name becomes the control socket's file
/// name, `<runtime dir>/<project>.sock`, and the kernel limits a socket path to 107 bytes
/// (`sun_path` is 108 with its NUL): 63 leaves room for `/run/user/<uid>/shoal/` or
/// `/tmp/shoal-<uid>/` and `.sock`. Container names (replicas included) follow the same rule
/// so a name that is fine in one place is fine in every place.
pub const MAX_NAME_LEN: usize = 63;

/// True for names made of `[a-z0-9][a-z0-9_-]*` of at most [`MAX_NAME_LEN`] characters
/// (container names become replica names, log prefixes and file names, so keep them plain).
pub fn is_valid_name(s: &str) -> bool {
    check_name(s).is_ok()
}

/// Checks `s` against the name rule, saying which part it breaks.
pub fn check_name(s: &str) -> Result<(), InvalidName> {
    let mut chars = s.chars();
    let plain = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !plain {
        Err(InvalidName::Characters(s.to_string()))
    } else if s.len() > MAX_NAME_LEN {
        Err(InvalidName::TooLong(s.to_string()))
    } else {
        Ok(())
    }
}

/// A valid name derived from arbitrary text (folder names may have capitals or spaces, and
/// may be longer than [`MAX_NAME_LEN`]: the rest is cut off).
pub fn sanitize_name(s: &str) -> String {
    let lowered: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let trimmed = lowered.trim_start_matches(['_', '-']);
    if trimmed.is_empty() {
        "default".to_string()
    } else {
        // Only ASCII is left, so any byte index is a character boundary.
        trimmed[..trimmed.len().min(MAX_NAME_LEN)].to_string()
    }
}

/// A text that is not a valid name (see [`check_name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("invalid name `{0}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit")]
    Characters(String),
    #[error("name `{0}` is too long ({len} characters; at most {MAX_NAME_LEN})", len = .0.len())]
    TooLong(String),
}

impl InvalidName {
    /// What to do about it, for the diagnostics and flag errors that report it.
    pub fn hint(&self) -> String {
        match self {
            InvalidName::Characters(s) => format!("for example `{}`", sanitize_name(s)),
            InvalidName::TooLong(_) => format!(
                "shorten it to {MAX_NAME_LEN} characters or fewer: a project's name becomes its control socket's file name, and the kernel limits a socket's path to 107 bytes"
            ),
        }
    }
}

/// The newtype plumbing both checked names share: construction only through [`check_name`],
/// and read access as a `str` everywhere (so most code handles them as it handled `String`).
macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(into = "String", try_from = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                check_name(s).map(|()| $name(s.to_string()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                check_name(&s).map(|()| $name(s))
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

checked_name!(
    /// A project's name, checked. A file's `name:` wins; otherwise the compose file's folder
    /// gives it ([`ProjectName::from_dir`]), so `shoal up` and the clients that find the
    /// running stack by its file (`ps`, `logs`, `down`) agree on the name without reading each
    /// other.
    ProjectName
);

checked_name!(
    /// A container's name, checked: a `containers:` key, or a replica's `<key>-<n>`.
    ContainerName
);

impl ProjectName {
    /// The name for a project whose compose file is in `dir`: the folder's own name, made
    /// valid (`My Stack` -> `mystack`; `default` when nothing is left).
    pub fn from_dir(dir: &Path) -> Self {
        let folder = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        ProjectName(sanitize_name(&folder))
    }
}

impl ContainerName {
    /// Name of replica `i` (1-based) of this container, e.g. `probe-2`; refused when the
    /// suffix makes it longer than [`MAX_NAME_LEN`].
    pub fn replica(&self, i: u32) -> Result<ContainerName, InvalidName> {
        format!("{self}-{i}").parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for good in ["a", "app", "probe-2", "x_y", "0day"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "App", "-a", "_a", "a b", "a.b", "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn project_names_from_folders() {
        assert_eq!(ProjectName::from_dir(Path::new("/srv/My Stack")).as_str(), "mystack");
        assert_eq!(ProjectName::from_dir(Path::new("/srv/--edge_1")).as_str(), "edge_1");
        assert_eq!(ProjectName::from_dir(Path::new("/")).as_str(), "default");
        assert_eq!(ProjectName::from_dir(Path::new("/tmp/Ünïcode")).as_str(), "ncode");
    }

    #[test]
    fn project_names_parse_checked() {
        assert_eq!("edge-7".parse::<ProjectName>().unwrap().to_string(), "edge-7");
        assert_eq!(
            "Edge".parse::<ProjectName>(),
            Err(InvalidName::Characters("Edge".into()))
        );
    }

    #[test]
    fn names_have_a_maximum_length() {
        let longest = "a".repeat(MAX_NAME_LEN);
        assert_eq!(longest.parse::<ProjectName>().unwrap().len(), MAX_NAME_LEN);
        assert_eq!(longest.parse::<ContainerName>().unwrap().as_str(), longest);
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            too_long.parse::<ProjectName>(),
            Err(InvalidName::TooLong(too_long.clone()))
        );
        let message = ContainerName::try_from("b".repeat(120)).unwrap_err().to_string();
        assert!(
            message.contains("120 characters") && message.contains("at most 63"),
            "{message}"
        );
        assert!(InvalidName::TooLong(too_long).hint().contains("socket"));
        // A folder name is cut to fit rather than refused.
        let folder = ProjectName::from_dir(Path::new(&format!("/srv/{}", "x".repeat(200))));
        assert_eq!(folder.len(), MAX_NAME_LEN);
        // The kernel's socket path limit (107 bytes) holds the longest name in the usual places.
        let socket = format!("/run/user/4294967295/shoal/{longest}.sock");
        assert!(socket.len() <= 107, "{} bytes", socket.len());
    }

    #[test]
    fn replica_names_keep_the_rule() {
        let probe: ContainerName = "probe".parse().unwrap();
        assert_eq!(probe.replica(2).unwrap(), "probe-2");
        let long: ContainerName = "p".repeat(MAX_NAME_LEN - 1).parse().unwrap();
        assert!(long.replica(9).is_err(), "a suffix past the limit is refused");
    }

    #[test]
    fn checked_names_read_as_strings() {
        let name: ContainerName = "collector".parse().unwrap();
        assert_eq!(name, "collector");
        assert_eq!("collector", name);
        assert_eq!(name, *"collector");
        assert_ne!(name, "other");
        assert_eq!(name, "collector".to_string());
        assert!(name.starts_with("coll"), "derefs to str");
        let set: std::collections::BTreeSet<ContainerName> = [name.clone()].into();
        assert!(set.contains("collector"), "borrows as str");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"collector\"");
        let back: ContainerName = serde_json::from_str("\"collector\"").unwrap();
        assert_eq!(back, name);
        assert!(serde_json::from_str::<ProjectName>("\"Bad Name\"").is_err());
        assert!("".parse::<ContainerName>().is_err());
    }
}
