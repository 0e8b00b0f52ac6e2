//! Applying a reload [`Plan`]: only what changed is touched, and a changed container's
//! old instance keeps running until its new one exists.

use std::collections::HashMap;
use std::sync::Arc;

use super::container::ContainerStatus;
use super::plan::{Plan, Reason};
use super::{Container, LifecycleError, LoadedImage, Supervisor};
use crate::logs::Stream;
use crate::runtime::ExitStatus;
use crate::spec::{ContainerSpec, ImageRef, Stack};

/// A change of a reload that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyFailure {
    pub container: String,
    pub reason: ReplaceError,
}

/// Why a changed container was not replaced; the old instance keeps running in each case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplaceError {
    #[error(transparent)]
    Unknown(#[from] LifecycleError),
    #[error("its new image was not loaded; the old instance keeps running")]
    ImageNotLoaded,
    #[error("the new instance did not start ({0}); the old one keeps running")]
    DidNotStart(ExitStatus),
}

impl Supervisor {
    /// Apply a reload [`Plan`] towards `desired`, whose images are in `images`.
    ///
    /// Removed containers stop first (dependents first). A changed container's new
    /// instance is created and instantiated before the old one is stopped; if that fails,
    /// the old one keeps running and the failure is in the report. Unchanged containers
    /// are not touched at all: same instance, memory, timers, subscriptions and queue.
    pub async fn apply(
        &mut self,
        plan: &Plan,
        desired: &Stack,
        images: &HashMap<ImageRef, LoadedImage>,
    ) -> Vec<ApplyFailure> {
        let mut failures = Vec::new();
        self.sensors = desired.sensors.clone();
        for name in &plan.stop {
            if let Ok(index) = self.index(name) {
                let timeout = self.containers[index].spec.stop_timeout;
                self.halt(index, timeout).await;
                self.containers.remove(index);
                self.log.line(name, Stream::System, "removed (no longer in the file)");
            }
        }
        let restarting: HashMap<&str, &Reason> = plan.restart.iter().map(|(n, r)| (n.as_str(), r)).collect();
        for spec in &desired.containers {
            let image = images.get(&spec.image).cloned();
            if plan.start.iter().any(|n| *n == spec.name) {
                self.add(spec, image);
                continue;
            }
            let Some(reason) = restarting.get(spec.name.as_str()) else {
                continue;
            };
            if let Err(why) = self.replace(spec, image, reason).await {
                failures.push(ApplyFailure {
                    container: spec.name.to_string(),
                    reason: why,
                });
            }
        }
        // Keep the file's order, so the next stop and diff see dependents after dependencies.
        let order: HashMap<&str, usize> = desired
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        self.containers
            .sort_by_key(|c| order.get(c.spec.name.as_str()).copied().unwrap_or(usize::MAX));
        self.publish_board();
        failures
    }

    /// Prepare `spec`'s new instance, and only once it exists stop the old one and start
    /// the new one in its place.
    async fn replace(
        &mut self,
        spec: &ContainerSpec,
        image: Option<LoadedImage>,
        reason: &Reason,
    ) -> Result<(), ReplaceError> {
        let index = self.index(&spec.name)?;
        let image = image.ok_or(ReplaceError::ImageNotLoaded)?;
        let status = Arc::new(ContainerStatus::default());
        let fresh = Container {
            spec: Arc::new(spec.clone()),
            image: Some(image.clone()),
            status: status.clone(),
            phase: self.containers[index].phase.clone(),
            run: None,
        };
        let host = self.host_config(&fresh);
        let prepared = self
            .runtime
            .prepare(spec, &image.module, host, status.probe.clone())
            .await
            .map_err(ReplaceError::DidNotStart)?;
        let timeout = self.containers[index].spec.stop_timeout;
        self.halt(index, timeout).await;
        self.containers[index] = fresh;
        self.log
            .line(&spec.name, Stream::System, &format!("replaced ({reason})"));
        self.spawn(index, Some(prepared));
        self.publish_board();
        Ok(())
    }
}
