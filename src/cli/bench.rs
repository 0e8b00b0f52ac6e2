//! `shoal bench`: one function per benchmark, each preparing its guest and stack, running
//! the measurement in `crate::bench` and printing its figures. The measurements themselves
//! print nothing but progress through the callbacks given here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::args::{
    BenchArgs, BenchCommand, DensityArgs, GpioBenchArgs, GrowArgs, IsolationArgs, MessagingArgs, ReloadArgs, SoakArgs,
};
use super::tokio_runtime;
use crate::bench::{self, density::Mode, guests::DensityGuest};
use crate::images::ImageStore;
use crate::procstat;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::supervisor;

/// What every benchmark runs on: the engine and the one-thread executor `shoal up` uses.
struct Machinery<'a> {
    images: &'a ImageStore,
    runtime: Arc<Runtime>,
    executor: tokio::runtime::Runtime,
}

pub(super) fn bench_command(
    images: &ImageStore,
    runtime_config: &RuntimeConfig,
    args: BenchArgs,
) -> anyhow::Result<ExitCode> {
    let machinery = Machinery {
        images,
        runtime: Arc::new(Runtime::new(runtime_config)?),
        executor: tokio_runtime()?,
    };
    match args.command {
        BenchCommand::Density(args) => density(&machinery, args)?,
        BenchCommand::Reload(args) => reload(&machinery, args)?,
        BenchCommand::Soak(args) => soak(&machinery, args)?,
        BenchCommand::Isolation(args) => isolation(machinery, args)?,
        BenchCommand::Messaging(args) => messaging(&machinery, args)?,
        BenchCommand::Gpio(args) => gpio(&machinery, args)?,
        BenchCommand::Grow(args) => grow(&machinery, args)?,
        BenchCommand::Bridge(args) => bench::bridge::command(
            &machinery.executor,
            args.broker,
            args.rounds,
            args.burst,
            args.payload,
            args.json.as_deref(),
        )?,
        // fleet-ops (issue 18)
        BenchCommand::Fleet(args) => fleet(machinery, args)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Write a built-in guest into the store's bench folder and return its path.
fn built_in(images: &ImageStore, name: &str, bytes: wasmtime::Result<Vec<u8>>) -> anyhow::Result<PathBuf> {
    let bytes = bytes.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(bench::built_in_image(images, name, &bytes)?)
}

/// Write `value` as pretty JSON (the `--json FILE` of every benchmark).
fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")?;
    Ok(())
}

/// A private scratch folder for a benchmark's files.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("shoal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn density(m: &Machinery, args: DensityArgs) -> anyhow::Result<()> {
    if args.max == 0 {
        anyhow::bail!("--max must be at least 1");
    }
    let (path, capabilities) = density_guest(m, &args)?;
    let stack = bench::replicated_stack(&path, args.max, capabilities)?;
    let loaded = m.images.load_module(m.runtime.engine(), &path)?;
    tracing::info!("{}", supervisor::describe_load(&path, &loaded));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let subject = bench::density::Subject {
        guest: match args.image {
            Some(_) => format!("image: {}", path.display()),
            None => args.guest.describe(&name),
        },
        image: name,
    };
    tracing::info!("guest: {}", subject.guest);
    let idle_for = Duration::from_secs_f64(args.idle_secs.max(0.0));
    let report = m.executor.block_on(bench::density::run(
        m.runtime.clone(),
        &stack,
        loaded.module,
        args.mode,
        idle_for,
        subject,
        |row| {
            eprintln!(
                "  {:>6} containers  {:>8} KB  {:>8.0} ms",
                row.containers, row.rss_kib, row.elapsed_ms
            )
        },
    ));
    print_density(&report);
    if let Some(path) = args.json {
        write_json(&path, &report)?;
    }
    if let Some(path) = args.plot {
        std::fs::write(&path, bench::plot::render_svg(&report))?;
        tracing::info!("plot written to {}", path.display());
    }
    Ok(())
}

/// The image density runs and the capabilities it is granted: `--image`, else the
/// SDK-built guest from `compose-examples/images/` (the default), else a built-in one.
fn density_guest(m: &Machinery, args: &DensityArgs) -> anyhow::Result<(PathBuf, &'static [&'static str])> {
    Ok(match (&args.image, args.guest, args.mode) {
        (Some(path), _, _) => (std::fs::canonicalize(path)?, &["ocre:api"]),
        (None, DensityGuest::Sdk, mode) => {
            let idle = mode == Mode::Idle;
            let file = DensityGuest::sdk_file(idle);
            let path = bench::guests::find_sdk_image(&bench::guests::sdk_image_dirs(), file)?;
            (path, if idle { &["messaging"] } else { &[] })
        }
        (None, DensityGuest::Minimal, Mode::Idle) => (
            built_in(m.images, "idle-subscriber", bench::guests::idle_subscriber())?,
            &["messaging"],
        ),
        (None, DensityGuest::Minimal, Mode::Exited) => (built_in(m.images, "hello", bench::guests::hello())?, &[]),
    })
}

fn print_density(report: &bench::density::DensityReport) {
    print!("{}", bench::density::render_table(report));
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
    if let Some(heap) = report.heap_per_container_bytes {
        println!(
            "of which host heap (malloc in use): {:.1} KB per container, {} B of it the container task's future",
            heap / 1024.0,
            report.task_future_bytes
        );
    }
    if let Some(cpu) = report.idle_cpu_percent {
        println!("idle CPU over {:.0} s: {cpu:.3}% of one core", report.idle_seconds);
    }
    println!("{}", report.teardown);
}

fn reload(m: &Machinery, args: ReloadArgs) -> anyhow::Result<()> {
    let image = built_in(m.images, "idle-subscriber", bench::guests::idle_subscriber())?;
    let dir = tempfile_dir()?;
    let report = m.executor.block_on(bench::reload::run(
        m.runtime.clone(),
        m.images.clone(),
        &image,
        &dir,
        args.rounds.max(1),
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
    let (b50, _, bmax) = bench::reload::summary(&report.big_apply_ms);
    let (l50, l99, lmax) = bench::reload::summary(&report.neighbour_late_ms);
    println!(
        "reload compiling a {:.1} MB image: p50 {b50:.0} ms, max {bmax:.0} ms over {} reloads; a neighbour sleeping 10 ms woke late by p50 {l50:.2} ms, p99 {l99:.2} ms, max {lmax:.2} ms ({} wakes)",
        report.big_image_bytes as f64 / 1e6,
        report.big_apply_ms.len(),
        report.neighbour_late_ms.len()
    );
    Ok(())
}

fn soak(m: &Machinery, args: SoakArgs) -> anyhow::Result<()> {
    let path = built_in(m.images, "idle-subscriber", bench::guests::idle_subscriber())?;
    let loaded = m.images.load_module(m.runtime.engine(), &path)?;
    let stack = bench::replicated_stack(&path, args.containers.max(1), &["messaging"])?;
    let report = m.executor.block_on(bench::soak::run(
        m.runtime.clone(),
        &stack,
        loaded.module,
        args.cycles,
        args.every,
        |sample| {
            println!(
                "{:>8} cycles  {:>8} KB  (anonymous {:>6} KB, live heap {:>6} KB)",
                sample.cycles, sample.rss_kib, sample.anon_kib, sample.heap_kib
            )
        },
    ));
    println!(
        "RSS growth over {} cycles of {} containers (from the first sample after warm-up): {:+.2}%",
        args.cycles,
        report.containers_per_cycle,
        report.growth_percent()
    );
    if let Some(path) = args.json {
        write_json(&path, &report)?;
    }
    Ok(())
}

fn isolation(m: Machinery, args: IsolationArgs) -> anyhow::Result<()> {
    let window = Duration::from_secs_f64(args.secs.max(0.1));
    let report = bench::isolation::run(
        m.images,
        m.runtime,
        &m.executor,
        window,
        args.spinners,
        args.rounds.max(1),
        |l| eprintln!("  {l}"),
    )?;
    println!("workers: {}", crate::executor::workers());
    print!("{}", bench::isolation::render(&report.cpu, &report.neighbours));
    if let Some(pair) = &report.pair {
        print!("{}", bench::isolation::render_pair(pair));
    }
    if let Some(path) = args.json {
        write_json(&path, &report)?;
    }
    Ok(())
}

fn gpio(m: &Machinery, args: GpioBenchArgs) -> anyhow::Result<()> {
    let path = built_in(m.images, "gpio-follower", bench::guests::gpio_follower())?;
    let loaded = m.images.load_module(m.runtime.engine(), &path)?;
    let stack = bench::gpio::stack(&path)?;
    let row = m.executor.block_on(bench::gpio::run(
        m.runtime.clone(),
        &stack,
        loaded.module.clone(),
        args.rounds.max(1),
    ))?;
    print!("{}", bench::gpio::render(&row));
    if let Some(path) = args.json {
        write_json(&path, &row)?;
    }
    Ok(())
}

fn messaging(m: &Machinery, args: MessagingArgs) -> anyhow::Result<()> {
    let path = built_in(m.images, "echo-subscriber", bench::guests::echo_subscriber())?;
    let loaded = m.images.load_module(m.runtime.engine(), &path)?;
    let mut rows = Vec::new();
    for count in args.subscribers.into_iter().filter(|&n| n > 0) {
        let stack = bench::replicated_stack(&path, count, &["messaging"])?;
        let row = m.executor.block_on(bench::messaging::run_one(
            m.runtime.clone(),
            &stack,
            loaded.module.clone(),
            args.rounds.max(1),
            bench::messaging::messages_per_subscriber(args.deliveries, count),
        ));
        eprintln!("  {count} subscribers: p50 {:.1} us", row.latency_p50_us);
        rows.push(row);
        procstat::release_free_memory();
    }
    print!("{}", bench::messaging::render_table(&rows));
    // Fan-out throughput per worker count: each on an executor of its own.
    let cores = crate::executor::workers();
    let mut counts = vec![1, 2, cores];
    counts.sort_unstable();
    counts.dedup();
    let mut by_workers = Vec::new();
    if args.per_worker_subscribers > 0 {
        let stack = bench::replicated_stack(&path, args.per_worker_subscribers, &["messaging"])?;
        let single = bench::replicated_stack(&path, 1, &["messaging"])?;
        let rounds = args.rounds.clamp(1, 20);
        for workers in counts {
            let executor = crate::executor::build(workers)?;
            let run = |stack, subscribers| {
                executor.block_on(bench::messaging::run_one(
                    m.runtime.clone(),
                    stack,
                    loaded.module.clone(),
                    rounds,
                    bench::messaging::messages_per_subscriber(args.deliveries, subscribers),
                ))
            };
            let row = run(&stack, args.per_worker_subscribers);
            procstat::release_free_memory();
            let one = run(&single, 1);
            eprintln!(
                "  {workers} workers: {:.0} deliveries/s, {:.0} to one subscriber",
                row.deliveries_per_second, one.deliveries_per_second
            );
            by_workers.push(bench::messaging::WorkersRow { workers, row, one });
            drop(executor);
            procstat::release_free_memory();
        }
        print!(
            "{}",
            bench::messaging::render_workers(args.per_worker_subscribers, &by_workers)
        );
    }
    if let Some(path) = args.json {
        write_json(&path, &serde_json::json!({"rows": rows, "by_workers": by_workers}))?;
    }
    Ok(())
}

/// `shoal bench grow` (see `bench::grow`).
fn grow(m: &Machinery, args: GrowArgs) -> anyhow::Result<()> {
    let limit = args.limit.bytes();
    let pages = u32::try_from(limit / bench::grow::PAGE).unwrap_or(u32::MAX);
    if pages == 0 {
        anyhow::bail!("--limit must be at least one wasm page (64KiB)");
    }
    let path = built_in(m.images, &format!("grow-{pages}"), bench::grow::grower(pages))?;
    let loaded = m.images.load_module(m.runtime.engine(), &path)?;
    let report = m
        .executor
        .block_on(bench::grow::run(m.runtime.clone(), &path, loaded.module, limit))?;
    println!("{report}");
    if let Some(path) = args.json {
        write_json(&path, &report)?;
    }
    if !report.reached {
        anyhow::bail!("the guest did not reach the limit: {}", report.outcome);
    }
    Ok(())
}

// fleet-ops (issue 18): `shoal bench fleet`.
fn fleet(m: Machinery, args: bench::fleet::FleetBenchArgs) -> anyhow::Result<()> {
    let guest = built_in(m.images, "idle_subscriber", bench::guests::idle_subscriber())?;
    let figures = bench::fleet::run(&m.executor, m.runtime.clone(), m.images, &guest, &args, &|line| {
        eprintln!("{line}")
    })?;
    println!("devices                      {}", figures.devices);
    println!(
        "health window                {} ms (part of the time below)",
        figures.health_window_ms
    );
    println!("all online after start       {} ms", figures.connect_ms);
    println!("all healthy after publish    {} ms", figures.all_healthy_ms);
    let count = |c: Option<u64>| c.map_or("-".to_string(), |c| c.to_string());
    println!(
        "broker messages ($SYS delta) received {}, sent {} (every MQTT packet, acknowledgements too)",
        count(figures.broker_messages_received),
        count(figures.broker_messages_sent)
    );
    println!(
        "memory per agent             {} KiB (RSS {} -> {} KiB, agents and their stacks)",
        figures.kib_per_agent, figures.rss_before_kib, figures.rss_after_kib
    );
    if let Some(path) = &args.json {
        write_json(path, &figures)?;
    }
    // As `up` does: a blocking-pool thread may still sit in a guest's call.
    m.executor.shutdown_background();
    Ok(())
}
