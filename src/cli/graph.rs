//! `shoal graph`: containers and the topics between them.
//!
//! Drawn from the compose file's declared `publish:` and `subscribe:` prefixes: an edge
//! joins a publisher and a subscriber when one's prefix contains the other's. A container
//! without a `publish:` list may publish anywhere, so it gets a dashed edge to every
//! subscriber. When the stack runs, each container is annotated with its live message
//! counts (in/out) from `ps`.

use std::process::ExitCode;

use clap::ValueEnum;

use super::verbs::ProjectArgs;
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

/// Every edge the file's declarations allow, in file order.
pub fn edges(stack: &Stack) -> Vec<Edge> {
    let mut edges = Vec::new();
    for from in &stack.containers {
        for to in &stack.containers {
            if from.name == to.name {
                continue;
            }
            let Some(subscribes) = &to.subscribe else { continue };
            for sub in subscribes {
                match &from.publish {
                    Some(publishes) => {
                        for publ in publishes {
                            if publ.starts_with(sub.as_str()) || sub.starts_with(publ.as_str()) {
                                let topic = if publ.len() >= sub.len() { publ } else { sub };
                                edges.push(Edge {
                                    from: from.name.clone(),
                                    to: to.name.clone(),
                                    topic: topic.clone(),
                                    maybe: false,
                                });
                            }
                        }
                    }
                    None if from.capabilities.contains(&crate::spec::Capability::Messaging) => edges.push(Edge {
                        from: from.name.clone(),
                        to: to.name.clone(),
                        topic: sub.clone(),
                        maybe: true,
                    }),
                    None => {}
                }
            }
        }
    }
    // bridge: an MQTT bridge is a node too; local publishers feed its exports, its imports
    // feed local subscribers.
    for bridge in &stack.bridges {
        let node = crate::bridge::log_name(bridge);
        let meet = |a: &str, b: &str| {
            (a.starts_with(b) || b.starts_with(a)).then(|| if a.len() >= b.len() { a } else { b }.to_owned())
        };
        for rule in &bridge.export {
            for from in stack
                .containers
                .iter()
                .filter(|c| c.capabilities.contains(&crate::spec::Capability::Messaging))
            {
                let found: Vec<(String, bool)> = match &from.publish {
                    Some(list) => list
                        .iter()
                        .filter_map(|p| meet(p, &rule.local))
                        .map(|t| (t, false))
                        .collect(),
                    None => vec![(rule.local.clone(), true)],
                };
                for (topic, maybe) in found {
                    edges.push(Edge {
                        from: from.name.clone(),
                        to: node.clone(),
                        topic,
                        maybe,
                    });
                }
            }
        }
        for rule in &bridge.import {
            for to in &stack.containers {
                for topic in to.subscribe.iter().flatten().filter_map(|s| meet(s, &rule.local)) {
                    edges.push(Edge {
                        from: node.clone(),
                        to: to.name.clone(),
                        topic,
                        maybe: false,
                    });
                }
            }
        }
    }
    edges
}

/// Every node: the containers, then the bridges (`bridge:NAME`) with their broker.
fn nodes(stack: &Stack) -> Vec<(String, Option<String>)> {
    let containers = stack.containers.iter().map(|c| (c.name.clone(), None));
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

pub(super) fn graph(images: &ImageStore, project: &ProjectArgs, format: GraphFormat) -> anyhow::Result<ExitCode> {
    let path = super::compose::compose_path(project.file.as_deref())?;
    let Some(stack) = super::compose::load_stack(images, &path, false) else {
        return Ok(ExitCode::from(1));
    };
    let live: Vec<ContainerInfo> = Client::for_project(project.project.as_deref().unwrap_or(&stack.name))
        .and_then(|client| client.call_as(Request::Ps))
        .unwrap_or_default();
    print!("{}", render(&stack, &live, format));
    Ok(ExitCode::SUCCESS)
}
