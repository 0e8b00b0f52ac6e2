//! The `shoal` command line. Errors get their context here; exit codes follow the
//! convention of uv and ripgrep: 0 success, 1 failure (invalid file, failed container),
//! 2 usage error (clap's own).

mod compile;
mod graph;
mod serve;
mod terminal;
mod verbs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::bench;
use crate::check;
use crate::control;
use crate::images::{default_data_dir, digest_file, ImageStore};
use crate::procstat;
use crate::runtime::{ExitStatus, Runtime, RuntimeConfig};
use crate::spec::{self, Diagnostic, ImageRef, Stack};
use crate::supervisor::{self, Outcome};
use terminal::TerminalLog;

#[derive(Parser, Debug)]
#[command(name = "shoal", version, about = "Run a stack of WebAssembly containers in one small process", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
struct GlobalArgs {
    /// Where images and the compile cache live [default: $SHOAL_DATA_DIR, $XDG_DATA_HOME/shoal or ~/.local/share/shoal]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address space reserved per linear memory, e.g. 8MiB (see README: memory sizing)
    #[arg(long, global = true, value_name = "SIZE", env = "SHOAL_MEMORY_RESERVATION")]
    memory_reservation: Option<String>,
    /// Deepest wasm stack any container may use, e.g. 1MiB [default: 512KiB] (engine-wide; see README: limits)
    #[arg(long, global = true, value_name = "SIZE", env = "SHOAL_MAX_WASM_STACK")]
    max_wasm_stack: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the compose file and print the resolved stack
    #[command(
        after_help = "Examples:\n  shoal config\n  shoal config -f line-3/shoal.yaml --format json\n  shoal config -q && echo valid"
    )]
    Config(ConfigArgs),
    /// Start the stack (in the foreground, or in the background with -d) and serve it to `ps`, `logs`, `down`...
    #[command(
        after_help = "Examples:\n  shoal up\n  shoal up compose-examples/hello/shoal.yaml\n  shoal up -f stack.yaml collector   # only collector and what it depends on\n  shoal up -d                         # in the background; again to apply file changes\n  shoal up --watch                    # reload when the file or an image changes"
    )]
    Up(UpArgs),
    /// Stop a running stack and report the memory it gave back
    #[command(
        after_help = "Examples:\n  shoal down\n  shoal down -p line-3 --verify\n  shoal down --verify --threshold 512KiB"
    )]
    Down(DownArgs),
    /// List the containers of a running stack
    #[command(after_help = "Examples:\n  shoal ps\n  shoal ps -p line-3 --format json")]
    Ps(PsArgs),
    /// Print containers' output (the last 1,000 lines of each are kept)
    #[command(
        after_help = "Examples:\n  shoal logs\n  shoal logs -f collector\n  shoal logs --tail 20 --since 10m -t"
    )]
    Logs(verbs::LogsArgs),
    /// Live figures per container and for the process
    #[command(after_help = "Examples:\n  shoal stats\n  shoal stats --no-stream --format json")]
    Stats(StatsArgs),
    /// Lifecycle events: start, die, stop, restart, pause, warnings, reloads
    #[command(after_help = "Examples:\n  shoal events\n  shoal events --json --no-stream")]
    Events(EventsArgs),
    /// Containers sorted by the CPU time their guest code used
    #[command(after_help = "Examples:\n  shoal top\n  shoal top -p line-3")]
    Top(ProjectOnly),
    /// Stop containers (they stay stopped; no restart policy applies)
    #[command(after_help = "Examples:\n  shoal stop watchdog\n  shoal stop        # every container")]
    Stop(NamesArgs),
    /// Start stopped or ended containers
    #[command(after_help = "Examples:\n  shoal start watchdog")]
    Start(NamesArgs),
    /// Stop then start containers
    #[command(after_help = "Examples:\n  shoal restart collector aggregator")]
    Restart(NamesArgs),
    /// Stop containers at once, without waiting for stop_timeout
    #[command(after_help = "Examples:\n  shoal kill spinner")]
    Kill(NamesArgs),
    /// Hold containers: no guest code runs, all state is kept, messages queue (bounded)
    #[command(after_help = "Examples:\n  shoal pause collector")]
    Pause(NamesArgs),
    /// Let paused containers run again
    #[command(after_help = "Examples:\n  shoal unpause collector")]
    Unpause(NamesArgs),
    /// Running stacks on this machine
    #[command(after_help = "Examples:\n  shoal ls\n  shoal ls --format json")]
    Ls(LsArgs),
    /// Containers and the topics between them, from the file (with live counts when it runs)
    #[command(
        after_help = "Examples:\n  shoal graph\n  shoal graph --format mermaid > stack.mmd\n  shoal graph --format dot | dot -Tsvg > stack.svg"
    )]
    Graph(GraphArgs),
    /// Watch the messages of a running stack
    #[command(after_help = "Examples:\n  shoal topics tail sensors/\n  shoal topics tail ''   # everything")]
    Topics(TopicsArgs),
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  shoal completions bash > /etc/bash_completion.d/shoal\n  shoal completions zsh > ~/.zfunc/_shoal\n  shoal completions fish > ~/.config/fish/completions/shoal.fish"
    )]
    Completions { shell: clap_complete::Shell },
    /// Run one image as a container, like `docker run`
    #[command(
        after_help = "Examples:\n  shoal run hello.wasm\n  shoal run -v ./data:/shared writer.wasm\n  shoal run --cap messaging -e UNIT=celsius publisher.wasm -- --period 2s"
    )]
    Run(RunArgs),
    /// Measure: density (memory per container), messaging (latency, throughput), bridge (MQTT)
    #[command(
        after_help = "Examples:\n  shoal bench density --max 10000 --plot density.svg --json density.json\n  shoal bench density --mode exited --max 1000\n  shoal bench messaging --subscribers 1,10,100,1000\n  shoal bench bridge --broker mqtt://127.0.0.1:1883"
    )]
    Bench(BenchArgs),
    /// List, add and remove images in the content-addressed store
    #[command(
        after_help = "Examples:\n  shoal images\n  shoal images add build/collector.wasm\n  shoal images rm 1e8fcd21\n  shoal images compile collector.wasm --target aarch64-unknown-linux-gnu -o board/"
    )]
    Images(ImagesArgs),
}

#[derive(Args, Debug)]
struct FileArgs {
    /// Compose file [default: shoal.yaml or compose.yaml in the current folder]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

/// Output of the commands that list things.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
struct ConfigArgs {
    #[command(flatten)]
    file: FileArgs,
    /// Compose file (same as -f)
    #[arg(value_name = "FILE", conflicts_with = "file")]
    positional: Option<PathBuf>,
    /// Only validate; print nothing but errors
    #[arg(short, long)]
    quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "yaml")]
    format: Format,
    /// Treat warnings as errors
    #[arg(long)]
    strict: bool,
}

#[derive(Args, Debug)]
struct UpArgs {
    #[command(flatten)]
    file: FileArgs,
    /// A compose file path, or the names of containers to start (with their dependencies)
    #[arg(value_name = "FILE|CONTAINER")]
    targets: Vec<String>,
    /// Plain prefixes, no colours
    #[arg(long)]
    no_color: bool,
    /// Print how each image was obtained (compiled or from the cache) and how long it took
    #[arg(short, long)]
    verbose: bool,
    /// Run in the background; on a running project, apply the file's changes
    #[arg(short, long)]
    detach: bool,
    /// Reload when the compose file, an env file or an image file changes
    #[arg(long)]
    watch: bool,
    /// Internal: this process is the background half of `up -d`
    #[arg(long, hide = true)]
    detached_child: bool,
}

#[derive(Args, Debug)]
struct ProjectOnly {
    #[command(flatten)]
    project: verbs::ProjectArgs,
}

#[derive(Args, Debug)]
struct NamesArgs {
    #[command(flatten)]
    project: verbs::ProjectArgs,
    /// Containers [default: all]
    #[arg(value_name = "NAME")]
    names: Vec<String>,
}

#[derive(Args, Debug)]
struct DownArgs {
    #[command(flatten)]
    project: verbs::ProjectArgs,
    /// Exit non-zero when more memory than --threshold stays in use after teardown
    #[arg(long)]
    verify: bool,
    /// Residue allowed by --verify
    #[arg(long, value_name = "SIZE", default_value = "1MiB")]
    threshold: String,
}

#[derive(Args, Debug)]
struct PsArgs {
    #[command(flatten)]
    project: verbs::ProjectArgs,
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
}

#[derive(Args, Debug)]
struct StatsArgs {
    #[command(flatten)]
    project: verbs::ProjectArgs,
    /// Print once and exit
    #[arg(long)]
    no_stream: bool,
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
}

#[derive(Args, Debug)]
struct EventsArgs {
    #[command(flatten)]
    project: verbs::ProjectArgs,
    /// One JSON object per line
    #[arg(long)]
    json: bool,
    /// Print the recent events and exit instead of following
    #[arg(long)]
    no_stream: bool,
}

#[derive(Args, Debug)]
struct LsArgs {
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
}

#[derive(Args, Debug)]
struct GraphArgs {
    #[command(flatten)]
    project: verbs::ProjectArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: graph::GraphFormat,
}

#[derive(Args, Debug)]
struct TopicsArgs {
    #[command(subcommand)]
    command: TopicsCommand,
}

#[derive(Subcommand, Debug)]
enum TopicsCommand {
    /// Print messages under a topic prefix as they are published
    Tail {
        #[command(flatten)]
        project: verbs::ProjectArgs,
        /// Topic prefix ('' for all)
        prefix: String,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// A .wasm file, or an image in the store (digest prefix or name)
    image: String,
    /// Arguments passed to the guest
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
    /// Mount a host folder: HOST:GUEST[:ro] (Docker's order)
    #[arg(short = 'v', long = "volume", value_name = "HOST:GUEST[:ro]")]
    volumes: Vec<String>,
    /// Set an environment variable
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Grant a capability (messaging, timers, sensors, ocre:api)
    #[arg(long = "cap", value_name = "NAME")]
    caps: Vec<String>,
    /// Container name [default: the image's file stem]
    #[arg(long)]
    name: Option<String>,
    /// Linear memory limit, e.g. 1MiB
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// CPU share limit, e.g. 0.25 or 25%
    #[arg(long, value_name = "SHARE")]
    cpu: Option<String>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// The article's experiment: start containers one after another, read VmRSS at
    /// 0, 1, 2, 3, 5, 10, 20, 50, 100, ... up to --max, then tear down and read it again
    Density {
        /// Containers to reach
        #[arg(long, default_value_t = 1000)]
        max: usize,
        /// idle: SDK-style subscribers parked in the poll loop; exited: hello-style guests that return
        #[arg(long, value_enum, default_value = "idle")]
        mode: bench::density::Mode,
        /// Image to run instead of the built-in guest (granted every capability)
        #[arg(long, value_name = "FILE")]
        image: Option<PathBuf>,
        /// Seconds to measure idle CPU once all containers run (idle mode)
        #[arg(long, default_value_t = 10.0)]
        idle_secs: f64,
        /// Also write the figures as JSON
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Draw RSS against container count, with the article's reference lines, as SVG
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// Up/down cycles of one stack in one process, printing RSS as it goes: growth means
    /// something is not given back
    Soak {
        /// Cycles to run
        #[arg(long, default_value_t = 1000)]
        cycles: usize,
        /// Containers in the stack (built-in idle subscribers)
        #[arg(long, default_value_t = 20)]
        containers: usize,
        /// Print RSS every this many cycles
        #[arg(long, default_value_t = 100)]
        every: usize,
        /// Also write the figures as JSON
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Time from saving the compose file to the changed container running again (`up --watch`)
    Reload {
        /// Saves to measure
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
    /// The share `limits.cpu` holds a spinning guest to, and what spinning guests cost a
    /// parked subscriber's message latency, with and without a limit
    Isolation {
        /// Seconds to measure each CPU share
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
        /// Spinning guests beside the subscriber
        #[arg(long, default_value_t = 4)]
        spinners: usize,
        /// Latency rounds per configuration
        #[arg(long, default_value_t = 200)]
        rounds: usize,
        /// Also write the figures as JSON
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Publish -> deliver latency (p50/p99) to parked subscribers and fan-out throughput
    Messaging {
        /// Subscriber counts to measure
        #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
        subscribers: Vec<usize>,
        /// Latency rounds per count (one message each, subscribers parked in between)
        #[arg(long, default_value_t = 200)]
        rounds: usize,
        /// Messages per burst for the throughput figure (at most the mailbox bound, 256)
        #[arg(long, default_value_t = 100)]
        burst: usize,
        /// Also write the figures as JSON
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// MQTT bridge: latency (p50/p99) and throughput of local publish -> broker -> other
    /// stack, against the in-process path
    Bridge {
        /// Broker to go through, e.g. mqtt://127.0.0.1:1883 [default: start a private mosquitto]
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// Latency rounds (one message each)
        #[arg(long, default_value_t = 1000)]
        rounds: usize,
        /// Messages in the throughput burst
        #[arg(long, default_value_t = 20000)]
        burst: usize,
        /// Payload size in bytes
        #[arg(long, default_value_t = 64)]
        payload: usize,
        /// Also write the figures as JSON
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct ImagesArgs {
    #[command(subcommand)]
    command: Option<ImagesCommand>,
}

#[derive(Subcommand, Debug)]
enum ImagesCommand {
    /// List stored images (the default)
    Ls,
    /// Copy a .wasm file into the store
    Add { files: Vec<PathBuf> },
    /// Remove images by digest prefix or name
    Rm { images: Vec<String> },
    /// Precompile .wasm files into .cwasm images for a board whose shoal has no compiler
    Compile(compile::CompileArgs),
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if matches!(cli.command, Command::Up(_) | Command::Run(_) | Command::Bench(_)) {
        // Processes that run containers get the allocator setting that lets their memory
        // go back after a teardown; the short-lived clients below do not need the exec.
        crate::procstat::reexec_without_malloc_cache();
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
    let mut runtime_config = runtime_config(cli.global.memory_reservation.as_deref())?;
    crate::runtime::stack::apply(&mut runtime_config, cli.global.max_wasm_stack.as_deref())?;
    match cli.command {
        Command::Config(args) => config(&images, args),
        Command::Up(args) => serve::up(&images, &runtime_config, &cli.global, args),
        Command::Down(args) => verbs::down(&args.project, args.verify, &args.threshold),
        Command::Ps(args) => verbs::ps(&args.project, args.format),
        Command::Logs(args) => verbs::logs(args),
        Command::Stats(args) => verbs::stats(&args.project, args.no_stream, args.format),
        Command::Events(args) => verbs::events(&args.project, args.json, args.no_stream),
        Command::Top(args) => verbs::top(&args.project),
        Command::Stop(args) => verbs::lifecycle(&args.project, control::Request::Stop { names: args.names }),
        Command::Start(args) => verbs::lifecycle(&args.project, control::Request::Start { names: args.names }),
        Command::Restart(args) => verbs::lifecycle(&args.project, control::Request::Restart { names: args.names }),
        Command::Kill(args) => verbs::lifecycle(&args.project, control::Request::Kill { names: args.names }),
        Command::Pause(args) => verbs::lifecycle(&args.project, control::Request::Pause { names: args.names }),
        Command::Unpause(args) => verbs::lifecycle(&args.project, control::Request::Unpause { names: args.names }),
        Command::Ls(args) => verbs::ls(args.format),
        Command::Graph(args) => graph::graph(&images, &args.project, args.format),
        Command::Topics(args) => match args.command {
            TopicsCommand::Tail { project, prefix } => verbs::topics_tail(&project, prefix),
        },
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "shoal", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run_image(&images, &runtime_config, args),
        Command::Images(args) => images_command(&images, &runtime_config, args),
        Command::Bench(args) => bench_command(&images, &runtime_config, args),
    }
}

fn runtime_config(memory_reservation: Option<&str>) -> anyhow::Result<RuntimeConfig> {
    let mut config = RuntimeConfig::default();
    if let Some(size) = memory_reservation {
        config.memory_reservation = spec::units::parse_memory(size)
            .map_err(|e| anyhow::anyhow!("invalid --memory-reservation `{size}`: {e}"))?;
    }
    Ok(config)
}

/// Find the compose file: `-f`, a positional path, or shoal.yaml/compose.yaml here.
fn compose_path(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    match explicit {
        Some(path) if path.is_dir() => spec::find_compose_file(path)
            .ok_or_else(|| anyhow::anyhow!("no shoal.yaml or compose.yaml in {}", path.display())),
        Some(path) => Ok(path.to_path_buf()),
        None => {
            let here = std::env::current_dir()?;
            spec::find_compose_file(&here).ok_or_else(|| {
                anyhow::anyhow!(
                    "no shoal.yaml or compose.yaml in {}\n  hint: pass one with `-f FILE`",
                    here.display()
                )
            })
        }
    }
}

/// Parse and validate, then check the images' imports against the grants and the topic
/// wiring; print diagnostics to stderr. `None` when the stack must not run.
fn load_stack(images: &ImageStore, path: &Path, strict: bool) -> Option<Stack> {
    let (stack, diagnostics) = match check::load_checked(path, images) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            report_invalid(path, &diagnostics);
            return None;
        }
    };
    print_diagnostics(&diagnostics);
    let warnings = diagnostics.len();
    if strict && warnings > 0 {
        eprintln!(
            "error: {} has {warnings} warning{} and --strict is set",
            path.display(),
            plural(warnings)
        );
        return None;
    }
    Some(stack)
}

fn report_invalid(path: &Path, diagnostics: &[Diagnostic]) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    eprintln!(
        "error: {} is invalid ({errors} error{})",
        path.display(),
        plural(errors)
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for diagnostic in diagnostics {
        eprintln!("{diagnostic}");
    }
}

fn config(images: &ImageStore, args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let path = compose_path(args.file.file.as_deref().or(args.positional.as_deref()))?;
    let Some(stack) = load_stack(images, &path, args.strict) else {
        return Ok(ExitCode::from(1));
    };
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let resolved = ResolvedStack::new(images, &stack);
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&resolved)? + "\n",
        Format::Yaml => serde_saphyr::to_string(&resolved)?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// What `shoal config` prints: the stack with image digests.
#[derive(serde::Serialize)]
struct ResolvedStack<'a> {
    name: &'a str,
    file: &'a Path,
    containers: Vec<ResolvedContainer<'a>>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    sensors: &'a std::collections::BTreeMap<String, spec::SensorSpec>,
    // bridge: MQTT bridges as written (credentials stay references)
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    bridges: &'a [spec::BridgeSpec],
}

#[derive(serde::Serialize)]
struct ResolvedContainer<'a> {
    #[serde(flatten)]
    spec: &'a spec::ContainerSpec,
    digest: Option<String>,
}

impl<'a> ResolvedStack<'a> {
    fn new(images: &ImageStore, stack: &'a Stack) -> Self {
        let containers = stack
            .containers
            .iter()
            .map(|spec| {
                let digest = match &spec.image {
                    ImageRef::Path(path) => digest_file(path).ok().map(|d| d.to_string()),
                    ImageRef::Digest(d) => images.path_of(d).map(|_| d.to_string()),
                };
                ResolvedContainer { spec, digest }
            })
            .collect();
        ResolvedStack {
            name: &stack.name,
            file: &stack.file,
            containers,
            sensors: &stack.sensors,
            bridges: &stack.bridges, // bridge
        }
    }
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One thread runs every container: guests interleave at host calls and epoch ticks.
    // Blocking filesystem work from WASI goes to a small, bounded pool.
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()?)
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

/// Positional `up` arguments: a path to a compose file (has a `/`, ends in .yaml/.yml, or
/// exists) or container names.
fn split_targets(targets: &[String]) -> (Option<PathBuf>, Vec<String>) {
    let mut file = None;
    let mut services = Vec::new();
    for target in targets {
        let looks_like_file = target.contains('/')
            || target.ends_with(".yaml")
            || target.ends_with(".yml")
            || Path::new(target).is_file();
        if looks_like_file && file.is_none() {
            file = Some(PathBuf::from(target));
        } else {
            services.push(target.clone());
        }
    }
    (file, services)
}

/// `shoal run`: one container in the foreground, no control socket (like a `docker run`
/// without a name, it is not a project other commands can address).
fn run_stack_in_foreground(
    images: &ImageStore,
    runtime_config: &RuntimeConfig,
    stack: &Stack,
) -> anyhow::Result<supervisor::StackReport> {
    let runtime = Arc::new(Runtime::new(runtime_config)?);
    let modules = supervisor::load_modules(&runtime, images, stack, |_, loaded| {
        if let Some(why) = &loaded.cache_error {
            eprintln!("warning: cannot write the compile cache: {why}");
        }
    })?;
    let log = Arc::new(TerminalLog::new(
        stack.containers.iter().map(|c| c.name.as_str()),
        false,
    ));
    let executor = tokio_runtime()?;
    let report = executor.block_on(async {
        let shutdown = shutdown_signal();
        supervisor::run_stack(runtime.clone(), modules, stack, log, shutdown).await
    });
    procstat::release_free_memory();
    Ok(report)
}

fn run_image(images: &ImageStore, runtime_config: &RuntimeConfig, args: RunArgs) -> anyhow::Result<ExitCode> {
    let image_path = if Path::new(&args.image).is_file() {
        std::fs::canonicalize(&args.image)?
    } else {
        images
            .find(&args.image)
            .map_err(|e| anyhow::anyhow!("{e}\n  hint: give a .wasm path or add it with `shoal images add FILE`"))?
            .path
    };
    let name = args.name.clone().unwrap_or_else(|| {
        let stem = image_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        spec::decode::sanitize_name(&stem)
    });
    let stack = command_line_stack(&name, &image_path, &args)?;
    let report = run_stack_in_foreground(images, runtime_config, &stack)?;
    // Like `docker run`: the container's own exit code, 1 for a trap or a failure to start,
    // 130 when stopped by Ctrl-C.
    let code = match report.outcomes().next().map(|(_, outcome)| outcome) {
        Some(Outcome::Finished(ExitStatus::Exited(code))) => u8::try_from(*code).unwrap_or(1),
        Some(Outcome::Finished(ExitStatus::Killed)) => 130,
        _ => 1,
    };
    Ok(ExitCode::from(code))
}

/// Build the one-container stack of `shoal run` as a compose document and validate it like
/// a file, so that `-v`, `--cap` and `--memory` get exactly the checks and messages the
/// compose file gets (minus the file positions, which mean nothing here).
fn command_line_stack(name: &str, image: &Path, args: &RunArgs) -> anyhow::Result<Stack> {
    let mut container = serde_json::json!({
        "image": image,
        "args": args.args,
        "env": args.env,
        "mounts": args.volumes,
        "capabilities": args.caps,
    });
    if let Some(memory) = &args.memory {
        container["limits"] = serde_json::json!({ "memory": memory });
    }
    if let Some(cpu) = &args.cpu {
        container["limits"]["cpu"] = serde_json::json!(cpu);
    }
    let document = serde_json::json!({ "name": name, "containers": { name: container } });
    let env: HashMap<String, String> = HashMap::new();
    let no_store = |_: &str| None;
    let options = spec::LoadOptions {
        env: &env,
        lookup_digest: &no_store,
    };
    let here = std::env::current_dir()?;
    // `$` in a command-line value is literal: the shell already expanded what it wanted.
    let text = serde_json::to_string(&document)?.replace('$', "$$");
    match spec::load_str(&text, &here.join("shoal-run.yaml"), &options) {
        Ok((mut stack, warnings)) => {
            for warning in warnings.iter().map(without_location) {
                eprintln!("{warning}");
            }
            stack.file = PathBuf::from("<command line>");
            Ok(stack)
        }
        Err(diagnostics) => {
            let messages: Vec<String> = diagnostics.iter().map(|d| without_location(d).to_string()).collect();
            anyhow::bail!("{}", messages.join("\n").trim_start_matches("error: "))
        }
    }
}

fn without_location(diagnostic: &Diagnostic) -> Diagnostic {
    Diagnostic {
        location: None,
        ..diagnostic.clone()
    }
}

/// A private scratch folder for a benchmark's files.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("shoal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn bench_command(images: &ImageStore, runtime_config: &RuntimeConfig, args: BenchArgs) -> anyhow::Result<ExitCode> {
    let runtime = Arc::new(Runtime::new(runtime_config)?);
    let executor = tokio_runtime()?;
    match args.command {
        BenchCommand::Density {
            max,
            mode,
            image,
            idle_secs,
            json,
            plot,
        } => {
            if max == 0 {
                anyhow::bail!("--max must be at least 1");
            }
            let (path, capabilities): (PathBuf, &[&str]) = match (&image, mode) {
                (Some(path), _) => (std::fs::canonicalize(path)?, &["ocre:api"]),
                (None, bench::density::Mode::Idle) => {
                    let bytes = bench::guests::idle_subscriber().map_err(|e| anyhow::anyhow!("{e}"))?;
                    (
                        bench::built_in_image(images, "idle-subscriber", &bytes)?,
                        &["messaging"],
                    )
                }
                (None, bench::density::Mode::Exited) => {
                    let bytes = bench::guests::hello().map_err(|e| anyhow::anyhow!("{e}"))?;
                    (bench::built_in_image(images, "hello", &bytes)?, &[])
                }
            };
            let stack = bench::replicated_stack(&path, max, capabilities)?;
            let loaded = images.load_module(runtime.engine(), &path)?;
            eprintln!("{}", supervisor::describe_load(&path, &loaded));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let idle_for = std::time::Duration::from_secs_f64(idle_secs.max(0.0));
            let report = executor.block_on(bench::density::run(
                runtime.clone(),
                &stack,
                loaded.module,
                mode,
                idle_for,
                name,
                |row| {
                    eprintln!(
                        "  {:>6} containers  {:>8} KB  {:>8.0} ms",
                        row.containers, row.rss_kib, row.elapsed_ms
                    )
                },
            ));
            print!("{}", bench::density::render_table(&report));
            println!(
                "per container: {:.1} KB (above the {:.1} MB baseline)",
                report.per_container_kib(),
                report.baseline_kib() as f64 / 1024.0
            );
            if let Some(last) = report.checkpoints.last() {
                println!(
                    "all {} containers running after {:.0} ms",
                    last.containers, last.elapsed_ms
                );
            }
            if let Some(cpu) = report.idle_cpu_percent {
                println!("idle CPU over {:.0} s: {cpu:.3}% of one core", report.idle_seconds);
            }
            println!("{}", report.teardown);
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
            }
            if let Some(path) = plot {
                std::fs::write(&path, bench::plot::render_svg(&report))?;
                eprintln!("plot written to {}", path.display());
            }
        }
        BenchCommand::Reload { rounds } => {
            let bytes = bench::guests::idle_subscriber().map_err(|e| anyhow::anyhow!("{e}"))?;
            let image = bench::built_in_image(images, "idle-subscriber", &bytes)?;
            let dir = tempfile_dir()?;
            let report = executor.block_on(bench::reload::run(
                runtime.clone(),
                images.clone(),
                &image,
                &dir,
                rounds.max(1),
                |round, ms| eprintln!("  save {round:>3}: running again after {ms:.1} ms"),
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let report = report?;
            let (p50, p99, max) = bench::reload::summary(&report.save_to_running_ms);
            println!(
                "save -> changed container running: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms over {} saves",
                report.save_to_running_ms.len()
            );
            let (a50, a99, _) = bench::reload::summary(&report.apply_ms);
            println!(
                "of which validate + diff + apply: p50 {a50:.1} ms, p99 {a99:.1} ms (the rest is the {} ms debounce)",
                crate::watch::DEBOUNCE.as_millis()
            );
        }
        BenchCommand::Soak {
            cycles,
            containers,
            every,
            json,
        } => {
            let bytes = bench::guests::idle_subscriber().map_err(|e| anyhow::anyhow!("{e}"))?;
            let path = bench::built_in_image(images, "idle-subscriber", &bytes)?;
            let loaded = images.load_module(runtime.engine(), &path)?;
            let stack = bench::replicated_stack(&path, containers.max(1), &["messaging"])?;
            let report = executor.block_on(bench::soak::run(
                runtime.clone(),
                &stack,
                loaded.module,
                cycles,
                every,
                |sample| {
                    println!(
                        "{:>8} cycles  {:>8} KB  (anonymous {:>6} KB, live heap {:>6} KB)",
                        sample.cycles, sample.rss_kib, sample.anon_kib, sample.heap_kib
                    )
                },
            ));
            println!(
                "RSS growth over {cycles} cycles of {} containers (from the first sample after warm-up): {:+.2}%",
                report.containers_per_cycle,
                report.growth_percent()
            );
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
            }
        }
        BenchCommand::Isolation {
            secs,
            spinners,
            rounds,
            json,
        } => {
            let window = std::time::Duration::from_secs_f64(secs.max(0.1));
            let report = bench::isolation::run(images, runtime, &executor, window, spinners, rounds.max(1), |l| {
                eprintln!("  {l}")
            })?;
            print!("{}", bench::isolation::render(&report.cpu, &report.neighbours));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
            }
        }
        BenchCommand::Messaging {
            subscribers,
            rounds,
            burst,
            json,
        } => {
            let bytes = bench::guests::echo_subscriber().map_err(|e| anyhow::anyhow!("{e}"))?;
            let path = bench::built_in_image(images, "echo-subscriber", &bytes)?;
            let loaded = images.load_module(runtime.engine(), &path)?;
            let mut rows = Vec::new();
            for count in subscribers.into_iter().filter(|&n| n > 0) {
                let stack = bench::replicated_stack(&path, count, &["messaging"])?;
                let row = executor.block_on(bench::messaging::run_one(
                    runtime.clone(),
                    &stack,
                    loaded.module.clone(),
                    rounds.max(1),
                    burst.clamp(1, 256),
                ));
                eprintln!("  {count} subscribers: p50 {:.1} us", row.latency_p50_us);
                rows.push(row);
                procstat::release_free_memory();
            }
            print!("{}", bench::messaging::render_table(&rows));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&rows)? + "\n")?;
            }
        }
        BenchCommand::Bridge {
            broker,
            rounds,
            burst,
            payload,
            json,
        } => bench::bridge::command(&executor, broker, rounds, burst, payload, json.as_deref())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn images_command(images: &ImageStore, runtime_config: &RuntimeConfig, args: ImagesArgs) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(ImagesCommand::Ls) {
        ImagesCommand::Ls => {
            println!("{:<64} {:>8} NAME", "SHA-256", "SIZE");
            for image in images.list()? {
                println!("{:<64} {:>8} {}", image.digest, image.size, image.name);
            }
        }
        ImagesCommand::Add { files } => {
            if files.is_empty() {
                anyhow::bail!("`shoal images add` needs at least one .wasm file");
            }
            for file in files {
                let image = images.add(&file)?;
                println!("sha256:{} {}", image.digest, image.name);
            }
        }
        ImagesCommand::Compile(args) => compile::compile(runtime_config, args)?,
        ImagesCommand::Rm { images: refs } => {
            if refs.is_empty() {
                anyhow::bail!("`shoal images rm` needs a digest prefix or name");
            }
            for reference in refs {
                let image = images.remove(&reference)?;
                println!("removed sha256:{} {}", image.digest, image.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
