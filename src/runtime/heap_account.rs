//! Where a container's host heap goes, item by item: a measurement, not a check.
//!
//! Run it alone (malloc's counters are per process, so other tests would add noise):
//! `cargo test -p shoal --lib heap_account -- --ignored --nocapture --test-threads=1`.
//! Each item is made [`COPIES`] times and kept alive; the table shows malloc's bytes in use
//! (`mallinfo2`) per copy. Linear memories and fiber stacks are `mmap`s of their own, not
//! heap, and are not in these figures (`shoal bench density` counts them in RSS).
//!
//! # Every allocation a parked container holds (issue 15)
//!
//! `heaptrack` on `shoal bench density --max 1000` (SDK-built subscriber, debug build,
//! `GLIBC_TUNABLES` preset so shoal does not re-execute itself away from heaptrack), the
//! peak (all 1,000 parked) split by the call stack that allocated, bytes per container,
//! before and after issue 15's cuts:
//!
//! | item | before | after |
//! |---|---:|---:|
//! | bench Stack (made before the baseline) | 802 | 802 |
//! | container task (tokio task cell: header + future) | 7,960 | 1,280 |
//! | WASI p1 descriptor table + resource table (wasmtime-wasi) | 736 | 736 |
//! | WASI context (builder: args, random, stdio) | 490 | 138 |
//! | stdout/stderr line buffers (LineOutput) | 240 | 240 |
//! | store reporters (name copies: limiter, cpu, files; cpu meter) | 81 | 32 |
//! | host state extras (GPIO inbox) | 96 | 0 |
//! | wasmtime store (StoreOpaque + ContainerCtx) | 2,704 | 2,688 |
//! | parked host call future (boxed by wasmtime while the guest waits) | 591 | 599 |
//! | instance (vmctx, module registry, func refs, imports) | 5,476 | 5,476 |
//! | host config copies (capabilities, location, name) | 53 | 53 |
//! | phase + pause channels (watch) / phase cell | 720 | 104 |
//! | status (lifecycle, counters, probe + pause watch) | 120 | 152 |
//! | stop token | 112 | 112 |
//! | status board row (spec copy + digest) | 898 | 105 |
//! | spawn: spec copy + Launch | 180 | 0 |
//! | supervisor record + boxed Launch (spec copy, Vec growth) | 996 | 1,445 |
//! | mailbox + subscription (broker) | 337 | 337 |
//! | other (process-wide: runtime, telemetry, ...) | 412 | 394 |
//! | total | 23,016 | 14,706 |
//!
//! Added since (not in the heaptrack figures above): the fiber stack's bookkeeping, since
//! shoal makes the stacks itself so that a parked container can give back the stack pages
//! it no longer uses ([`super::fiber_stack`]): 63 B per container in this test's row (the
//! boxed stack and its registry entry) plus wasmtime's 16-byte box around it, ~0.1 KB in
//! all, for 4 KB of stack given back by every SDK-built subscriber (`shoal bench density`:
//! 34.6 -> 30.7 KB per container at 10,000, host heap 14.6 KB before and after).
//!
//! What was cut, and why it was there:
//! - The container task: tokio keeps a task's whole future allocated while it lives, and an
//!   `async fn`'s future is as large as its largest state plus every argument. The
//!   instantiation (`Runtime::prepare`, a large future needed once per run), the dependency
//!   wait and the restart delay were inline, and the `Launch` (with a `ContainerSpec` and a
//!   `HostConfig`) was an argument of three nested futures. Now the `Launch` is boxed and the
//!   rare steps are boxed futures of their own: 7,832 B of future became 1,064 B in debug
//!   (`shoal bench density` prints the release size).
//! - The `ContainerSpec` was copied three times (supervisor record, status board row, the
//!   task's `Launch`): now one `Arc` (616 B inline plus its strings).
//! - Two `tokio::sync::watch` channels (the phase dependants wait on, and the pause switch):
//!   376 and 344 B each for eight wakers nobody needs. Now a phase cell (lock + `Notify`)
//!   and a flag + `Notify` inside the probe.
//! - wasmtime-wasi's default random generators: two boxes per store (a ChaCha `StdRng`,
//!   320 B, and a `SmallRng`); now one shared generator ([`super::random`]).
//! - The container name copied for each reporter in the store: one `Arc<str>`; the GPIO
//!   inbox is made at the first callback registration.
//!
//! What stays: wasmtime's store (its `StoreOpaque` plus our 1,376 B `ContainerCtx`), the
//! instance (vmctx, the store's module registry, function references for ~20 imports),
//! wasmtime-wasi's descriptor and resource tables, the boxed future of the parked host call,
//! the broker's mailbox and subscription (issue 15's fan-out work), the status, stop token
//! and the spec itself.

#![cfg(all(test, feature = "compiler", target_os = "linux", target_env = "gnu"))]

use std::sync::Arc;

use wasmtime::Module;
use wasmtime_wasi::WasiCtxBuilder;

use super::{LineOutput, Probe, Runtime, RuntimeConfig};
use crate::broker::Broker;
use crate::host::testutil::{config, Collect};
use crate::host::HostState;
use crate::logs::{LogSink, Stream};

const COPIES: usize = 500;

fn heap_bytes() -> i64 {
    // SAFETY: mallinfo2 has no preconditions and returns a plain struct.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as i64
}

/// Heap bytes per item that `make` returns, the items kept alive while counting.
fn per_copy<T>(mut make: impl FnMut() -> T) -> i64 {
    let mut kept = Vec::with_capacity(COPIES);
    let before = heap_bytes();
    for _ in 0..COPIES {
        kept.push(make());
    }
    let after = heap_bytes();
    drop(kept);
    (after - before) / COPIES as i64
}

#[test]
#[ignore = "a measurement: run alone with --ignored --nocapture --test-threads=1"]
fn host_heap_per_container_item() {
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(&RuntimeConfig::default()).unwrap();
    let wasm = crate::bench::guests::idle_subscriber().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.wasm");
    std::fs::write(&path, &wasm).unwrap();
    let stack = crate::bench::replicated_stack(&path, 1, &["messaging"]).unwrap();
    let spec = &stack.containers[0];
    let broker = Broker::new();
    let log = Arc::new(Collect::default());
    let sink: Arc<dyn LogSink> = log.clone();

    let mut rows: Vec<(&str, i64)> = Vec::new();
    rows.push((
        "WASI context (args, env, stdout/stderr line buffers)",
        per_copy(|| {
            let name: Arc<str> = spec.name.as_str().into();
            let mut wasi = WasiCtxBuilder::new();
            wasi.stdout(LineOutput::new(name.clone(), Stream::Stdout, sink.clone()))
                .stderr(LineOutput::new(name, Stream::Stderr, sink.clone()))
                .arg(&spec.name);
            wasi.build_p1()
        }),
    ));
    rows.push((
        "Ocre host state (HostState::new)",
        per_copy(|| HostState::new(config("c", &[], &broker, &log))),
    ));
    rows.push((
        "store with its whole context, no instance",
        per_copy(|| {
            runtime
                .new_store(spec, config("c", &[], &broker, &log), Arc::new(Probe::default()))
                .unwrap()
        }),
    ));
    rows.push((
        "fiber stack bookkeeping (box + registry entry)",
        per_copy(|| {
            use wasmtime::StackCreator;
            super::fiber_stack::FiberStacks.new_stack(1 << 20, false).unwrap()
        }),
    ));
    let imported = Module::new(runtime.engine(), &wasm).unwrap();
    let defined = Module::new(runtime.engine(), shoal_abi::module::runnable(&wasm).unwrap().unwrap()).unwrap();
    for (label, module) in [
        ("store + instance, memory imported (no CoW image)", &imported),
        ("store + instance, memory defined (CoW image)", &defined),
    ] {
        rows.push((
            label,
            per_copy(|| {
                executor
                    .block_on(runtime.prepare(
                        spec,
                        module,
                        config("c", &[], &broker, &log),
                        Arc::new(Probe::default()),
                    ))
                    .map_err(|e| e.to_string())
                    .unwrap()
            }),
        ));
    }
    println!("{:<52} | {:>10}", "item (built-in minimal subscriber)", "heap bytes");
    for (label, bytes) in rows {
        println!("{label:<52} | {bytes:>10}");
    }
}

/// Inline sizes of what a container's store and task hold: a store's data is one
/// allocation of [`ContainerCtx`] inside wasmtime's store, so every byte here is a byte of
/// every container.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn inline_sizes_of_container_items() {
    use std::mem::size_of;
    let rows: [(&str, usize); 9] = [
        ("ContainerCtx (store data)", size_of::<super::ContainerCtx>()),
        ("  WasiP1Ctx", size_of::<wasmtime_wasi::p1::WasiP1Ctx>()),
        ("  HostState", size_of::<HostState>()),
        ("  MemoryLimiter", size_of::<super::MemoryLimiter>()),
        ("  CpuState", size_of::<super::cpu::CpuState>()),
        ("  FileGuard", size_of::<super::wasi::FileGuard>()),
        (
            "ContainerSpec (one shared copy)",
            size_of::<crate::spec::ContainerSpec>(),
        ),
        ("HostConfig", size_of::<crate::host::HostConfig>()),
        ("ContainerStatus", size_of::<crate::supervisor::ContainerStatus>()),
    ];
    for (label, bytes) in rows {
        println!("{label:<40} | {bytes:>6}");
    }
}
