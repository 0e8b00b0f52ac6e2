//! Runs a validated stack: loads each image once, starts containers in `depends_on` order,
//! reports how each one ended, and stops everything on shutdown.
//!
//! Every container is one tokio task. A dependency is awaited through a `watch` channel of
//! the dependency's [`Phase`], so a container waiting for `writer` to complete costs nothing
//! while it waits, and a failed dependency is reported instead of starting on top of it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wasmtime::Module;

use crate::broker::Broker;
use crate::host::{HostConfig, HostLimits};
use crate::images::{ImageError, ImageStore, LoadedModule, ModuleSource};
use crate::logs::{LogSink, Stream};
use crate::runtime::{ExitStatus, Runtime};
use crate::spec::{ContainerSpec, DependencyCondition, ImageRef, RestartPolicy, SensorSpec, Stack};

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
/// stop what still runs (see [`StackRunner::stop`]).
pub async fn run_stack(
    runtime: Arc<Runtime>,
    modules: HashMap<ImageRef, Module>,
    stack: &Stack,
    log: Arc<dyn LogSink>,
    shutdown: CancellationToken,
) -> StackReport {
    let mut runner = StackRunner::new(runtime, log.clone());
    // bridge: MQTT bridges tap the runner's broker before any container publishes.
    let bridges = crate::bridge::start(&stack.bridges, runner.broker(), log);
    for spec in &stack.containers {
        runner.start(spec, modules.get(&spec.image).cloned(), &stack.sensors);
    }
    let interrupted = !runner.wait(&shutdown).await;
    if interrupted {
        runner.stop().await;
    }
    bridges.shutdown().await; // bridge: send what is queued (bounded by flush_timeout), disconnect
    runner.into_report(interrupted)
}

/// The containers of one stack, started one by one, sharing one broker.
///
/// `run_stack` starts a whole file's worth at once; `shoal bench` starts them one after
/// another and measures in between, through the same code.
pub struct StackRunner {
    runtime: Arc<Runtime>,
    broker: Broker,
    log: Arc<dyn LogSink>,
    stop: CancellationToken,
    phases: HashMap<String, watch::Receiver<Phase>>,
    tasks: JoinSet<(String, Outcome)>,
    names: Vec<String>,
    outcomes: HashMap<String, Outcome>,
    longest_stop_timeout: Duration,
}

impl StackRunner {
    pub fn new(runtime: Arc<Runtime>, log: Arc<dyn LogSink>) -> Self {
        StackRunner {
            runtime,
            broker: Broker::new(),
            log,
            stop: CancellationToken::new(),
            phases: HashMap::new(),
            tasks: JoinSet::new(),
            names: Vec::new(),
            outcomes: HashMap::new(),
            longest_stop_timeout: Duration::ZERO,
        }
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Containers whose end has been collected.
    pub fn ended(&self) -> usize {
        self.outcomes.len()
    }

    /// Containers that have been instantiated (running or already ended).
    pub fn started(&self) -> usize {
        self.phases
            .values()
            .filter(|phase| *phase.borrow() != Phase::Waiting)
            .count()
    }

    /// Start one container once its dependencies (started before it) allow; `None` for a
    /// module that could not be loaded.
    pub fn start(&mut self, spec: &ContainerSpec, module: Option<Module>, sensors: &BTreeMap<String, SensorSpec>) {
        let (tx, rx) = watch::channel(Phase::Waiting);
        let deps: Vec<_> = spec
            .depends_on
            .iter()
            .filter_map(|d| self.phases.get(&d.name).map(|rx| (d.clone(), rx.clone())))
            .collect();
        self.phases.insert(spec.name.clone(), rx);
        self.names.push(spec.name.clone());
        self.longest_stop_timeout = self.longest_stop_timeout.max(spec.stop_timeout);
        let Some(module) = module else {
            let _ = tx.send(Phase::Ended(Outcome::NotStarted("its image was not loaded".into())));
            return;
        };
        let task = ContainerTask {
            runtime: self.runtime.clone(),
            host: host_config(spec, sensors, &self.broker, self.log.clone()),
            spec: spec.clone(),
            module,
            log: self.log.clone(),
            stop: self.stop.child_token(),
            phase: tx,
        };
        self.tasks.spawn(task.run(deps));
    }

    /// Wait until at least `count` containers have ended.
    pub async fn wait_ended(&mut self, count: usize) {
        while self.outcomes.len() < count {
            match self.tasks.join_next().await {
                Some(Ok((name, outcome))) => {
                    self.outcomes.insert(name, outcome);
                }
                Some(Err(_)) => {}
                None => return,
            }
        }
    }

    /// Wait until every container has ended (true) or `shutdown` is cancelled (false).
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        loop {
            tokio::select! {
                joined = self.tasks.join_next() => match joined {
                    Some(Ok((name, outcome))) => { self.outcomes.insert(name, outcome); }
                    Some(Err(_)) => {}
                    None => return true,
                },
                _ = shutdown.cancelled() => return false,
            }
        }
    }

    /// Stop everything: each container is interrupted at once (at its next host call or
    /// epoch tick); whatever is still not gone after the longest `stop_timeout` is
    /// abandoned and reported killed.
    pub async fn stop(&mut self) {
        self.stop.cancel();
        let deadline = Instant::now() + self.longest_stop_timeout;
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline.into(), self.tasks.join_next()).await {
            if let Ok((name, outcome)) = joined {
                self.outcomes.insert(name, outcome);
            }
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    pub fn into_report(mut self, interrupted: bool) -> StackReport {
        let outcomes = std::mem::take(&mut self.names)
            .into_iter()
            .map(|name| {
                let outcome = self
                    .outcomes
                    .remove(&name)
                    .unwrap_or(Outcome::Finished(ExitStatus::Killed));
                (name, outcome)
            })
            .collect();
        StackReport { outcomes, interrupted }
    }
}

/// What the container's `env` API gets: its grants, its topic lists, the sensors it may
/// open, and the stack's broker.
pub fn host_config(
    spec: &ContainerSpec,
    sensors: &BTreeMap<String, SensorSpec>,
    broker: &Broker,
    log: Arc<dyn LogSink>,
) -> HostConfig {
    HostConfig {
        container: spec.name.clone(),
        capabilities: spec.capabilities.clone(),
        capabilities_location: spec.capabilities_location.clone(),
        publish: spec.publish.clone(),
        subscribe: spec.subscribe.clone(),
        sensors: spec
            .sensors
            .iter()
            .filter_map(|name| sensors.get(name).cloned())
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
        let mut restarts = 0u32;
        let mut quick_failures = 0u32;
        loop {
            let began = Instant::now();
            let status = self
                .runtime
                .run(&self.spec, &self.module, self.host.clone(), self.stop.clone(), || {
                    let _ = phase.send(Phase::Running);
                })
                .await;
            if self.stop.is_cancelled() || !should_restart(self.spec.restart, &status, restarts) {
                if restarts > 0 && !self.stop.is_cancelled() {
                    let why = format!(
                        "{status} (not restarted again after {restarts} restart{})",
                        plural(restarts)
                    );
                    self.log.line(&self.spec.name, Stream::System, &why);
                }
                return Outcome::Finished(status);
            }
            // Backoff doubles per restart; a run that lasted a while resets it, as Docker does.
            if began.elapsed() >= BACKOFF_RESET_AFTER {
                quick_failures = 0;
            } else {
                quick_failures += 1;
            }
            restarts += 1;
            let delay = restart_backoff(self.spec.restart_delay, quick_failures);
            let crash_loop = if quick_failures >= CRASH_LOOP_AFTER {
                " (crash loop: it keeps ending within seconds)"
            } else {
                ""
            };
            self.log.line(
                &self.spec.name,
                Stream::System,
                &format!(
                    "{status}; restarting in {} (restart {restarts}){crash_loop}",
                    humantime::format_duration(delay)
                ),
            );
            tokio::select! {
                _ = self.stop.cancelled() => return Outcome::Finished(status),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

/// Runs shorter than this count towards the backoff and the crash-loop report.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);
/// Consecutive quick failures after which a restart is reported as a crash loop.
const CRASH_LOOP_AFTER: u32 = 3;
/// Longest wait between two restarts.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(300);

/// Whether a container that ended with `status` is started again under `policy`, after
/// `restarts` restarts so far. A container shoal stopped is never restarted.
pub fn should_restart(policy: RestartPolicy, status: &ExitStatus, restarts: u32) -> bool {
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::OnFailure { max_retries } => {
            !status.is_success() && *status != ExitStatus::Killed && max_retries.is_none_or(|max| restarts < max)
        }
        RestartPolicy::Always => *status != ExitStatus::Killed,
    }
}

/// `restart_delay`, doubled for every quick failure before this one, capped.
pub fn restart_backoff(base: Duration, quick_failures: u32) -> Duration {
    let factor = 1u32.checked_shl(quick_failures.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX_RESTART_DELAY)
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        let failed = ExitStatus::Exited(1);
        let trapped = ExitStatus::Trapped("unreachable".into());
        let ok = ExitStatus::Exited(0);
        assert!(!should_restart(RestartPolicy::No, &failed, 0));
        let three = RestartPolicy::OnFailure { max_retries: Some(3) };
        assert!(should_restart(three, &failed, 0) && should_restart(three, &trapped, 2));
        assert!(!should_restart(three, &failed, 3), "at most 3 restarts");
        assert!(!should_restart(three, &ok, 0), "success is not a failure");
        assert!(should_restart(
            RestartPolicy::OnFailure { max_retries: None },
            &failed,
            1000
        ));
        assert!(should_restart(RestartPolicy::Always, &ok, 1000));
        assert!(
            !should_restart(RestartPolicy::Always, &ExitStatus::Killed, 0),
            "a stopped container stays stopped"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        assert_eq!(restart_backoff(base, 0), base);
        assert_eq!(restart_backoff(base, 1), base);
        assert_eq!(restart_backoff(base, 2), base * 2);
        assert_eq!(restart_backoff(base, 4), base * 8);
        assert_eq!(restart_backoff(base, 40), MAX_RESTART_DELAY);
        assert_eq!(restart_backoff(Duration::from_secs(1000), 1), MAX_RESTART_DELAY);
    }
}
