//! `shoal config`: validate the compose files and print the stack as shoal resolved it: the
//! `-f` files merged, `.env` and profiles applied, in a form shoal loads again
//! ([`crate::spec::render`]), each file image's digest beside it as `x-digest`.

use std::collections::HashMap;
use std::process::ExitCode;

use super::args::{ConfigArgs, Format};
use super::compose::load_stack;
use crate::images::{digest_file, ImageStore};
use crate::runtime::RuntimeConfig;
use crate::spec::{render, ImageRef};

pub(super) fn config(images: &ImageStore, runtime: &RuntimeConfig, args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let input = args.file.compose_files(args.positional.as_deref())?;
    let Some(stack) = load_stack(images, runtime, &input, args.strict) else {
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
    let env: HashMap<String, String> = std::env::vars().collect();
    let digest_of = |spec: &crate::spec::ContainerSpec| match &spec.image {
        ImageRef::Path(path) => digest_file(path).ok().map(|d| d.to_string()),
        // The image line is the digest already.
        ImageRef::Digest(_) => None,
        // registry: the registry's digest, what `ref@sha256:` pins on every board
        ImageRef::Registry { resolved, .. } => Some(resolved.pinned.to_string()),
    };
    let out = render::to_compose(&stack, &env, &digest_of);
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&out)? + "\n",
        Format::Yaml => serde_saphyr::to_string(&out)?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

// registry
/// The stack with each registry reference written as `ref@sha256:<registry digest>`.
fn pin_registry_images(mut stack: crate::spec::Stack) -> crate::spec::Stack {
    for container in &mut stack.containers {
        let pinned = container.image.pinned();
        if let ImageRef::Registry { reference, .. } = &mut container.image {
            *reference = pinned;
        }
    }
    stack
}
