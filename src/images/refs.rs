//! Registry references the store has pulled: each tag or digest reference resolved once, at
//! pull time, to the registry's digest and to the image bytes kept here.
//!
//! ```text
//! refs/<sha256 of the reference>.json   {"reference", "pinned", "digest", "platform"}
//! refs/<sha256 of the reference>.error  the last failed pull's error, in words
//! ```
//! Loading a compose file reads these and never asks the registry, so a stack whose images
//! were pulled runs while the registry is down, and every board that pulled the same
//! `ref@sha256:` runs the same bytes.

use std::fs;
use std::path::PathBuf;

use super::{write_atomically, ImageDigest, ImageError, ImageStore};
use crate::spec::ResolvedImage;

/// One pulled reference.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PulledRef {
    /// As given to `pull` (or written in the compose file).
    pub reference: String,
    /// The registry's digest of the manifest or index the reference named.
    #[serde(with = "digest_text")]
    pub pinned: ImageDigest,
    /// The image bytes in the store (`images/<hex>.wasm` or `.cwasm`).
    #[serde(with = "digest_text")]
    pub digest: ImageDigest,
    /// `wasm` for a `.wasm` layer, else the platform of the `.cwasm` (`linux/arm64`).
    pub platform: String,
}

/// What a compose file's registry image resolves to once pulled: the registry's digest
/// (for `ref@sha256:` pinning) and the local bytes' digest (to load them).
impl From<PulledRef> for ResolvedImage {
    fn from(pulled: PulledRef) -> Self {
        ResolvedImage {
            pinned: pulled.pinned,
            digest: pulled.digest,
        }
    }
}

/// `sha256:<hex>` in the record, parsed back with its checks.
mod digest_text {
    use serde::Deserialize;

    use super::ImageDigest;

    pub fn serialize<S: serde::Serializer>(d: &ImageDigest, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ImageDigest, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl ImageStore {
    fn refs_dir(&self) -> PathBuf {
        self.root.join("refs")
    }

    /// The record file of a reference (named by its hash: references hold `/` and `:`).
    pub(super) fn reference_path(&self, reference: &str) -> PathBuf {
        self.refs_dir()
            .join(format!("{}.json", ImageDigest::of(reference.as_bytes()).hex()))
    }

    fn error_path(&self, reference: &str) -> PathBuf {
        self.reference_path(reference).with_extension("error")
    }

    /// Every pulled reference (records that cannot be read are skipped).
    pub fn references(&self) -> Vec<PulledRef> {
        let Ok(entries) = fs::read_dir(self.refs_dir()) else {
            return Vec::new();
        };
        let mut refs: Vec<PulledRef> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect();
        refs.sort_by(|a, b| a.reference.cmp(&b.reference));
        refs
    }

    /// Record a successful pull (and forget an earlier failure).
    pub fn record_reference(&self, pulled: &PulledRef) -> Result<(), ImageError> {
        let json = serde_json::to_vec_pretty(pulled).unwrap_or_default();
        write_atomically(&self.reference_path(&pulled.reference), &json)?;
        let _ = fs::remove_file(self.error_path(&pulled.reference));
        Ok(())
    }

    /// Record why a pull failed, for the compose file's error at the `image:` line.
    pub fn record_pull_error(&self, reference: &str, error: &str) {
        let _ = write_atomically(&self.error_path(reference), error.as_bytes());
    }

    /// The pulled image of a reference: by the reference as written, else (for
    /// `name@sha256:<d>`) any pull of the same repository whose registry digest is `<d>`.
    pub fn find_reference(&self, reference: &str) -> Option<PulledRef> {
        let read = |path: PathBuf| {
            fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice::<PulledRef>(&b).ok())
        };
        let present = |r: &PulledRef| self.path_of(&r.digest).is_some();
        if let Some(found) = read(self.reference_path(reference)).filter(present) {
            return Some(found);
        }
        let (name, digest) = reference.split_once('@')?;
        let repository = |r: &str| {
            let r = r.split_once('@').map_or(r, |(n, _)| n);
            // `host/repo:tag` -> `host/repo` (a `:` after the last `/` is a tag).
            match r.rfind(':') {
                Some(i) if i > r.rfind('/').unwrap_or(0) => r[..i].to_string(),
                _ => r.to_string(),
            }
        };
        self.references()
            .into_iter()
            .filter(present)
            .find(|r| r.pinned.to_string() == digest && repository(&r.reference) == repository(name))
    }

    /// What `LoadOptions::resolve_reference` needs: the pinned and local digests, or why
    /// not (never pulled, or the last pull's error in words).
    pub fn resolve_reference(&self, reference: &str) -> Result<ResolvedImage, String> {
        if let Some(found) = self.find_reference(reference) {
            return Ok(found.into());
        }
        match fs::read_to_string(self.error_path(reference)) {
            Ok(error) => Err(format!(
                "image {reference} is not in the local store; its last pull failed: {}",
                error.trim()
            )),
            Err(_) => Err(format!("image {reference} has never been pulled to this board")),
        }
    }
}
