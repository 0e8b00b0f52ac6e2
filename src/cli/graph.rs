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
    edges
}

pub fn render(stack: &Stack, live: &[ContainerInfo], format: GraphFormat) -> String {
    let edges = edges(stack);
    let label = |name: &str| match live.iter().find(|r| r.name == name) {
        Some(r) => format!("{name} ({}, in {}, out {})", r.state, r.messages_in, r.messages_out),
        None => name.to_owned(),
    };
    let id = |name: &str| name.replace(['-', '.'], "_");
    let mut out = String::new();
    match format {
        GraphFormat::Text => {
            for c in &stack.containers {
                out.push_str(&label(&c.name));
                out.push('\n');
                for e in edges.iter().filter(|e| e.from == c.name) {
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
            for c in &stack.containers {
                out.push_str(&format!("  {}[\"{}\"]\n", id(&c.name), label(&c.name)));
            }
            for e in &edges {
                let arrow = if e.maybe { "-.->" } else { "-->" };
                out.push_str(&format!("  {} {arrow}|\"{}\"| {}\n", id(&e.from), e.topic, id(&e.to)));
            }
        }
        GraphFormat::Dot => {
            out.push_str("digraph shoal {\n  rankdir=LR;\n  node [shape=box];\n");
            for c in &stack.containers {
                out.push_str(&format!("  {} [label={:?}];\n", id(&c.name), label(&c.name)));
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
    let path = super::compose_path(project.file.as_deref())?;
    let Some(stack) = super::load_stack(images, &path, false) else {
        return Ok(ExitCode::from(1));
    };
    let live: Vec<ContainerInfo> = Client::for_project(project.project.as_deref().unwrap_or(&stack.name))
        .and_then(|client| client.call_as(Request::Ps))
        .unwrap_or_default();
    print!("{}", render(&stack, &live, format));
    Ok(ExitCode::SUCCESS)
}
