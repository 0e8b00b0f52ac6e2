//! `shoal images compile`: precompile `.wasm` files for a board (ahead of time, as WAMR's
//! AOT mode does), so the board runs a shoal built without the compiler.

use std::path::PathBuf;

use clap::Args;

use crate::images::precompiled::HOST_TARGET;
use crate::runtime::RuntimeConfig;

#[derive(Args, Debug)]
#[cfg_attr(not(feature = "compiler"), allow(dead_code))]
#[command(after_help = "The board's shoal must be the same version, and be given the same \
                        --memory-reservation, as the one that compiles.\n\nExamples:\n  shoal \
                        images compile collector.wasm --target aarch64-unknown-linux-gnu -o board/\n  \
                        shoal images compile *.wasm")]
pub struct CompileArgs {
    /// The .wasm files to compile
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Target triple of the board, e.g. aarch64-unknown-linux-gnu [default: this machine's]
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// Folder for the .cwasm files [default: beside each .wasm]
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

#[cfg(feature = "compiler")]
pub fn compile(runtime: &RuntimeConfig, args: CompileArgs) -> anyhow::Result<()> {
    let target = args.target.as_deref().unwrap_or(HOST_TARGET);
    let compiler = crate::images::precompiled::CrossCompiler::new(crate::runtime::engine_config(runtime), target)?;
    for file in &args.files {
        let out = compiler.compile_to(file, args.out_dir.as_deref())?;
        println!("{} -> {} ({target})", file.display(), out.display());
    }
    Ok(())
}

#[cfg(not(feature = "compiler"))]
pub fn compile(_runtime: &RuntimeConfig, args: CompileArgs) -> anyhow::Result<()> {
    let target = args.target.as_deref().unwrap_or(HOST_TARGET);
    anyhow::bail!(
        "this shoal has no compiler (it was built without the `compiler` feature)\n  hint: run `shoal images \
         compile FILE.wasm --target {target}` with the full shoal on another machine, and copy the .cwasm here"
    )
}
