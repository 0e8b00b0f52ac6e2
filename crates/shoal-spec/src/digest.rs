//! Image digests: the one place that parses `sha256:<hex>`.
//!
//! A compose file pins an image from the store as `image: sha256:<64 hex>`, the store names
//! its files by the hex digits, and `ps`/`images` show the first twelve. Those strings used
//! to be cut apart with `strip_prefix("sha256:")` wherever one was needed; a checked
//! [`ImageDigest`] is parsed once, here, and carries its parts.

use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A SHA-256 image digest: 64 lowercase hex digits. Displayed (and serialized) as
/// `sha256:<hex>`, the form a compose file writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageDigest(String);

/// A string that is not a digest; the message is the one `shoal config` shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image digest `{0}`: expected `sha256:` and 64 lowercase hex digits")]
pub struct InvalidDigest(pub String);

impl ImageDigest {
    /// What a digest reference starts with.
    pub const PREFIX: &'static str = "sha256:";

    /// The digest of an image's bytes.
    pub fn of(bytes: &[u8]) -> Self {
        let hash = Sha256::digest(bytes);
        ImageDigest(hash.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A digest from its 64 hex digits alone (how the store names its files).
    pub fn from_hex(hex: &str) -> Result<Self, InvalidDigest> {
        if Self::is_hex(hex) {
            Ok(ImageDigest(hex.to_string()))
        } else {
            Err(InvalidDigest(hex.to_string()))
        }
    }

    /// Whether `s` is 64 lowercase hex digits.
    pub fn is_hex(s: &str) -> bool {
        s.len() == 64 && Self::all_hex(s)
    }

    /// The hex digits a full or partial digest reference gives (`sha256:1e8f...`, `1e8fcd21`),
    /// for finding a stored image by a prefix as `docker` does; `None` when `text` cannot be
    /// one (empty, too long, or not lowercase hex), so the caller looks for a name instead.
    /// A prefix is not a digest, so this gives text, not an [`ImageDigest`].
    pub fn hex_prefix_of(text: &str) -> Option<&str> {
        let hex = text.strip_prefix(Self::PREFIX).unwrap_or(text);
        (!hex.is_empty() && hex.len() <= 64 && Self::all_hex(hex)).then_some(hex)
    }

    fn all_hex(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// The 64 hex digits, without `sha256:`.
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// The first 12 digits, as `docker images` shows them.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl FromStr for ImageDigest {
    type Err = InvalidDigest;

    /// `sha256:` and 64 lowercase hex digits, as a compose file writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix(Self::PREFIX)
            .filter(|hex| Self::is_hex(hex))
            .map(|hex| ImageDigest(hex.to_string()))
            .ok_or_else(|| InvalidDigest(s.to_string()))
    }
}

impl std::fmt::Display for ImageDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0)
    }
}

impl serde::Serialize for ImageDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_once_and_shows_its_parts() {
        let digest: ImageDigest = format!("sha256:{HEX}").parse().unwrap();
        assert_eq!(digest, ImageDigest::of(b""));
        assert_eq!(digest.hex(), HEX);
        assert_eq!(digest.short(), "e3b0c44298fc");
        assert_eq!(digest.to_string(), format!("sha256:{HEX}"));
        assert_eq!(ImageDigest::from_hex(HEX), Ok(digest.clone()));
        assert_eq!(serde_json::to_string(&digest).unwrap(), format!("\"sha256:{HEX}\""));
    }

    #[test]
    fn hex_prefixes_for_finding_images() {
        assert_eq!(ImageDigest::hex_prefix_of("e3b0c442"), Some("e3b0c442"));
        assert_eq!(ImageDigest::hex_prefix_of("sha256:e3b0"), Some("e3b0"));
        assert_eq!(ImageDigest::hex_prefix_of(&format!("sha256:{HEX}")), Some(HEX));
        for not_one in ["", "sha256:", "hello.wasm", "E3B0", &format!("{HEX}0")] {
            assert_eq!(ImageDigest::hex_prefix_of(not_one), None, "{not_one}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_digest() {
        for bad in [
            HEX.to_string(),
            "sha256:abc".into(),
            format!("sha256:{}", HEX.to_uppercase()),
            format!("sha512:{HEX}"),
        ] {
            let err = bad.parse::<ImageDigest>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid image digest `{bad}`: expected `sha256:` and 64 lowercase hex digits")
            );
        }
        assert!(ImageDigest::from_hex(&format!("sha256:{HEX}")).is_err());
        assert!(ImageDigest::from_hex(&HEX[1..]).is_err());
    }
}
