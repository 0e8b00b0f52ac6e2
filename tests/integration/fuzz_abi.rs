//! The fuzzer's third door: the guest ABI. A guest is untrusted code calling host
//! functions with whatever arguments it likes, so this target writes guests that do just
//! that: each imports a random handful of the `env` functions (`shoal_abi::HOST_FUNCTIONS`)
//! and WASI preview 1 functions (`shoal_abi::wasi::WASI_P1_FUNCTIONS`), with their real
//! signatures, and calls them in random order with random arguments (pointers in and out
//! of bounds, huge lengths, negative values, NaN). Several such guests run as one stack in
//! the real `shoal` binary beside a healthy publisher/subscriber pair.
//!
//! What must hold: every fuzz guest ends as a guest ends (exited, trapped, out of memory,
//! or killed when the stack stops, for one still sleeping), never by a host error or a
//! failed start; the pair goes on without a gap; `shoal` stops on Ctrl-C within the
//! guests' `stop_timeout`, by its own exit (no signal death, no panic).
//!
//! Cases come from [`super::fuzz::seed`] (fixed in the test run; `scripts/fuzz.sh` passes a
//! random one and prints it). A failing case leaves its guests' WAT in
//! `target/fuzz-findings/abi-SEED-CASE-N.wat`.

use std::fmt::Write as _;
use std::time::Duration;

use shoal_abi::wasi::{WASI_P1_FUNCTIONS, WASI_P1_MODULE};
use shoal_abi::{HostFn, WasmType, HOST_FUNCTIONS};

use crate::fuzz::{cases, findings_dir, seed, Rng};
use crate::support::*;

const LONG: Duration = Duration::from_secs(120);
/// Fuzz guests per stack.
const GUESTS: usize = 6;
/// Host calls per guest.
const CALLS: usize = 40;

/// An i32 argument: mostly values at the edges of a one-page memory and of the type.
fn i32_arg(rng: &mut Rng) -> i32 {
    const EDGES: &[i32] = &[
        0,
        1,
        2,
        3,
        4,
        8,
        16,
        -1,
        -22,
        1024,
        1040,
        2048,
        4096,
        65_532,
        65_535,
        65_536,
        65_537,
        131_072,
        i32::MAX,
        i32::MIN,
    ];
    match rng.below(4) {
        0 => rng.next() as i32,
        1 => rng.below(70_000) as i32,
        _ => *rng.pick(EDGES),
    }
}

fn i64_arg(rng: &mut Rng) -> i64 {
    const EDGES: &[i64] = &[0, 1, -1, 1_000, 1_000_000_000, i64::MAX, i64::MIN, 1 << 40];
    if rng.below(3) == 0 {
        rng.next() as i64
    } else {
        *rng.pick(EDGES)
    }
}

fn const_of(rng: &mut Rng, ty: WasmType) -> String {
    match ty {
        WasmType::I32 => format!("(i32.const {})", i32_arg(rng)),
        WasmType::I64 => format!("(i64.const {})", i64_arg(rng)),
        WasmType::F32 => format!("(f32.const {})", rng.pick(&["0", "-1.5", "nan", "inf", "1e30"])),
        WasmType::F64 => format!("(f64.const {})", rng.pick(&["0", "-1.5", "nan", "-inf", "1e300"])),
    }
}

/// One fuzz guest in the text format, and the functions it imports.
fn guest(rng: &mut Rng) -> String {
    let pool: Vec<(&str, &HostFn)> = HOST_FUNCTIONS
        .iter()
        .map(|f| ("env", f))
        .chain(WASI_P1_FUNCTIONS.iter().map(|f| (WASI_P1_MODULE, f)))
        .collect();
    let mut chosen: Vec<(&str, &HostFn)> = Vec::new();
    while chosen.len() < 8 {
        let pick = *rng.pick(&pool);
        if !chosen.iter().any(|(_, f)| f.name == pick.1.name) {
            chosen.push(pick);
        }
    }
    let mut wat = String::from("(module\n");
    for (i, (module, f)) in chosen.iter().enumerate() {
        let _ = writeln!(
            wat,
            "  (import \"{module}\" \"{}\" (func $f{i} {}))",
            f.name,
            f.signature()
        );
    }
    wat.push_str("  (memory (export \"memory\") 1 4)\n");
    // Random bytes at 0, then things a call may find useful: a topic, a content type, a
    // path, an iovec pointing at them.
    let noise: String = (0..256).map(|_| format!("\\{:02x}", rng.next() as u8)).collect();
    let _ = writeln!(wat, "  (data (i32.const 0) \"{noise}\")");
    wat.push_str("  (data (i32.const 1024) \"fz/a\\00text/plain\\00hello\\00/tmp\\00.\\00\")\n");
    wat.push_str("  (data (i32.const 2048) \"\\00\\04\\00\\00\\10\\00\\00\\00\")\n");
    wat.push_str("  (func (export \"_start\")\n");
    for _ in 0..CALLS {
        let i = rng.below(chosen.len());
        let f = chosen[i].1;
        let args: Vec<String> = if f.name == "proc_exit" {
            // Every status a process can have: 126-255 were once reported as a host error
            // (issue 16 fault 8), which this fuzzer finds within a few stacks.
            vec![format!("(i32.const {})", rng.below(256))]
        } else {
            f.params.iter().map(|t| const_of(rng, *t)).collect()
        };
        let call = format!("(call $f{i} {})", args.join(" "));
        if f.results.is_empty() {
            let _ = writeln!(wat, "    {call}");
        } else {
            let _ = writeln!(wat, "    (drop {call})");
        }
    }
    wat.push_str("  )\n)\n");
    wat
}

/// How a fuzz guest ended, from `up`'s output; `None` if no end was reported.
fn end_of<'a>(seen: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name} ");
    seen.iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .find(|rest| !rest.starts_with('|') && !rest.starts_with(' '))
}

/// A normal end of a guest: anything but a host error or a failed start.
fn is_guest_end(end: &str) -> bool {
    [
        "exited with code ",
        "trapped: ",
        "ran out of memory",
        "stopped",
        "killed",
    ]
    .iter()
    .any(|ok| end.starts_with(ok))
}

fn run_case(seed: u64, case: u64) -> Result<(), String> {
    let mut rng = Rng(seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let sandbox = Sandbox::new();
    let mut text = String::from("name: abifuzz\nsensors:\n  noise: {kind: rng, channels: 2}\ncontainers:\n");
    text.push_str(&HEALTHY_PAIR.replace("IMAGES", &images().display().to_string()));
    let mut wats = Vec::new();
    for n in 0..GUESTS {
        let wat = guest(&mut rng);
        let wasm = wat::parse_str(&wat).map_err(|e| format!("case {case}: the generator wrote bad WAT: {e}\n{wat}"))?;
        std::fs::write(sandbox.path().join(format!("fz{n}.wasm")), wasm).expect("write guest");
        let _ = write!(
            text,
            "  fz{n}:\n    image: fz{n}.wasm\n    capabilities: [\"ocre:api\"]\n    sensors: [noise]\n    stop_timeout: 3s\n    depends_on: [pub]\n"
        );
        wats.push(wat);
    }
    let keep = |why: String| {
        for (n, wat) in wats.iter().enumerate() {
            let _ = std::fs::write(findings_dir().join(format!("abi-{seed}-{case}-{n}.wat")), wat);
        }
        format!("abi case {case} (seed {seed}): {why}\nguests saved as target/fuzz-findings/abi-{seed}-{case}-*.wat")
    };
    let file = sandbox.write("shoal.yaml", &text);
    let mut up = sandbox.up(&file);
    // Let the guests do their worst while the pair goes on: 300 messages after all started.
    for n in 0..GUESTS {
        up.wait_seen(&format!("fz{n}"), LONG);
    }
    let target = up.last_got() + 300;
    up.wait_seen(&format!("sub | got {target}"), LONG);
    up.signal(libc::SIGINT);
    let status = up.wait_exit(LONG);
    let seen = up.seen.join("\n");
    if status.code().is_none_or(|c| c > 1) {
        return Err(keep(format!("shoal ended with {status}:\n{seen}")));
    }
    if seen.contains("panicked") || seen.contains("GAP") || seen.contains("DUP") {
        return Err(keep(format!("a panic or a gap in the pair:\n{seen}")));
    }
    for n in 0..GUESTS {
        let name = format!("fz{n}");
        match end_of(&up.seen, &name) {
            Some(end) if is_guest_end(end) => {}
            other => return Err(keep(format!("{name} ended as {other:?}:\n{seen}"))),
        }
    }
    Ok(())
}

/// Random host calls with random arguments from several guests at once: the host and
/// the neighbours survive every one.
#[test]
fn fuzz_the_guest_abi() {
    let seed = seed();
    let count = cases("SHOAL_FUZZ_ABI_CASES", 2);
    let problems: Vec<String> = (0..count).filter_map(|case| run_case(seed, case).err()).collect();
    eprintln!(
        "fuzz abi: {count} stacks of {GUESTS} guests from seed {seed}, {} problems",
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The generator itself: the same seed writes the same guests, and they are valid wasm
/// importing only what shoal serves, with the table's signatures.
#[test]
fn abi_guests_are_reproducible_and_valid() {
    let write = |seed| {
        let mut rng = Rng(seed);
        (0..5).map(|_| guest(&mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(write(1), write(1));
    assert_ne!(write(1), write(2));
    for wat in write(3) {
        let wasm = wat::parse_str(&wat).expect("valid WAT");
        shoal_abi::module::validate(&wasm).expect("valid wasm");
        assert_eq!(
            shoal_abi::module::function_imports(&wasm).expect("imports").len(),
            8,
            "{wat}"
        );
        let shape = shoal_abi::shape::ModuleShape::parse(&wasm).expect("shape");
        let problems = shoal_abi::shape::problems(&shape, None);
        assert!(problems.is_empty(), "{problems:?}\n{wat}");
    }
}
