//! The wasmtime side: one [`Engine`] for the process, one [`Store`] per container, every
//! container an async call on its own fiber inside a tokio task.
//!
//! Why these settings:
//! - Async host calls park a container's fiber instead of a thread, so an idle container
//!   costs a few pages, not an 8 MiB thread stack as in the reference runtime.
//! - Small memory reservations ([`RuntimeConfig::memory_reservation`]) instead of wasmtime's
//!   4 GiB + guards per memory: a Raspberry Pi's 39-bit address space (512 GiB) holds only
//!   ~125 default-sized memories but 10,000+ small ones. Bounds checks become explicit
//!   instructions; out-of-bounds accesses still trap.
//! - Epoch interruption so a spinning guest yields to the others and can be stopped. The
//!   ticker thread runs only while some container is being polled (counted per poll, see
//!   [`polled`]), so an idle stack costs no CPU at all.

pub mod cpu;
mod engine;
mod exit;
pub(crate) mod fiber_stack;
mod heap_account;
pub use exit::root_message;
mod limiter;
mod output;
mod probe;
mod random;
pub mod stack;
mod ticker;
pub mod wasi;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmtime::{Engine, Extern, Instance, Linker, Memory, Module, Store, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::host::{self, HostConfig, HostState};
use crate::logs::{LogSink, Stream};
use crate::spec::ContainerSpec;

pub use engine::engine_config;
pub use limiter::{size, MemoryLimiter};
pub use output::{LineOutput, MAX_LINE};
pub use probe::Probe;
use ticker::{ExecutionGuard, Ticker};

/// Errors at the runtime's border.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
    /// Without the epoch ticker a spinning guest could never be interrupted or stopped.
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(#[source] std::io::Error),
}

/// Engine-wide settings. They are part of the compile-cache key: a module compiled with one
/// set is recompiled for another.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Address space reserved for each linear memory (bytes). Memories that grow beyond it
    /// are moved. Default 8 MiB: twice what an Ocre-SDK guest may ever use (64 pages), and
    /// 10,000 containers then need ~90 GiB of the 512 GiB a 39-bit board has.
    pub memory_reservation: u64,
    /// Extra address space kept behind a memory that had to move, so the next growth does
    /// not move it again. Default 1 GiB: address space only (no RSS, no commit charge), and
    /// it is taken only by a memory that outgrew [`Self::memory_reservation`], so a guest
    /// growing to `limits.memory` is moved (copied) once instead of every 1 MiB. With
    /// 1 MiB, growing page by page to 512 MiB copied the memory ~500 times (78 s) and held
    /// two copies at each move (peak RSS twice the limit); `shoal bench grow` prints the
    /// figures. A board's 512 GiB of address space still holds hundreds of memories that
    /// large, far more than its RAM could fill. Not part of compiled code: precompiled
    /// images load whatever this is.
    pub memory_reservation_for_growth: u64,
    /// Stack of each container's fiber (address space; only touched pages cost memory).
    pub async_stack_size: usize,
    /// Deepest wasm stack a guest may use before it traps with a stack overflow.
    pub max_wasm_stack: usize,
    /// How often a running guest is interrupted to let others run (and to be stopped).
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            memory_reservation: 8 << 20,
            memory_reservation_for_growth: 1 << 30,
            async_stack_size: 1 << 20,
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(10),
        }
    }
}

/// What a container's store holds.
pub struct ContainerCtx {
    pub wasi: WasiP1Ctx,
    /// The Ocre `env` API state: mailbox, timers, sensors, capability checks.
    pub host: HostState,
    pub limiter: MemoryLimiter,
    /// `limits.cpu`: the container's share, CPU meter and credit (see [`cpu`]).
    pub cpu: cpu::CpuState,
    /// Open descriptors against `limits.max_open_files`, special files (see [`wasi`]).
    pub files: wasi::FileGuard,
    probe: Arc<Probe>,
}

impl Drop for ContainerCtx {
    fn drop(&mut self) {
        self.probe.instance_gone();
    }
}

/// How a container ended. shoal never reports a killed or trapped container as exit 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// `_start` returned (code 0) or the guest called `proc_exit(code)`.
    Exited(i32),
    /// The guest trapped; the message says why (unreachable, out of bounds, stack overflow...).
    Trapped(String),
    /// Stopped by shoal (Ctrl-C, `down`, `stop`) before it ended on its own, and gone at
    /// once: it was parked, sleeping or running guest code, which a stop ends right away.
    Stopped,
    /// Stopped by shoal and still not gone when its `stop_timeout` ran out (or `kill`):
    /// ended by force.
    Killed,
    /// It never ran: a mount could not be opened, an import is missing, ...
    Failed(String),
    /// It trapped after `limits.memory` refused a growth: an allocation failure it did not
    /// survive. The message names the limit, the size it wanted, and the trap.
    OutOfMemory(String),
    /// It was ended by an error of the host (a WASI call failing inside the runtime), not
    /// by its own trap or exit.
    HostError(String),
}

impl ExitStatus {
    pub fn is_success(&self) -> bool {
        matches!(self, ExitStatus::Exited(0))
    }

    /// Ended because shoal stopped it (at once or by force), not on its own.
    pub fn is_stop(&self) -> bool {
        matches!(self, ExitStatus::Stopped | ExitStatus::Killed)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exited with code {code}"),
            ExitStatus::Trapped(why) => write!(f, "trapped: {why}"),
            ExitStatus::Stopped => f.write_str("stopped"),
            ExitStatus::Killed => f.write_str("killed"),
            ExitStatus::Failed(why) => write!(f, "failed to start: {why}"),
            ExitStatus::OutOfMemory(why) => write!(f, "ran out of memory: {why}"),
            ExitStatus::HostError(why) => write!(f, "ended by a host error: {why}"),
        }
    }
}

/// The engine, the shared linker and the epoch ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<ContainerCtx>,
    ticker: Ticker,
}

impl Runtime {
    pub fn new(config: &RuntimeConfig) -> Result<Self, RuntimeError> {
        let wasm = engine_config(config);
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |cx: &mut ContainerCtx| &mut cx.wasi)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        exit::serve_proc_exit(&mut linker).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        host::add_to_linker(&mut linker, |cx: &mut ContainerCtx| &mut cx.host)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        // Descriptor limits and special-file checks around WASI's file calls (issue 16).
        wasi::add_to_linker(&mut linker).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        wasi::reserve_descriptors();
        let ticker = Ticker::start(engine.clone(), config.epoch_tick).map_err(RuntimeError::Ticker)?;
        Ok(Runtime { engine, linker, ticker })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Create the container's store and instance without running any of its code (the
    /// module's own start function aside). A reload prepares the new instance first and
    /// stops the old one only once this succeeded.
    pub async fn prepare(
        &self,
        spec: &ContainerSpec,
        module: &Module,
        host: HostConfig,
        probe: Arc<Probe>,
    ) -> Result<Prepared, ExitStatus> {
        let mut execution = self.ticker.guard();
        let mut store = self.new_store(spec, host, probe.clone()).map_err(ExitStatus::Failed)?;
        // The module's start function runs guest code too: it must be interruptible.
        let instance = {
            let instantiate = std::pin::pin!(self.instantiate(&mut store, module));
            polled(&mut execution, &probe, instantiate).await?
        };
        let Ok(start) = instance.get_typed_func::<(), ()>(&mut store, "_start") else {
            return Err(ExitStatus::Failed(
                "the module has no `_start` function (it is not a WASI command)".into(),
            ));
        };
        Ok(Prepared {
            store,
            start,
            execution,
            probe,
        })
    }

    fn new_store(
        &self,
        spec: &ContainerSpec,
        host: HostConfig,
        probe: Arc<Probe>,
    ) -> Result<Store<ContainerCtx>, String> {
        let name: Arc<str> = spec.name.as_str().into();
        let log: Arc<dyn LogSink> = host.log.clone();
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(LineOutput::new(name.clone(), Stream::Stdout, log.clone()))
            .stderr(LineOutput::new(name.clone(), Stream::Stderr, log))
            .arg(&spec.name)
            .args(&spec.args)
            .envs(&spec.env)
            // One generator for the process, not two boxed ones per container.
            .secure_random(random::SharedRandom)
            .insecure_random(random::SharedRandom);
        for mount in &spec.mounts {
            let perms = if mount.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            wasi.preopened_dir(&mount.host, &mount.guest, perms)
                .map_err(|e| format!("cannot mount {} at {}: {e:#}", mount.host.display(), mount.guest))?;
        }
        // One copy of the name for everything in the store that reports about it.
        let limiter = MemoryLimiter::new(spec.limits.memory).reporting_to(name.clone(), host.log.clone());
        let cpu = cpu::CpuState::new(spec.limits.cpu).reporting_to(name.clone(), host.log.clone());
        let files = wasi::FileGuard::new(spec, name, host.log.clone());
        let ctx = ContainerCtx {
            wasi: wasi.build_p1(),
            host: HostState::new(host),
            limiter: limiter.with_probe(probe.clone()),
            cpu,
            files,
            probe,
        };
        let mut store = Store::new(&self.engine, ctx);
        store.limiter(|cx| &mut cx.limiter);
        cpu::install(&mut store);
        Ok(store)
    }

    /// Resolve imports by hand so that a module importing its memory (`env.memory`, as
    /// every Ocre-SDK guest does) gets a fresh memory of exactly the imported type.
    async fn instantiate(&self, store: &mut Store<ContainerCtx>, module: &Module) -> Result<Instance, ExitStatus> {
        let mut imports = Vec::with_capacity(module.imports().len());
        for import in module.imports() {
            if let wasmtime::ExternType::Memory(ty) = import.ty() {
                let memory = Memory::new_async(&mut *store, ty).await.map_err(|e| {
                    ExitStatus::Failed(format!(
                        "cannot create the imported memory `{}.{}`: {}",
                        import.module(),
                        import.name(),
                        exit::start_failure(&e, &store.data().limiter)
                    ))
                })?;
                store.data_mut().host.set_imported_memory(memory);
                imports.push(Extern::Memory(memory));
                continue;
            }
            match self.linker.get_by_import(&mut *store, &import) {
                Some(item) => imports.push(item),
                None => {
                    return Err(ExitStatus::Failed(format!(
                        "the module imports `{}.{}`, which shoal does not provide",
                        import.module(),
                        import.name()
                    )))
                }
            }
        }
        match Instance::new_async(&mut *store, module, &imports).await {
            Ok(instance) => Ok(instance),
            Err(e) => Err(exit::classify_start(e, &store.data().limiter)),
        }
    }
}

/// A container whose instance exists and whose `_start` has not run yet.
pub struct Prepared {
    store: Store<ContainerCtx>,
    start: TypedFunc<(), ()>,
    execution: ExecutionGuard,
    probe: Arc<Probe>,
}

impl Prepared {
    /// Run `_start` to its end, or until `stop` is cancelled (then the store is dropped
    /// with the call in flight, which ends any host call at once).
    pub async fn start(mut self, stop: CancellationToken) -> ExitStatus {
        let meter = self.store.data().cpu.meter();
        let probe = self.probe.clone();
        // Each layer pinned here, once, and handed down by reference (see `polled`).
        let result = {
            let call = std::pin::pin!(self.start.call_async(&mut self.store, ()));
            let metered = std::pin::pin!(cpu::metered(meter, call));
            let polled = std::pin::pin!(polled(&mut self.execution, &self.probe, metered));
            let stopped = std::pin::pin!(stop.cancelled());
            probe.until_stopped(stopped, polled).await
        };
        match result {
            None => ExitStatus::Stopped,
            Some(result) => exit::classify(result, &self.store.data().limiter),
        }
    }
}

/// Run `call` (instantiating a container, or its `_start`) counting every poll of it: the
/// epoch ticker runs while some container is being polled, and the time spent in each poll
/// is the container's CPU time for `ps`. Counted per poll, not per host call: one wake-up
/// that drains a hundred messages costs two clock reads here, not eight hundred.
///
/// `call` comes pinned by the caller: an `async fn` that took it by value and pinned it
/// would keep it twice in its state (the argument and the pinned local), and a parked
/// container's task holds that state for as long as it runs (1.1 KB more per container in
/// `shoal bench density` before this was noticed).
async fn polled<F: std::future::Future>(
    execution: &mut ExecutionGuard,
    probe: &Probe,
    mut call: std::pin::Pin<&mut F>,
) -> F::Output {
    std::future::poll_fn(|cx| {
        execution.enter();
        let started = std::time::Instant::now();
        let polled = call.as_mut().poll(cx);
        probe.add_cpu(started.elapsed());
        execution.leave();
        polled
    })
    .await
}
