//! Telling an `image:` that names a registry artifact from one that names a file.
//!
//! The rule, in order (the README's "Many boards" section repeats it):
//! 1. `sha256:<hex>` is an image of the local store.
//! 2. A value starting with `./`, `../`, `/` or `~`, or ending in `.wasm` or `.cwasm`, is a
//!    file path (relative to the compose file).
//! 3. A value whose first `/`-separated part is a registry host (it holds a `.` or a `:`
//!    port, or is `localhost`) and that has a repository after it is a registry reference:
//!    `registry.example/org/sensor:1.4`, `localhost:5000/x:1`, `ghcr.io/o/x@sha256:<hex>`.
//! 4. Anything else is a file path. Docker Hub's short names (`org/app:1`) are not
//!    references: an edge board should not depend on a default registry it never named.
//!
//! A path that looks like a reference (`images.d/app`) is written `./images.d/app`.
//!
//! This crate has no network and no OCI parser; it only classifies and checks the shape.
//! The full parse and the lookup in the store of pulled images happen in the caller's
//! [`LoadOptions::resolve_reference`](crate::LoadOptions::resolve_reference).

/// What the store recorded for a pulled registry reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedImage {
    /// The registry's digest for the reference (of its manifest or image index): what
    /// `ref@sha256:...` pins, on every board alike.
    pub pinned: crate::ImageDigest,
    /// The digest of the image bytes in the local store (a `.wasm`, or the `.cwasm` this
    /// board pulled for its platform).
    pub digest: crate::ImageDigest,
}

/// A `resolve_reference` for callers without an image store: every reference is unknown.
pub fn no_registry(reference: &str) -> Result<ResolvedImage, String> {
    Err(format!("image {reference} has not been pulled"))
}

/// Whether an `image:` value is a registry reference by the rule above.
pub fn is_registry_reference(image: &str) -> bool {
    if image.starts_with(crate::ImageDigest::PREFIX)
        || ["./", "../", "/", "~"].iter().any(|p| image.starts_with(p))
        || image.ends_with(".wasm")
        || image.ends_with(".cwasm")
    {
        return false;
    }
    match image.split_once('/') {
        Some((host, rest)) => !rest.is_empty() && (host.contains('.') || host.contains(':') || host == "localhost"),
        None => false,
    }
}

/// Checks the shape of a reference (host, lowercase repository, tag, digest); `Err` says
/// what is wrong. The registry client parses it again fully.
pub fn check_reference(image: &str) -> Result<(), String> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        digest.parse::<crate::ImageDigest>().map_err(|e| e.to_string())?;
    }
    let (host, path) = name
        .split_once('/')
        .ok_or("a reference needs a repository after the host")?;
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repository, tag)) => (repository, Some(tag)),
        None => (path, None),
    };
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)) {
        return Err(format!("`{host}` is not a registry host"));
    }
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    };
    if !repository.split('/').all(part_ok) {
        return Err(format!(
            "repository `{repository}` must be lowercase letters, digits and `._-`, in parts separated by `/`"
        ));
    }
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return Err(format!("tag `{tag}` must be 1 to 128 letters, digits and `._-`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_paths_are_told_apart() {
        for r in [
            "registry.example/org/sensor:1.4",
            "localhost:5000/x:1",
            "localhost/x",
            "ghcr.io/o/x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(is_registry_reference(r), "{r}");
            check_reference(r).unwrap();
        }
        for p in [
            "hello.wasm",
            "./images.d/app",
            "/opt/x",
            "modules/hello",
            "org/app:1",
            "registry.example/org/x.wasm",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "registry.example",
            "registry.example/",
        ] {
            assert!(!is_registry_reference(p), "{p}");
        }
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        let err = check_reference("registry.example/Org/x:1").unwrap_err();
        assert!(err.contains("lowercase"), "{err}");
        let err = check_reference("registry.example/org/x:a+b").unwrap_err();
        assert!(err.contains("tag `a+b`"), "{err}");
        let err = check_reference("registry.example/org/x@sha256:12").unwrap_err();
        assert!(err.contains("invalid image digest"), "{err}");
        assert!(check_reference("localhost:5000/x").is_ok());
    }
}
