//! Names of projects, containers and bridges: the one rule for what a valid name is, and the
//! one way to derive a project name from a folder.
//!
//! Container names become replica names, log prefixes and file names, and the project name
//! becomes the control socket's name, so they are kept plain: `[a-z0-9][a-z0-9_-]*`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// True for names made of `[a-z0-9][a-z0-9_-]*` (container names become replica names, log
/// prefixes and file names, so keep them plain).
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A valid name derived from arbitrary text (folder names may have capitals or spaces).
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
        trimmed.to_string()
    }
}

/// A text that is not a valid name (see [`is_valid_name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid name `{0}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit")]
pub struct InvalidName(pub String);

/// A project's name, checked. A file's `name:` wins; otherwise the compose file's folder
/// gives it ([`ProjectName::from_dir`]), so `shoal up` and the clients that find the running
/// stack by its file (`ps`, `logs`, `down`) agree on the name without reading each other.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProjectName(String);

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

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for ProjectName {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if is_valid_name(s) {
            Ok(ProjectName(s.to_string()))
        } else {
            Err(InvalidName(s.to_string()))
        }
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ProjectName {
    fn as_ref(&self) -> &str {
        &self.0
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
        assert_eq!("Edge".parse::<ProjectName>(), Err(InvalidName("Edge".into())));
    }
}
