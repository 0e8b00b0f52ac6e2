//! Images from OCI registries: `shoal images pull/push`, `shoal pull`, and `image:`
//! references in compose files (resolved against what was pulled, see `images::refs`).
//!
//! The wire work (token auth, blob and manifest transfers, digest checks on download) is
//! the ORAS project's `oci-client`; shoal adds the artifact layout, the choice of
//! platform, the content store and the credentials.
//!
//! # Layout
//!
//! A `.wasm` image is pushed in the CNCF TAG Runtime "Wasm OCI artifact" layout that
//! wasmtime's and wasmCloud's tooling use: an OCI image manifest whose config has media
//! type `application/vnd.wasm.config.v0+json` (`{"architecture":"wasm","os":"wasip1",
//! "layerDigests":[...]}`) and whose one layer is the module, `application/wasm`.
//!
//! `shoal images push --platform linux/arm64 FILE REF` pushes an OCI image index instead:
//! its entries are the `.wasm` manifest above (platform `wasm/wasip1`) and, per platform,
//! a manifest with config `application/vnd.shoal.cwasm.config.v1+json` and one layer
//! `application/vnd.shoal.cwasm.v1` holding the `.cwasm` compiled for it (entry platform
//! `linux/arm64`, annotation `dev.shoal.target` = the target triple). A shoal without
//! the compiler pulls the `.cwasm` of its own platform (wasmtime then checks the engine
//! settings when it loads it, with a hint if they differ); a full shoal pulls the `.wasm`.
//!
//! # Transport
//!
//! HTTPS always, with the system's roots plus `/etc/docker/certs.d/<host>/ca.crt` and
//! `$SHOAL_REGISTRY_CA_FILE`. Plain HTTP is tried, after HTTPS fails to connect, only for
//! loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`) and those listed in
//! `$SHOAL_INSECURE_REGISTRIES` (comma-separated `host[:port]`), as Docker's
//! `insecure-registries` does. Credentials: see [`auth`].

pub mod auth;
pub mod local;
mod pull;
mod push;

use std::net::IpAddr;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::Reference;

use crate::images::ImageError;

pub use pull::pull;
pub use push::{push, Platform};

/// Config media type of a `.wasm` artifact (CNCF TAG Runtime layout).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Layer media type of a `.wasm` module.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Config media type of a shoal `.cwasm` (precompiled for one platform).
pub const CWASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.shoal.cwasm.config.v1+json";
/// Layer media type of a shoal `.cwasm`.
pub const CWASM_LAYER_MEDIA_TYPE: &str = "application/vnd.shoal.cwasm.v1";
/// OCI image manifest and index media types.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Annotation on a `.cwasm` index entry: the target triple it was compiled for.
pub const TARGET_ANNOTATION: &str = "dev.shoal.target";
/// The largest manifest or index shoal reads (real ones are well under 10 KB).
const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// Errors at the registry's border; each names the reference.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference `{reference}`: {message}")]
    Reference { reference: String, message: String },
    #[error("{reference}: {message}")]
    Registry { reference: String, message: String },
    #[error("{reference} is not a WebAssembly artifact: {message}")]
    Layout { reference: String, message: String },
    #[error(
        "{reference} has no image for this shoal (it needs {wanted}; the index has {available})\n  hint: push it with \
         `shoal images push --platform {platform} FILE.wasm {reference}` from a shoal with the compiler"
    )]
    NoPlatform {
        reference: String,
        wanted: String,
        platform: String,
        available: String,
    },
    #[error(
        "{reference}: the registry sent bytes that hash to {actual}, not {expected}; refused (nothing was stored, the \
         image pulled before is kept)"
    )]
    Digest {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("cannot start the registry client: {0}")]
    Client(String),
}

/// The platform this shoal runs on, in OCI terms (`linux/arm64`).
pub fn host_platform() -> String {
    let arch = crate::images::precompiled::HOST_TARGET
        .split('-')
        .next()
        .unwrap_or_default();
    format!("linux/{}", oci_arch(arch))
}

/// OCI's name for a target triple's architecture (Go's GOARCH).
fn oci_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "riscv64gc" | "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

/// Whether plain HTTP may be used for `registry` (`host[:port]`).
fn plain_http_allowed(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let declared = std::env::var("SHOAL_INSECURE_REGISTRIES")
        .unwrap_or_default()
        .split(',')
        .any(|r| !r.trim().is_empty() && (r.trim() == registry || r.trim() == host));
    loopback || declared
}

/// Extra trusted roots for `registry`: Docker's `certs.d` and `$SHOAL_REGISTRY_CA_FILE`.
fn extra_roots(registry: &str) -> Vec<Certificate> {
    let mut files = vec![std::path::PathBuf::from(format!(
        "/etc/docker/certs.d/{registry}/ca.crt"
    ))];
    if let Some(file) = std::env::var_os("SHOAL_REGISTRY_CA_FILE").filter(|f| !f.is_empty()) {
        files.push(file.into());
    }
    files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .map(|data| Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        })
        .collect()
}

/// A client for one registry, over HTTPS or (where allowed) plain HTTP.
fn client(registry: &str, plain: bool) -> oci_client::Client {
    // reqwest is built without a default crypto provider: shoal uses ring everywhere.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = ClientConfig {
        protocol: if plain {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        extra_root_certificates: extra_roots(registry),
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(60)),
        ..ClientConfig::default()
    };
    oci_client::Client::new(config)
}

/// Run `op` against the registry of `reference`: HTTPS first; plain HTTP after a failure to
/// connect, for a registry that allows it.
fn with_client<T>(
    reference: &Reference,
    op: impl AsyncFn(&oci_client::Client) -> Result<T, RegistryError>,
) -> Result<T, RegistryError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Client(e.to_string()))?;
    let registry = reference.resolve_registry().to_string();
    runtime.block_on(async {
        match op(&client(&registry, false)).await {
            Err(RegistryError::Registry { message, .. })
                if plain_http_allowed(&registry) && message.starts_with(CONNECT_FAILED) =>
            {
                op(&client(&registry, true)).await
            }
            other => other,
        }
    })
}

/// How a connection failure's message starts (see [`registry_error`]), so [`with_client`]
/// can tell it from a registry's refusal.
const CONNECT_FAILED: &str = "cannot reach the registry";

/// The registry's error in words: the HTTP error's body (`MANIFEST_UNKNOWN`,
/// `UNAUTHORIZED`...) as oci-client decoded it, or why the connection failed.
fn registry_error(reference: &str, error: oci_client::errors::OciDistributionError) -> RegistryError {
    use oci_client::errors::OciDistributionError as E;
    let message = match &error {
        E::RequestError(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
            format!("{CONNECT_FAILED}: {}", source_chain(e))
        }
        E::AuthenticationFailure(m) => format!("authentication failed: {m}\n  hint: log in with credentials in ~/.docker/config.json, or set SHOAL_REGISTRY_USER and SHOAL_REGISTRY_PASSWORD_FILE"),
        E::UnauthorizedError { url } => format!("not authorized for {url}\n  hint: give credentials in ~/.docker/config.json, or SHOAL_REGISTRY_USER and SHOAL_REGISTRY_PASSWORD_FILE"),
        E::DigestError(e) => format!("the registry's bytes do not match their digest: {e}"),
        other => source_chain(other),
    };
    RegistryError::Registry {
        reference: reference.to_string(),
        message,
    }
}

/// An error and its sources on one line (reqwest hides the cause in its sources).
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}

/// Parse a reference with the registry client's own parser.
pub fn parse_reference(reference: &str) -> Result<Reference, RegistryError> {
    if !crate::spec::reference::is_registry_reference(reference) {
        return Err(RegistryError::Reference {
            reference: reference.to_string(),
            message: "a registry reference starts with a registry host: `registry.example/org/app:1`, \
                      `localhost:5000/app:1` (Docker Hub short names are not used)"
                .into(),
        });
    }
    reference
        .parse()
        .map_err(|e: oci_client::ParseError| RegistryError::Reference {
            reference: reference.to_string(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_or_declared() {
        assert!(plain_http_allowed("localhost:5000"));
        assert!(plain_http_allowed("127.0.0.1:5000"));
        assert!(plain_http_allowed("[::1]:5000"));
        assert!(!plain_http_allowed("registry.example"));
        assert!(!plain_http_allowed("10.0.0.1:5000"));
    }

    #[test]
    fn platforms_in_oci_terms() {
        assert!(host_platform().starts_with("linux/"));
        assert_eq!(oci_arch("aarch64"), "arm64");
        assert_eq!(oci_arch("x86_64"), "amd64");
    }
}
