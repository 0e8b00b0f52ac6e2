//! `shoal config`: validate the compose file and print the stack as shoal resolved it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use super::args::{ConfigArgs, Format};
use super::compose::{compose_path, load_stack};
use crate::images::{digest_file, ImageStore};
use crate::runtime::RuntimeConfig;
use crate::spec::{self, ImageRef, Stack};

pub(super) fn config(images: &ImageStore, runtime: &RuntimeConfig, args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let path = compose_path(args.file.file.as_deref().or(args.positional.as_deref()))?;
    let Some(stack) = load_stack(images, runtime, &path, args.strict) else {
        return Ok(ExitCode::from(1));
    };
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    // registry: `--resolve-image-digests` prints each registry image as `ref@sha256:...`.
    let stack = if args.resolve_image_digests {
        pin_registry_images(stack)
    } else {
        stack
    };
    let resolved = ResolvedStack::new(images, &stack);
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&resolved)? + "\n",
        Format::Yaml => serde_saphyr::to_string(&resolved)?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// What `shoal config` prints: the stack with image digests.
#[derive(serde::Serialize)]
struct ResolvedStack<'a> {
    name: &'a str,
    file: &'a Path,
    containers: Vec<ResolvedContainer<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    sensors: &'a BTreeMap<String, spec::SensorSpec>,
    // bridge: MQTT bridges as written (credentials stay references)
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    bridges: &'a [spec::BridgeSpec],
}

#[derive(serde::Serialize)]
struct ResolvedContainer<'a> {
    #[serde(flatten)]
    spec: &'a spec::ContainerSpec,
    digest: Option<String>,
}

impl<'a> ResolvedStack<'a> {
    fn new(images: &ImageStore, stack: &'a Stack) -> Self {
        let containers = stack
            .containers
            .iter()
            .map(|spec| {
                let digest = match &spec.image {
                    ImageRef::Path(path) => digest_file(path).ok().map(|d| d.to_string()),
                    ImageRef::Digest(d) => images.path_of(d).map(|_| d.to_string()),
                    // registry: the registry's digest, what `ref@sha256:` pins on every board
                    ImageRef::Registry { resolved, .. } => Some(resolved.pinned.to_string()),
                };
                ResolvedContainer { spec, digest }
            })
            .collect();
        ResolvedStack {
            name: &stack.name,
            file: &stack.file,
            containers,
            sensors: &stack.sensors,
            bridges: &stack.bridges, // bridge
        }
    }
}

// registry
/// The stack with each registry reference written as `ref@sha256:<registry digest>`.
fn pin_registry_images(mut stack: Stack) -> Stack {
    for container in &mut stack.containers {
        let pinned = container.image.pinned();
        if let ImageRef::Registry { reference, .. } = &mut container.image {
            *reference = pinned;
        }
    }
    stack
}
