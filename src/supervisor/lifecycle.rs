//! The operator's verbs on one container (`stop`, `kill`, `start`, `restart`, `pause`,
//! `unpause`) and why one was refused.

use std::time::Duration;

use super::{Outcome, Supervisor};
use crate::logs::Stream;
use crate::runtime::ExitStatus;

/// Why a lifecycle request (stop, start, pause ...) on one container was refused; the
/// control plane carries it to the client as that container's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("no container named `{0}` in this stack")]
    NoSuchContainer(String),
    #[error("container `{0}` is not running")]
    NotRunning(String),
    #[error("container `{0}` is already running")]
    AlreadyRunning(String),
    #[error("container `{0}` cannot start: its image was not loaded")]
    NoImage(String),
}

impl Supervisor {
    /// `shoal stop NAME`: stop it and keep it stopped (no restart policy applies).
    pub async fn stop(&mut self, name: &str) -> Result<Outcome, LifecycleError> {
        self.operator_halt(name, "stop", None).await
    }

    /// `shoal stop -t SECONDS NAME`: [`Supervisor::stop`] with its own wait before the kill
    /// (`None`: the container's `stop_timeout`).
    pub async fn stop_within(&mut self, name: &str, timeout: Option<Duration>) -> Result<Outcome, LifecycleError> {
        self.operator_halt(name, "stop", timeout).await
    }

    /// `shoal kill NAME`: like stop, without waiting for `stop_timeout`.
    pub async fn kill(&mut self, name: &str) -> Result<Outcome, LifecycleError> {
        self.operator_halt(name, "kill", Some(Duration::ZERO)).await
    }

    async fn operator_halt(
        &mut self,
        name: &str,
        action: &str,
        timeout: Option<Duration>,
    ) -> Result<Outcome, LifecycleError> {
        let index = self.index(name)?;
        let container = &self.containers[index];
        if container.run.is_none() {
            return Err(LifecycleError::NotRunning(name.to_owned()));
        }
        container.status.mark_stopped_by_operator(true);
        let timeout = timeout.unwrap_or(container.spec.stop_timeout);
        let outcome = self
            .halt(index, timeout)
            .await
            .unwrap_or(Outcome::Finished(ExitStatus::Killed));
        self.events.record(Some(name), action, outcome.to_string());
        self.log.line(
            name,
            Stream::System,
            &format!(
                "{} by the operator",
                if action == "kill" { "killed" } else { "stopped" }
            ),
        );
        Ok(outcome)
    }

    /// `shoal start NAME`: start a container that is not running (stopped, exited, failed).
    pub fn start(&mut self, name: &str) -> Result<(), LifecycleError> {
        let index = self.index(name)?;
        let container = &self.containers[index];
        if container.run.is_some() {
            return Err(LifecycleError::AlreadyRunning(name.to_owned()));
        }
        if container.image.is_none() {
            return Err(LifecycleError::NoImage(name.to_owned()));
        }
        container.status.mark_stopped_by_operator(false);
        self.spawn(index, None);
        Ok(())
    }

    /// `shoal restart NAME`: stop (if running), then start.
    pub async fn restart(&mut self, name: &str) -> Result<(), LifecycleError> {
        self.restart_within(name, None).await
    }

    /// `shoal restart -t SECONDS NAME`: [`Supervisor::restart`] with its own wait before
    /// the kill (`None`: the container's `stop_timeout`).
    pub async fn restart_within(&mut self, name: &str, timeout: Option<Duration>) -> Result<(), LifecycleError> {
        let index = self.index(name)?;
        if self.containers[index].run.is_some() {
            let timeout = timeout.unwrap_or(self.containers[index].spec.stop_timeout);
            self.halt(index, timeout).await;
        }
        self.events.record(Some(name), "restart", "by the operator");
        self.start(name)
    }

    /// `shoal pause NAME` / `unpause`: a paused container runs no guest code (it is held
    /// at its next epoch tick or host-call return) and keeps all its state; messages for
    /// it queue in its mailbox under the usual bound.
    pub fn set_paused(&mut self, name: &str, paused: bool) -> Result<bool, LifecycleError> {
        let index = self.index(name)?;
        let container = &self.containers[index];
        if container.run.is_none() {
            return Err(LifecycleError::NotRunning(name.to_owned()));
        }
        let changed = container.status.probe.set_paused(paused);
        if changed {
            let action = if paused { "pause" } else { "unpause" };
            self.events.record(Some(name), action, "");
            self.log.line(name, Stream::System, &format!("{action}d"));
        }
        Ok(changed)
    }
}
