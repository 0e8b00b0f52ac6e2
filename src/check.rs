//! Cross-checks of a validated stack against what its images import, before anything runs.
//!
//! `spec` validates the file on its own; this module reads each image's imports and exports
//! with their types (a `.wasm` with wasmparser, a precompiled `.cwasm` through wasmtime;
//! nothing is compiled) and reports every reason it could not be linked or started
//! ([`image`]), then compares the imports with the container's grants and the stack's
//! topic wiring. The results are ordinary [`Diagnostic`]s so `shoal config` and
//! `shoal up` print them like any other problem in the file, and `--strict` can make the
//! warnings fatal.

#[cfg(test)]
mod golden_tests;
mod image;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

pub use image::Engines;

use crate::host::{classify_env_import, ImportKind};
use crate::images::ImageDigest;
use crate::spec::{Capability, ContainerSpec, Diagnostic, ImageRef, Stack};

/// The function imports of a module, as `(module, name)` pairs (read where the image
/// formats are known, in `shoal_abi::module`).
pub use shoal_abi::module::function_imports;

/// Everything `shoal config` checks, as `up` and every reload check it: the file itself
/// (spec), then each image against the container's grants. `Err` holds every diagnostic
/// when any is an error; `Ok` carries the warnings.
pub fn load_checked(
    input: impl Into<crate::spec::ComposeFiles>,
    images: &crate::images::ImageStore,
    engines: &Engines<'_>,
) -> Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>> {
    let input: crate::spec::ComposeFiles = input.into();
    let env: std::collections::HashMap<String, String> = if input.env_files_only {
        std::collections::HashMap::new()
    } else {
        std::env::vars().collect()
    };
    let lookup = |digest: &ImageDigest| images.path_of(digest);
    let lookup_reference = |reference: &str| images.resolve_reference(reference); // registry
    let options = crate::spec::LoadOptions {
        env: &env,
        lookup_digest: &lookup,
        resolve_reference: &lookup_reference,
    };
    // compose: several files, .env, -p and profiles (a single path converts).
    let (stack, mut diagnostics) = crate::spec::load_files(&input, &options)?;
    let resolve = |image: &ImageRef| match image {
        ImageRef::Path(path) => Some(path.clone()),
        other => other.store_digest().and_then(|digest| images.path_of(digest)),
    };
    diagnostics.extend(check_stack(&stack, &resolve, engines));
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    Ok((stack, diagnostics))
}

/// Check every container's image (what would stop it starting, its imports against its
/// grants) and the topic wiring of the whole stack. `resolve` maps an image reference to a
/// readable file (digests go through the store); `engines` loads precompiled images.
pub fn check_stack(
    stack: &Stack,
    resolve: &dyn Fn(&ImageRef) -> Option<std::path::PathBuf>,
    engines: &Engines<'_>,
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut seen_services = HashSet::new();
    let mut imports_by_container: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    let mut opaque = false;
    for container in &stack.containers {
        let Some(path) = resolve(&container.image) else {
            continue;
        };
        // Unreadable or invalid files were reported by `spec` already.
        let Ok(bytes) = crate::spec::image_file::read(&path) else {
            continue;
        }; // registry: regular files, capped
        let first = seen_services.insert(container.service.clone());
        let shape = match image::shape_of(&path, &bytes, engines) {
            Ok(shape) => shape,
            Err(message) => {
                // Not knowing what it imports, the wiring check would guess: skip it.
                opaque = true;
                if first {
                    diagnostics.push(image_error(container, message));
                }
                continue;
            }
        };
        let imports = image::function_imports(&shape);
        // Replicas share a spec: report once per service. The limit differs per service.
        if first {
            diagnostics.extend(image::start_problems(container, &path, &shape));
            diagnostics.extend(check_container(container, &path, &imports));
        }
        imports_by_container.insert(container.name.as_str(), imports);
    }
    if !opaque {
        diagnostics.extend(check_topics(stack, &imports_by_container));
    }
    diagnostics
}

/// An image that cannot be inspected at all (a precompiled image this shoal cannot load):
/// `message` already says why and how to fix it.
fn image_error(container: &ContainerSpec, message: String) -> Diagnostic {
    let (message, hint) = match message.split_once("\n  hint: ") {
        Some((message, hint)) => (message.to_string(), Some(hint.to_string())),
        None => (message, None),
    };
    let diagnostic = Diagnostic::error(
        Some(container.image_location.clone()),
        format!("containers.{}.image", container.service),
        message,
    );
    match hint {
        Some(hint) => diagnostic.with_hint(hint),
        None => diagnostic,
    }
}

/// One container's image against its grants: imports shoal does not serve, capabilities its
/// imports need but it lacks, and capabilities it holds but never uses.
fn check_container(container: &ContainerSpec, path: &Path, imports: &[(String, String)]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let needed = needed_capabilities(container, path, imports, &mut diagnostics);
    diagnostics.extend(missing_grants(container, &needed));
    diagnostics.extend(unused_grants(container, &needed));
    diagnostics
}

/// The capabilities the imports need, each with the imports that need it; an import shoal
/// does not serve (or not yet) is an error pushed to `diagnostics`.
fn needed_capabilities<'a>(
    container: &ContainerSpec,
    path: &Path,
    imports: &'a [(String, String)],
    diagnostics: &mut Vec<Diagnostic>,
) -> BTreeMap<Capability, Vec<&'a str>> {
    let key = format!("containers.{}", container.service);
    let mut needed: BTreeMap<Capability, Vec<&str>> = BTreeMap::new();
    for (module, name) in imports {
        match module.as_str() {
            "wasi_snapshot_preview1" => {}
            "env" => match classify_env_import(name) {
                ImportKind::Served {
                    capability: Some(capability),
                } => {
                    needed.entry(capability).or_default().push(name);
                }
                ImportKind::Served { capability: None } => {}
                ImportKind::Unknown => diagnostics.push(
                    Diagnostic::error(
                        Some(container.image_location.clone()),
                        format!("{key}.image"),
                        format!(
                            "image {} imports `env.{name}`, which shoal does not provide",
                            path.display()
                        ),
                    )
                    .with_hint("shoal serves WASI preview 1 and the Ocre SDK's `env` functions; see the README"),
                ),
            },
            other => diagnostics.push(
                Diagnostic::error(
                    Some(container.image_location.clone()),
                    format!("{key}.image"),
                    format!(
                        "image {} imports `{other}.{name}`, which shoal does not provide",
                        path.display()
                    ),
                )
                .with_hint("build for `wasm32-wasip1`; shoal serves `wasi_snapshot_preview1` and `env`"),
            ),
        }
    }
    needed
}

/// A warning for each capability the image's imports need that the container lacks.
fn missing_grants(container: &ContainerSpec, needed: &BTreeMap<Capability, Vec<&str>>) -> Vec<Diagnostic> {
    let key = format!("containers.{}", container.service);
    let mut diagnostics = Vec::new();
    for (capability, names) in needed {
        if !container.capabilities.contains(capability) {
            diagnostics.push(
                Diagnostic::warning(
                    Some(container.capabilities_location.clone()),
                    format!("{key}.capabilities"),
                    format!(
                        "container `{}` imports {} but has no `{capability}` capability: those calls will be denied",
                        container.service,
                        quote_list(names)
                    ),
                )
                .with_hint(format!("add `{capability}` to `capabilities:`")),
            );
        }
    }
    diagnostics
}

/// One warning naming the capabilities the container holds but its image never uses.
fn unused_grants(container: &ContainerSpec, needed: &BTreeMap<Capability, Vec<&str>>) -> Option<Diagnostic> {
    let key = format!("containers.{}", container.service);
    let unused: Vec<Capability> = container
        .capabilities
        .iter()
        .copied()
        .filter(|c| !needed.contains_key(c))
        .collect();
    if unused.is_empty() {
        return None;
    }
    let used: Vec<&str> = container
        .capabilities
        .iter()
        .filter(|c| needed.contains_key(c))
        .map(|c| c.as_str())
        .collect();
    let all_granted = Capability::ALL.iter().all(|c| container.capabilities.contains(c));
    // `ocre:api` grants all three at once; say so once instead of once per capability.
    let message = if all_granted {
        format!(
            "container `{}` is granted every capability (as `ocre:api` does) but its image uses {}",
            container.service,
            if used.is_empty() {
                "none of them".to_string()
            } else {
                format!("only {}", quote_list(&used))
            }
        )
    } else {
        let names: Vec<&str> = unused.iter().map(|c| c.as_str()).collect();
        format!(
            "container `{}` is granted {} but its image never uses it",
            container.service,
            quote_list(&names)
        )
    };
    Some(
        Diagnostic::warning(
            Some(container.capabilities_location.clone()),
            format!("{key}.capabilities"),
            message,
        )
        .with_hint(format!("least privilege: `capabilities: [{}]`", used.join(", "))),
    )
}

/// A subscription no declared publisher can reach, and a publish prefix no declared
/// subscriber listens to. Only decidable when every container that can publish (or
/// subscribe) declares its list; an undeclared list may cover anything, so then we stay quiet.
fn check_topics(stack: &Stack, imports: &BTreeMap<&str, Vec<(String, String)>>) -> Vec<Diagnostic> {
    let uses = |container: &ContainerSpec, function: &str| {
        imports
            .get(container.name.as_str())
            .is_some_and(|list| list.iter().any(|(m, n)| m == "env" && n == function))
    };
    let publishers: Vec<&ContainerSpec> = stack
        .containers
        .iter()
        .filter(|c| uses(c, shoal_abi::OCRE_PUBLISH_MESSAGE.name))
        .collect();
    let subscribers: Vec<&ContainerSpec> = stack
        .containers
        .iter()
        .filter(|c| uses(c, shoal_abi::OCRE_SUBSCRIBE_MESSAGE.name))
        .collect();
    let publish_list = |c: &ContainerSpec| c.publish.clone();
    let subscribe_list = |c: &ContainerSpec| c.subscribe.clone();
    // A bridge publishes locally under its import prefixes and listens under its exports.
    let imported: Vec<String> = stack
        .bridges
        .iter()
        .flat_map(|b| b.import.iter().map(|r| r.local.clone()))
        .collect();
    let exported: Vec<String> = stack
        .bridges
        .iter()
        .flat_map(|b| b.export.iter().map(|r| r.local.clone()))
        .collect();
    let mut diagnostics = unmatched_prefixes(
        &subscribers,
        subscribe_list,
        (&publishers, &imported),
        publish_list,
        ("subscribe", "subscribes to", "no container publishes under it"),
        "check the spelling against the publishers' `publish:` lists",
    );
    diagnostics.extend(unmatched_prefixes(
        &publishers,
        publish_list,
        (&subscribers, &exported),
        subscribe_list,
        ("publish", "publishes under", "no container subscribes to it"),
        "messages there are dropped at once (publishing to no one is not an error)",
    ));
    diagnostics
}

/// Prefixes in one side's lists that no prefix of the other side's lists (or of the
/// bridges' rules on that side) can meet. Only decided when every container on the other
/// side declares its list.
fn unmatched_prefixes(
    side: &[&ContainerSpec],
    own_list: impl Fn(&ContainerSpec) -> Option<Vec<String>>,
    (others, bridged): (&[&ContainerSpec], &[String]),
    other_list: impl Fn(&ContainerSpec) -> Option<Vec<String>>,
    (key, verb, nobody): (&str, &str, &str),
    hint: &str,
) -> Vec<Diagnostic> {
    let Some(other_prefixes) = others.iter().map(|c| other_list(c)).collect::<Option<Vec<_>>>() else {
        return Vec::new();
    };
    let other_prefixes: Vec<String> = other_prefixes
        .into_iter()
        .flatten()
        .chain(bridged.iter().cloned())
        .collect();
    let mut reported = BTreeSet::new();
    let mut diagnostics = Vec::new();
    for container in side {
        for prefix in own_list(container).into_iter().flatten() {
            if other_prefixes.iter().any(|p| overlaps(p, &prefix))
                || !reported.insert((container.service.clone(), prefix.clone()))
            {
                continue;
            }
            diagnostics.push(
                Diagnostic::warning(
                    Some(container.location.clone()),
                    format!("containers.{}.{key}", container.service),
                    format!("container `{}` {verb} `{prefix}` but {nobody}", container.service),
                )
                .with_hint(hint),
            );
        }
    }
    diagnostics
}

/// Two prefixes can match a common topic when one is a prefix of the other.
fn overlaps(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn quote_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_function_imports_only() {
        let wasm = wat::parse_str(
            r#"(module (import "env" "memory" (memory 2 64))
                (import "env" "ocre_publish_message" (func (param i32 i32 i32 i32) (result i32)))
                (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))))"#,
        )
        .unwrap();
        assert_eq!(
            function_imports(&wasm).unwrap(),
            [
                ("env".to_string(), "ocre_publish_message".to_string()),
                ("wasi_snapshot_preview1".to_string(), "proc_exit".to_string())
            ]
        );
        assert!(function_imports(b"\0asm\x01\0\0\0\x02\x05").is_err());
    }

    fn stack_of(dir: &Path, compose: &str) -> Stack {
        // Each import with the signature the table gives it (one it lacks: four i32s).
        let module = |import: &str| {
            let signature = shoal_abi::HostFn::find(import)
                .map_or("(param i32 i32 i32 i32) (result i32)".to_string(), |f| f.signature());
            wat::parse_str(format!(
                r#"(module (import "env" "{import}" (func {signature})) (memory (export "memory") 1) (func (export "_start")))"#
            ))
            .unwrap()
        };
        std::fs::write(dir.join("pub.wasm"), module("ocre_publish_message")).unwrap();
        std::fs::write(dir.join("sub.wasm"), module("ocre_subscribe_message")).unwrap();
        std::fs::write(dir.join("adc.wasm"), module("ocre_adc_read_by_name")).unwrap();
        let env = std::collections::HashMap::new();
        let none = |_: &ImageDigest| None;
        let options = crate::spec::LoadOptions {
            env: &env,
            lookup_digest: &none,
            resolve_reference: &crate::spec::no_registry,
        };
        crate::spec::load_str(compose, &dir.join("shoal.yaml"), &options)
            .unwrap()
            .0
    }

    fn messages(stack: &Stack) -> Vec<String> {
        let resolve = |image: &ImageRef| match image {
            ImageRef::Path(path) => Some(path.clone()),
            _ => None,
        };
        check_stack(
            stack,
            &resolve,
            &Engines::from_config(&crate::runtime::RuntimeConfig::default()),
        )
        .iter()
        .map(|d| d.to_string())
        .collect()
    }

    #[test]
    fn topic_wiring_and_grants() {
        let dir = tempfile::tempdir().unwrap();
        let stack = stack_of(
            dir.path(),
            "containers:\n  p:\n    image: pub.wasm\n    capabilities: [messaging, timers]\n    publish: [a/]\n  s:\n    image: sub.wasm\n    subscribe: [b/]\n",
        );
        let found = messages(&stack);
        let has = |needle: &str| found.iter().any(|m| m.contains(needle));
        assert!(
            has("container `s` subscribes to `b/` but no container publishes under it"),
            "{found:#?}"
        );
        assert!(
            has("container `p` publishes under `a/` but no container subscribes to it"),
            "{found:#?}"
        );
        assert!(
            has("container `p` is granted `timers` but its image never uses it"),
            "{found:#?}"
        );
        assert!(
            has("container `s` imports `ocre_subscribe_message` but has no `messaging` capability"),
            "{found:#?}"
        );

        let stack = stack_of(
            dir.path(),
            "containers:\n  p:\n    image: pub.wasm\n    capabilities: [messaging]\n    publish: [a/]\n  s:\n    image: sub.wasm\n    capabilities: [messaging]\n    subscribe: [a/x/]\n",
        );
        assert!(messages(&stack).is_empty(), "{:#?}", messages(&stack));

        // An undeclared publish list may cover anything: no wiring warning then.
        let stack = stack_of(
            dir.path(),
            "containers:\n  p:\n    image: pub.wasm\n    capabilities: [messaging]\n  s:\n    image: sub.wasm\n    capabilities: [messaging]\n    subscribe: [b/]\n",
        );
        assert!(messages(&stack).is_empty(), "{:#?}", messages(&stack));

        // A bridge's import publishes locally, its export listens locally.
        let stack = stack_of(
            dir.path(),
            "bridges:\n  up:\n    url: mqtt://h\n    export: [a/]\n    import: [{remote: \"r/#\", local: b/}]\ncontainers:\n  p:\n    image: pub.wasm\n    capabilities: [messaging]\n    publish: [a/]\n  s:\n    image: sub.wasm\n    capabilities: [messaging]\n    subscribe: [b/]\n",
        );
        assert!(messages(&stack).is_empty(), "{:#?}", messages(&stack));
    }

    #[test]
    fn unserved_imports_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let stack = stack_of(dir.path(), "containers:\n  g:\n    image: adc.wasm\n");
        let config = crate::runtime::RuntimeConfig::default();
        let found = check_stack(
            &stack,
            &|image: &ImageRef| match image {
                ImageRef::Path(path) => Some(path.clone()),
                _ => None,
            },
            &Engines::from_config(&config),
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].is_error() && found[0].message.contains("which shoal does not provide"),
            "{}",
            found[0]
        );
    }

    #[test]
    fn prefixes_overlap_either_way() {
        assert!(overlaps("sensors/", "sensors/raw/"));
        assert!(overlaps("sensors/raw/", "sensors/"));
        assert!(!overlaps("alarms/", "sensors/"));
    }
}
