//! `shoal images pull REF`: manifest (or index, then the entry for this shoal), then the one
//! layer, checked against its digest, written to the store through a temporary file and a
//! rename, and only then recorded under the reference.

use oci_client::manifest::OciDescriptor;
use oci_client::Reference;
use serde_json::Value;

use super::{
    host_platform, parse_reference, registry_error, with_client, RegistryError, CWASM_LAYER_MEDIA_TYPE,
    INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, MAX_MANIFEST_BYTES, WASM_LAYER_MEDIA_TYPE,
};
use crate::images::refs::PulledRef;
use crate::images::{precompiled, validate_wasm, write_atomically, ImageDigest, ImageStore};
use crate::spec::image_file::MAX_IMAGE_BYTES;

/// Docker's manifest types, accepted so an artifact pushed by older tools still pulls.
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Pull `reference` into `store` and record it. A failure is recorded too (its words are
/// what the compose file's error shows at the `image:` line) and leaves the store as it
/// was: no partial image, the image pulled before kept.
pub fn pull(store: &ImageStore, reference: &str) -> Result<PulledRef, RegistryError> {
    let result = parse_reference(reference).and_then(|parsed| pull_parsed(store, reference, &parsed));
    match &result {
        Ok(pulled) => store.record_reference(pulled)?,
        Err(e) => store.record_pull_error(reference, &e.to_string()),
    }
    result
}

fn pull_parsed(store: &ImageStore, reference: &str, parsed: &Reference) -> Result<PulledRef, RegistryError> {
    let auth = super::auth::credentials(parsed.resolve_registry());
    let (pinned, bytes, platform) = with_client(parsed, async |client| {
        let accepted = [MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE, DOCKER_MANIFEST, DOCKER_LIST];
        let (raw, _) = client
            .pull_manifest_raw(parsed, &auth, &accepted)
            .await
            .map_err(|e| registry_error(reference, e))?;
        let pinned = checked_manifest(reference, &raw, parsed.digest())?;
        let top: Value = json(reference, &raw)?;
        let (manifest, platform) = if top.get("manifests").is_some() {
            let (digest, platform) = choose_entry(reference, &top)?;
            let by_digest = parsed.clone_with_digest(digest.clone());
            let (raw, _) = client
                .pull_manifest_raw(&by_digest, &auth, &accepted)
                .await
                .map_err(|e| registry_error(reference, e))?;
            checked_manifest(reference, &raw, Some(digest.as_str()))?;
            (json(reference, &raw)?, platform)
        } else {
            (top, "wasm".to_string())
        };
        let layer = wasm_layer(reference, &manifest)?;
        let mut capped = Capped {
            bytes: Vec::with_capacity(usize::try_from(layer.size).unwrap_or(0)),
            cap: u64::try_from(layer.size).unwrap_or(0),
        };
        client
            .pull_blob(parsed, &layer, &mut capped)
            .await
            .map_err(|e| registry_error(reference, e))?;
        let bytes = capped.bytes;
        // oci-client checked the digest as it read; check again on what is stored.
        let actual = ImageDigest::of(&bytes);
        if actual.to_string() != layer.digest {
            return Err(RegistryError::Digest {
                reference: reference.to_string(),
                expected: layer.digest.clone(),
                actual: actual.to_string(),
            });
        }
        Ok((pinned, bytes, platform))
    })?;
    let digest = ImageDigest::of(&bytes);
    let ext = if platform == "wasm" { "wasm" } else { "cwasm" };
    let path = store.images_dir().join(format!("{}.{ext}", digest.hex()));
    if ext == "wasm" {
        validate_wasm(&path, &bytes)?;
    } else if !precompiled::is_precompiled(&bytes) {
        return Err(RegistryError::Layout {
            reference: reference.to_string(),
            message: "its .cwasm layer is not a wasmtime precompiled image".into(),
        });
    }
    if !path.is_file() {
        write_atomically(&path, &bytes)?;
    }
    let name = store.images_dir().join(format!("{}.name", digest.hex()));
    if !name.is_file() {
        write_atomically(&name, reference.as_bytes())?;
    }
    Ok(PulledRef {
        reference: reference.to_string(),
        pinned,
        digest,
        platform,
    })
}

/// The digest of a manifest's bytes, which must be what the reference pinned, if it did.
fn checked_manifest(reference: &str, raw: &[u8], wanted: Option<&str>) -> Result<ImageDigest, RegistryError> {
    if raw.len() > MAX_MANIFEST_BYTES {
        return Err(RegistryError::Layout {
            reference: reference.to_string(),
            message: format!("its manifest is {} bytes, more than a manifest can be", raw.len()),
        });
    }
    let digest = ImageDigest::of(raw);
    match wanted {
        Some(wanted) if wanted != digest.to_string() => Err(RegistryError::Digest {
            reference: reference.to_string(),
            expected: wanted.to_string(),
            actual: digest.to_string(),
        }),
        _ => Ok(digest),
    }
}

fn json(reference: &str, raw: &[u8]) -> Result<Value, RegistryError> {
    serde_json::from_slice(raw).map_err(|e| RegistryError::Layout {
        reference: reference.to_string(),
        message: format!("its manifest is not JSON: {e}"),
    })
}

/// The index entry this shoal runs: with the compiler, the `.wasm` (else the `.cwasm` of
/// this platform); without, the `.cwasm` of this platform only. Returns its digest and
/// `wasm` or the platform.
fn choose_entry(reference: &str, index: &Value) -> Result<(String, String), RegistryError> {
    let host = host_platform();
    let entries: Vec<(String, String)> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let digest = m.get("digest")?.as_str()?.to_string();
            let p = m.get("platform")?;
            let platform = format!("{}/{}", p.get("os")?.as_str()?, p.get("architecture")?.as_str()?);
            Some((digest, platform))
        })
        .collect();
    let wasm = entries.iter().find(|(_, p)| p.ends_with("/wasm"));
    let native = entries.iter().find(|(_, p)| *p == host);
    let chosen = if cfg!(feature = "compiler") {
        wasm.map(|(d, _)| (d.clone(), "wasm".to_string()))
            .or_else(|| native.cloned())
    } else {
        native.cloned()
    };
    chosen.ok_or_else(|| RegistryError::NoPlatform {
        reference: reference.to_string(),
        wanted: if cfg!(feature = "compiler") {
            format!("the .wasm or a .cwasm for {host}")
        } else {
            format!("a .cwasm for {host} (this shoal has no compiler)")
        },
        platform: host.clone(),
        available: if entries.is_empty() {
            "no platforms".into()
        } else {
            entries.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>().join(", ")
        },
    })
}

/// The module layer of a manifest: `application/wasm` or a shoal `.cwasm`, within the size
/// shoal reads.
fn wasm_layer(reference: &str, manifest: &Value) -> Result<OciDescriptor, RegistryError> {
    let layout = |message: String| RegistryError::Layout {
        reference: reference.to_string(),
        message,
    };
    let layers: Vec<OciDescriptor> = serde_json::from_value(manifest["layers"].clone())
        .map_err(|e| layout(format!("its manifest has no readable `layers`: {e}")))?;
    let layer = layers
        .into_iter()
        .find(|l| l.media_type == WASM_LAYER_MEDIA_TYPE || l.media_type == CWASM_LAYER_MEDIA_TYPE)
        .ok_or_else(|| layout(format!("no layer of media type `{WASM_LAYER_MEDIA_TYPE}`")))?;
    if u64::try_from(layer.size).map_or(true, |size| size > MAX_IMAGE_BYTES) {
        return Err(layout(format!(
            "its module layer is {} bytes; shoal reads images up to {} MiB",
            layer.size,
            MAX_IMAGE_BYTES >> 20
        )));
    }
    Ok(layer)
}

/// A download buffer that refuses more than the size the manifest declared, so a registry
/// cannot make shoal hold an endless stream (the digest is checked only at the end).
struct Capped {
    bytes: Vec<u8>,
    cap: u64,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if (self.bytes.len() + buf.len()) as u64 > self.cap {
            let e = std::io::Error::other("the registry sent more bytes than the manifest declares");
            return std::task::Poll::Ready(Err(e));
        }
        self.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
