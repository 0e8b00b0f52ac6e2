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
use crate::control::{Reply, Request};
use crate::images::ImageStore;
use crate::logs::{LogSink, Stream};
use crate::procstat::{self, Reclamation};
use crate::runtime::Runtime;
use crate::spec::{render_diagnostics, ImageRef, Stack};
use crate::supervisor::{self, Deployed, LoadedImage, StackReport, Supervisor};
use crate::watch::FileWatcher;

/// The name under which the controller's own lines appear in the log.
pub const SELF: &str = "shoal";

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
        }
    }

    /// Start the stack's MQTT bridges now (before [`Controller::run`] would), so that
    /// `stats` can watch them. Must run inside the tokio runtime.
    pub fn start_bridges(&mut self) -> crate::bridge::BridgeMonitor {
        let set = self.bridges.get_or_insert_with(|| {
            crate::bridge::start(&self.stack.bridges, self.supervisor.broker(), self.log.clone())
        });
        set.monitor()
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Start every container, then serve commands, reloads and ends until the stack is
    /// done, interrupted or taken down. Returns the report and the memory reclamation.
    pub async fn run(
        mut self,
        modules: HashMap<ImageRef, LoadedImage>,
        mut commands: mpsc::Receiver<crate::control::server::Command>,
        shutdown: CancellationToken,
    ) -> (StackReport, Ending, Reclamation) {
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
        crate::control::notify_systemd_ready();
        let mut down_reply: Option<oneshot::Sender<Reply>> = None;
        // Without a control socket (the senders gone) the branch is switched off instead
        // of returning `None` in a busy loop.
        let mut commands_open = true;
        let ending = loop {
            if self.options.exit_when_done && self.supervisor.active() == 0 {
                break Ending::AllEnded;
            }
            let active = self.supervisor.active() > 0;
            let watching = self.watcher.is_some();
            tokio::select! {
                _ = shutdown.cancelled() => break Ending::Interrupted,
                _ = self.supervisor.next_end(), if active => {}
                command = commands.recv(), if commands_open => match command {
                    Some((Request::Down, reply)) => {
                        down_reply = Some(reply);
                        break Ending::Down;
                    }
                    Some((request, reply)) => {
                        let answer = self.handle(request).await;
                        let _ = reply.send(answer);
                    }
                    None => commands_open = false,
                },
                changed = async { match self.watcher.as_mut() { Some(w) => w.changed().await, None => std::future::pending().await } }, if watching => {
                    let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
                    let _ = self.reload(&names.join(", ")).await;
                }
            }
        };
        self.watcher = None;
        if ending != Ending::AllEnded {
            self.supervisor.stop_all().await;
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
        inject_test_leak();
        procstat::release_free_memory();
        let reclamation = Reclamation::since(self.baseline);
        if let Some(reply) = down_reply {
            let down = DownReport {
                reclamation,
                outcomes: report
                    .outcomes()
                    .map(|(name, outcome)| (name.to_owned(), outcome.to_string()))
                    .collect(),
            };
            let _ = reply.send(match serde_json::to_value(&down) {
                Ok(value) => Reply::Ok(value),
                Err(e) => Reply::Error(e.to_string()),
            });
        }
        (report, ending, reclamation)
    }

    /// Answer a request that changes the stack (`down` is the loop's own business).
    async fn handle(&mut self, request: Request) -> Reply {
        if let Some((verb, names)) = lifecycle::Verb::of(&request) {
            let results = lifecycle::apply(&mut self.supervisor, verb, names).await;
            procstat::release_free_memory();
            return Reply::ok(&results);
        }
        match request {
            Request::Reload => match self.reload("shoal up").await {
                Ok(report) => Reply::ok(&report),
                Err(text) => Reply::Error(text),
            },
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

    /// Re-read the file and apply the difference. `Err` carries the rendered diagnostics
    /// of a file that does not validate (nothing was changed).
    pub async fn reload(&mut self, trigger: &str) -> Result<ReloadReport, String> {
        let began = Instant::now();
        let events = self.supervisor.events().clone();
        let fail = |this: &Self, text: String| {
            for line in text.lines() {
                this.log.line(SELF, Stream::Warning, line);
            }
            this.say("reload rejected: the running stack is unchanged; fix the file and save again");
            events.record(
                None,
                "reload-failed",
                format!("trigger: {trigger}; {}", first_line(&text)),
            );
            Err(text)
        };
        let (desired, warnings) = match check::load_checked(&self.stack.file, &self.images) {
            Ok(loaded) => loaded,
            Err(diagnostics) => return fail(self, render_diagnostics(&diagnostics)),
        };
        for warning in &warnings {
            self.log.line(SELF, Stream::Warning, &warning.to_string());
        }
        let desired = match select_containers(desired, &self.options.selection) {
            Ok(stack) => stack,
            Err(e) => return fail(self, format!("error: {e}")),
        };
        let modules = match supervisor::load_modules(&self.runtime, &self.images, &desired, |_, _| {}) {
            Ok(modules) => modules,
            Err(e) => return fail(self, format!("error: {e}")),
        };
        let digest = |spec: &crate::spec::ContainerSpec| {
            modules
                .get(&spec.image)
                .map(|image| image.digest.clone())
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
        let result = if report.failures.is_empty() {
            "ok".to_owned()
        } else {
            format!("{} failed: {}", report.failures.len(), report.failures.join("; "))
        };
        // Removed and replaced containers' memory is given back (the apply trims the
        // heap); the event shows it.
        let rss_after = procstat::rss_kib().unwrap_or(0);
        events.record(
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
        Ok(report)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The compose file, its env files and every image file (digest images live in the
/// store and change only through `shoal images`).
pub fn watched_files(stack: &Stack) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::from([stack.file.clone()]);
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
    let mut keep: BTreeSet<String> = BTreeSet::new();
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

/// Test hook for `down --verify`: `SHOAL_TEST_LEAK_KIB=N` keeps N KiB allocated and
/// touched past teardown, so a test can prove that the check fails on a real leak.
fn inject_test_leak() {
    let Some(kib) = std::env::var("SHOAL_TEST_LEAK_KIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    let leak = vec![0x5au8; kib.saturating_mul(1024)];
    std::mem::forget(std::hint::black_box(leak));
}
