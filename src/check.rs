//! Cross-checks of a validated stack against what its images import, before anything runs.
//!
//! `spec` validates the file on its own; this module reads each image's import section
//! (with wasmparser, no compilation) and compares it with the container's grants and the
//! stack's topic wiring. The results are ordinary [`Diagnostic`]s so `shoal config` and
//! `shoal up` print them like any other problem in the file, and `--strict` can make the
//! warnings fatal.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use crate::host::{classify_env_import, ImportKind};
use crate::spec::{Capability, ContainerSpec, Diagnostic, ImageRef, Stack};

/// The function imports of a module, as `(module, name)` pairs.
pub fn function_imports(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut imports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        if let wasmparser::Payload::ImportSection(section) = payload {
            for import in section {
                let import = import.map_err(|e| e.to_string())?;
                if matches!(import.ty, wasmparser::TypeRef::Func(_)) {
                    imports.push((import.module.to_string(), import.name.to_string()));
                }
            }
        }
    }
    Ok(imports)
}

/// Check every container's image imports and the topic wiring of the whole stack.
/// `resolve` maps an image reference to a readable file (digests go through the store).
pub fn check_stack(stack: &Stack, resolve: &dyn Fn(&ImageRef) -> Option<std::path::PathBuf>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut seen_services = HashSet::new();
    let mut imports_by_container: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for container in &stack.containers {
        let Some(path) = resolve(&container.image) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let Ok(imports) = function_imports(&bytes) else {
            continue;
        };
        // Replicas share a spec: report once per service.
        if seen_services.insert(container.service.clone()) {
            diagnostics.extend(check_container(container, &path, &imports));
        }
        imports_by_container.insert(container.name.as_str(), imports);
    }
    diagnostics.extend(check_topics(stack, &imports_by_container));
    diagnostics
}

fn check_container(container: &ContainerSpec, path: &Path, imports: &[(String, String)]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
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
                ImportKind::NotYet { reason } => diagnostics.push(
                    Diagnostic::error(
                        Some(container.image_location.clone()),
                        format!("{key}.image"),
                        format!("image {} imports `env.{name}`: {reason}", path.display()),
                    )
                    .with_hint("remove that use from the guest, or run it on a runtime that has it"),
                ),
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
    for (capability, names) in &needed {
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
    let unused: Vec<Capability> = container
        .capabilities
        .iter()
        .copied()
        .filter(|c| !needed.contains_key(c))
        .collect();
    if !unused.is_empty() {
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
                "container `{}` is granted every capability (as `ocre:api` does) but its image uses only {}",
                container.service,
                if used.is_empty() {
                    "none of them".to_string()
                } else {
                    quote_list(&used)
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
        diagnostics.push(
            Diagnostic::warning(
                Some(container.capabilities_location.clone()),
                format!("{key}.capabilities"),
                message,
            )
            .with_hint(format!("least privilege: `capabilities: [{}]`", used.join(", "))),
        );
    }
    diagnostics
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
        .filter(|c| uses(c, "ocre_publish_message"))
        .collect();
    let subscribers: Vec<&ContainerSpec> = stack
        .containers
        .iter()
        .filter(|c| uses(c, "ocre_subscribe_message"))
        .collect();
    let mut diagnostics = Vec::new();
    let mut reported = BTreeSet::new();
    if publishers.iter().all(|p| p.publish.is_some()) {
        let published: Vec<&String> = publishers.iter().flat_map(|p| p.publish.iter().flatten()).collect();
        for subscriber in &subscribers {
            for prefix in subscriber.subscribe.iter().flatten() {
                if !published.iter().any(|p| overlaps(p, prefix))
                    && reported.insert(("sub", &subscriber.service, prefix))
                {
                    diagnostics.push(
                        Diagnostic::warning(
                            Some(subscriber.location.clone()),
                            format!("containers.{}.subscribe", subscriber.service),
                            format!(
                                "container `{}` subscribes to `{prefix}` but no container publishes under it",
                                subscriber.service
                            ),
                        )
                        .with_hint("check the spelling against the publishers' `publish:` lists"),
                    );
                }
            }
        }
    }
    if subscribers.iter().all(|s| s.subscribe.is_some()) {
        let subscribed: Vec<&String> = subscribers.iter().flat_map(|s| s.subscribe.iter().flatten()).collect();
        for publisher in &publishers {
            for prefix in publisher.publish.iter().flatten() {
                if !subscribed.iter().any(|s| overlaps(s, prefix))
                    && reported.insert(("pub", &publisher.service, prefix))
                {
                    diagnostics.push(
                        Diagnostic::warning(
                            Some(publisher.location.clone()),
                            format!("containers.{}.publish", publisher.service),
                            format!(
                                "container `{}` publishes under `{prefix}` but no container subscribes to it",
                                publisher.service
                            ),
                        )
                        .with_hint("messages there are dropped at once (publishing to no one is not an error)"),
                    );
                }
            }
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

    #[test]
    fn prefixes_overlap_either_way() {
        assert!(overlaps("sensors/", "sensors/raw/"));
        assert!(overlaps("sensors/raw/", "sensors/"));
        assert!(!overlaps("alarms/", "sensors/"));
    }
}
