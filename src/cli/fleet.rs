//! `shoal fleet ...`: the operator's commands (issue 18). The clap types and the glue;
//! the work is in [`crate::fleet::operator`]. `deploy` validates its files here first, with
//! the same checks as `shoal config` (and every registry image pulled and pinned), before
//! anything reaches the broker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::fleet::document::DocFile;
use crate::fleet::operator::{self, acl, deploy, keygen, ls, ps, rollback, vars, FleetView, OperatorArgs};
use crate::fleet::topics::{self, Target};
use crate::images::ImageStore;
use crate::runtime::RuntimeConfig;
use crate::spec::{self, ImageRef};

/// `shoal fleet`.
#[derive(Args, Debug)]
pub(super) struct FleetArgs {
    #[command(subcommand)]
    command: FleetCommand,
}

#[derive(Subcommand, Debug)]
enum FleetCommand {
    /// Make the operator's signing key pair (fleet.key, fleet.pub); never overwrites
    #[command(after_help = "Examples:\n  shoal fleet keygen\n  shoal fleet keygen --out keys/")]
    Keygen {
        /// Folder for fleet.key and fleet.pub [default: ~/.config/shoal]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Write the broker's Mosquitto ACL for the fleet's devices and their groups
    #[command(
        after_help = "Examples:\n  shoal fleet acl --inventory inventory.yaml > /etc/mosquitto/mosquitto.acl\n  shoal fleet acl --device pi-01=line-3 --device pi-02=line-3,lab"
    )]
    Acl {
        /// YAML inventory: `operator: NAME` and `devices: [{id: ID, groups: [G, ...]}]`
        #[arg(long, value_name = "FILE")]
        inventory: Option<PathBuf>,
        /// A device and its groups, ID=GROUP,GROUP (repeatable; added to the inventory's)
        #[arg(long = "device", value_name = "ID=GROUPS")]
        devices: Vec<String>,
        /// The operator's MQTT user name [default: the inventory's, else operator]
        #[arg(long)]
        operator: Option<String>,
    },
    /// Publish a signed deployment to a group or a device, staged: canaries, then waves
    #[command(
        after_help = "TARGET is group:NAME or device:ID; a bare NAME is the group of that name when a device reports it, else the device of that id.\n\nExamples:\n  shoal fleet deploy shoal.yaml --to group:line-3 --canary 1 --max-unavailable 2\n  shoal fleet deploy shoal.yaml boards.yaml --to device:pi-07 --var UNIT=celsius\n  shoal fleet deploy shoal.yaml --to line-3 --health-window 1m"
    )]
    Deploy(DeployArgs),
    /// List the devices: online, applied revision, health, last seen
    #[command(after_help = "Examples:\n  shoal fleet ls\n  shoal fleet ls --group line-3 --format json")]
    Ls {
        #[command(flatten)]
        operator: OperatorArgs,
        /// Only the devices of this group
        #[arg(long)]
        group: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// One device's containers, as its last report shows them
    #[command(after_help = "Examples:\n  shoal fleet ps pi-01")]
    Ps {
        #[command(flatten)]
        operator: OperatorArgs,
        device: String,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Put a group back on its previous document (re-signed), or a device back on its group's
    #[command(after_help = "Examples:\n  shoal fleet rollback group:line-3\n  shoal fleet rollback device:pi-07")]
    Rollback {
        #[command(flatten)]
        operator: OperatorArgs,
        /// group:NAME or device:ID (or a bare name, as for deploy)
        target: String,
        /// Signing key [default: the config file's `key:`, else ~/.config/shoal/fleet.key]
        #[arg(long, value_name = "FILE", env = "SHOAL_FLEET_KEY")]
        key: Option<PathBuf>,
    },
    /// Device and group variables, signed, for ${VAR} in the deployed files
    #[command(
        after_help = "Examples:\n  shoal fleet vars set --group line-3 UNIT=celsius PERIOD=2s\n  shoal fleet vars set --device pi-07 SITE=hall-2\n  shoal fleet vars unset --device pi-07 SITE\n  shoal fleet vars show --group line-3"
    )]
    Vars {
        #[command(subcommand)]
        action: VarsAction,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
struct DeployArgs {
    #[command(flatten)]
    operator: OperatorArgs,
    /// Compose files, merged in order like -f a -f b (base first)
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// group:NAME or device:ID (see below)
    #[arg(long, value_name = "TARGET")]
    to: String,
    /// Devices that get it first, alone (wave 0)
    #[arg(long, default_value_t = 0, value_name = "N")]
    canary: usize,
    /// Devices per later wave [default: all the rest in one wave]
    #[arg(long, value_name = "N")]
    max_unavailable: Option<usize>,
    /// How long every container must run (or have completed) without a restart to count as healthy
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    health_window: Duration,
    /// Added to the health window: how long a wave may take to pull and start before it counts as failed
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    timeout: Duration,
    /// Signing key [default: the config file's `key:`, else ~/.config/shoal/fleet.key]
    #[arg(long, value_name = "FILE", env = "SHOAL_FLEET_KEY")]
    key: Option<PathBuf>,
    /// The deployment's own variable defaults, KEY=VALUE (repeatable; device and group vars win)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    vars: Vec<String>,
    /// Project name the boards run it under [default: the agent's]
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    project: Option<String>,
}

#[derive(Subcommand, Debug)]
enum VarsAction {
    /// Set variables (KEY=VALUE...)
    Set {
        #[command(flatten)]
        at: VarsTarget,
        #[arg(required = true, value_name = "KEY=VALUE")]
        values: Vec<String>,
        #[arg(long, value_name = "FILE", env = "SHOAL_FLEET_KEY")]
        key: Option<PathBuf>,
    },
    /// Remove variables (KEY...)
    Unset {
        #[command(flatten)]
        at: VarsTarget,
        #[arg(required = true, value_name = "KEY")]
        names: Vec<String>,
        #[arg(long, value_name = "FILE", env = "SHOAL_FLEET_KEY")]
        key: Option<PathBuf>,
    },
    /// Print the variables
    Show {
        #[command(flatten)]
        at: VarsTarget,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false, id = "vars_target")]
struct VarsTarget {
    #[command(flatten)]
    operator: OperatorArgs,
    /// The group's variables
    #[arg(long, group = "vars_target")]
    group: Option<String>,
    /// The device's variables
    #[arg(long, group = "vars_target")]
    device: Option<String>,
}

impl VarsTarget {
    fn target(&self) -> anyhow::Result<Target> {
        Ok(match (&self.group, &self.device) {
            (Some(group), _) => Target::group(group)?,
            (None, Some(device)) => Target::device(device)?,
            (None, None) => anyhow::bail!("give --group NAME or --device ID"),
        })
    }
}

pub(super) fn fleet(images: &ImageStore, runtime: &RuntimeConfig, args: FleetArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        FleetCommand::Keygen { out } => {
            let pair = keygen::keygen(&out.unwrap_or_else(operator::config_dir))?;
            println!("key {}", pair.id);
            println!(
                "private key: {} (signs documents; keep it off the boards)",
                pair.private.display()
            );
            println!(
                "public key:  {} (goes into each agent's trusted_keys)",
                pair.public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        FleetCommand::Acl {
            inventory,
            devices,
            operator,
        } => {
            let mut list = match &inventory {
                Some(path) => acl::Inventory::read(path)?,
                None => acl::Inventory {
                    operator: "operator".into(),
                    devices: Vec::new(),
                },
            };
            for flag in &devices {
                list.devices.push(acl::Inventory::device_flag(flag)?);
            }
            if let Some(operator) = operator {
                list.operator = operator;
            }
            print!("{}", acl::render(&list)?);
            Ok(ExitCode::SUCCESS)
        }
        FleetCommand::Deploy(args) => deploy_command(images, runtime, args),
        FleetCommand::Ls {
            operator,
            group,
            format,
        } => block_on(ls_command(operator, group, format)),
        FleetCommand::Ps {
            operator,
            device,
            format,
        } => block_on(ps_command(operator, device, format)),
        FleetCommand::Rollback { operator, target, key } => {
            let key = operator.signing_key(key.as_deref())?;
            block_on(async move {
                let mut session = operator.session().await?;
                let done = rollback::rollback(&mut session, &target, &key).await;
                session.close().await;
                println!("{}", done?);
                Ok(ExitCode::SUCCESS)
            })
        }
        FleetCommand::Vars { action } => vars_command(action),
    }
}

async fn ls_command(operator: OperatorArgs, group: Option<String>, format: ListFormat) -> anyhow::Result<ExitCode> {
    let mut session = operator.session().await?;
    session.subscribe(&FleetView::filters()).await?;
    let fleet = FleetView::from_state(session.state());
    session.close().await;
    let rows = ls::rows(&fleet, group.as_deref());
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        ListFormat::Table => print!("{}", ls::table(&rows, std::time::SystemTime::now())),
    }
    Ok(ExitCode::SUCCESS)
}

async fn ps_command(operator: OperatorArgs, device: String, format: ListFormat) -> anyhow::Result<ExitCode> {
    topics::check_id("device", &device)?;
    let mut session = operator.session().await?;
    session.subscribe(&[topics::device_reported(&device)]).await?;
    let fleet = FleetView::from_state(session.state());
    session.close().await;
    let Some(report) = fleet.reports.get(&device) else {
        anyhow::bail!(
            "device `{device}` has no report on this broker\n  hint: `shoal fleet ls` lists the devices that reported"
        );
    };
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&report.containers)?),
        ListFormat::Table => print!("{}", ps::table(report)),
    }
    Ok(ExitCode::SUCCESS)
}

fn vars_command(action: VarsAction) -> anyhow::Result<ExitCode> {
    let (at, change, key) = match action {
        VarsAction::Show { at } => {
            let target = at.target()?;
            return block_on(async move {
                let mut session = at.operator.session().await?;
                let values = vars::show(&mut session, &target).await;
                session.close().await;
                for (name, value) in values? {
                    println!("{name}={value}");
                }
                Ok(ExitCode::SUCCESS)
            });
        }
        VarsAction::Set { at, values, key } => (at, vars::Change::Set(operator::parse_assignments(&values)?), key),
        VarsAction::Unset { at, names, key } => (at, vars::Change::Unset(names), key),
    };
    let target = at.target()?;
    let key = at.operator.signing_key(key.as_deref())?;
    block_on(async move {
        let mut session = at.operator.session().await?;
        let result = vars::change(&mut session, &target, change, &key).await;
        session.close().await;
        let (values, revision) = result?;
        println!("{target}: variables revision {revision}");
        for (name, value) in values {
            println!("{name}={value}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn deploy_command(images: &ImageStore, runtime: &RuntimeConfig, args: DeployArgs) -> anyhow::Result<ExitCode> {
    // Everything local first: the key, the files, the images. Nothing is published when
    // any of it fails.
    let key = args.operator.signing_key(args.key.as_deref())?;
    let variables = operator::parse_assignments(&args.vars)?;
    if let Some(project) = &args.project {
        crate::control::parse_name::<spec::ProjectName>(project).map_err(|e| anyhow::anyhow!("-p {project}: {e}"))?;
    }
    let Some(prepared) = prepare(images, runtime, &args.files, &args.to, variables, args.project.clone())? else {
        return Ok(ExitCode::from(1));
    };
    let staging = deploy::Staging {
        canary: args.canary,
        max_unavailable: args.max_unavailable,
        health_window: args.health_window,
        timeout: args.timeout,
    };
    block_on(async move {
        let mut session = args.operator.session().await?;
        let result = deploy::deploy(&mut session, &args.to, &prepared, &staging, &key).await;
        session.close().await;
        match result {
            Ok(outcome) => {
                println!(
                    "revision {} deployed to {}: {} device(s) healthy",
                    outcome.revision,
                    outcome.target,
                    outcome.devices.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(deploy::DeployError::Failed(failed)) => {
                tracing::error!("{failed}");
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// Validate the files as `shoal config` does (registry images pulled and pinned), with the
/// variables a board would have, and collect them for the document. `None`: invalid (the
/// diagnostics are printed).
fn prepare(
    images: &ImageStore,
    runtime: &RuntimeConfig,
    files: &[PathBuf],
    to: &str,
    variables: BTreeMap<String, String>,
    project: Option<String>,
) -> anyhow::Result<Option<deploy::Prepared>> {
    let docs = read_files(files)?;
    let env = board_env(to, &variables);
    let input = spec::ComposeFiles {
        files: files.to_vec(),
        ..Default::default()
    };
    let lookup = |digest: &spec::ImageDigest| images.path_of(digest);
    // Pulled now, so the digest is the tag's today (what `shoal pull` then
    // `config --resolve-image-digests` would print).
    let pull = |reference: &str| match crate::registry::pull(images, reference) {
        Ok(pulled) => Ok(pulled.into()),
        Err(e) => Err(format!("cannot pull {reference}: {e}")),
    };
    let options = spec::LoadOptions {
        env: &env,
        lookup_digest: &lookup,
        resolve_reference: &pull,
    };
    let (stack, mut diagnostics) = match spec::load_files(&input, &options) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            eprint!("{}", spec::render_diagnostics(&diagnostics));
            tracing::error!("the files are invalid; nothing was published");
            return Ok(None);
        }
    };
    let resolve = |image: &ImageRef| match image {
        ImageRef::Path(path) => Some(path.clone()),
        other => other.store_digest().and_then(|digest| images.path_of(digest)),
    };
    diagnostics.extend(crate::check::check_stack(
        &stack,
        &resolve,
        &crate::check::Engines::from_config(runtime),
    ));
    if !diagnostics.is_empty() {
        eprint!("{}", spec::render_diagnostics(&diagnostics));
    }
    if diagnostics.iter().any(spec::Diagnostic::is_error) {
        tracing::error!("the files are invalid; nothing was published");
        return Ok(None);
    }
    Ok(Some(deploy::Prepared {
        files: docs,
        images: pinned_images(&stack)?,
        variables,
        project,
    }))
}

/// The files as the document carries them: plain names (unique), their text.
fn read_files(files: &[PathBuf]) -> anyhow::Result<Vec<DocFile>> {
    let mut docs: Vec<DocFile> = Vec::new();
    for path in files {
        let name = doc_name(path)?;
        if docs.iter().any(|d| d.name == name) {
            anyhow::bail!("two files are named {name}: the boards receive files by name\n  hint: rename one");
        }
        let text = spec::read_text_file(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        docs.push(DocFile { name, text });
    }
    Ok(docs)
}

/// The variables a board has: the deployment's, then DEVICE_ID and DEVICE_GROUPS (the
/// agent's own; placeholders here, so `${DEVICE_ID}` in a file validates).
fn board_env(to: &str, variables: &BTreeMap<String, String>) -> std::collections::HashMap<String, String> {
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    env.extend(variables.clone());
    let (device, groups) = match to.split_once(':') {
        Some(("device", id)) => (id.to_string(), String::new()),
        Some((_, group)) => ("validation-device".to_string(), group.to_string()),
        None => ("validation-device".to_string(), to.to_string()),
    };
    env.insert("DEVICE_ID".into(), device);
    env.insert("DEVICE_GROUPS".into(), groups);
    env
}

/// Every image as written -> its registry digest; a local file or store digest is refused.
fn pinned_images(stack: &spec::Stack) -> anyhow::Result<BTreeMap<String, String>> {
    let mut pinned = BTreeMap::new();
    for container in &stack.containers {
        match &container.image {
            ImageRef::Registry { reference, resolved } => {
                pinned.insert(reference.clone(), resolved.pinned.to_string());
            }
            other => {
                anyhow::bail!(
                    "container {}: image {} is not from a registry; boards pull every image of a fleet deployment by digest\n  hint: `shoal images push FILE.wasm registry.example/org/NAME:TAG` and write that reference in `image:`",
                    container.name,
                    other.pinned()
                );
            }
        }
    }
    Ok(pinned)
}

/// The plain file name a board receives a file under.
fn doc_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("{} is not a file name", path.display()))
}

/// Run an operator command on a small runtime of its own.
fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(future: F) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
