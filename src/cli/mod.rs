//! The `shoal` command line. Errors get their context here; exit codes follow the
//! convention of uv and ripgrep: 0 success, 1 failure (invalid file, failed container),
//! 2 usage error (clap's own).
//!
//! `args` holds the clap types; each command family has its file (`config`, `run`,
//! `bench`, `images`, `graph`, `serve` for `up`); the commands that talk to a running
//! stack live with their requests in [`crate::control::cmd`] (flattened into
//! [`args::Command`]); `compose` finds and loads the compose file for all of them.

mod agent; // fleet (issue 18)
mod args;
mod bench;
mod compile;
mod compose;
mod config;
mod fleet; // fleet (issue 18): the operator's commands
mod graph;
mod images;
mod ops;
mod run;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::images::{default_data_dir, ImageStore};
use crate::runtime::RuntimeConfig;

pub use args::Cli;
use args::Command;
// Reached through `super::` by `up` (serve.rs: the arguments, the compose file).
use args::{split_targets, GlobalArgs, UpArgs};
use compose::load_stack;

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init(cli.global.log_format, cli.global.log_level.as_deref());
    match dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            // Each cause once: many errors print their source in their own text already.
            tracing::error!("{}", crate::runtime::root_message(error.as_ref()));
            ExitCode::from(1)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if matches!(
        cli.command,
        Command::Up(_) | Command::Run(_) | Command::Bench(_) | Command::Agent(_)
    ) {
        // Processes that run containers get the allocator setting that lets their memory
        // go back after a teardown; the short-lived clients below do not need the exec.
        crate::procstat::reexec_with_malloc_tunables();
    } else {
        // Short-lived commands die quietly when their reader goes (`shoal ps | head`), as
        // Unix tools do. Never in a process that serves a stack: a client hanging up on
        // the control socket must not kill the containers.
        // SAFETY: setting a signal disposition has no preconditions.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let images = ImageStore::new(cli.global.data_dir.clone().unwrap_or_else(default_data_dir));
    let mut runtime_config = RuntimeConfig::default();
    if let Some(size) = cli.global.memory_reservation {
        runtime_config.memory_reservation = size.bytes();
    }
    crate::runtime::stack::apply(&mut runtime_config, cli.global.max_wasm_stack)?;
    if let Some(workers) = cli.global.workers {
        crate::executor::set_workers(usize::from(workers));
    }
    match cli.command {
        Command::Config(args) => config::config(&images, &runtime_config, args),
        Command::Up(args) => serve::up(&images, &runtime_config, &cli.global, args),
        Command::Agent(args) => agent::agent(&images, &runtime_config, args),
        Command::Client(command) => command.run(),
        Command::Graph(args) => graph::graph(&images, &runtime_config, &args.project, args.format),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "shoal", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run::run_image(&images, &runtime_config, args),
        Command::Images(args) => images::images_command(&images, &runtime_config, args),
        Command::Pull(args) => images::pull_compose(&images, args), // registry
        Command::Fleet(args) => fleet::fleet(&images, &runtime_config, args), // fleet
        Command::Bench(args) => bench::bench_command(&images, &runtime_config, args),
        Command::Schema => ops::schema(),
        Command::Version => ops::version(),
        Command::Man { dir } => ops::man(&dir),
        Command::Exec { .. } => ops::hint("exec", "guests have no shell to run a command in; `shoal logs NAME` shows a container's output, `shoal topics tail TOPIC` its messages"),
        Command::Watch { .. } => ops::hint("watch", "use `shoal up --watch` (or `watch: true` in the file): the stack reloads when the file or an image changes"),
    }
}

/// The executor of a process that runs containers: every core (see [`crate::executor`]).
fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(crate::executor::build(crate::executor::workers())?)
}

/// Cancelled on Ctrl-C or SIGTERM.
fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        cancel.cancel();
    });
    token
}
