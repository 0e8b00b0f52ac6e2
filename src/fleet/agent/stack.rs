//! The stack the agent runs: a [`Controller`] on its own task, exactly as `shoal up` runs
//! one, optionally served on the project's control socket so `shoal ps -p PROJECT` works
//! on the board. New deployments go to it as `Request::Reload { files }` through the same
//! command queue the socket uses, so only the difference is applied (new before old,
//! untouched containers keep running).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::control::{self, server, Reply, Request, Server, ServerContext};
use crate::controller::{self, Controller, Options, ReloadReport};
use crate::images::ImageStore;
use crate::logs::{LogBook, LogSink, Tee};
use crate::runtime::Runtime;
use crate::spec::ComposeFiles;
use crate::supervisor::{self, Board, ContainerInfo};

/// What every stack of an agent shares.
#[derive(Clone)]
pub struct Host {
    pub runtime: Arc<Runtime>,
    pub images: ImageStore,
    pub log: Arc<dyn LogSink>,
}

/// A running stack.
pub struct Running {
    pub project: String,
    commands: mpsc::Sender<server::Command>,
    board: Board,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The socket's way to the controller: every request but `reload`, which would let
/// `shoal up -d -p PROJECT` replace the signed deployment with local files.
fn socket_commands(project: &str, controller: mpsc::Sender<server::Command>) -> mpsc::Sender<server::Command> {
    let (tx, mut rx) = mpsc::channel::<server::Command>(server::COMMAND_QUEUE);
    let refusal = format!(
        "error: project `{project}` is run by the fleet agent; its files come from signed deployments\n  hint: publish a new revision to the device or its group (`shoal fleet deploy`)\n"
    );
    tokio::spawn(async move {
        while let Some((request, reply)) = rx.recv().await {
            if matches!(request, Request::Reload { .. }) {
                let _ = reply.send(Reply::Error(refusal.clone()));
            } else if controller.send((request, reply)).await.is_err() {
                break;
            }
        }
    });
    tx
}

impl Running {
    /// Load, check and start a stack; `serve`: on its control socket too.
    pub async fn start(host: &Host, compose: ComposeFiles, serve: bool) -> Result<Running, String> {
        let (stack, modules) = {
            let host = host.clone();
            supervisor::off_executor(move || {
                let engines = crate::check::Engines::Existing(host.runtime.engine());
                let (stack, _) = crate::check::load_checked(compose, &host.images, &engines)
                    .map_err(|d| crate::spec::render_diagnostics(&d).trim_end().to_owned())?;
                let modules = supervisor::load_modules(&host.runtime, &host.images, &stack, |_, _| {})
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((stack, modules))
            })
            .await?
        };
        let project = stack.name.to_string();
        let book = Arc::new(LogBook::with_bounds(
            LogBook::LINES_PER_CONTAINER,
            LogBook::BYTES_PER_CONTAINER,
        ));
        let log: Arc<dyn LogSink> = Arc::new(Tee(vec![host.log.clone(), book.clone()]));
        let info = control::Info {
            project: project.clone(),
            file: controller::canonical(&stack.file),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: control::VERSION,
            started_at: crate::procstat::unix_now(),
            containers: stack.containers.len(),
            watching: false,
        };
        let options = Options {
            book: Some(book.clone()),
            ..Options::default()
        };
        let mut controller = Controller::new(host.runtime.clone(), host.images.clone(), stack, log, options);
        controller.accept_other_files();
        let gpio = controller.open_gpio().map_err(|e| e.to_string())?;
        let bridges = controller.start_bridges();
        let board = controller.supervisor().board();
        let (commands, commands_rx) = mpsc::channel(server::COMMAND_QUEUE);
        let server = if serve {
            let lock = control::ProjectLock::take(&project).map_err(|e| e.to_string())?;
            let (server, _) = Server::bind(lock).map_err(|e| e.to_string())?;
            Some(server)
        } else {
            None
        };
        let context = ServerContext {
            info,
            board: board.clone(),
            events: controller.supervisor().events().clone(),
            book,
            broker: controller.supervisor().broker().clone(),
            bridges,
            gpio,
            commands: socket_commands(&project, commands.clone()),
        };
        let stop = CancellationToken::new();
        let stop_serving = CancellationToken::new();
        let serving = server.map(|server| {
            let stop = stop_serving.clone();
            tokio::spawn(async move { server.serve(context, stop).await })
        });
        let shutdown = stop.clone();
        let task = tokio::spawn(async move {
            let _ = controller.run(modules, commands_rx, shutdown).await;
            stop_serving.cancel();
            if let Some(serving) = serving {
                let _ = serving.await;
            }
        });
        Ok(Running {
            project,
            commands,
            board,
            stop,
            task,
        })
    }

    /// Apply other files to the running stack (the difference only). `Err`: nothing changed.
    pub async fn reload(&self, compose: &ComposeFiles) -> Result<ReloadReport, String> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let request = Request::Reload {
            files: compose.files.clone(),
        };
        self.commands
            .send((request, reply_tx))
            .await
            .map_err(|_| "the stack has ended".to_owned())?;
        match reply_rx.await {
            Ok(Reply::Ok(value)) => serde_json::from_value(value).map_err(|e| e.to_string()),
            Ok(Reply::Error(text)) => Err(text.trim_end().to_owned()),
            Ok(_) => Err("unexpected reply to a reload".to_owned()),
            Err(_) => Err("the stack has ended".to_owned()),
        }
    }

    /// Every container's row, as `shoal ps` shows it.
    pub fn rows(&self) -> Vec<ContainerInfo> {
        self.board.infos()
    }

    /// Whether the controller still runs (it ends on `shoal down -p PROJECT`).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stop every container and wait for the controller to end.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
