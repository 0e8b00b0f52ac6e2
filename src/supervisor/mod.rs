//! Runs a validated stack: loads each image once, starts containers in `depends_on` order,
//! reports how each one ended, and stops everything on shutdown.
//!
//! Every container is one tokio task. A dependency is awaited through a `watch` channel of
//! the dependency's [`Phase`], so a container waiting for `writer` to complete costs nothing
//! while it waits, and a failed dependency is reported instead of starting on top of it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wasmtime::Module;

use crate::broker::Broker;
use crate::host::{HostConfig, HostLimits};
use crate::images::{ImageError, ImageStore, LoadedModule, ModuleSource};
use crate::logs::{LogSink, Stream};
use crate::runtime::{ExitStatus, Runtime};
use crate::spec::{ContainerSpec, DependencyCondition, ImageRef, Stack};

/// Errors that stop a stack before any container runs.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("image {0} is not in the image store")]
    MissingDigest(String),
}

/// Where a container is in its life, as its dependents see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Running,
    Ended(Outcome),
}

/// How a container's run ended, including never having started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished(ExitStatus),
    /// Not started, because a dependency failed or the stack was stopped first.
    NotStarted(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Finished(status) => status.fmt(f),
            Outcome::NotStarted(why) => write!(f, "not started: {why}"),
        }
    }
}

/// The end of one `up`.
#[derive(Debug, Clone)]
pub struct StackReport {
    pub outcomes: Vec<(String, Outcome)>,
    /// True when the stack was stopped from outside (Ctrl-C, SIGTERM) rather than ending.
    pub interrupted: bool,
}

impl StackReport {
    /// Success: every container exited 0, or was stopped by the operator.
    pub fn is_success(&self) -> bool {
        self.outcomes.iter().all(|(_, outcome)| match outcome {
            Outcome::Finished(ExitStatus::Exited(0)) => true,
            Outcome::Finished(ExitStatus::Killed) | Outcome::NotStarted(_) => self.interrupted,
            _ => false,
        })
    }
}

/// Load every distinct image of the stack once (compile cache first).
pub fn load_modules(
    runtime: &Runtime,
    images: &ImageStore,
    stack: &Stack,
    mut on_loaded: impl FnMut(&PathBuf, &LoadedModule),
) -> Result<HashMap<ImageRef, Module>, SupervisorError> {
    let mut modules = HashMap::new();
    for container in &stack.containers {
        if modules.contains_key(&container.image) {
            continue;
        }
        let path = match &container.image {
            ImageRef::Path(path) => path.clone(),
            ImageRef::Digest(digest) => {
                let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
                images
                    .path_of(hex)
                    .ok_or_else(|| SupervisorError::MissingDigest(digest.clone()))?
            }
        };
        let loaded = images.load_module(runtime.engine(), &path)?;
        on_loaded(&path, &loaded);
        modules.insert(container.image.clone(), loaded.module);
    }
    Ok(modules)
}

/// Describe a module load for `-v`.
pub fn describe_load(path: &std::path::Path, loaded: &LoadedModule) -> String {
    let how = match loaded.source {
        ModuleSource::Compiled => "compiled",
        ModuleSource::Cached => "loaded from the compile cache",
    };
    format!(
        "{} ({}) {how} in {:.1?}",
        path.display(),
        loaded.digest.short(),
        loaded.elapsed
    )
}

/// Run the stack until every container has ended, or until `shutdown` is cancelled; then
/// stop what still runs (at once at its next host call or epoch tick; a container still not
/// gone after its `stop_timeout` is abandoned and reported killed).
pub async fn run_stack(
    runtime: Arc<Runtime>,
    modules: HashMap<ImageRef, Module>,
    stack: &Stack,
    log: Arc<dyn LogSink>,
    shutdown: CancellationToken,
) -> StackReport {
    let stop = CancellationToken::new();
    let broker = Broker::new();
    let mut phases: HashMap<String, watch::Receiver<Phase>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut names = Vec::new();
    for spec in &stack.containers {
        let (tx, rx) = watch::channel(Phase::Waiting);
        let deps: Vec<_> = spec
            .depends_on
            .iter()
            .filter_map(|d| phases.get(&d.name).map(|rx| (d.clone(), rx.clone())))
            .collect();
        phases.insert(spec.name.clone(), rx);
        names.push(spec.name.clone());
        let Some(module) = modules.get(&spec.image).cloned() else {
            let outcome = Outcome::NotStarted("its image was not loaded".into());
            let _ = tx.send(Phase::Ended(outcome));
            continue;
        };
        let task = ContainerTask {
            runtime: runtime.clone(),
            host: host_config(spec, stack, &broker, log.clone()),
            spec: spec.clone(),
            module,
            log: log.clone(),
            stop: stop.child_token(),
            phase: tx,
        };
        tasks.spawn(task.run(deps));
    }

    let mut outcomes: HashMap<String, Outcome> = HashMap::new();
    let mut interrupted = false;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok((name, outcome))) => { outcomes.insert(name, outcome); }
                Some(Err(_)) => {}
                None => break,
            },
            _ = shutdown.cancelled(), if !interrupted => {
                interrupted = true;
                stop.cancel();
                let longest = stack.containers.iter().map(|c| c.stop_timeout).max().unwrap_or_default();
                let deadline = Instant::now() + longest;
                while let Ok(Some(joined)) = tokio::time::timeout_at(deadline.into(), tasks.join_next()).await {
                    if let Ok((name, outcome)) = joined {
                        outcomes.insert(name, outcome);
                    }
                }
                tasks.abort_all();
                break;
            }
        }
    }
    let outcomes = names
        .into_iter()
        .map(|name| {
            let outcome = outcomes.remove(&name).unwrap_or(Outcome::Finished(ExitStatus::Killed));
            (name, outcome)
        })
        .collect();
    StackReport { outcomes, interrupted }
}

/// What the container's `env` API gets: its grants, its topic lists, the sensors it may
/// open, and the stack's broker.
pub fn host_config(spec: &ContainerSpec, stack: &Stack, broker: &Broker, log: Arc<dyn LogSink>) -> HostConfig {
    HostConfig {
        container: spec.name.clone(),
        capabilities: spec.capabilities.clone(),
        capabilities_location: spec.capabilities_location.clone(),
        publish: spec.publish.clone(),
        subscribe: spec.subscribe.clone(),
        sensors: spec
            .sensors
            .iter()
            .filter_map(|name| stack.sensors.get(name).cloned())
            .collect(),
        broker: broker.clone(),
        log,
        limits: HostLimits::default(),
    }
}

struct ContainerTask {
    runtime: Arc<Runtime>,
    host: HostConfig,
    spec: ContainerSpec,
    module: Module,
    log: Arc<dyn LogSink>,
    stop: CancellationToken,
    phase: watch::Sender<Phase>,
}

impl ContainerTask {
    async fn run(self, deps: Vec<(crate::spec::Dependency, watch::Receiver<Phase>)>) -> (String, Outcome) {
        let name = self.spec.name.clone();
        let log = self.log.clone();
        let phase = self.phase.clone();
        let outcome = self.run_inner(deps).await;
        log.line(&name, Stream::System, &outcome.to_string());
        let _ = phase.send(Phase::Ended(outcome.clone()));
        (name, outcome)
    }

    async fn run_inner(self, deps: Vec<(crate::spec::Dependency, watch::Receiver<Phase>)>) -> Outcome {
        for (dep, mut phase) in deps {
            let ready = tokio::select! {
                _ = self.stop.cancelled() => return Outcome::NotStarted("the stack was stopped first".into()),
                ready = wait_for(&dep.name, dep.condition, &mut phase) => ready,
            };
            if let Err(why) = ready {
                return Outcome::NotStarted(why);
            }
        }
        let phase = &self.phase;
        let status = self
            .runtime
            .run(&self.spec, &self.module, self.host, self.stop.clone(), || {
                let _ = phase.send(Phase::Running);
            })
            .await;
        Outcome::Finished(status)
    }
}

async fn wait_for(
    name: &str,
    condition: DependencyCondition,
    phase: &mut watch::Receiver<Phase>,
) -> Result<(), String> {
    loop {
        let current = phase.borrow_and_update().clone();
        match (condition, current) {
            (DependencyCondition::ServiceStarted, Phase::Running) => return Ok(()),
            (_, Phase::Ended(Outcome::Finished(status))) => {
                return match condition {
                    DependencyCondition::ServiceStarted => Ok(()),
                    DependencyCondition::ServiceCompletedSuccessfully if status.is_success() => Ok(()),
                    DependencyCondition::ServiceCompletedSuccessfully => {
                        Err(format!("dependency `{name}` did not complete successfully ({status})"))
                    }
                };
            }
            (_, Phase::Ended(Outcome::NotStarted(_))) => return Err(format!("dependency `{name}` did not start")),
            _ => {}
        }
        if phase.changed().await.is_err() {
            return Err(format!("dependency `{name}` went away"));
        }
    }
}
