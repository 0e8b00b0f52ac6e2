//! `shoal images push [--platform P]... FILE REF`: the `.wasm` in the CNCF wasm artifact
//! layout, and with platforms an OCI image index adding one `.cwasm` per platform (the
//! layout is described in the module above).

use oci_client::Reference;
use serde_json::{json, Value};

use super::{
    oci_arch, parse_reference, registry_error, with_client, RegistryError, CWASM_CONFIG_MEDIA_TYPE,
    CWASM_LAYER_MEDIA_TYPE, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, TARGET_ANNOTATION, WASM_CONFIG_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE,
};
use crate::images::{read_image, validate_wasm, ImageDigest};

/// One precompiled image to push beside the `.wasm`.
pub struct Platform {
    /// `linux/arm64`.
    pub platform: String,
    /// `aarch64-unknown-linux-gnu`.
    pub target: String,
    /// What `shoal images compile --target` made.
    pub cwasm: Vec<u8>,
}

impl Platform {
    /// The target triple for an OCI platform (`linux/arm64` -> `aarch64-unknown-linux-gnu`).
    pub fn target_of(platform: &str) -> Option<&'static str> {
        match platform {
            "linux/arm64" | "linux/arm64/v8" => Some("aarch64-unknown-linux-gnu"),
            "linux/amd64" => Some("x86_64-unknown-linux-gnu"),
            "linux/riscv64" => Some("riscv64gc-unknown-linux-gnu"),
            "linux/s390x" => Some("s390x-unknown-linux-gnu"),
            _ => None,
        }
    }
}

/// Push `file` (a `.wasm` module) as `reference`; returns the registry digest the tag now
/// names (of the manifest, or of the index when `platforms` is not empty).
pub fn push(file: &std::path::Path, reference: &str, platforms: &[Platform]) -> Result<ImageDigest, RegistryError> {
    let parsed = parse_reference(reference)?;
    let wasm = read_image(file)?;
    validate_wasm(file, &wasm)?;
    let auth = super::auth::credentials(parsed.resolve_registry());
    with_client(&parsed, async |client| {
        let blob = async |bytes: &[u8]| -> Result<Value, RegistryError> {
            let digest = ImageDigest::of(bytes).to_string();
            client
                .push_blob(&parsed, bytes.to_vec(), &digest)
                .await
                .map_err(|e| registry_error(reference, e))?;
            Ok(json!({ "digest": digest, "size": bytes.len() }))
        };
        // Authenticate for push first (a token with push scope, or basic credentials).
        client
            .auth(&parsed, &auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| registry_error(reference, e))?;
        let put =
            async |target: &Reference, body: Vec<u8>, media_type: &'static str| -> Result<ImageDigest, RegistryError> {
                let digest = ImageDigest::of(&body);
                client
                    .push_manifest_raw(target, body, http::HeaderValue::from_static(media_type))
                    .await
                    .map_err(|e| registry_error(reference, e))?;
                Ok(digest)
            };
        let by_digest = |d: &ImageDigest| parsed.clone_with_digest(d.to_string());

        let layer = blob(&wasm).await?;
        let config = artifact_config("wasm", "wasip1", &layer, None);
        let config_desc = blob(&config).await?;
        let manifest = manifest_bytes(WASM_CONFIG_MEDIA_TYPE, &config_desc, WASM_LAYER_MEDIA_TYPE, &layer);
        if platforms.is_empty() {
            return put(&parsed, manifest, MANIFEST_MEDIA_TYPE).await;
        }
        let mut entries = Vec::new();
        let wasm_digest = ImageDigest::of(&manifest);
        entries.push(json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": wasm_digest.to_string(),
            "size": manifest.len(),
            "platform": { "architecture": "wasm", "os": "wasip1" },
        }));
        put(&by_digest(&wasm_digest), manifest, MANIFEST_MEDIA_TYPE).await?;
        for p in platforms {
            let (os, arch) = p.platform.split_once('/').unwrap_or(("linux", &p.platform));
            let arch = oci_arch(arch.split('/').next().unwrap_or(arch));
            let layer = blob(&p.cwasm).await?;
            let config = artifact_config(arch, os, &layer, Some(&p.target));
            let config_desc = blob(&config).await?;
            let manifest = manifest_bytes(CWASM_CONFIG_MEDIA_TYPE, &config_desc, CWASM_LAYER_MEDIA_TYPE, &layer);
            let digest = ImageDigest::of(&manifest);
            entries.push(json!({
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": digest.to_string(),
                "size": manifest.len(),
                "platform": { "architecture": arch, "os": os },
                "annotations": Value::Object([(TARGET_ANNOTATION.to_string(), json!(p.target))].into_iter().collect()),
            }));
            put(&by_digest(&digest), manifest, MANIFEST_MEDIA_TYPE).await?;
        }
        let index = json!({ "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": entries });
        put(&parsed, to_bytes(&index), INDEX_MEDIA_TYPE).await
    })
}

/// The config blob: the CNCF wasm config for a `.wasm`; the same fields, plus the target
/// and this shoal's version, for a `.cwasm`.
fn artifact_config(arch: &str, os: &str, layer: &Value, target: Option<&str>) -> Vec<u8> {
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut config = json!({
        "created": created,
        "architecture": arch,
        "os": os,
        "layerDigests": [layer["digest"]],
    });
    if let Some(target) = target {
        config["target"] = json!(target);
        config["shoalVersion"] = json!(env!("CARGO_PKG_VERSION"));
    }
    to_bytes(&config)
}

fn manifest_bytes(config_type: &str, config: &Value, layer_type: &str, layer: &Value) -> Vec<u8> {
    to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": { "mediaType": config_type, "digest": config["digest"], "size": config["size"] },
        "layers": [{ "mediaType": layer_type, "digest": layer["digest"], "size": layer["size"] }],
    }))
}

fn to_bytes(value: &Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}
