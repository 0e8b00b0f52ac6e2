//! `shoal images`: list, add, remove and precompile images of the content-addressed store.

use std::process::ExitCode;

use super::args::{ImagesArgs, ImagesCommand};
use super::compile;
use crate::images::ImageStore;
use crate::runtime::RuntimeConfig;

pub(super) fn images_command(
    images: &ImageStore,
    runtime_config: &RuntimeConfig,
    args: ImagesArgs,
) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(ImagesCommand::Ls) {
        ImagesCommand::Ls => {
            println!("{:<64} {:>8} NAME", "SHA-256", "SIZE");
            for image in images.list()? {
                println!("{:<64} {:>8} {}", image.digest, image.size, image.name);
            }
        }
        ImagesCommand::Add { files } => {
            if files.is_empty() {
                anyhow::bail!("`shoal images add` needs at least one .wasm file");
            }
            for file in files {
                let image = images.add(&file)?;
                println!("sha256:{} {}", image.digest, image.name);
            }
        }
        ImagesCommand::Compile(args) => compile::compile(runtime_config, args)?,
        ImagesCommand::Rm { images: refs } => {
            if refs.is_empty() {
                anyhow::bail!("`shoal images rm` needs a digest prefix or name");
            }
            for reference in refs {
                let image = images.remove(&reference)?;
                println!("removed sha256:{} {}", image.digest, image.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
