//! `shoal up`: in the foreground, or detached (`-d`) as a background process of its own.
//! Either way the process serves its stack on the control socket.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{load_stack, shutdown_signal, split_targets, tokio_runtime, GlobalArgs, UpArgs};
use crate::control::{self, server, Client, Info, ProjectLock, Request, Server, ServerContext};
use crate::controller::{self, Controller, Ending, Options, ReloadReport};
use crate::images::ImageStore;
use crate::logs::rotate::{self, RotatingLog};
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
            return apply_to_running(&project, &stack.compose.files);
        }
        return Err(already_running(&project, &socket));
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
    // Before anything slow: of several `up` racing for the project, the first to lock it
    // serves it; the others wait until it serves and end (or take over if it fails first).
    let lock = match ProjectLock::take_waiting(&project, DETACH_START_TIMEOUT) {
        Ok(lock) => lock,
        Err(control::ControlError::AlreadyRunning { path, .. }) => return Err(already_running(&project, &path)),
        Err(e) => return Err(e.into()),
    };
    let watch = args.watch || stack.watch;
    let options = Options {
        watch,
        exit_when_done: !args.detached_child && !watch,
        selection: services,
        book: None,
    };
    let foreground = !args.detached_child;
    let (report, ending, reclamation) = serve(images, runtime_config, stack, lock, options, &args, foreground)?;
    if args.verbose || !foreground {
        tracing::info!("{reclamation}");
    }
    match ending {
        Ending::Down => tracing::info!(project = %project, "stack `{project}` taken down by `shoal down`"),
        Ending::Interrupted => tracing::info!(project = %project, "stack `{project}` stopped"),
        Ending::AllEnded => {}
    }
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `up` on a project whose socket answers.
fn already_running(project: &str, socket: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "project `{project}` is already running (socket {})\n  hint: `shoal up -d` applies the file's changes to it; `shoal down -p {project}` stops it",
        socket.display()
    )
}

/// Run the stack in this process and serve it on the control socket (`lock` is the
/// project's, held until the socket is closed).
fn serve(
    images: &ImageStore,
    runtime_config: &RuntimeConfig,
    stack: Stack,
    lock: ProjectLock,
    mut options: Options,
    args: &UpArgs,
    foreground: bool,
) -> anyhow::Result<(supervisor::StackReport, Ending, procstat::Reclamation)> {
    let runtime = Arc::new(Runtime::new(runtime_config)?);
    let modules = load_images(&runtime, images, &stack, args.verbose)?;
    let (log, book) = log_sinks(&stack, args, foreground);
    options.book = Some(book.clone());
    let executor = tokio_runtime()?;
    let info = Info {
        project: stack.name.to_string(),
        file: controller::canonical(&stack.file),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: control::VERSION,
        started_at: procstat::unix_now(),
        containers: stack.containers.len(),
        watching: options.watch,
    };
    crate::telemetry::set_project(&info.project);
    let metrics_addr = args.metrics.clone().or_else(|| stack.metrics.clone());
    let _span = tracing::info_span!("stack", project = %info.project).entered();
    let outcome = executor.block_on(async move {
        let (server, note) = Server::bind(lock)?;
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
        crate::systemd::spawn_watchdog(context.board.clone(), stop_serving.clone());
        if let Some(addr) = &metrics_addr {
            let source = crate::metrics::Source {
                project: context.info.project.clone(),
                board: context.board.clone(),
                broker: context.broker.clone(),
                bridges: context.bridges.clone(),
                book: context.book.clone(),
            };
            let (local, _task) = crate::metrics::serve(addr, source, stop_serving.clone()).await?;
            tracing::info!("metrics on http://{local}/metrics");
        }
        let serving = {
            let stop = stop_serving.clone();
            tokio::spawn(async move { server.serve(context, stop).await })
        };
        let outcome = controller.run(modules, commands_rx, shutdown).await;
        stop_serving.cancel();
        let _ = serving.await;
        Ok(outcome)
    });
    // Every container is reported ended by now (killed at `stop_timeout` at the latest). A
    // blocking-pool thread may still sit in a guest's file call (a FIFO nobody writes);
    // dropping the executor would wait for it forever, so it is left behind and the
    // process exits (issue 16, fault 2).
    executor.shutdown_background();
    outcome
}

/// Every image of the stack, compiled or loaded from the cache, with a progress bar on a
/// terminal (the first compile takes seconds on a board).
fn load_images(
    runtime: &Runtime,
    images: &ImageStore,
    stack: &Stack,
    verbose: bool,
) -> anyhow::Result<std::collections::HashMap<crate::spec::ImageRef, supervisor::LoadedImage>> {
    let distinct: std::collections::HashSet<_> = stack.containers.iter().map(|c| &c.image).collect();
    let progress = crate::progress::Progress::new(distinct.len() as u64, "loading images");
    Ok(supervisor::load_modules(runtime, images, stack, |path, loaded| {
        progress.inc();
        progress.step(&path.display().to_string());
        if verbose {
            tracing::info!("{}", supervisor::describe_load(path, loaded));
        } else {
            tracing::debug!("{}", supervisor::describe_load(path, loaded));
        }
        if let Some(why) = &loaded.cache_error {
            tracing::warn!("cannot write the compile cache: {why}");
        }
    })?)
}

/// Where the stack's lines go: the terminal (or, detached, the rotating log file) and the
/// byte-bounded book that `shoal logs` reads.
fn log_sinks(stack: &Stack, args: &UpArgs, foreground: bool) -> (Arc<dyn LogSink>, Arc<LogBook>) {
    // shoal's own lines are system lines, never padded: only containers set the width.
    let names = stack.containers.iter().map(|c| c.name.as_str());
    // Detached, "the terminal" is the project's log file: no colours there.
    let mut terminal = TerminalLog::new(names, args.no_color || !foreground);
    if args.detached_child {
        let rotation = RotatingLog::new(control::log_path(&stack.name), args.log_size.bytes(), args.log_files);
        terminal = terminal.rotating(rotation);
    }
    let terminal: Arc<dyn LogSink> = Arc::new(terminal);
    crate::logs::throttle::set_rate(args.log_rate.bytes());
    let book = Arc::new(LogBook::with_bounds(
        LogBook::LINES_PER_CONTAINER,
        usize::try_from(args.log_buffer.bytes()).unwrap_or(usize::MAX),
    ));
    let log: Arc<dyn LogSink> = Arc::new(Tee(vec![terminal, book.clone()]));
    (log, book)
}

/// `up -d` on a project that runs already: the running process re-reads the file and
/// applies the difference (the same plan as a hot reload).
fn apply_to_running(project: &str, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let client = Client::for_project(project)?;
    let files = paths.iter().map(|p| controller::canonical(p)).collect();
    match client.call_as::<ReloadReport>(Request::Reload { files }) {
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
                tracing::error!("{failure}");
            }
            Ok(if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(control::ControlError::Refused(text)) => {
            eprint!("{text}");
            tracing::error!("the running stack is unchanged");
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
    let mut child = spawn_detached(global, args, input, services, &log_path)?;
    wait_for_socket(&mut child, project, &log_path)?;
    let rows = wait_until_started(project, containers)?;
    let failed = print_rows(&rows);
    // Several `up -d` at once: one background process wins the socket, the others end.
    // Report the pid that serves the project, never one that already exited.
    let info: Info = Client::for_project(project)?.call_as(Request::Info)?;
    if info.pid != child.id() {
        println!("another `shoal up` started project `{project}` first");
        wait_for_loser(&mut child, project);
    }
    println!(
        "project `{project}` runs in the background (pid {}); `shoal logs -f -p {project}` follows it, `shoal down -p {project}` stops it",
        info.pid
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The global flags of this invocation, for the detached child (they go before `up`).
fn pass_global_flags(command: &mut std::process::Command, global: &GlobalArgs) {
    if let Some(dir) = &global.data_dir {
        command.arg("--data-dir").arg(dir);
    }
    if let Some(size) = &global.memory_reservation {
        command.arg("--memory-reservation").arg(size.to_string());
    }
    if let Some(size) = &global.max_wasm_stack {
        command.arg("--max-wasm-stack").arg(size.to_string());
    }
    if let Some(format) = global.log_format.and_then(|f| clap::ValueEnum::to_possible_value(&f)) {
        command.arg("--log-format").arg(format.get_name());
    }
    if let Some(level) = &global.log_level {
        command.arg("--log-level").arg(level);
    }
    if let Some(workers) = global.workers {
        command.arg("--workers").arg(workers.to_string());
    }
}

/// `shoal up --detached-child` with this invocation's settings, in a session of its own,
/// writing to `log_path`.
fn spawn_detached(
    global: &GlobalArgs,
    args: &UpArgs,
    input: &ComposeFiles,
    services: &[String],
    log_path: &PathBuf,
) -> anyhow::Result<std::process::Child> {
    // A log file left over from an earlier run is rotated now if it is already past its size.
    if std::fs::symlink_metadata(log_path).is_ok_and(|m| m.len() > args.log_size.bytes()) {
        rotate::shift(log_path, args.log_files)?;
    }
    let log_file = open_log(log_path)?;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    pass_global_flags(&mut command, global);
    command.arg("up").arg("--detached-child");
    // compose: the same files, env files, project name and profiles as this process loaded
    // (absolute, and the override file named, since `-f` turns the override rule off).
    for file in &input.files {
        command.arg("-f").arg(file);
    }
    for file in input.env_files.iter().flatten() {
        command.arg("--env-file").arg(file);
    }
    // Only a name the user gave: one taken from `name:` must stay the file's, so that a
    // rename under `--watch` is seen (and refused) rather than masked by a flag.
    if let Some(name) = &input.project_name {
        command.arg("-p").arg(name.as_str());
    }
    for profile in input.profiles.iter().flatten() {
        command.arg("--profile").arg(profile);
    }
    if args.watch {
        command.arg("--watch");
    }
    if let Some(addr) = &args.metrics {
        command.arg("--metrics").arg(addr);
    }
    if args.verbose {
        command.arg("--verbose");
    }
    command
        .arg("--log-size")
        .arg(args.log_size.to_string())
        .arg("--log-files")
        .arg(args.log_files.to_string())
        .arg("--log-buffer")
        .arg(args.log_buffer.to_string())
        .arg("--log-rate")
        .arg(args.log_rate.to_string());
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
        // Live first: a child that lost the race to another `up -d` ends at once, and the
        // project is running all the same.
        if control::is_live(&socket) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            if control::is_live(&socket) {
                return Ok(());
            }
            eprint!("{}", tail_of(log_path, 20));
            anyhow::bail!(
                "the background process for `{project}` ended at start ({status}); its output is in {}",
                log_path.display()
            );
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

/// Return only once our background process, which lost the race for the project to
/// another `up`, has ended: it finds the project locked and served, and stops. Returning
/// earlier left it loading its images, and a `down` in between let it serve the project
/// again, unseen by the caller. If the winner ends meanwhile the child may take the project
/// over; then it is the server and stays. A child still there after the start timeout is
/// killed: it does not serve the project.
fn wait_for_loser(child: &mut std::process::Child, project: &str) {
    let began = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => {}
        }
        let serving = Client::for_project(project)
            .and_then(|client| client.call_as::<Info>(Request::Info))
            .is_ok_and(|info| info.pid == child.id());
        if serving {
            return;
        }
        if began.elapsed() > DETACH_START_TIMEOUT {
            tracing::warn!(
                "the background process {} for `{project}` did not end after losing the race; stopping it",
                child.id()
            );
            let _ = child.kill();
            let _ = child.wait();
            return;
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
        let detail = row
            .exit
            .as_deref()
            .filter(|e| *e != row.state)
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        println!(" {mark} container {:<20} {}{detail}", row.name, row.state);
    }
    failed
}

/// The detached stack's log file (rotated by size: [`crate::logs::rotate`]).
fn open_log(path: &Path) -> anyhow::Result<std::fs::File> {
    // No symlink, someone else's file or hard link: see `control::open_private_file`.
    Ok(control::open_private_file(path)?)
}

fn tail_of(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let mut out = all[all.len().saturating_sub(lines)..].join("\n");
    out.push('\n');
    out
}
