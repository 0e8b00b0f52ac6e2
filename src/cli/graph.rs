//! `shoal graph`: containers and the topics between them.
//!
//! Drawn from the compose file's declared `publish:` and `subscribe:` prefixes: an edge
//! joins a publisher and a subscriber when one's prefix contains the other's. A container
//! without a `publish:` list may publish anywhere, so it gets a dashed edge to every
//! subscriber. When the stack runs, each container is annotated with its live message
//! counts (in/out) from `ps`.

use std::process::ExitCode;

use clap::ValueEnum;

use crate::control::ProjectArgs;
use crate::control::{Client, Request};
use crate::images::ImageStore;
use crate::spec::Stack;
use crate::supervisor::ContainerInfo;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Mermaid,
    Dot,
}

/// One publisher -> subscriber edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// The topic prefix they meet on.
    pub topic: String,
    /// The publisher has no `publish:` list: the edge is possible, not declared.
    pub maybe: bool,
}

/// Every edge the file's declarations allow, in file order: between containers first, then
/// to and from the bridges.
pub fn edges(stack: &Stack) -> Vec<Edge> {
    let mut edges = container_edges(stack);
    edges.extend(bridge_edges(stack));
    edges
}

/// The topic two prefixes meet on (the longer one) when one contains the other.
fn meet(a: &str, b: &str) -> Option<String> {
    (a.starts_with(b) || b.starts_with(a)).then(|| if a.len() >= b.len() { a } else { b }.to_owned())
}

fn edge(from: &str, to: &str, topic: String, maybe: bool) -> Edge {
    Edge {
        from: from.to_owned(),
        to: to.to_owned(),
        topic,
        maybe,
    }
}

/// Publisher -> subscriber edges between the stack's containers.
fn container_edges(stack: &Stack) -> Vec<Edge> {
    let mut edges = Vec::new();
    for from in &stack.containers {
        for to in &stack.containers {
            if from.name == to.name {
                continue;
            }
            let Some(subscribes) = &to.subscribe else { continue };
            for sub in subscribes {
                match &from.publish {
                    Some(publishes) => edges.extend(
                        publishes
                            .iter()
                            .filter_map(|publ| meet(publ, sub))
                            .map(|topic| edge(&from.name, &to.name, topic, false)),
                    ),
                    None if from.capabilities.contains(&crate::spec::Capability::Messaging) => {
                        edges.push(edge(&from.name, &to.name, sub.clone(), true))
                    }
                    None => {}
                }
            }
        }
    }
    edges
}

/// bridge: an MQTT bridge is a node too; local publishers feed its exports, its imports
/// feed local subscribers.
fn bridge_edges(stack: &Stack) -> Vec<Edge> {
    let mut edges = Vec::new();
    for bridge in &stack.bridges {
        let node = crate::bridge::log_name(bridge);
        for rule in &bridge.export {
            for from in stack
                .containers
                .iter()
                .filter(|c| c.capabilities.contains(&crate::spec::Capability::Messaging))
            {
                match &from.publish {
                    Some(list) => edges.extend(
                        list.iter()
                            .filter_map(|p| meet(p, &rule.local))
                            .map(|topic| edge(&from.name, &node, topic, false)),
                    ),
                    None => edges.push(edge(&from.name, &node, rule.local.clone(), true)),
                }
            }
        }
        for rule in &bridge.import {
            for to in &stack.containers {
                for topic in to.subscribe.iter().flatten().filter_map(|s| meet(s, &rule.local)) {
                    edges.push(edge(&node, &to.name, topic, false));
                }
            }
        }
    }
    edges
}

/// Every node: the containers, then the bridges (`bridge:NAME`) with their broker.
fn nodes(stack: &Stack) -> Vec<(String, Option<String>)> {
    let containers = stack.containers.iter().map(|c| (c.name.to_string(), None));
    let bridges = stack
        .bridges
        .iter()
        .map(|b| (crate::bridge::log_name(b), Some(b.url.clone())));
    containers.chain(bridges).collect()
}

pub fn render(stack: &Stack, live: &[ContainerInfo], format: GraphFormat) -> String {
    let edges = edges(stack);
    let label = |name: &str| match live.iter().find(|r| r.name == name) {
        Some(r) => format!("{name} ({}, in {}, out {})", r.state, r.messages_in, r.messages_out),
        None => name.to_owned(),
    };
    let id = |name: &str| name.replace(['-', '.', ':'], "_");
    let label = |name: &str, url: &Option<String>| match url {
        Some(url) => format!("{name} ({url})"),
        None => label(name),
    };
    let nodes = nodes(stack);
    let mut out = String::new();
    match format {
        GraphFormat::Text => {
            for (name, url) in &nodes {
                out.push_str(&label(name, url));
                out.push('\n');
                if let Some(bridge) = stack.bridges.iter().find(|b| crate::bridge::log_name(b) == *name) {
                    for rule in crate::bridge::describe_rules(bridge) {
                        out.push_str(&format!("  === {rule}\n"));
                    }
                }
                for e in edges.iter().filter(|e| e.from == *name) {
                    let arrow = if e.maybe { "-?->" } else { "--->" };
                    out.push_str(&format!("  {arrow} {} on {:?}\n", e.to, e.topic));
                }
            }
            if edges.iter().any(|e| e.maybe) {
                out.push_str("(-?-> : the publisher has no `publish:` list, so it may publish there)\n");
            }
        }
        GraphFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            for (name, url) in &nodes {
                out.push_str(&format!("  {}[\"{}\"]\n", id(name), label(name, url)));
            }
            for e in &edges {
                let arrow = if e.maybe { "-.->" } else { "-->" };
                out.push_str(&format!("  {} {arrow}|\"{}\"| {}\n", id(&e.from), e.topic, id(&e.to)));
            }
        }
        GraphFormat::Dot => {
            out.push_str("digraph shoal {\n  rankdir=LR;\n  node [shape=box];\n");
            for (name, url) in &nodes {
                out.push_str(&format!("  {} [label={:?}];\n", id(name), label(name, url)));
            }
            for e in &edges {
                let style = if e.maybe { ", style=dashed" } else { "" };
                out.push_str(&format!(
                    "  {} -> {} [label={:?}{style}];\n",
                    id(&e.from),
                    id(&e.to),
                    e.topic
                ));
            }
            out.push_str("}\n");
        }
    }
    out
}

pub(super) fn graph(
    images: &ImageStore,
    runtime: &crate::runtime::RuntimeConfig,
    project: &ProjectArgs,
    format: GraphFormat,
) -> anyhow::Result<ExitCode> {
    // `-p NAME` of a running stack: its own file, wherever it is (not this folder's), read
    // quietly (its warnings were shown when it started, not again on every `graph`).
    let running = match (&project.project, &project.file) {
        (Some(name), files) if files.is_empty() => Client::for_project(name)
            .and_then(|client| client.call_as::<crate::control::Info>(Request::Info))
            .ok(),
        _ => None,
    };
    let loaded = match running {
        Some(info) => {
            let env: std::collections::HashMap<String, String> = std::env::vars().collect();
            let lookup = |digest: &crate::spec::ImageDigest| images.path_of(digest);
            let options = crate::spec::LoadOptions {
                env: &env,
                lookup_digest: &lookup,
                resolve_reference: &|reference: &str| images.resolve_reference(reference),
            };
            match crate::spec::load(&info.file, &options) {
                Ok((stack, _warnings)) => Some(stack),
                Err(diagnostics) => anyhow::bail!(
                    "the file of running project `{}` ({}) no longer loads:\n{}",
                    info.project,
                    info.file.display(),
                    crate::spec::render_diagnostics(&diagnostics).trim_end()
                ),
            }
        }
        None => {
            let input = project.compose_files(crate::spec::ComposeFiles::resolve_files(&project.file)?);
            super::compose::load_stack(images, runtime, &input, false)
        }
    };
    let Some(stack) = loaded else {
        return Ok(ExitCode::from(1));
    };
    let live: Vec<ContainerInfo> = Client::for_project(project.project.as_deref().unwrap_or(&stack.name))
        .and_then(|client| client.call_as(Request::Ps))
        .unwrap_or_default();
    print!("{}", render(&stack, &live, format));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(yaml: &str) -> Stack {
        let env = std::collections::HashMap::new();
        let options = crate::spec::LoadOptions {
            env: &env,
            lookup_digest: &|_| None,
            resolve_reference: &crate::spec::no_registry,
        };
        // The images must exist; an empty module is enough for the graph.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"\0asm\x01\0\0\0").unwrap();
        match crate::spec::load_str(yaml, &dir.path().join("graph-test.yaml"), &options) {
            Ok((stack, _)) => stack,
            Err(diagnostics) => panic!("{}", crate::spec::render_diagnostics(&diagnostics)),
        }
    }

    fn pairs(edges: &[Edge]) -> Vec<(&str, &str, &str, bool)> {
        edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.topic.as_str(), e.maybe))
            .collect()
    }

    /// Declared prefixes meet on the longer one; an undeclared publisher may reach every
    /// subscriber; a bridge takes what local publishers send under its export prefixes.
    #[test]
    fn edges_follow_the_declarations_in_file_order() {
        let stack = stack(
            r#"
name: g
bridges:
  up:
    url: mqtt://127.0.0.1:1883
    export: [{local: "sensors/", remote: "b/sensors/"}]
    import: [{remote: "cmd/", local: "cmd/"}]
containers:
  sensor: {image: a.wasm, capabilities: [messaging], publish: ["sensors/temp"]}
  anywhere: {image: a.wasm, capabilities: [messaging]}
  collector: {image: a.wasm, capabilities: [messaging], subscribe: ["sensors/", "cmd/"]}
"#,
        );
        assert_eq!(
            pairs(&edges(&stack)),
            [
                ("sensor", "collector", "sensors/temp", false),
                ("anywhere", "collector", "sensors/", true),
                ("anywhere", "collector", "cmd/", true),
                ("sensor", "bridge:up", "sensors/temp", false),
                ("anywhere", "bridge:up", "sensors/", true),
                ("collector", "bridge:up", "sensors/", true),
                ("bridge:up", "collector", "cmd/", false),
            ]
        );
    }
}
