//! A running `shoal up`: one stack, its supervisor, the reload loop and the queue of
//! control-socket commands, all driven from one task so that changes never interleave.
//!
//! Data flows one way: file -> [`crate::check::load_checked`] (spec + image checks) ->
//! [`crate::supervisor::diff`] (plan) -> [`Supervisor::apply`] (runtime). A reload that
//! fails validation changes nothing; the stack keeps running as it was.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::check;
use crate::control::cmd::lifecycle;
use crate::control::server::Command;
use crate::control::{Reply, Request};
use crate::images::ImageStore;
use crate::logs::{LogSink, Stream};
use crate::procstat::{self, Reclamation};
use crate::runtime::Runtime;
use crate::spec::{render_diagnostics, ContainerName, ImageRef, Stack};
use crate::supervisor::{self, Deployed, LoadedImage, StackReport, Supervisor, SupervisorError};
use crate::watch::FileWatcher;

mod identity;
pub use identity::{canonical, OtherFile};

/// The name under which the controller's own lines appear in the log.
pub const SELF: &str = "shoal";

#[derive(Default)]
pub struct Options {
    /// Reload when the compose file, an env file or an image file changes.
    pub watch: bool,
    /// End when every container has ended (foreground `up` without `--watch`).
    pub exit_when_done: bool,
    /// Containers named on the command line (empty: all); reloads keep the selection.
    pub selection: Vec<String>,
    /// The stack's stored log lines, dropped with the stack on teardown.
    pub book: Option<Arc<crate::logs::LogBook>>,
}

/// The replies to `down` and `reload` are control-protocol types.
pub use crate::control::{DownReport, ReloadReport};

/// Why a reload changed nothing. The texts are what the client of `reload` (and `up -d`
/// on a running project) prints as they are, hence the `error: ` the diagnostics carry.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not validate: its rendered diagnostics.
    #[error("{0}")]
    Invalid(String),
    /// The containers named on the command line are not all in the file any more.
    #[error("error: {0}")]
    Selection(#[from] UnknownContainer),
    #[error("error: {0}")]
    Images(#[from] SupervisorError),
    /// `name:` changed. A running stack keeps its name: the name is its control socket,
    /// its log file and what every client resolves, and a half-moved stack would be
    /// reachable under neither name. So the reload is refused and the stack stays
    /// reachable under the old one, with the way to move it.
    #[error(
        "error: the project name changed from `{from}` to `{to}`; a running stack keeps its name\n  hint: `shoal down -p {from}` then `shoal up` starts it as `{to}`; or put `name: {from}` back"
    )]
    Renamed { from: String, to: String },
}

/// How the controller's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every container ended on its own.
    AllEnded,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `shoal down` from another shell.
    Down,
}

pub struct Controller {
    runtime: Arc<Runtime>,
    images: ImageStore,
    supervisor: Supervisor,
    stack: Stack,
    log: Arc<dyn LogSink>,
    options: Options,
    baseline: (u64, u64),
    watcher: Option<FileWatcher>,
    bridges: Option<crate::bridge::BridgeSet>,
    /// `down -t SECONDS`: the wait before the kill at teardown, instead of each
    /// container's `stop_timeout`.
    down_timeout: Option<std::time::Duration>,
    /// fleet: a reload may name other files (a new deployment's), see
    /// [`Controller::accept_other_files`].
    other_files: bool,
}

impl Controller {
    /// Nothing starts until [`Controller::run`].
    pub fn new(
        runtime: Arc<Runtime>,
        images: ImageStore,
        stack: Stack,
        log: Arc<dyn LogSink>,
        options: Options,
    ) -> Self {
        let supervisor = Supervisor::new(runtime.clone(), log.clone());
        Controller {
            runtime,
            images,
            supervisor,
            stack,
            log,
            options,
            baseline: (0, 0),
            watcher: None,
            bridges: None,
            down_timeout: None,
            other_files: false,
        }
    }

    /// fleet: `Reload { files }` with other files than the running ones applies those files
    /// (the fleet agent's next deployment) instead of refusing them. Only the agent, which
    /// owns the files it names, sets this; the env files and project name stay.
    pub fn accept_other_files(&mut self) {
        self.other_files = true;
    }

    /// Start the stack's MQTT bridges now (before [`Controller::run`] would), so that
    /// `stats` can watch them. Must run inside the tokio runtime.
    pub fn start_bridges(&mut self) -> crate::bridge::BridgeMonitor {
        let set = self.bridges.get_or_insert_with(|| {
            crate::bridge::start(&self.stack.bridges, self.supervisor.broker(), self.log.clone())
        });
        set.monitor()
    }

    /// Request the stack's GPIO lines (before [`Controller::run`]); they are released when
    /// the controller ends. Must run inside the tokio runtime. The error names the line's
    /// place in the compose file.
    pub fn open_gpio(&mut self) -> Result<crate::gpio::GpioLines, crate::gpio::GpioError> {
        let lines = crate::gpio::GpioLines::open(&self.stack.gpio)?;
        self.supervisor.set_gpio(lines.clone());
        Ok(lines)
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Start every container, then serve commands, reloads and ends until the stack is
    /// done, interrupted or taken down. Returns the report and the memory reclamation.
    pub async fn run(
        self,
        modules: HashMap<ImageRef, LoadedImage>,
        commands: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) -> (StackReport, Ending, Reclamation) {
        self.run_with(modules, Some(commands), shutdown).await
    }

    /// `shoal run`: the stack without a control socket and without watching its files,
    /// until every container has ended or `shutdown` is cancelled.
    pub async fn run_to_completion(
        mut self,
        modules: HashMap<ImageRef, LoadedImage>,
        shutdown: CancellationToken,
    ) -> StackReport {
        self.options.exit_when_done = true;
        self.options.watch = false;
        self.run_with(modules, None, shutdown).await.0
    }

    /// `commands` is `None` without a control socket: then nothing reports readiness to
    /// systemd (there is nothing to talk to) and only the stack's end or `shutdown` ends it.
    async fn run_with(
        mut self,
        modules: HashMap<ImageRef, LoadedImage>,
        commands: Option<mpsc::Receiver<Command>>,
        shutdown: CancellationToken,
    ) -> (StackReport, Ending, Reclamation) {
        let serving = commands.is_some();
        let bridges = self.start(&modules).await;
        // The stack is up: the code that only started it need not stay mapped.
        crate::startup_code::stack_is_up();
        if serving {
            crate::control::notify_systemd_ready();
        }
        let (ending, down_reply) = self.serve(commands, &shutdown).await;
        if serving {
            crate::systemd::notify("STOPPING=1");
        }
        crate::startup_code::stack_goes_down();
        let (report, reclamation) = self.teardown(ending, bridges).await;
        if let Some(reply) = down_reply {
            reply_down(reply, &report, reclamation);
        }
        (report, ending, reclamation)
    }

    /// Take the memory baseline, start the bridges and every container, and watch the
    /// files if asked to.
    async fn start(&mut self, modules: &HashMap<ImageRef, LoadedImage>) -> crate::bridge::BridgeSet {
        procstat::release_free_memory();
        self.baseline = Reclamation::baseline();
        self.supervisor.set_sensors(self.stack.sensors.clone());
        // bridge: MQTT bridges tap the supervisor's broker before any container publishes.
        self.start_bridges();
        let bridges = self.bridges.take().unwrap_or_default();
        for spec in &self.stack.containers {
            self.supervisor.add(spec, modules.get(&spec.image).cloned());
            // Let it instantiate (and park, or wait for its dependencies) before the next
            // one is created. Creating all tasks first interleaves 1,000 instances'
            // allocations with long-lived ones, and the pages those share cannot be given
            // back after `down` (1.3 MB left instead of 0.5 MB at 1,000 containers).
            tokio::task::yield_now().await;
        }
        if self.options.watch {
            self.start_watching();
        }
        bridges
    }

    /// The loop: container ends, commands, file changes, until the stack ends, is
    /// interrupted or taken down (then with the `down` request's reply channel).
    async fn serve(
        &mut self,
        mut commands: Option<mpsc::Receiver<Command>>,
        shutdown: &CancellationToken,
    ) -> (Ending, Option<oneshot::Sender<Reply>>) {
        loop {
            if self.options.exit_when_done && self.supervisor.active() == 0 {
                return (Ending::AllEnded, None);
            }
            let active = self.supervisor.active() > 0;
            let watching = self.watcher.is_some();
            let open = commands.is_some();
            tokio::select! {
                _ = shutdown.cancelled() => return (Ending::Interrupted, None),
                _ = self.supervisor.next_end(), if active => {}
                command = next_command(&mut commands), if open => match command {
                    Some((request @ Request::Down { .. }, reply)) => {
                        self.down_timeout = request.stop_timeout();
                        return (Ending::Down, Some(reply));
                    }
                    Some((request, reply)) => {
                        let answer = self.handle(request).await;
                        let _ = reply.send(answer);
                    }
                    // The senders are gone: switch the branch off rather than spin on `None`.
                    None => commands = None,
                },
                changed = next_change(&mut self.watcher), if watching => {
                    let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
                    let _ = self.reload(&names.join(", ")).await;
                }
            }
        }
    }

    /// Stop what still runs, close the bridges, and drop what the stack leaves behind;
    /// then measure what memory came back.
    async fn teardown(mut self, ending: Ending, bridges: crate::bridge::BridgeSet) -> (StackReport, Reclamation) {
        self.watcher = None;
        if ending != Ending::AllEnded {
            self.supervisor.stop_all_within(self.down_timeout).await;
        }
        // bridge: send what is queued (bounded by flush_timeout), disconnect.
        bridges.shutdown().await;
        // What the stack leaves behind goes with it: the status rows, the event history
        // and the log lines. Scattered small survivors would otherwise pin whole pages of
        // the freed instances and hide the reclamation.
        let board = self.supervisor.board();
        let events = self.supervisor.events().clone();
        let report = self.supervisor.into_report(ending != Ending::AllEnded);
        board.clear();
        events.clear();
        if let Some(book) = &self.options.book {
            book.clear();
        }
        procstat::release_free_memory();
        (report, Reclamation::since(self.baseline))
    }

    /// Answer a request that changes the stack (`down` is the loop's own business).
    async fn handle(&mut self, request: Request) -> Reply {
        if let Some((verb, names)) = lifecycle::Verb::of(&request) {
            let results = lifecycle::apply(&mut self.supervisor, verb, names, request.stop_timeout()).await;
            procstat::release_free_memory();
            return Reply::ok(&results);
        }
        match request {
            Request::Reload { files } if self.other_files && !files.is_empty() => {
                let previous = std::mem::replace(&mut self.stack.compose.files, files);
                match self.reload("the fleet deployment").await {
                    Ok(report) => Reply::ok(&report),
                    Err(e) => {
                        self.stack.compose.files = previous;
                        Reply::Error(e.to_string())
                    }
                }
            }
            Request::Reload { files } => {
                if let Err(other) = identity::same_files(&self.stack, &files) {
                    return Reply::Error(other.to_string());
                }
                match self.reload("the compose file (`up -d`)").await {
                    Ok(report) => Reply::ok(&report),
                    Err(e) => Reply::Error(e.to_string()),
                }
            }
            other => Reply::Error(format!("{other:?} is not a change")),
        }
    }

    fn say(&self, text: &str) {
        self.log.line(SELF, Stream::System, text);
    }

    fn start_watching(&mut self) {
        let files = watched_files(&self.stack);
        let watcher = FileWatcher::new().and_then(|mut w| w.set_files(files).map(|()| w));
        match watcher {
            Ok(watcher) => {
                self.say(&format!(
                    "watching {} and its images for changes",
                    self.stack.file.display()
                ));
                self.watcher = Some(watcher);
            }
            Err(e) => self
                .log
                .line(SELF, Stream::Warning, &format!("{e}; reloads on file changes are off")),
        }
    }

    /// Re-read the file and apply the difference. On `Err` nothing was changed; the
    /// error is in the log and the events too.
    pub async fn reload(&mut self, trigger: &str) -> Result<ReloadReport, ReloadError> {
        let began = Instant::now();
        let (desired, modules) = match self.load_desired().await {
            Ok(loaded) => loaded,
            Err(e) => {
                self.reject(trigger, &e);
                return Err(e);
            }
        };
        let digest = |spec: &crate::spec::ContainerSpec| {
            modules
                .get(&spec.image)
                .map(|image| image.digest.to_string())
                .unwrap_or_default()
        };
        let plan = supervisor::diff(&self.supervisor.deployed(), &Deployed::all(&desired, digest));
        let mut report = ReloadReport {
            plan: plan.lines(),
            ..ReloadReport::default()
        };
        let rss_before = procstat::rss_kib().unwrap_or(0);
        if plan.is_empty() {
            self.say(&format!("{trigger} changed; nothing to do (no container differs)"));
        } else {
            self.say(&format!("{trigger} changed; applying:"));
            for line in plan.lines() {
                self.say(&format!("  {line}"));
            }
            let failures = self.supervisor.apply(&plan, &desired, &modules).await;
            procstat::release_free_memory();
            for failure in &failures {
                let text = format!("{}: {}", failure.container, failure.reason);
                self.log.line(SELF, Stream::Warning, &text);
                report.failures.push(text);
            }
        }
        self.stack = desired;
        if let Some(watcher) = self.watcher.as_mut() {
            if let Err(e) = watcher.set_files(watched_files(&self.stack)) {
                self.log.line(SELF, Stream::Warning, &e.to_string());
            }
        }
        report.millis = began.elapsed().as_secs_f64() * 1000.0;
        self.record_reload(trigger, &plan, &report, rss_before);
        Ok(report)
    }

    /// The file checked, the selection applied and its images loaded: what to deploy.
    /// Checking and compiling take up to seconds of CPU, so they run on the bounded pool
    /// off the executor ([`supervisor::off_executor`]): the neighbours' timers and
    /// messages, and the control socket, are served meanwhile.
    async fn load_desired(&self) -> Result<(Stack, HashMap<ImageRef, LoadedImage>), ReloadError> {
        let compose = self.stack.compose.clone();
        let running_name = self.stack.name.clone();
        let images = self.images.clone();
        let runtime = self.runtime.clone();
        let selection = self.options.selection.clone();
        let log = self.log.clone();
        supervisor::off_executor(move || {
            let (desired, warnings) =
                check::load_checked(compose, &images, &check::Engines::Existing(runtime.engine()))
                    .map_err(|diagnostics| ReloadError::Invalid(render_diagnostics(&diagnostics)))?;
            for warning in &warnings {
                let text = warning.to_string();
                // The sink says "warning: " itself.
                log.line(SELF, Stream::Warning, text.strip_prefix("warning: ").unwrap_or(&text));
            }
            if desired.name != running_name {
                return Err(ReloadError::Renamed {
                    from: running_name.to_string(),
                    to: desired.name.to_string(),
                });
            }
            let desired = select_containers(desired, &selection)?;
            let modules = supervisor::load_modules(&runtime, &images, &desired, |_, _| {})?;
            Ok((desired, modules))
        })
        .await
    }

    /// A reload that changed nothing: say why in the log and the events.
    fn reject(&self, trigger: &str, error: &ReloadError) {
        let text = error.to_string();
        // The texts carry `error: ` for the client of `reload`; in the log the sink's own
        // "warning: " is the prefix ("warning: error: ..." said it twice).
        for line in text.lines() {
            let line = line.strip_prefix("error: ").unwrap_or(line);
            self.log.line(SELF, Stream::Warning, line);
        }
        self.say("reload rejected: the running stack is unchanged; fix the file and save again");
        self.supervisor.events().record(
            None,
            "reload-failed",
            format!("trigger: {trigger}; {}", first_line(&text)),
        );
    }

    /// The `reload` event. Removed and replaced containers' memory is given back (the
    /// apply trims the heap); the event shows it.
    fn record_reload(&self, trigger: &str, plan: &supervisor::Plan, report: &ReloadReport, rss_before: u64) {
        let result = if report.failures.is_empty() {
            "ok".to_owned()
        } else {
            format!("{} failed: {}", report.failures.len(), report.failures.join("; "))
        };
        let rss_after = procstat::rss_kib().unwrap_or(0);
        self.supervisor.events().record(
            None,
            "reload",
            format!(
                "trigger: {trigger}; plan: {}; took {:.1} ms; result: {result}; rss {:.1} -> {:.1} MB",
                plan.summary(),
                report.millis,
                rss_before as f64 / 1024.0,
                rss_after as f64 / 1024.0
            ),
        );
    }
}

/// The next command, or never without a control socket.
async fn next_command(commands: &mut Option<mpsc::Receiver<Command>>) -> Option<Command> {
    match commands {
        Some(commands) => commands.recv().await,
        None => std::future::pending().await,
    }
}

/// The next batch of changed files, or never when nothing is watched.
async fn next_change(watcher: &mut Option<FileWatcher>) -> Vec<PathBuf> {
    match watcher {
        Some(watcher) => watcher.changed().await,
        None => std::future::pending().await,
    }
}

/// Answer `down` once the stack is gone: how each container ended and what memory came back.
fn reply_down(reply: oneshot::Sender<Reply>, report: &StackReport, reclamation: Reclamation) {
    let down = DownReport {
        reclamation,
        outcomes: report
            .outcomes()
            .map(|(name, outcome)| (name.to_owned(), outcome.to_string()))
            .collect(),
    };
    let _ = reply.send(Reply::ok(&down));
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The compose file, its env files and every image file (digest images live in the
/// store and change only through `shoal images`).
pub fn watched_files(stack: &Stack) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::from([stack.file.clone()]);
    // compose: every merged file (`-f a -f b`, the override file), absolute.
    files.extend(stack.compose.files.iter().cloned());
    files.extend(stack.env_files.iter().cloned());
    for container in &stack.containers {
        if let ImageRef::Path(path) = &container.image {
            files.insert(path.clone());
        }
    }
    files
}

/// A selection names a container the file does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no container named `{name}` in {}", file.display())]
pub struct UnknownContainer {
    pub name: String,
    pub file: PathBuf,
}

/// Keep the named containers (a service name selects all its replicas) and everything
/// they depend on. An empty selection keeps everything.
pub fn select_containers(mut stack: Stack, wanted: &[String]) -> Result<Stack, UnknownContainer> {
    if wanted.is_empty() {
        return Ok(stack);
    }
    let mut keep: BTreeSet<ContainerName> = BTreeSet::new();
    for name in wanted {
        let matched: Vec<_> = stack
            .containers
            .iter()
            .filter(|c| &c.name == name || &c.service == name)
            .map(|c| c.name.clone())
            .collect();
        if matched.is_empty() {
            return Err(UnknownContainer {
                name: name.clone(),
                file: stack.file.clone(),
            });
        }
        keep.extend(matched);
    }
    // Containers are in start order, so walking backwards sees dependents before dependencies.
    for container in stack.containers.iter().rev() {
        if keep.contains(&container.name) {
            keep.extend(container.depends_on.iter().map(|d| d.name.clone()));
        }
    }
    stack.containers.retain(|c| keep.contains(&c.name));
    Ok(stack)
}

#[cfg(all(test, feature = "compiler"))]
mod tests;
