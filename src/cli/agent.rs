//! `shoal agent`: this board's fleet agent in the foreground (systemd runs it as a
//! service: `compose-examples/systemd/shoal-agent.service`). The work is the library's
//! [`crate::fleet::agent::Agent`]; this is its process: settings, runtime, signals.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use super::{shutdown_signal, tokio_runtime};
use crate::fleet::agent::{Agent, AgentArgs, Host, Settings};
use crate::images::ImageStore;
use crate::logs::terminal::TerminalLog;
use crate::logs::LogSink;
use crate::runtime::{Runtime, RuntimeConfig};

pub(super) fn agent(images: &ImageStore, runtime_config: &RuntimeConfig, args: AgentArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&args)?;
    let runtime = Arc::new(Runtime::new(runtime_config)?);
    let no_colour = !std::io::stderr().is_terminal();
    let log: Arc<dyn LogSink> = Arc::new(TerminalLog::new(std::iter::empty::<&str>(), no_colour));
    crate::telemetry::set_project(settings.project.as_str());
    tracing::info!(
        "agent for device {} (groups: {}), {} trusted key{}, state in {}",
        settings.device,
        if settings.groups.is_empty() {
            "none".to_owned()
        } else {
            settings.groups.join(", ")
        },
        settings.trust.len(),
        if settings.trust.len() == 1 { "" } else { "s" },
        settings.state_dir.display()
    );
    let executor = tokio_runtime()?;
    let host = Host {
        runtime,
        images: images.clone(),
        log,
    };
    let result = executor.block_on(async move {
        let shutdown = shutdown_signal();
        Agent::new(settings, host).run(shutdown).await
    });
    // As `up` does: a blocking-pool thread may still sit in a guest's file call.
    executor.shutdown_background();
    result?;
    Ok(ExitCode::SUCCESS)
}
