//! The command line as clap types: every command, flag and help text of `shoal`. The
//! commands themselves live beside this file, one file per family; nothing here runs.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::{compile, graph};
use crate::bench;
use crate::control::cmd::ClientCommand;
use crate::control::ProjectArgs;
use crate::spec::units::ByteSize;

#[derive(Parser, Debug)]
#[command(name = "shoal", version, long_version = super::ops::LONG_VERSION, about = "Run a stack of WebAssembly containers in one small process", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub(super) global: GlobalArgs,
    #[command(subcommand)]
    pub(super) command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub(super) struct GlobalArgs {
    /// Where images and the compile cache live [default: $SHOAL_DATA_DIR, $XDG_DATA_HOME/shoal or ~/.local/share/shoal]
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) data_dir: Option<PathBuf>,
    /// Address space reserved per linear memory, e.g. 8MiB (see README: memory sizing)
    #[arg(long, global = true, value_name = "SIZE", env = "SHOAL_MEMORY_RESERVATION")]
    pub(super) memory_reservation: Option<ByteSize>,
    /// Deepest wasm stack any container may use, e.g. 1MiB [default: 512KiB] (engine-wide; see README: limits)
    #[arg(long, global = true, value_name = "SIZE", env = "SHOAL_MAX_WASM_STACK")]
    pub(super) max_wasm_stack: Option<ByteSize>,
    // Operations (issue 19): shoal's own log lines. `-v`/`-q` stay the commands' own
    // (`up -v`, `config -q`); these are long flags so they never clash with them.
    /// Form of shoal's own log lines on stderr [default: text; the journal when run by systemd]
    #[arg(long, global = true, value_enum, value_name = "FORMAT", env = "SHOAL_LOG_FORMAT")]
    pub(super) log_format: Option<crate::telemetry::LogFormat>,
    /// Least level logged: error, warn, info, debug, trace (RUST_LOG overrides) [default: info]
    #[arg(long, global = true, value_name = "LEVEL", env = "SHOAL_LOG")]
    pub(super) log_level: Option<String>,
    /// Executor threads that run the containers [default: the cores this process may use]
    #[arg(long, global = true, value_name = "N", env = "SHOAL_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(super) workers: Option<u16>,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// Validate the compose file and print the resolved stack
    #[command(
        after_help = "Examples:\n  shoal config\n  shoal config -f line-3/shoal.yaml --format json\n  shoal config -q && echo valid\n  shoal config -f shoal.yaml -f boards/7.yaml --env-file boards/7.env > merged.yaml"
    )]
    Config(ConfigArgs),
    /// Start the stack (in the foreground, or in the background with -d) and serve it to `ps`, `logs`, `down`...
    #[command(
        after_help = "Examples:\n  shoal up\n  shoal up compose-examples/hello/shoal.yaml\n  shoal up -f stack.yaml collector   # only collector and what it depends on\n  shoal up -d                         # in the background; again to apply file changes\n  shoal up --watch                    # reload when the file or an image changes\n  shoal up -d -f shoal.yaml -f boards/7.yaml -p board-7   # a per-board override file\n  shoal up --profile debug            # also the containers with `profiles: [debug]`"
    )]
    Up(UpArgs),
    // fleet (issue 18): the board's side of fleet deployment.
    /// Run this board's fleet agent: signed deployments from an MQTT broker, applied, watched, rolled back
    #[command(
        after_help = "Examples:\n  shoal agent --config /etc/shoal/agent.yaml\n  shoal agent --device-id board-7 --groups line-3 --trust /etc/shoal/trusted --broker mqtts://broker.example --username board-7 --password-file /etc/shoal/broker-password\n  SHOAL_DEVICE_ID=board-7 SHOAL_FLEET_URL=mqtt://10.0.0.2 shoal agent --trust operator.pem"
    )]
    Agent(crate::fleet::agent::AgentArgs),
    #[command(flatten)]
    Client(ClientCommand),
    /// Containers and the topics between them, from the file (with live counts when it runs)
    #[command(
        after_help = "Examples:\n  shoal graph\n  shoal graph --format mermaid > stack.mmd\n  shoal graph --format dot | dot -Tsvg > stack.svg"
    )]
    Graph(GraphArgs),
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
        after_help = "Examples:\n  shoal bench density --max 10000 --plot density.svg --json density.json\n  shoal bench density --mode exited --max 1000\n  shoal bench density --guest minimal --max 1000\n  shoal bench messaging --subscribers 1,10,100,1000\n  shoal bench bridge --broker mqtt://127.0.0.1:1883"
    )]
    Bench(BenchArgs),
    /// List, add and remove images in the content-addressed store
    #[command(
        after_help = "Examples:\n  shoal images\n  shoal images add build/collector.wasm\n  shoal images rm 1e8fcd21\n  shoal images compile collector.wasm --target aarch64-unknown-linux-gnu -o board/\n  shoal images pull registry.example/org/collector:1.4\n  shoal images push --platform linux/arm64 collector.wasm registry.example/org/collector:1.4"
    )]
    Images(ImagesArgs),
    // Operations (issue 19): the schema, the version, man pages, and hints for the
    // commands compose users reach for that shoal has no place for.
    /// Print the JSON schema of the compose file (for editors and validators)
    #[command(
        after_help = "Examples:\n  shoal schema > shoal.schema.json\n  # in a compose file: # yaml-language-server: $schema=shoal.schema.json"
    )]
    Schema,
    /// Print the version, commit, target, build features and wasmtime version
    Version,
    /// Write man pages (shoal.1, shoal-up.1, ...) generated from this command line into DIR
    #[command(after_help = "Examples:\n  shoal man /usr/local/share/man/man1")]
    Man { dir: PathBuf },
    #[command(hide = true)]
    Exec {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    #[command(hide = true)]
    Watch {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    // registry: `shoal pull`, compose's alias for pulling every registry image of the file
    /// Pull every registry image of the compose file (`image: registry.example/org/app:1`)
    #[command(after_help = "Examples:\n  shoal pull\n  shoal pull -f line-3/shoal.yaml")]
    Pull(PullArgs),
    // fleet (issue 18): the operator's commands
    /// Deploy to many boards through an MQTT broker: keygen, deploy, ls, ps, rollback, vars, acl
    #[command(
        after_help = "Examples:\n  shoal fleet keygen\n  shoal fleet deploy shoal.yaml --to group:line-3 --canary 1\n  shoal fleet ls\n  shoal fleet rollback group:line-3\n  shoal fleet vars set --group line-3 UNIT=celsius"
    )]
    Fleet(super::fleet::FleetArgs),
}

/// `shoal pull`.
#[derive(Args, Debug)]
pub(super) struct PullArgs {
    #[command(flatten)]
    pub(super) file: FileArgs,
    /// Compose file (same as -f)
    #[arg(value_name = "FILE", conflicts_with = "file")]
    pub(super) positional: Option<PathBuf>,
}

/// Which files make the stack and what they mean (compose: Docker Compose's flags).
#[derive(Args, Debug)]
pub(super) struct FileArgs {
    /// Compose file; repeat to merge several in order, later wins (see README: Many boards) [default: shoal.yaml or compose.yaml here, plus its .override.yaml]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(super) file: Vec<PathBuf>,
    /// Read ${VAR} values from this file instead of the project's .env; repeat for several, later wins
    #[arg(long = "env-file", value_name = "FILE")]
    pub(super) env_file: Vec<PathBuf>,
    /// Project name [default: $SHOAL_PROJECT_NAME, else `name:` in the file, else the file's folder]
    #[arg(short = 'p', long = "project-name", visible_alias = "project", value_name = "NAME", value_parser = crate::control::parse_name::<crate::spec::ProjectName>)]
    pub(super) project_name: Option<crate::spec::ProjectName>,
    /// Run the containers of this profile too (repeatable; `*` for all) [default: $SHOAL_PROFILES, comma-separated]
    #[arg(long = "profile", value_name = "NAME")]
    pub(super) profile: Vec<String>,
}

impl FileArgs {
    /// The files and settings to load: `-f` (or `positional`, a file or folder) resolved
    /// with Compose's override rule, plus `--env-file`, `-p` and `--profile`.
    pub(super) fn compose_files(&self, positional: Option<&Path>) -> anyhow::Result<crate::spec::ComposeFiles> {
        let explicit: Vec<PathBuf> = match positional {
            Some(p) if self.file.is_empty() => vec![p.to_path_buf()],
            _ => self.file.clone(),
        };
        Ok(crate::spec::ComposeFiles {
            files: crate::spec::ComposeFiles::resolve_files(&explicit)?,
            env_files: (!self.env_file.is_empty()).then(|| self.env_file.clone()),
            project_name: self.project_name.clone(),
            profiles: (!self.profile.is_empty()).then(|| self.profile.clone()),
            env_files_only: false,
        })
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum Format {
    Yaml,
    Json,
}

#[derive(Args, Debug)]
pub(super) struct ConfigArgs {
    #[command(flatten)]
    pub(super) file: FileArgs,
    /// Compose file (same as -f)
    #[arg(value_name = "FILE", conflicts_with = "file")]
    pub(super) positional: Option<PathBuf>,
    /// Only validate; print nothing but errors
    #[arg(short, long)]
    pub(super) quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "yaml")]
    pub(super) format: Format,
    /// Treat warnings as errors
    #[arg(long)]
    pub(super) strict: bool,
    /// Print registry images pinned to the digest pulled (`image: ref@sha256:...`), to
    /// commit as the file every board runs (as compose's flag of the same name)
    #[arg(long)]
    pub(super) resolve_image_digests: bool,
}

#[derive(Args, Debug)]
pub(super) struct UpArgs {
    #[command(flatten)]
    pub(super) file: FileArgs,
    /// A compose file path, or the names of containers to start (with their dependencies)
    #[arg(value_name = "FILE|CONTAINER")]
    pub(super) targets: Vec<String>,
    /// Plain prefixes, no colours
    #[arg(long)]
    pub(super) no_color: bool,
    /// Print how each image was obtained (compiled or from the cache) and how long it took
    #[arg(short, long)]
    pub(super) verbose: bool,
    /// Run in the background; on a running project, apply the file's changes
    #[arg(short, long)]
    pub(super) detach: bool,
    /// Reload when the compose file, an env file or an image file changes
    #[arg(long)]
    pub(super) watch: bool,
    /// Serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9464) at /metrics
    #[arg(long, value_name = "ADDR", env = "SHOAL_METRICS")]
    pub(super) metrics: Option<String>,
    /// Internal: this process is the background half of `up -d`
    #[arg(long, hide = true)]
    pub(super) detached_child: bool,
    // lifecycle (issue 16 fault 7): log bounds.
    /// Detached: rotate the project's log file when it passes this size
    #[arg(long, value_name = "SIZE", default_value = "10MiB")]
    pub(super) log_size: crate::spec::units::ByteSize,
    /// Detached: rotated log files kept beside the current one (<project>.log.1 ...)
    #[arg(long, value_name = "N", default_value_t = crate::logs::rotate::DEFAULT_KEEP)]
    pub(super) log_files: usize,
    /// Bytes of output kept per container for `shoal logs` (also at most 1,000 lines)
    #[arg(long, value_name = "SIZE", default_value = "256KiB")]
    pub(super) log_buffer: crate::spec::units::ByteSize,
    /// Output a container may write per second on each of stdout and stderr; a guest that
    /// writes faster waits (0: unlimited)
    #[arg(long, value_name = "SIZE", default_value = "4MiB")]
    pub(super) log_rate: crate::spec::units::ByteSize,
}

#[derive(Args, Debug)]
pub(super) struct GraphArgs {
    #[command(flatten)]
    pub(super) project: ProjectArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub(super) format: graph::GraphFormat,
}

#[derive(Args, Debug)]
pub(super) struct RunArgs {
    /// A .wasm file, or an image in the store (digest prefix or name)
    pub(super) image: String,
    /// Arguments passed to the guest
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(super) args: Vec<String>,
    /// Mount a host folder: HOST:GUEST[:ro] (Docker's order)
    #[arg(short = 'v', long = "volume", value_name = "HOST:GUEST[:ro]")]
    pub(super) volumes: Vec<String>,
    /// Set an environment variable
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub(super) env: Vec<String>,
    /// Grant a capability (messaging, timers, sensors, ocre:api)
    #[arg(long = "cap", value_name = "NAME")]
    pub(super) caps: Vec<String>,
    /// Container name [default: the image's file stem]
    #[arg(long, value_parser = crate::control::parse_name::<crate::spec::ContainerName>)]
    pub(super) name: Option<crate::spec::ContainerName>,
    /// Linear memory limit, e.g. 1MiB
    #[arg(long, value_name = "SIZE")]
    pub(super) memory: Option<String>,
    /// CPU share limit, e.g. 0.25 or 25%
    #[arg(long, value_name = "SHARE")]
    pub(super) cpu: Option<String>,
}

#[derive(Args, Debug)]
pub(super) struct BenchArgs {
    #[command(subcommand)]
    pub(super) command: BenchCommand,
}

#[derive(Subcommand, Debug)]
pub(super) enum BenchCommand {
    /// The article's experiment: start containers one after another, read VmRSS at
    /// 0, 1, 2, 3, 5, 10, 20, 50, 100, ... up to --max, then tear down and read it again
    Density(DensityArgs),
    /// Up/down cycles of one stack in one process, printing RSS as it goes: growth means
    /// something is not given back
    Soak(SoakArgs),
    /// Time from saving the compose file to the changed container running again (`up --watch`)
    Reload(ReloadArgs),
    /// The share `limits.cpu` holds a spinning guest to, and what spinning guests cost a
    /// parked subscriber's message latency, with and without a limit
    Isolation(IsolationArgs),
    /// Publish -> deliver latency (p50/p99) to parked subscribers and fan-out throughput
    Messaging(MessagingArgs),
    /// MQTT bridge: latency (p50/p99) and throughput of local publish -> broker -> other
    /// stack, against the in-process path
    Bridge(BridgeArgs),
    /// GPIO edge -> parked guest latency (p50/p99): a `sim` input set as `shoal gpio set`
    /// does, until the guest's output follows
    Gpio(GpioBenchArgs),
    /// Memory growth: one guest grows one page at a time up to its `limits.memory`; prints
    /// the time it took and the peak RSS against the limit
    Grow(GrowArgs),
    // fleet-ops (issue 18)
    /// Fleet rollout: N simulated agents (one process, one MQTT session each, a tiny stack)
    /// against a private Mosquitto; time until all report a group deployment healthy,
    /// broker messages, memory per agent
    Fleet(crate::bench::fleet::FleetBenchArgs),
}

#[derive(Args, Debug)]
pub(super) struct GrowArgs {
    /// The container's `limits.memory`, the size the guest grows to (e.g. 512MiB)
    #[arg(long, default_value = "512MiB")]
    pub(super) limit: ByteSize,
    /// Also write the figures as JSON
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct GpioBenchArgs {
    /// Edges to measure
    #[arg(long, default_value_t = 1000)]
    pub(super) rounds: usize,
    /// Also write the figures as JSON
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct DensityArgs {
    /// Containers to reach
    #[arg(long, default_value_t = 1000)]
    pub(super) max: usize,
    /// idle: SDK-style subscribers parked in the poll loop; exited: hello-style guests that return
    #[arg(long, value_enum, default_value = "idle")]
    pub(super) mode: bench::density::Mode,
    /// Guest to run: sdk = the C subscriber (idle) or hello (exited) built with the Ocre SDK's
    /// flags and event loop, from compose-examples/images/ (scripts/build-guests.sh);
    /// minimal = the built-in WAT guest
    #[arg(long, value_enum, default_value = "sdk", conflicts_with = "image")]
    pub(super) guest: bench::guests::DensityGuest,
    /// Image to run instead of --guest's (granted every capability)
    #[arg(long, value_name = "FILE")]
    pub(super) image: Option<PathBuf>,
    /// Seconds to measure idle CPU once all containers run, starting a second after the last
    /// one subscribed (idle mode)
    #[arg(long, default_value_t = 10.0)]
    pub(super) idle_secs: f64,
    /// Also write the figures as JSON
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
    /// Draw RSS against container count, with the article's reference lines, as SVG
    #[arg(long, value_name = "FILE.svg")]
    pub(super) plot: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct SoakArgs {
    /// Cycles to run
    #[arg(long, default_value_t = 1000)]
    pub(super) cycles: usize,
    /// Containers in the stack (built-in idle subscribers)
    #[arg(long, default_value_t = 20)]
    pub(super) containers: usize,
    /// Print RSS every this many cycles
    #[arg(long, default_value_t = 100)]
    pub(super) every: usize,
    /// Also write the figures as JSON
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct ReloadArgs {
    /// Saves to measure
    #[arg(long, default_value_t = 50)]
    pub(super) rounds: usize,
}

#[derive(Args, Debug)]
pub(super) struct IsolationArgs {
    /// Seconds to measure each CPU share
    #[arg(long, default_value_t = 3.0)]
    pub(super) secs: f64,
    /// Spinning guests beside the subscriber
    #[arg(long, default_value_t = 4)]
    pub(super) spinners: usize,
    /// Latency rounds per configuration
    #[arg(long, default_value_t = 200)]
    pub(super) rounds: usize,
    /// Also write the figures as JSON
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct MessagingArgs {
    /// Subscriber counts to measure
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    pub(super) subscribers: Vec<usize>,
    /// Latency rounds per count (one message each, subscribers parked in between)
    #[arg(long, default_value_t = 200)]
    pub(super) rounds: usize,
    /// Deliveries in the throughput stream, over all subscribers (each gets its share,
    /// at least one message; the publisher waits for room in their mailboxes)
    #[arg(long, default_value_t = 200_000)]
    pub(super) deliveries: usize,
    /// Subscribers for the fan-out throughput per worker count (1, 2, cores), which also
    /// measures the stream to one subscriber per worker count; 0 skips it
    #[arg(long, default_value_t = 1000)]
    pub(super) per_worker_subscribers: usize,
    /// Also write the figures as JSON
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct BridgeArgs {
    /// Broker to go through, e.g. mqtt://127.0.0.1:1883 [default: start a private mosquitto]
    #[arg(long, value_name = "URL")]
    pub(super) broker: Option<String>,
    /// Latency rounds (one message each)
    #[arg(long, default_value_t = 1000)]
    pub(super) rounds: usize,
    /// Messages in the throughput burst
    #[arg(long, default_value_t = 20000)]
    pub(super) burst: usize,
    /// Payload size in bytes
    #[arg(long, default_value_t = 64)]
    pub(super) payload: usize,
    /// Also write the figures as JSON
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct ImagesArgs {
    #[command(subcommand)]
    pub(super) command: Option<ImagesCommand>,
}

#[derive(Subcommand, Debug)]
pub(super) enum ImagesCommand {
    /// List stored images (the default)
    Ls,
    /// Copy a .wasm file into the store
    Add { files: Vec<PathBuf> },
    /// Remove images by digest prefix or name (not one a stack or a fleet agent's last good state needs, unless --force)
    Rm {
        images: Vec<String>,
        /// Remove it even when a running stack or a fleet agent's last good state needs it
        #[arg(long, short)]
        force: bool,
    },
    /// Precompile .wasm files into .cwasm images for a board whose shoal has no compiler
    Compile(compile::CompileArgs),
    // registry
    /// Pull images from an OCI registry (`registry.example/org/app:1`, `...@sha256:<hex>`)
    Pull {
        #[arg(required = true, value_name = "REF")]
        references: Vec<String>,
    },
    /// Push a .wasm to an OCI registry (CNCF wasm artifact; with --platform an index that adds a .cwasm per platform)
    Push {
        /// The .wasm module
        file: PathBuf,
        /// Where to push it: `registry.example/org/app:1`
        #[arg(value_name = "REF")]
        reference: String,
        /// Also compile it for these platforms and push the .cwasm files (`linux/arm64`, `linux/amd64`)
        #[arg(long = "platform", value_name = "OS/ARCH")]
        platforms: Vec<String>,
    },
}

/// Positional `up` arguments: a path to a compose file (has a `/`, ends in .yaml/.yml, or
/// exists) or container names.
pub(super) fn split_targets(targets: &[String]) -> (Option<PathBuf>, Vec<String>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(args: &[&str]) -> String {
        Cli::try_parse_from(args).unwrap_err().to_string()
    }

    #[test]
    fn names_are_checked_at_the_flag() {
        let e = refused(&["shoal", "ps", "-p", "Line 3"]);
        assert!(
            e.contains("--project") && e.contains("lowercase letters") && e.contains("`line3`"),
            "{e}"
        );
        let long = "a".repeat(64);
        let e = refused(&["shoal", "down", "-p", &long]);
        assert!(e.contains("at most 63") && e.contains("socket"), "{e}");
        let e = refused(&["shoal", "logs", "--project=_x"]);
        assert!(e.contains("--project"), "{e}");
        let e = refused(&["shoal", "run", "--name", "My App", "x.wasm"]);
        assert!(e.contains("--name") && e.contains("`myapp`"), "{e}");
        assert!(Cli::try_parse_from(["shoal", "ps", "-p", "line-3"]).is_ok());
    }

    #[test]
    fn sizes_and_durations_are_checked_at_the_flag() {
        let e = refused(&["shoal", "down", "--threshold", "12 parsecs"]);
        assert!(e.contains("--threshold") && e.contains("use B, KiB, MiB"), "{e}");
        let e = refused(&["shoal", "--memory-reservation", "lots", "ps"]);
        assert!(
            e.contains("--memory-reservation") && e.contains("invalid memory size `lots`"),
            "{e}"
        );
        let e = refused(&["shoal", "--max-wasm-stack", "deep", "ps"]);
        assert!(e.contains("--max-wasm-stack"), "{e}");
        let e = refused(&["shoal", "logs", "--since", "10"]);
        assert!(
            e.contains("--since") && e.contains("no unit") && e.contains("hint"),
            "{e}"
        );
        let cli = Cli::try_parse_from(["shoal", "down", "--threshold", "512KiB"]).unwrap();
        let Command::Client(ClientCommand::Down(down)) = cli.command else {
            panic!("parsed as down")
        };
        assert_eq!(down.threshold, ByteSize(512 << 10));
    }
}
