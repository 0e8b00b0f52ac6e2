//! A small mutation fuzzer over shoal's two doors for untrusted bytes: the compose file
//! (`spec::load_str`: YAML parsing, interpolation, decoding, validation) and images
//! (`images::validate_wasm`, `check::function_imports`, `ImageStore::add`,
//! `ImageStore::load_module`), driven through the library's public API.
//!
//! Why not cargo-fuzz: it needs a nightly toolchain and libFuzzer; shoal builds on stable
//! only. This fuzzer is a seeded RNG over a small corpus (`fuzz/corpus/`, plus the golden
//! test files), with byte-level and token-level mutations, splicing, truncation and
//! oversizing. Every input must end in `Ok` or in a clear error (non-empty messages, each
//! error a diagnostic); a panic or an input that takes longer than [`SLOW`] is a failure,
//! saved under `target/fuzz-findings/` with the seed that produced it.
//!
//! It runs in the normal test run on a fixed number of mutants per target from a fixed seed
//! ([`DEFAULT_SEED`]): the same inputs on every machine, so a failure there is
//! reproducible and a slow machine does not test less. To search further:
//! - `SHOAL_FUZZ_SECS=N` fuzzes each target for N seconds;
//! - `SHOAL_FUZZ_SEED=N` starts from seed N (replays a reported run),
//!   `SHOAL_FUZZ_SEED=random` from a seed taken from the clock (printed at the end);
//! - `SHOAL_FUZZ_TRACE=1` keeps the input in progress in `target/fuzz-findings/NAME-current`,
//!   for crashes that take the process down.
//!
//! `scripts/fuzz.sh [SECONDS] [SEED]` sets these (a random seed unless one is given) and runs
//! `cargo test --test integration fuzz::`.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal::images::{self, ImageStore};
use shoal::spec::{self, Severity};

use crate::support::repo;

/// An input slower than this is reported (a hang in the making).
const SLOW: Duration = Duration::from_secs(10);

/// The seed of the normal test run: fixed, so what it finds can be replayed.
pub(crate) const DEFAULT_SEED: u64 = 0x5eed_cafe;

/// splitmix64: tiny, seedable, good enough to pick mutations.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Tokens that mean something to YAML, to shoal's interpolation or to its decoder.
const YAML_TOKENS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "-",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "<<: *a",
    "${X}",
    "${X:-d}",
    "${X:?gone}",
    "$$",
    "${",
    "!!binary ",
    "!!str ",
    "!custom ",
    "~",
    "null",
    "\t",
    "\n",
    "\n  ",
    "\n    ",
    "'",
    "\"",
    "#",
    "---\n",
    "...\n",
    "? ",
    "|\n",
    ">-\n",
    "0x1F",
    "1e999",
    "-1",
    "-0",
    ".inf",
    ".nan",
    "99999999999999999999",
    "\u{feff}",
    "é",
    "\u{0}",
    "\r\n",
    "image: ",
    "limits: ",
    "cpu: ",
    "memory: ",
    "mounts: ",
    "depends_on: ",
    "replicas: ",
    "containers:\n",
    "sensors:\n",
    "capabilities: ",
    "x-a: &a ",
    "restart: ",
    "on-failure:",
    "max_timers: ",
    "queue: ",
    "25%",
    "0.5",
    "4GiB",
    "1KiB",
    "/..",
    "../",
    ":ro",
    "sha256:",
    "ocre:api",
    "env_file: ",
];

/// Values that break length and count fields of the wasm binary format.
const WASM_VALUES: &[&[u8]] = &[
    &[0x00],
    &[0xff],
    &[0x7f],
    &[0x80],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x80, 0x80, 0x80, 0x80, 0x08],
    &[0xff, 0xff, 0x03],
    &[0x00, 0x61, 0x73, 0x6d],
    &[0x01, 0x00, 0x00, 0x00],
    &[0x60, 0x00, 0x00],
    &[0x0b],
    &[0x41, 0x00],
    &[0x40, 0x00],
];

/// Apply one to four mutations to `input`, using `others` for splicing.
fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>], tokens: &[&[u8]]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = data.len();
        let at = rng.below(len + 1);
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 => {
                let token = rng.pick(tokens);
                data.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let end = (at + 1 + rng.below(64)).min(len);
                data.drain(at.min(len - 1)..end);
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(256)).min(len);
                let chunk = data[start..end].to_vec();
                data.splice(at..at, chunk);
            }
            5 => data.truncate(at),
            6 if !others.is_empty() => {
                let other = rng.pick(others);
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(512)).min(other.len());
                data.splice(at..at, other[from..to].iter().copied());
            }
            7 if len > 0 => {
                // Oversize: repeat a chunk many times.
                let start = rng.below(len);
                let end = (start + 1 + rng.below(32)).min(len);
                let chunk = data[start..end].to_vec();
                let times = 1 + rng.below(4096);
                let repeated: Vec<u8> = chunk.iter().copied().cycle().take(chunk.len() * times).collect();
                data.splice(at..at, repeated);
            }
            _ => {
                let token = rng.pick(tokens);
                data.extend_from_slice(token);
            }
        }
    }
    data
}

/// How much to fuzz each target: in the normal test run a fixed number of mutants (with the
/// fixed seed, the same inputs on every machine, however fast); with `SHOAL_FUZZ_SECS` a
/// time budget (`scripts/fuzz.sh`, where reach matters more than repeatability).
#[derive(Clone, Copy)]
enum Budget {
    Mutants(u64),
    Time(Duration),
}

impl Budget {
    fn spent(self, started: Instant, runs: u64) -> bool {
        match self {
            Budget::Mutants(n) => runs >= n,
            Budget::Time(limit) => started.elapsed() >= limit,
        }
    }
}

/// The seed of this run: [`DEFAULT_SEED`] unless `SHOAL_FUZZ_SEED` gives a number or
/// `random` (a seed from the clock, printed by the caller so the run can be replayed).
pub(crate) fn seed() -> u64 {
    match std::env::var("SHOAL_FUZZ_SEED") {
        Ok(s) if s == "random" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("SHOAL_FUZZ_SEED={s:?}: give a number or `random`")),
        Err(_) => DEFAULT_SEED,
    }
}

/// How many cases a whole-binary fuzz target runs: `normal` in the test run, or the number
/// in the variable `var` (`scripts/fuzz.sh` sets them).
pub(crate) fn cases(var: &str, normal: u64) -> u64 {
    match std::env::var(var) {
        Ok(s) => s.parse().unwrap_or_else(|_| panic!("{var}={s:?}: give a number")),
        Err(_) => normal,
    }
}

/// Where findings are kept (`target/fuzz-findings/`).
pub(crate) fn findings_dir() -> PathBuf {
    let dir = repo().join("target/fuzz-findings");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// How much to fuzz each target, and from which seed (see the module doc). `mutants` is
/// the normal test run's count for this target.
fn budget(mutants: u64) -> (Budget, u64) {
    let budget = match std::env::var("SHOAL_FUZZ_SECS") {
        Ok(s) => Budget::Time(Duration::from_secs_f64(
            s.parse::<f64>()
                .unwrap_or_else(|_| panic!("SHOAL_FUZZ_SECS={s:?}: give a number of seconds"))
                .max(0.0),
        )),
        Err(_) => Budget::Mutants(mutants),
    };
    (budget, seed())
}

/// What one target found.
#[derive(Default)]
struct Findings {
    runs: u64,
    problems: Vec<String>,
}

/// Run `check` on mutated inputs until the budget is spent. `check` returns `Err(why)`
/// for an input whose outcome is wrong (a panic is caught here).
fn fuzz(
    name: &str,
    mutants: u64,
    corpus: Vec<Vec<u8>>,
    tokens: &[&[u8]],
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> Findings {
    let (budget, seed) = budget(mutants);
    let mut rng = Rng(seed);
    let mut findings = Findings::default();
    let started = Instant::now();
    let watch = Watchdog::start(name);
    let trace = std::env::var_os("SHOAL_FUZZ_TRACE").is_some();
    // The corpus itself first, then mutants of it.
    let mut inputs = corpus.clone().into_iter();
    let corpus_len = corpus.len() as u64;
    while !budget.spent(started, findings.runs.saturating_sub(corpus_len)) || inputs.len() > 0 {
        let input = match inputs.next() {
            Some(seedling) => seedling,
            None => {
                let base = rng.pick(&corpus).clone();
                mutate(&mut rng, &base, &corpus, tokens)
            }
        };
        if trace {
            // A crash that takes the process down (a stack overflow) leaves this behind.
            save_named(&format!("{name}-current"), &input);
        }
        watch.begin(&input);
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let took = watch.end();
        findings.runs += 1;
        let problem = match outcome {
            Ok(Ok(())) if took > SLOW => Some(format!("took {took:?}")),
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(panic) => Some(format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
            )),
        };
        if let Some(why) = problem {
            let path = save_finding(name, &input);
            findings.problems.push(format!(
                "{name} (seed {seed}): {why}; input saved to {}",
                path.display()
            ));
            if findings.problems.len() >= 10 {
                break;
            }
        }
    }
    eprintln!(
        "fuzz {name}: {} inputs in {:.1?} from seed {seed}, {} problems",
        findings.runs,
        started.elapsed(),
        findings.problems.len()
    );
    findings
}

fn save_finding(name: &str, input: &[u8]) -> PathBuf {
    save_named(&format!("{name}-{}", images::ImageDigest::of(input).short()), input)
}

fn save_named(file: &str, input: &[u8]) -> PathBuf {
    let dir = repo().join("target/fuzz-findings");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(file);
    let _ = std::fs::write(&path, input);
    path
}

/// Aborts the process with the input saved when one input runs far too long (a hang would
/// otherwise stall the test run with nothing to show).
struct Watchdog {
    started_ms: Arc<AtomicU64>,
    input: Arc<Mutex<Vec<u8>>>,
    base: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Watchdog {
    fn start(name: &str) -> Self {
        let started_ms = Arc::new(AtomicU64::new(0));
        let input = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let base = Instant::now();
        let (s, i, st, name) = (started_ms.clone(), input.clone(), stop.clone(), name.to_owned());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let began = s.load(Ordering::Relaxed);
                if began != 0 && base.elapsed().as_millis() as u64 > began + 6 * SLOW.as_millis() as u64 {
                    let bytes = i.lock().map(|b| b.clone()).unwrap_or_default();
                    let path = save_finding(&name, &bytes);
                    eprintln!("fuzz {name}: an input hangs; saved to {}", path.display());
                    std::process::abort();
                }
            }
        });
        Watchdog {
            started_ms,
            input,
            base,
            stop,
        }
    }

    fn begin(&self, input: &[u8]) {
        if let Ok(mut slot) = self.input.lock() {
            slot.clear();
            slot.extend_from_slice(input);
        }
        let now = self.base.elapsed().as_millis() as u64 + 1;
        self.started_ms.store(now, Ordering::Relaxed);
    }

    fn end(&self) -> Duration {
        let began = self.started_ms.swap(0, Ordering::Relaxed);
        Duration::from_millis((self.base.elapsed().as_millis() as u64 + 1).saturating_sub(began))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_dir_files(dir: &Path, ext: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect()
}

/// Compose files: the fuzz corpus, the golden cases and the examples.
fn compose_corpus() -> Vec<Vec<u8>> {
    let mut corpus = Vec::new();
    for dir in ["fuzz/corpus/compose", "tests/golden/config"] {
        corpus.extend(read_dir_files(&repo().join(dir), "yaml").into_iter().map(|(_, b)| b));
    }
    for example in [
        "hello",
        "pubsub",
        "temperature",
        "shared-fs",
        "factory",
        "no-capability",
        "sensors",
    ] {
        if let Ok(bytes) = std::fs::read(repo().join("compose-examples").join(example).join("shoal.yaml")) {
            corpus.push(bytes);
        }
    }
    corpus
}

/// Wasm modules: the fuzz corpus (WAT, assembled here), the golden test files, and small
/// hand-made edge cases.
fn wasm_corpus() -> Vec<Vec<u8>> {
    let mut corpus: Vec<Vec<u8>> = read_dir_files(&repo().join("fuzz/corpus/wasm"), "wat")
        .into_iter()
        .filter_map(|(_, text)| wat::parse_bytes(&text).ok().map(|b| b.into_owned()))
        .collect();
    corpus.extend(
        read_dir_files(&repo().join("tests/golden/config"), "wasm")
            .into_iter()
            .map(|(_, b)| b),
    );
    corpus.push(b"\0asm\x01\0\0\0".to_vec());
    corpus.push(Vec::new());
    corpus
}

fn check_compose(bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    let env: HashMap<String, String> = [("X".to_string(), "1".to_string())].into();
    let lookup = |_: &spec::ImageDigest| None;
    let opts = spec::LoadOptions {
        env: &env,
        lookup_digest: &lookup,
        resolve_reference: &spec::no_registry,
    };
    // Relative paths resolve against the golden folder, which has images and data folders.
    let path = repo().join("tests/golden/config/fuzz.yaml");
    match spec::load_str(&text, &path, &opts) {
        Ok((stack, warnings)) => {
            if stack.containers.is_empty() {
                return Err("a valid stack without containers".into());
            }
            if warnings.iter().any(|w| w.severity != Severity::Warning) {
                return Err("an error among the warnings of a valid stack".into());
            }
            Ok(())
        }
        Err(diagnostics) => {
            if diagnostics.is_empty() {
                return Err("refused without any diagnostic".into());
            }
            if !diagnostics.iter().any(|d| d.is_error()) {
                return Err("refused with warnings only".into());
            }
            match diagnostics.iter().find(|d| d.message.trim().is_empty()) {
                Some(d) => Err(format!("a diagnostic without a message: {d:?}")),
                None => Ok(()),
            }
        }
    }
}

/// Checks one image: validation and import reading must agree on garbage, and a module
/// that validates must be accepted by the store and compile (small ones; compiling is slow).
struct WasmTarget {
    dir: tempfile::TempDir,
    store: ImageStore,
    engine: wasmtime::Engine,
    compiles: AtomicU64,
}

impl WasmTarget {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path().join("data"));
        let config = shoal::runtime::RuntimeConfig::default();
        let engine = shoal::runtime::Runtime::new(&config).expect("engine").engine().clone();
        WasmTarget {
            dir,
            store,
            engine,
            compiles: AtomicU64::new(0),
        }
    }

    fn check(&self, bytes: &[u8]) -> Result<(), String> {
        let file = self.dir.path().join("image.wasm");
        let valid = match images::validate_wasm(&file, bytes) {
            Ok(()) => true,
            Err(e) => {
                let text = e.to_string();
                if !text.contains("image.wasm") || !text.contains("not a valid WebAssembly module") {
                    return Err(format!("unclear validation error: {text}"));
                }
                false
            }
        };
        // Reading imports never fails silently on garbage it cannot parse.
        let imports = shoal::check::function_imports(bytes);
        if valid && imports.is_err() {
            return Err(format!("valid module whose imports cannot be read: {imports:?}"));
        }
        if !valid || bytes.len() > 64 << 10 {
            return Ok(());
        }
        std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
        let added = self
            .store
            .add(&file)
            .map_err(|e| format!("valid module refused by the store: {e}"))?;
        // Compile one valid module in four (compiling dominates the time).
        if self.compiles.fetch_add(1, Ordering::Relaxed) % 4 == 0 {
            if let Err(e) = self.store.load_module(&self.engine, &added.path) {
                let text = e.to_string();
                if text.trim().is_empty() {
                    return Err("empty compile error".into());
                }
            }
        }
        let _ = self.store.remove(&added.digest);
        Ok(())
    }
}

#[test]
fn fuzz_compose_files() {
    let tokens: Vec<&[u8]> = YAML_TOKENS.iter().map(|t| t.as_bytes()).collect();
    let corpus = compose_corpus();
    assert!(corpus.len() >= 10, "the compose corpus is missing");
    let findings = fuzz("compose", 1500, corpus, &tokens, check_compose);
    assert!(findings.problems.is_empty(), "{}", findings.problems.join("\n"));
}

#[test]
fn fuzz_images() {
    let corpus = wasm_corpus();
    assert!(corpus.len() >= 5, "the wasm corpus is missing");
    let target = WasmTarget::new();
    let findings = fuzz("wasm", 300, corpus, WASM_VALUES, |b| target.check(b));
    assert!(findings.problems.is_empty(), "{}", findings.problems.join("\n"));
}

#[test]
fn oversized_and_random_images_are_clear_errors() {
    let target = WasmTarget::new();
    let mut rng = Rng(7);
    let random: Vec<u8> = (0..(8 << 20)).map(|_| rng.next() as u8).collect();
    let mut big = b"\0asm\x01\0\0\0".to_vec();
    big.extend_from_slice(&random);
    for bytes in [random, big] {
        let started = Instant::now();
        target.check(&bytes).unwrap();
        assert!(started.elapsed() < SLOW * 3);
    }
}

#[test]
fn mutations_are_reproducible_from_the_seed() {
    let corpus = vec![b"containers:\n  a:\n    image: x.wasm\n".to_vec()];
    let tokens: Vec<&[u8]> = YAML_TOKENS.iter().map(|t| t.as_bytes()).collect();
    let run = |seed| {
        let mut rng = Rng(seed);
        (0..50)
            .map(|_| mutate(&mut rng, &corpus[0], &corpus, &tokens))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}
