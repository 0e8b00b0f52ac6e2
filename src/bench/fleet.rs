//! `shoal bench fleet --devices N`: N simulated boards in this one process against a private
//! Mosquitto, each a real [`Agent`] (its own MQTT session, journal and stack of one
//! built-in idle guest, pulled by digest from a private registry), and one signed group
//! deployment published to all of them.
//!
//! Figures: the time until all N agents are online, the time from the group document's
//! publish until all N report it healthy (this includes the health window, which is short
//! here: `--health-window`, default 2 s), the broker's message counters over the rollout
//! (`$SYS/broker/messages/received` and `/sent`, which Mosquitto refreshes every 10 s, so
//! a few idle reports may fall into the count), and the memory per simulated agent (RSS
//! before the agents started against RSS with every agent running its healthy stack,
//! divided by N).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::bridge::mosquitto::Mosquitto;
use crate::fleet::agent::{Agent, Host, Settings};
use crate::fleet::connect::Connection;
use crate::fleet::document::{now_rfc3339, DocFile, Envelope, Kind, Payload, SCHEMA};
use crate::fleet::keys::{self, TrustSet};
use crate::fleet::operator::{FleetView, Session};
use crate::fleet::topics::{self, Target};
use crate::images::ImageStore;
use crate::logs::{LogSink, Stream};
use crate::registry::local::{LocalRegistry, Options};
use crate::runtime::Runtime;

/// The group every simulated agent is in.
const GROUP: &str = "bench";
/// Hang guard for each phase (not a figure).
const PHASE_LIMIT: Duration = Duration::from_secs(600);

/// `shoal bench fleet`.
#[derive(Debug, clap::Args)]
pub struct FleetBenchArgs {
    /// Simulated agents (boards)
    #[arg(long, default_value_t = 100)]
    pub devices: usize,
    /// Health window of the deployment (short, so the figure is mostly the fleet's own work)
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub health_window: Duration,
    /// Write the figures as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// The figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetFigures {
    pub devices: usize,
    pub health_window_ms: u64,
    /// From starting the agents until all N said `online`.
    pub connect_ms: u64,
    /// From publishing the group document until all N reported it healthy.
    pub all_healthy_ms: u64,
    /// Broker counters over the rollout ($SYS, refreshed by Mosquitto every 10 s): every
    /// MQTT packet (Mosquitto's `messages` count publishes and acknowledgements alike).
    pub broker_messages_received: Option<u64>,
    pub broker_messages_sent: Option<u64>,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// (RSS after - RSS before) / N.
    pub kib_per_agent: u64,
    /// Lines the guests and stacks wrote (discarded; counted to show the stacks ran).
    pub log_lines: u64,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum FleetBenchError {
    #[error("--devices must be at least 1")]
    NoDevices,
    #[error("{0}")]
    Setup(String),
    #[error("{what} did not happen within {limit:?} ({done} of {devices} devices)")]
    Stalled {
        what: &'static str,
        limit: Duration,
        done: usize,
        devices: usize,
    },
    #[error(transparent)]
    Operator(#[from] crate::fleet::operator::OperatorError),
}

fn setup(e: impl std::fmt::Display) -> FleetBenchError {
    FleetBenchError::Setup(e.to_string())
}

/// Counts the stacks' lines and drops them (1,000 stacks would flood the terminal).
#[derive(Default)]
struct CountingLog(AtomicU64);

impl LogSink for CountingLog {
    fn line(&self, container: &str, stream: Stream, text: &str) {
        self.0.fetch_add(1, Ordering::Relaxed);
        if matches!(stream, Stream::Warning) {
            eprintln!("{container}: {text}");
        }
    }
}

/// Everything outside the agents: broker, registry with the guest, key, scratch folder.
struct Stage {
    broker: Mosquitto,
    _registry: LocalRegistry,
    reference: String,
    digest: String,
    key: ed25519_dalek::SigningKey,
    dir: PathBuf,
}

/// Start the broker and registry, push the idle guest and pull it into `images` by digest
/// (so the N agents find it there instead of pulling N times). Blocking: run it outside
/// the executor.
fn stage(images: &ImageStore, guest: &Path, dir: &Path) -> Result<Stage, FleetBenchError> {
    let broker = Mosquitto::start_in(&dir.join("mosquitto"), false).map_err(setup)?;
    let registry = LocalRegistry::start_in(&dir.join("registry"), &Options::default()).map_err(setup)?;
    let reference = format!("{}/bench/idle:1", registry.host());
    crate::registry::push(guest, &reference, &[]).map_err(setup)?;
    let pulled = crate::registry::pull(images, &reference).map_err(setup)?;
    let digest = pulled.pinned.to_string();
    let by_digest = format!("{}/bench/idle@{digest}", registry.host());
    crate::registry::pull(images, &by_digest).map_err(setup)?;
    Ok(Stage {
        broker,
        _registry: registry,
        reference,
        digest,
        key: keys::generate().map_err(setup)?,
        dir: dir.to_path_buf(),
    })
}

/// Run the benchmark; `progress` gets one line per phase.
pub fn run(
    executor: &tokio::runtime::Runtime,
    runtime: Arc<Runtime>,
    images: &ImageStore,
    guest: &Path,
    args: &FleetBenchArgs,
    progress: &dyn Fn(&str),
) -> Result<FleetFigures, FleetBenchError> {
    if args.devices == 0 {
        return Err(FleetBenchError::NoDevices);
    }
    // N MQTT sessions here and N in the broker (which inherits this limit).
    crate::runtime::wasi::reserve_descriptors();
    let dir = std::env::temp_dir().join(format!("shoal-bench-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(setup)?;
    let stage = stage(images, guest, &dir)?;
    progress(&format!(
        "broker {}, image {}@{}",
        stage.broker.url(),
        stage.reference,
        stage.digest
    ));
    let log = Arc::new(CountingLog::default());
    let host = Host {
        runtime,
        images: images.clone(),
        log: log.clone(),
    };
    let result = executor.block_on(measure(&stage, host, args, progress));
    match &result {
        Ok(_) => {
            let _ = std::fs::remove_dir_all(&dir);
        }
        // The broker's log and the agents' journals, for a look at what went wrong.
        Err(_) => progress(&format!("kept {} (mosquitto/mosquitto.log, agents/)", dir.display())),
    }
    let mut figures = result?;
    figures.log_lines = log.0.load(Ordering::Relaxed);
    Ok(figures)
}

async fn measure(
    stage: &Stage,
    host: Host,
    args: &FleetBenchArgs,
    progress: &dyn Fn(&str),
) -> Result<FleetFigures, FleetBenchError> {
    let n = args.devices;
    let url = stage.broker.url();
    let connection = Connection::plain(&url).map_err(setup)?;
    let mut operator = Session::connect(connection.mqtt_options("shoal-bench-operator").map_err(setup)?, &url).await?;
    operator.subscribe(&FleetView::filters()).await?;
    // Subscribed once, here: later updates are live (a second subscribe would bring the
    // retained, possibly stale, values again).
    operator.subscribe(&SYS_COUNTERS.map(String::from)).await?;
    crate::procstat::release_free_memory();
    let rss_before = crate::procstat::rss_kib().unwrap_or(0);

    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let tasks = start_agents(stage, &host, &connection, args, &shutdown)?;
    wait_all(&mut operator, n, "all agents online", |fleet, id| fleet.online(id)).await?;
    let connect = started.elapsed();
    progress(&format!("{n} agents online in {}", ms(connect)));

    let counters_before = sys_counters(&mut operator).await;
    let revision = crate::fleet::operator::next_revision(operator.state(), [&topics::group_desired(GROUP)]);
    let payload = deployment(stage, revision, args.health_window);
    let published = Instant::now();
    operator
        .publish_retained(
            &topics::group_desired(GROUP),
            Envelope::sign(&payload, &stage.key).to_json(),
        )
        .await?;
    let source = Target::Group(GROUP.into()).to_string();
    wait_all(&mut operator, n, "all agents healthy", |fleet, id| {
        fleet.reports.get(id).and_then(|r| r.applied.as_ref()).is_some_and(|a| {
            a.source == source && a.revision == revision && a.status == crate::fleet::report::Status::Healthy
        })
    })
    .await?;
    let all_healthy = published.elapsed();
    progress(&format!("{n} agents healthy {} after the publish", ms(all_healthy)));
    let rss_after = crate::procstat::rss_kib().unwrap_or(0);
    let counters_after = sys_counters(&mut operator).await;

    shutdown.cancel();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    operator.close().await;
    let delta = |slot: usize| {
        counters_before
            .zip(counters_after)
            .map(|(before, after)| after[slot].saturating_sub(before[slot]))
    };
    Ok(FleetFigures {
        devices: n,
        health_window_ms: u64::try_from(args.health_window.as_millis()).unwrap_or(u64::MAX),
        connect_ms: u64::try_from(connect.as_millis()).unwrap_or(u64::MAX),
        all_healthy_ms: u64::try_from(all_healthy.as_millis()).unwrap_or(u64::MAX),
        broker_messages_received: delta(0),
        broker_messages_sent: delta(1),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        kib_per_agent: rss_after.saturating_sub(rss_before) / n as u64,
        log_lines: 0,
    })
}

/// Start the N agents, each with its own MQTT session, state folder and stack.
fn start_agents(
    stage: &Stage,
    host: &Host,
    connection: &Connection,
    args: &FleetBenchArgs,
    shutdown: &CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<Result<(), crate::fleet::agent::AgentError>>>, FleetBenchError> {
    let mut trust = TrustSet::default();
    trust.add(stage.key.verifying_key());
    let mut tasks = Vec::with_capacity(args.devices);
    for i in 0..args.devices {
        let device = format!("dev-{i:05}");
        let mut settings = Settings::new(
            &device,
            &[GROUP],
            &stage.dir.join("agents").join(&device),
            trust.clone(),
            connection.clone(),
        )
        .map_err(setup)?;
        // N stacks under one project name in one process: no control sockets.
        settings.control_socket = false;
        settings.health_window = args.health_window;
        let agent = Agent::new(settings, host.clone());
        tasks.push(tokio::spawn(agent.run(shutdown.child_token())));
    }
    Ok(tasks)
}

/// The group deployment: one idle subscriber from the registry, pinned by digest.
fn deployment(stage: &Stage, revision: u64, health_window: Duration) -> Payload {
    let compose = format!(
        "containers:\n  idle:\n    image: {}\n    capabilities: [messaging]\n    subscribe: [\"bench/\"]\n",
        stage.reference
    );
    Payload {
        kind: Kind::Deployment,
        schema: SCHEMA,
        revision,
        target: Target::Group(GROUP.into()),
        created: now_rfc3339(),
        signer: crate::fleet::operator::signer(),
        project: None,
        files: vec![DocFile {
            name: "compose.yaml".into(),
            text: compose,
        }],
        images: BTreeMap::from([(stage.reference.clone(), stage.digest.clone())]),
        health_window: Some(humantime::format_duration(health_window).to_string()),
        variables: BTreeMap::new(),
    }
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// Read reports until `done` holds for every one of the N devices.
async fn wait_all(
    operator: &mut Session,
    n: usize,
    what: &'static str,
    done: impl Fn(&FleetView, &str) -> bool,
) -> Result<(), FleetBenchError> {
    let deadline = tokio::time::Instant::now() + PHASE_LIMIT;
    let ids: Vec<String> = (0..n).map(|i| format!("dev-{i:05}")).collect();
    let mut pending: Vec<&String> = ids.iter().collect();
    loop {
        let fleet = FleetView::from_state(operator.state());
        pending.retain(|id| !done(&fleet, id));
        if pending.is_empty() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(FleetBenchError::Stalled {
                what,
                limit: PHASE_LIMIT,
                done: n - pending.len(),
                devices: n,
            });
        }
        // Read a burst of messages before looking again (a view of 1,000 reports is not free).
        let mut read = 0;
        while read < 256 {
            match operator
                .next(if read == 0 { left } else { Duration::from_millis(20) })
                .await?
            {
                Some(_) => read += 1,
                None => break,
            }
        }
    }
}

/// Mosquitto's counters read: every packet received and sent (publishes and their
/// acknowledgements, subscriptions, pings). Its `publish/messages/received` is left out:
/// in Mosquitto 2.0.11 it stayed near zero while the agents' reports arrived.
const SYS_COUNTERS: [&str; 2] = ["$SYS/broker/messages/received", "$SYS/broker/messages/sent"];

/// Mosquitto's cumulative counters ([`SYS_COUNTERS`]), from the next `$SYS` update (it
/// publishes them every 10 s when they changed; a sync first makes sure they did); `None`
/// when they did not all come within 25 s.
async fn sys_counters(operator: &mut Session) -> Option<[u64; 2]> {
    operator.sync().await.ok()?;
    let mut fresh: [Option<u64>; 2] = [None; 2];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    while fresh.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let topic = operator.next(left).await.ok()??;
        if let Some(slot) = SYS_COUNTERS.iter().position(|name| *name == topic) {
            fresh[slot] = operator
                .state()
                .get(&topic)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.trim().parse().ok());
        }
    }
    let [received, sent] = fresh;
    Some([received?, sent?])
}
