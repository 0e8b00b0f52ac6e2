//! `shoal up`: in the foreground, or detached (`-d`) as a background process of its own.
//! Either way the process serves its stack on the control socket.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{load_stack, shutdown_signal, split_targets, tokio_runtime, GlobalArgs, UpArgs};
use crate::control::{self, server, Client, Info, Request, Server, ServerContext};
use crate::controller::{self, Controller, Ending, Options, ReloadReport};
use crate::images::ImageStore;
use crate::logs::terminal::TerminalLog;
use crate::logs::{LogBook, LogSink, Tee};
use crate::procstat;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::spec::{ComposeFiles, Stack};
use crate::supervisor::{self, ContainerInfo};

/// How long `up -d` waits for the background process to open its socket.
const DETACH_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `up -d` waits for every container to leave the `waiting` state.
const DETACH_READY_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn up(
    images: &ImageStore,
    runtime_config: &RuntimeConfig,
    global: &GlobalArgs,
    args: UpArgs,
) -> anyhow::Result<ExitCode> {
    let (file_target, services) = split_targets(&args.targets);
    let input = args.file.compose_files(file_target.as_deref())?;
    let Some(stack) = load_stack(images, runtime_config, &input, false) else {
        return Ok(ExitCode::from(1));
    };
    let stack = controller::select_containers(stack, &services)?;
    let project = stack.name.clone();
    let socket = control::socket_path(&project);
    if control::is_live(&socket) {
        if args.detach && !args.detached_child {
            return apply_to_running(&project);
        }
        anyhow::bail!(
            "project `{project}` is already running (socket {})\n  hint: `shoal up -d` applies the file's changes to it; `shoal down -p {project}` stops it",
            socket.display()
        );
    }
    if args.detach && !args.detached_child {
        return detach(
            global,
            &args,
            &stack.compose,
            &services,
            &project,
            stack.containers.len(),
        );
    }
    let watch = args.watch || stack.watch;
    let options = Options {
        watch,
        exit_when_done: !args.detached_child && !watch,
        selection: services,
        book: None,
    };
    let foreground = !args.detached_child;
    let (report, ending, reclamation) = serve(images, runtime_config, stack, options, &args, foreground)?;
    if args.verbose || !foreground {
        eprintln!("{reclamation}");
    }
    match ending {
        Ending::Down => eprintln!("stack `{project}` taken down by `shoal down`"),
        Ending::Interrupted => eprintln!("stack `{project}` stopped"),
        Ending::AllEnded => {}
    }
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Run the stack in this process and serve it on the control socket.
fn serve(
    images: &ImageStore,
    runtime_config: &RuntimeConfig,
    stack: Stack,
    mut options: Options,
    args: &UpArgs,
    foreground: bool,
) -> anyhow::Result<(supervisor::StackReport, Ending, procstat::Reclamation)> {
    let runtime = Arc::new(Runtime::new(runtime_config)?);
    let verbose = args.verbose;
    let modules = supervisor::load_modules(&runtime, images, &stack, |path, loaded| {
        if verbose {
            eprintln!("{}", supervisor::describe_load(path, loaded));
        }
        if let Some(why) = &loaded.cache_error {
            eprintln!("warning: cannot write the compile cache: {why}");
        }
    })?;
    // shoal's own lines are system lines, never padded: only containers set the width.
    let names = stack.containers.iter().map(|c| c.name.as_str());
    // Detached, "the terminal" is the project's log file: no colours there.
    let terminal: Arc<dyn LogSink> = Arc::new(TerminalLog::new(names, args.no_color || !foreground));
    let book = Arc::new(LogBook::default());
    let log: Arc<dyn LogSink> = Arc::new(Tee(vec![terminal, book.clone()]));
    options.book = Some(book.clone());
    let executor = tokio_runtime()?;
    let info = Info {
        project: stack.name.to_string(),
        file: stack.file.clone(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: control::VERSION,
        started_at: procstat::unix_now(),
        containers: stack.containers.len(),
        watching: options.watch,
    };
    executor.block_on(async move {
        let (server, note) = Server::bind(&info.project)?;
        if let Some(note) = note {
            log.line(controller::SELF, crate::logs::Stream::System, &note);
        }
        let shutdown = shutdown_signal();
        let (commands_tx, commands_rx) = mpsc::channel(server::COMMAND_QUEUE);
        let mut controller = Controller::new(runtime, images.clone(), stack, log, options);
        let gpio = controller.open_gpio()?;
        let bridges = controller.start_bridges();
        let context = ServerContext {
            info,
            board: controller.supervisor().board(),
            events: controller.supervisor().events().clone(),
            book,
            broker: controller.supervisor().broker().clone(),
            bridges,
            gpio,
            commands: commands_tx,
        };
        let stop_serving = CancellationToken::new();
        let serving = {
            let stop = stop_serving.clone();
            tokio::spawn(async move { server.serve(context, stop).await })
        };
        let outcome = controller.run(modules, commands_rx, shutdown).await;
        stop_serving.cancel();
        let _ = serving.await;
        Ok(outcome)
    })
}

/// `up -d` on a project that runs already: the running process re-reads the file and
/// applies the difference (the same plan as a hot reload).
fn apply_to_running(project: &str) -> anyhow::Result<ExitCode> {
    let client = Client::for_project(project)?;
    match client.call_as::<ReloadReport>(Request::Reload) {
        Ok(report) => {
            if report.plan.is_empty() {
                println!("project `{project}` is running and up to date");
            } else {
                println!("project `{project}` is running; applied:");
                for line in &report.plan {
                    println!("  {line}");
                }
            }
            for failure in &report.failures {
                eprintln!("error: {failure}");
            }
            Ok(if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(control::ControlError::Refused(text)) => {
            eprint!("{text}");
            eprintln!("error: the running stack is unchanged");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

/// Start `shoal up` again as a background process (its own session, output to the
/// project's log file), wait until it serves its socket and every container has
/// started, and report like `docker compose up -d`.
fn detach(
    global: &GlobalArgs,
    args: &UpArgs,
    input: &ComposeFiles,
    services: &[String],
    project: &str,
    containers: usize,
) -> anyhow::Result<ExitCode> {
    control::ensure_runtime_dir()?;
    let log_path = control::log_path(project);
    let mut child = spawn_detached(global, args, input, project, services, &log_path)?;
    wait_for_socket(&mut child, project, &log_path)?;
    let rows = wait_until_started(project, containers)?;
    let failed = print_rows(&rows);
    println!(
        "project `{project}` runs in the background (pid {}); `shoal logs -f -p {project}` follows it, `shoal down -p {project}` stops it",
        child.id()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `shoal up --detached-child` with this invocation's settings, in a session of its own,
/// writing to `log_path`.
fn spawn_detached(
    global: &GlobalArgs,
    args: &UpArgs,
    input: &ComposeFiles,
    project: &str,
    services: &[String],
    log_path: &PathBuf,
) -> anyhow::Result<std::process::Child> {
    let log_file = open_log(log_path)?;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    if let Some(dir) = &global.data_dir {
        command.arg("--data-dir").arg(dir);
    }
    if let Some(size) = &global.memory_reservation {
        command.arg("--memory-reservation").arg(size.to_string());
    }
    if let Some(size) = &global.max_wasm_stack {
        command.arg("--max-wasm-stack").arg(size.to_string());
    }
    command.arg("up").arg("--detached-child");
    // compose: the same files, env files, project name and profiles as this process loaded
    // (absolute, and the override file named, since `-f` turns the override rule off).
    for file in &input.files {
        command.arg("-f").arg(file);
    }
    for file in input.env_files.iter().flatten() {
        command.arg("--env-file").arg(file);
    }
    command.arg("-p").arg(project);
    for profile in input.profiles.iter().flatten() {
        command.arg("--profile").arg(profile);
    }
    if args.watch {
        command.arg("--watch");
    }
    if args.verbose {
        command.arg("--verbose");
    }
    command.args(services);
    command
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe; the child leaves our session so that
        // closing this terminal does not send it SIGHUP.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    Ok(command.spawn()?)
}

/// Wait until the background process serves its socket; an error (with the end of its
/// log) when it ended first or took too long.
fn wait_for_socket(child: &mut std::process::Child, project: &str, log_path: &Path) -> anyhow::Result<()> {
    let socket = control::socket_path(project);
    let began = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            eprint!("{}", tail_of(log_path, 20));
            anyhow::bail!(
                "the background process for `{project}` ended at start ({status}); its output is in {}",
                log_path.display()
            );
        }
        if control::is_live(&socket) {
            return Ok(());
        }
        if began.elapsed() > DETACH_START_TIMEOUT {
            anyhow::bail!(
                "the background process for `{project}` did not open {} within {}s",
                socket.display(),
                DETACH_START_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `ps` rows once all `containers` are added and none is waiting any more (or after
/// [`DETACH_READY_TIMEOUT`], as they are then).
fn wait_until_started(project: &str, containers: usize) -> anyhow::Result<Vec<ContainerInfo>> {
    let client = Client::for_project(project)?;
    let began = Instant::now();
    loop {
        let rows: Vec<ContainerInfo> = client.call_as(Request::Ps)?;
        // The stack adds its containers one by one while it already answers.
        let all_added = rows.len() >= containers;
        if (all_added && rows.iter().all(|r| r.state != "waiting")) || began.elapsed() > DETACH_READY_TIMEOUT {
            return Ok(rows);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One line per container, `✔` or `✘`; returns how many failed.
fn print_rows(rows: &[ContainerInfo]) -> usize {
    let mut failed = 0;
    for row in rows {
        let bad = matches!(
            row.state.as_str(),
            "trapped" | "failed" | "killed" | "waiting" | "out of memory" | "host error"
        ) || row.exit_code.is_some_and(|code| code != 0)
            || row.state.starts_with("restarting");
        if bad {
            failed += 1;
        }
        let mark = if bad { "✘" } else { "✔" };
        let detail = row.exit.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
        println!(" {mark} container {:<20} {}{detail}", row.name, row.state);
    }
    failed
}

/// A detached stack's log file is rotated when it starts if it grew past this: the old
/// one becomes `<project>.log.1` (replacing an older `.1`).
const LOG_ROTATE_BYTES: u64 = 10 << 20;

fn open_log(path: &PathBuf) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::metadata(path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let mut rotated = path.clone().into_os_string();
        rotated.push(".1");
        let _ = std::fs::rename(path, rotated);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
}

fn tail_of(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let mut out = all[all.len().saturating_sub(lines)..].join("\n");
    out.push('\n');
    out
}
