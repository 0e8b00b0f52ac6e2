//! Checks across containers (dependencies, cycles, replica names), image files, and the final
//! assembly of the [`Stack`](super::Stack) in start order.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::decode::{Ctx, Decoded, Draft};
use super::diagnostic::did_you_mean_hint;
use super::model::{ContainerName, ContainerSpec, Dependency, ImageRef};
use super::names::{InvalidName, MAX_NAME_LEN};
use super::node::Pos;
use super::ImageDigest;
use shoal_abi::module::{self, ImageFormat};

/// Checks an image reference; returns what the runtime should load.
fn check_image(d: &Draft, checked: &mut HashMap<PathBuf, bool>, ctx: &mut Ctx) -> Option<ImageRef> {
    let (image, pos) = d.image.as_ref()?;
    let key = format!("containers.{}.image", d.service);
    // registry: a registry reference resolves against the pulled images, or fails here.
    if crate::reference::is_registry_reference(image) {
        if let Err(message) = crate::reference::check_reference(image) {
            let hint = "a reference is `host[:port]/repository[:tag][@sha256:<hex>]`; a path starts with `./`";
            ctx.error(
                *pos,
                &key,
                format!("invalid image reference `{image}`: {message}"),
                Some(hint.into()),
            );
            return None;
        }
        return match (ctx.opts.resolve_reference)(image) {
            Ok(resolved) => Some(ImageRef::Registry {
                reference: image.clone(),
                resolved,
            }),
            Err(message) => {
                let mut hint =
                    format!("pull it first: `shoal images pull {image}` (or `shoal pull` for the whole file)");
                if ctx.resolve(image).is_file() {
                    hint.push_str(&format!("; to mean the file, write `./{image}`"));
                }
                ctx.error(*pos, &key, message, Some(hint));
                None
            }
        };
    }
    if image.starts_with(ImageDigest::PREFIX) {
        let digest = match image.parse::<ImageDigest>() {
            Ok(digest) => digest,
            Err(e) => {
                ctx.error(*pos, &key, e.to_string(), None);
                return None;
            }
        };
        if (ctx.opts.lookup_digest)(&digest).is_none() {
            ctx.error(
                *pos,
                &key,
                format!("image {image} is not in the image store"),
                Some("add it with `shoal images add FILE`".into()),
            );
            return None;
        }
        return Some(ImageRef::Digest(digest));
    }
    let abs = ctx.resolve(image);
    let valid = match checked.get(&abs) {
        Some(v) => *v,
        None => {
            let v = check_wasm_file(&abs, *pos, &key, ctx);
            checked.insert(abs.clone(), v);
            v
        }
    };
    valid.then_some(ImageRef::Path(abs))
}

/// Reads and validates a .wasm file once, so a broken module is reported before anything starts.
fn check_wasm_file(abs: &Path, pos: Pos, key: &str, ctx: &mut Ctx) -> bool {
    let bytes = match crate::image_file::read(abs) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            let hint = if abs.extension().is_none_or(|e| e != "wasm" && e != "cwasm") {
                Some("`image` is a .wasm path relative to the compose file, `sha256:<hex>`, or a registry reference (`registry.example/org/app:1`)".to_string())
            } else {
                Some("build the module first, or fix the path (relative to the compose file)".to_string())
            };
            ctx.error(pos, key, format!("image file {} does not exist", abs.display()), hint);
            return false;
        }
        Err(e) => {
            let hint = match e {
                crate::image_file::ImageFileError::Io(_) => None,
                _ => Some("point `image` at the .wasm or .cwasm file itself".to_string()),
            };
            ctx.error(
                pos,
                key,
                format!("image file {} cannot be read: {e}", abs.display()),
                hint,
            );
            return false;
        }
    };
    let file = abs.display();
    let (message, hint) = match module::detect(&bytes) {
        // Machine code from `shoal images compile`: the runtime checks that it fits this
        // machine and this shoal when it loads it (spec has no wasmtime to ask).
        ImageFormat::Precompiled => return true,
        ImageFormat::CoreModule => match module::validate(&bytes) {
            Ok(()) => return true,
            Err(e) => (
                format!(
                    "image file {file} is not valid WebAssembly: {} (at byte offset {:#x})",
                    e.message, e.offset
                ),
                None,
            ),
        },
        ImageFormat::NativeElf => (
            format!("image file {file} is a native program, not a WebAssembly module or a precompiled image"),
            Some("give the .wasm module, or a .cwasm file made by `shoal images compile`".into()),
        ),
        ImageFormat::NotWasm { text } => (
            format!("image file {file} is not a WebAssembly module (no `\\0asm` header)"),
            text.then(|| {
                "this looks like the text format; compile it with `wasm-tools parse FILE -o FILE.wasm`".into()
            }),
        ),
        ImageFormat::Component => (
            format!("image file {file} is a WebAssembly component, not a core module"),
            Some("build for `wasm32-wasip1` (core module)".into()),
        ),
    };
    ctx.error(pos, key, message, hint);
    false
}

/// Resolves dependency names and reports unknown targets, self-dependencies and cycles.
/// Returns the index-based graph (edges: service -> its dependencies) with bad edges dropped.
fn check_dependencies(drafts: &[Draft], ctx: &mut Ctx) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.service.as_str(), i))
        .collect();
    let mut graph = vec![Vec::new(); drafts.len()];
    for (i, d) in drafts.iter().enumerate() {
        let key = format!("containers.{}.depends_on", d.service);
        for (name, pos, _) in &d.deps {
            match index.get(name.as_str()) {
                Some(&j) if j == i => ctx.error(
                    *pos,
                    &key,
                    format!("container `{name}` depends on itself"),
                    Some("remove it from its own `depends_on`".into()),
                ),
                Some(&j) => {
                    if !graph[i].contains(&j) {
                        graph[i].push(j);
                    }
                }
                None => {
                    let hint = did_you_mean_hint(
                        name,
                        drafts.iter().map(|d| d.service.as_str()).filter(|s| *s != d.service),
                    );
                    ctx.error(
                        *pos,
                        &key,
                        format!("container `{}` depends on unknown container `{name}`", d.service),
                        hint,
                    );
                }
            }
        }
    }
    report_cycles(drafts, &mut graph, ctx);
    graph
}

/// Cycles: one depth-first search over all services in file order (white/grey/black
/// colouring, so it stays linear however dense the graph); every edge back to a service on
/// the current path closes a cycle. Each distinct cycle is reported once, rotated to start
/// at its earliest service in the file, at that service's `depends_on` entry. Edges inside
/// cycles are then dropped so the start order can still be computed.
fn report_cycles(drafts: &[Draft], graph: &mut [Vec<usize>], ctx: &mut Ctx) {
    let mut reported: HashSet<BTreeSet<usize>> = HashSet::new();
    let mut in_cycle = vec![false; drafts.len()];
    let mut done = vec![false; drafts.len()];
    for start in 0..drafts.len() {
        if done[start] {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        let mut on_path = vec![start];
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if *next >= graph[node].len() {
                done[node] = true;
                stack.pop();
                on_path.pop();
                continue;
            }
            let dep = graph[node][*next];
            *next += 1;
            if let Some(at) = on_path.iter().position(|&n| n == dep) {
                let cycle = &on_path[at..];
                if reported.insert(cycle.iter().copied().collect()) {
                    for &c in cycle {
                        in_cycle[c] = true;
                    }
                    report_cycle(drafts, cycle, ctx);
                }
            } else if !done[dep] {
                stack.push((dep, 0));
                on_path.push(dep);
            }
        }
    }
    if in_cycle.iter().any(|&c| c) {
        // Drop edges inside cycles so the ordering below still terminates.
        for (i, edges) in graph.iter_mut().enumerate() {
            if in_cycle[i] {
                edges.clear();
            }
        }
    }
}

/// Reports `a -> b -> c -> a`, starting at the cycle's earliest service in the file.
fn report_cycle(drafts: &[Draft], cycle: &[usize], ctx: &mut Ctx) {
    let Some(first) = cycle.iter().enumerate().min_by_key(|(_, &c)| c).map(|(i, _)| i) else {
        return;
    };
    let mut rotated: Vec<usize> = cycle[first..].iter().chain(&cycle[..first]).copied().collect();
    rotated.push(cycle[first]);
    let names: Vec<&str> = rotated.iter().map(|&c| drafts[c].service.as_str()).collect();
    let (a, b) = (rotated[0], rotated[1]);
    let pos = drafts[a]
        .deps
        .iter()
        .find(|(n, _, _)| *n == drafts[b].service)
        .map_or(drafts[a].pos, |x| x.1);
    ctx.error(
        pos,
        &format!("containers.{}.depends_on", drafts[a].service),
        format!("dependency cycle: {}", names.join(" -> ")),
        Some("remove one of these `depends_on` entries".into()),
    );
}

/// Start order: dependencies first; among services that are ready, file order.
fn topo_order(graph: &[Vec<usize>]) -> Vec<usize> {
    let n = graph.len();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let next = (0..n).find(|&i| !placed[i] && graph[i].iter().all(|&d| placed[d]));
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            // Only reachable with an undetected cycle; keep file order rather than loop.
            None => {
                for (i, p) in placed.iter_mut().enumerate() {
                    if !*p {
                        *p = true;
                        order.push(i);
                    }
                }
            }
        }
    }
    order
}

/// Names of the containers `service` expands to: the service name when not replicated,
/// else `service-1`..`service-N`. Refused when a suffix takes a name past the length limit.
pub fn replica_names(service: &ContainerName, replicas: u32) -> Result<Vec<ContainerName>, InvalidName> {
    if replicas <= 1 {
        Ok(vec![service.clone()])
    } else {
        (1..=replicas).map(|i| service.replica(i)).collect()
    }
}

/// Each draft's service name and container names; `None` where the name is invalid (the decoder reported a
/// bad key already; a replica name past the limit is reported here).
fn container_names(drafts: &[Draft], ctx: &mut Ctx) -> Vec<Option<(ContainerName, Vec<ContainerName>)>> {
    let mut out = Vec::with_capacity(drafts.len());
    for d in drafts {
        let Ok(service) = d.service.parse::<ContainerName>() else {
            out.push(None);
            continue;
        };
        match replica_names(&service, d.replicas) {
            Ok(names) => out.push(Some((service, names))),
            Err(e) => {
                ctx.error(
                    d.pos,
                    &format!("containers.{}", d.service),
                    format!("replica {e}"),
                    Some(format!(
                        "shorten `{}` so that `{}-{}` fits in {MAX_NAME_LEN} characters",
                        d.service, d.service, d.replicas
                    )),
                );
                out.push(None);
            }
        }
    }
    out
}

/// Replica names must not collide with other services' names (`probe: {replicas: 2}` next
/// to a service called `probe-1`).
fn check_replica_names(drafts: &[Draft], names: &[Option<(ContainerName, Vec<ContainerName>)>], ctx: &mut Ctx) {
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        owner.insert(d.service.clone(), i);
    }
    for (i, d) in drafts.iter().enumerate() {
        if d.replicas > 1 {
            for r in names[i].iter().flat_map(|(_, n)| n) {
                if let Some(&j) = owner.get(r.as_str()) {
                    if j != i {
                        ctx.error(
                            drafts[j].pos,
                            &format!("containers.{r}"),
                            format!(
                                "container name `{r}` clashes with replica {r} of `{}` (replicas: {})",
                                d.service, d.replicas
                            ),
                            Some("rename one of them".into()),
                        );
                    }
                }
            }
        }
    }
}

/// Runs every cross-container check and builds the containers in start order.
/// Containers whose image failed are left out; the caller fails the load on any error.
pub fn assemble(decoded: &Decoded, ctx: &mut Ctx) -> Vec<ContainerSpec> {
    let drafts = &decoded.containers;
    let mut checked = HashMap::new();
    let images: Vec<Option<ImageRef>> = drafts.iter().map(|d| check_image(d, &mut checked, ctx)).collect();
    let graph = check_dependencies(drafts, ctx);
    let names = container_names(drafts, ctx);

    check_replica_names(drafts, &names, ctx);

    let mut out = Vec::new();
    for i in topo_order(&graph) {
        let d = &drafts[i];
        let (Some(image), Some((service, own_names))) = (images[i].clone(), &names[i]) else {
            continue;
        };
        let mut depends_on = Vec::new();
        for (name, _, cond) in &d.deps {
            if let Some(j) = drafts.iter().position(|x| x.service == *name) {
                if j == i || !graph[i].contains(&j) {
                    continue;
                }
                for r in names[j].iter().flat_map(|(_, n)| n) {
                    depends_on.push(Dependency {
                        name: r.clone(),
                        condition: *cond,
                    });
                }
            }
        }
        let image_location = ctx.loc(d.image.as_ref().map_or(d.pos, |x| x.1));
        for r in own_names {
            out.push(ContainerSpec {
                name: r.clone(),
                service: service.clone(),
                image: image.clone(),
                image_location: image_location.clone(),
                location: ctx.loc(d.pos),
                args: d.args.clone(),
                env: d.env.clone(),
                capabilities: d.capabilities.clone(),
                capabilities_location: ctx.loc(d.capabilities_pos),
                mounts: d.mounts.clone(),
                depends_on: depends_on.clone(),
                restart: d.restart,
                restart_delay: d.restart_delay,
                stop_timeout: d.stop_timeout,
                limits: d.limits.clone(),
                publish: d.publish.clone(),
                subscribe: d.subscribe.clone(),
                sensors: d.sensors.iter().map(|(s, _)| s.clone()).collect(),
                gpio: d.gpio.iter().map(|(s, _)| s.clone()).collect(),
                cpus: d.cpus.clone(),
                cpus_location: ctx.loc(d.cpus_pos.unwrap_or(d.pos)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topo_keeps_file_order_for_ties() {
        // 0 depends on 2; 1 free; 2 free.
        let g = vec![vec![2], vec![], vec![]];
        assert_eq!(topo_order(&g), vec![1, 2, 0]);
    }

    #[test]
    fn replica_naming() {
        let a: ContainerName = "a".parse().unwrap();
        assert_eq!(replica_names(&a, 1).unwrap(), vec!["a"]);
        assert_eq!(replica_names(&a, 3).unwrap(), vec!["a-1", "a-2", "a-3"]);
        let long: ContainerName = "a".repeat(MAX_NAME_LEN - 2).parse().unwrap();
        assert!(replica_names(&long, 9).is_ok());
        assert!(replica_names(&long, 10).is_err(), "`-10` takes it past the limit");
    }
}
