//! Loader tests: golden error output and end-to-end checks of [`load_str`].

use super::*;
use crate::golden::Run;
use std::path::Path;

const GOLDEN_DIR: &str = "tests/golden/config";
const KNOWN_DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// The golden files live at the repository root (the binary's integration tests read them
/// too); cargo runs this crate's tests in `crates/shoal-spec`. Every test that names a
/// relative path moves there first; the folder is the same for all, so the order of
/// tests does not matter.
pub(crate) fn at_repo_root() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::env::set_current_dir(root).expect("the repository root exists");
    });
}

fn golden_env() -> HashMap<String, String> {
    [("GREETING", "hello"), ("REPLICAS", "2")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn lookup(d: &ImageDigest) -> Option<PathBuf> {
    (d.to_string() == KNOWN_DIGEST).then(|| PathBuf::from("/store/aaaa.wasm"))
}

/// Renders a load result as the CLI would print it, with the machine-specific package root
/// replaced by `$ROOT` so golden files are portable.
fn render(result: &Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>>) -> String {
    at_repo_root();
    let diags = match result {
        Ok((_, w)) => w,
        Err(e) => e,
    };
    let root = std::env::current_dir().unwrap();
    render_diagnostics(diags).replace(&root.display().to_string(), "$ROOT")
}

/// Each `tests/golden/config/NAME.yaml` is loaded and its diagnostics compared with
/// `NAME.stderr`. Regenerate with `SHOAL_UPDATE_GOLDEN=1 cargo test -p shoal-spec golden`.
#[test]
fn golden_diagnostics() {
    at_repo_root();
    let mut run = Run::new("SHOAL_UPDATE_GOLDEN");
    let mut entries: Vec<_> = std::fs::read_dir(GOLDEN_DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty());
    for yaml in entries {
        let name = yaml.file_name().unwrap().to_string_lossy().into_owned();
        let rel = Path::new(GOLDEN_DIR).join(&name);
        let env = golden_env();
        let opts = LoadOptions {
            env: &env,
            lookup_digest: &lookup,
            resolve_reference: &crate::no_registry,
        };
        let got = render(&load(&rel, &opts));
        run.text(&yaml.with_extension("stderr"), &got);
    }
    run.finish("golden diagnostics differ (regenerate with `SHOAL_UPDATE_GOLDEN=1 cargo test -p shoal-spec golden`)");
}

/// The acceptance case: five kinds of mistakes, all in one run, each with file:line:col.
#[test]
fn all_five_mistakes_in_one_run() {
    at_repo_root();
    let env = HashMap::new();
    let opts = LoadOptions {
        env: &env,
        lookup_digest: &lookup,
        resolve_reference: &crate::no_registry,
    };
    let errs = load(Path::new("tests/golden/config/all_five.yaml"), &opts).unwrap_err();
    let text = render_diagnostics(&errs);
    for needle in [
        "all_five.yaml:5:5: unknown key `capabilites`",
        "all_five.yaml:9:5: `ports` is not supported",
        "all_five.yaml:14:9: mount source",
        "dependency cycle: collector -> aggregator -> collector",
        "all_five.yaml:16:12: image file",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

fn load_in(dir: &Path, yaml: &str) -> Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>> {
    let env: HashMap<String, String> = [("V".to_string(), "vee".to_string())].into();
    let opts = LoadOptions {
        env: &env,
        lookup_digest: &lookup,
        resolve_reference: &crate::no_registry,
    };
    load_str(yaml, &dir.join("shoal.yaml"), &opts)
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("my-proj").tempdir().unwrap();
    std::fs::write(dir.path().join("m.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    dir
}

fn errors(r: Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>>) -> String {
    render_diagnostics(&r.unwrap_err())
}

#[test]
fn defaults_and_name_from_folder() {
    let p = project();
    let (stack, warnings) = load_in(p.path(), "containers:\n  app:\n    image: m.wasm\n").unwrap();
    assert!(warnings.is_empty());
    assert!(stack.name.starts_with("my-proj"), "{}", stack.name);
    let c = &stack.containers[0];
    assert_eq!(c.image, ImageRef::Path(p.path().join("m.wasm")));
    assert_eq!(c.restart, RestartPolicy::No);
    assert_eq!(c.restart_delay, std::time::Duration::from_secs(1));
    assert_eq!(c.stop_timeout, std::time::Duration::from_secs(10));
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.limits.memory, Some(64 << 20));
    assert_eq!(c.limits.cpu, None);
    assert!(c.capabilities.is_empty());
    assert_eq!(c.capabilities_location, c.location);
    assert_eq!((c.location.line, c.location.column), (2, 3));
    assert_eq!((c.image_location.line, c.image_location.column), (3, 12));
    assert_eq!(stack.dir, p.path());
    assert!(!stack.watch);
}

#[test]
fn replicas_expand_and_dependencies_follow() {
    let p = project();
    let yaml = "containers:\n  web:\n    image: m.wasm\n    depends_on: [probe]\n  probe:\n    image: m.wasm\n    replicas: 3\n";
    let (stack, _) = load_in(p.path(), yaml).unwrap();
    let names: Vec<_> = stack.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["probe-1", "probe-2", "probe-3", "web"]);
    assert!(stack.containers.iter().take(3).all(|c| c.service == "probe"));
    let deps: Vec<_> = stack.containers[3].depends_on.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(deps, ["probe-1", "probe-2", "probe-3"]);
}

#[test]
fn replica_limits() {
    let p = project();
    let e = errors(load_in(
        p.path(),
        "containers:\n  a:\n    image: m.wasm\n    replicas: 1000000\n",
    ));
    assert!(e.contains("too many"), "{e}");
    let e = errors(load_in(
        p.path(),
        "containers:\n  a:\n    image: m.wasm\n    replicas: 0\n",
    ));
    assert!(e.contains("at least 1"), "{e}");
}

#[test]
fn replica_name_clash() {
    let p = project();
    let e = errors(load_in(
        p.path(),
        "containers:\n  a:\n    image: m.wasm\n    replicas: 2\n  a-1:\n    image: m.wasm\n",
    ));
    assert!(e.contains("clashes with replica a-1"), "{e}");
}

#[test]
fn topological_order_keeps_file_order() {
    let p = project();
    let yaml =
        "containers:\n  c:\n    image: m.wasm\n    depends_on: [a]\n  b:\n    image: m.wasm\n  a:\n    image: m.wasm\n";
    let (stack, _) = load_in(p.path(), yaml).unwrap();
    let names: Vec<_> = stack.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["b", "a", "c"]);
}

#[test]
fn cycle_message_names_the_cycle() {
    let p = project();
    let yaml = "containers:\n  a:\n    image: m.wasm\n    depends_on: [b]\n  b:\n    image: m.wasm\n    depends_on: [c]\n  c:\n    image: m.wasm\n    depends_on: [a]\n";
    let e = errors(load_in(p.path(), yaml));
    assert!(e.contains("shoal.yaml:4:18: dependency cycle: a -> b -> c -> a"), "{e}");
    assert_eq!(e.matches("dependency cycle").count(), 1, "{e}");
}

#[test]
fn self_and_unknown_dependency() {
    let p = project();
    let yaml = "containers:\n  app:\n    image: m.wasm\n    depends_on: [app, ap]\n";
    let e = errors(load_in(p.path(), yaml));
    assert!(e.contains("depends on itself"), "{e}");
    assert!(e.contains("unknown container `ap`"), "{e}");
}

#[test]
fn dependency_conditions() {
    let p = project();
    let yaml = "containers:\n  app:\n    image: m.wasm\n    depends_on:\n      init: {condition: service_completed_successfully}\n  init:\n    image: m.wasm\n";
    let (stack, _) = load_in(p.path(), yaml).unwrap();
    assert_eq!(stack.containers[0].name, "init");
    assert_eq!(
        stack.containers[1].depends_on,
        vec![Dependency {
            name: "init".parse().unwrap(),
            condition: DependencyCondition::ServiceCompletedSuccessfully
        }]
    );
}

#[test]
fn env_file_then_env() {
    let p = project();
    std::fs::write(p.path().join("a.env"), "# c\nA=1\n\nB='two'\nexport C=3\n").unwrap();
    let yaml = "containers:\n  app:\n    image: m.wasm\n    env_file: a.env\n    env: {B: 2, D: $V}\n";
    let (stack, _) = load_in(p.path(), yaml).unwrap();
    let env = &stack.containers[0].env;
    let want: Vec<(String, String)> = [("A", "1"), ("B", "2"), ("C", "3"), ("D", "vee")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    assert_eq!(env, &want);
}

#[test]
fn env_list_form_and_missing_env_file() {
    let p = project();
    let (stack, _) = load_in(
        p.path(),
        "containers:\n  app:\n    image: m.wasm\n    env: [A=1, B=x=y]\n",
    )
    .unwrap();
    assert_eq!(stack.containers[0].env[1], ("B".into(), "x=y".into()));
    let e = errors(load_in(
        p.path(),
        "containers:\n  app:\n    image: m.wasm\n    env_file: nope.env\n",
    ));
    assert!(
        e.contains(&format!(
            "env file {} does not exist",
            p.path().join("nope.env").display()
        )),
        "{e}"
    );
}

#[test]
fn mounts_short_and_long() {
    let p = project();
    let yaml = "containers:\n  app:\n    image: m.wasm\n    mounts:\n      - ./data:/data:ro\n      - {source: data, target: /other}\n";
    let (stack, _) = load_in(p.path(), yaml).unwrap();
    let m = &stack.containers[0].mounts;
    assert_eq!(
        m[0],
        Mount {
            host: p.path().join("data"),
            guest: "/data".into(),
            read_only: true,
            special_files: false,
        }
    );
    assert_eq!(
        m[1],
        Mount {
            host: p.path().join("data"),
            guest: "/other".into(),
            read_only: false,
            special_files: false,
        }
    );
}

#[test]
fn mount_errors_and_swapped_hint() {
    let p = project();
    let yaml = "containers:\n  app:\n    image: m.wasm\n    mounts: [/data:./data, ./data:rel, ./data:/x/../y, ./data:/a, ./data:/a/]\n";
    let e = errors(load_in(p.path(), yaml));
    assert!(
        e.contains("the order is host:guest, as in Docker: write `./data:/data`"),
        "{e}"
    );
    assert!(e.contains("guest path `rel` must be absolute"), "{e}");
    assert!(e.contains("must not contain `..`"), "{e}");
    assert!(e.contains("guest path `/a/` is mounted twice"), "{e}");
}

#[test]
fn capabilities_and_hints() {
    let p = project();
    let (stack, _) = load_in(
        p.path(),
        "containers:\n  app:\n    image: m.wasm\n    capabilities: [\"ocre:api\"]\n",
    )
    .unwrap();
    assert_eq!(stack.containers[0].capabilities.len(), Capability::ALL.len());
    assert_eq!(stack.containers[0].capabilities_location.line, 4);
    let e = errors(load_in(
        p.path(),
        "containers:\n  app:\n    image: m.wasm\n    capabilities: [mesaging]\n",
    ));
    assert!(e.contains("unknown capability `mesaging`"), "{e}");
    assert!(e.contains("did you mean `messaging`?"), "{e}");
}

#[test]
fn sensors_require_capability() {
    let p = project();
    let yaml = "sensors:\n  t: {kind: rng}\ncontainers:\n  app:\n    image: m.wasm\n    sensors: [t]\n";
    let e = errors(load_in(p.path(), yaml));
    assert!(e.contains("lacks the `sensors` capability"), "{e}");
    assert!(e.contains("add `sensors` to `capabilities`"), "{e}");
}

#[test]
fn sensors_decoded() {
    let p = project();
    let yaml = "sensors:\n  t: {kind: rng, channels: 2, range: [1, 2]}\n  f: {kind: hwmon, path: data, scale: 0.001}\ncontainers:\n  app:\n    image: m.wasm\n    capabilities: [sensors]\n    sensors: [t, f]\n";
    let (stack, w) = load_in(p.path(), yaml).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(stack.sensors["t"].kind, SensorKind::Rng { min: 1.0, max: 2.0 });
    assert_eq!(stack.sensors["t"].channels, 2);
    assert_eq!(
        stack.sensors["f"].kind,
        SensorKind::Hwmon {
            path: p.path().join("data"),
            scale: 0.001
        }
    );
    assert_eq!(stack.containers[0].sensors, vec!["t".to_string(), "f".to_string()]);
    // Defaults: `custom` per rng channel; a hwmon file named `data` does not tell its type.
    assert_eq!(stack.sensors["t"].channel_types, vec![ChannelType::Custom; 2]);
    assert_eq!(stack.sensors["t"].channel_type_code(1), Some(0x8001));
    assert_eq!(stack.sensors["f"].channel_types, vec![ChannelType::Custom]);
}

#[test]
fn sensor_channel_types_declared_and_inferred() {
    let p = project();
    std::fs::write(p.path().join("temp1_input"), "42000\n").unwrap();
    let yaml = "sensors:\n  c: {kind: rng, range: [40, 60], channel_types: [humidity, temperature, custom]}\n  \
                h: {kind: hwmon, path: temp1_input}\n  v: {kind: file, path: temp1_input, channel_types: [voltage]}\n  \
                n: {kind: rng, channels: 2, channel_types: [light, custom]}\n\
                containers:\n  app:\n    image: m.wasm\n";
    let (stack, w) = load_in(p.path(), yaml).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let c = &stack.sensors["c"];
    assert_eq!(c.channels, 3, "`channels` defaults to the list's length");
    assert_eq!(
        (0..3).map(|i| c.channel_type_code(i)).collect::<Vec<_>>(),
        [Some(6), Some(7), Some(0x8002)]
    );
    // read(type) finds the channel by type first, then by index when no type matches.
    assert_eq!(c.channel_for(7), Some(1));
    assert_eq!(c.channel_for(6), Some(0));
    assert_eq!(c.channel_for(0x8002), Some(2));
    assert_eq!(c.channel_for(2), Some(2));
    assert_eq!(c.channel_for(3), None);
    assert_eq!(c.channel_for(-1), None);
    assert_eq!(stack.sensors["h"].channel_types, [ChannelType::Temperature]);
    assert_eq!(stack.sensors["v"].channel_types, [ChannelType::Voltage]);
    assert_eq!(
        stack.sensors["n"].channel_types,
        [ChannelType::Light, ChannelType::Custom]
    );
}

#[test]
fn sensor_channel_type_errors() {
    let p = project();
    let cases = [
        (
            "{kind: rng, channel_types: [temprature]}",
            "unknown channel type `temprature`",
        ),
        (
            "{kind: rng, channel_types: [temprature]}",
            "did you mean `temperature`?",
        ),
        ("{kind: rng, channel_types: [banana]}", "use one of: acceleration, gyro"),
        (
            "{kind: rng, channel_types: [temperature, temperature]}",
            "already channel 0's type",
        ),
        (
            "{kind: rng, channels: 3, channel_types: [light]}",
            "lists 1 type but `channels` (line 2) is 3",
        ),
        ("{kind: rng, channel_types: []}", "must list 1 to 1024 types"),
        ("{kind: rng, channel_types: temperature}", "must be a list"),
        (
            "{kind: file, path: x, channel_types: [light, custom]}",
            "exactly 1 channel, but `channel_types` lists 2",
        ),
    ];
    for (sensor, want) in cases {
        let yaml = format!("sensors:\n  s: {sensor}\ncontainers:\n  app:\n    image: m.wasm\n");
        let e = errors(load_in(p.path(), &yaml));
        assert!(e.contains(want), "{sensor}: want {want:?} in:\n{e}");
        assert!(e.contains(":2:"), "{sensor}: the message names line 2:\n{e}");
    }
}

#[test]
fn restart_durations_limits() {
    let p = project();
    let yaml = "containers:\n  app:\n    image: m.wasm\n    restart: on-failure:5\n    restart_delay: 250ms\n    stop_timeout: 5s\n    limits: {memory: 512KiB}\n";
    let (stack, _) = load_in(p.path(), yaml).unwrap();
    let c = &stack.containers[0];
    assert_eq!(c.restart, RestartPolicy::OnFailure { max_retries: Some(5) });
    assert_eq!(c.restart_delay, std::time::Duration::from_millis(250));
    assert_eq!(c.stop_timeout, std::time::Duration::from_secs(5));
    assert_eq!(c.limits.memory, Some(512 * 1024));
    let (stack, _) = load_in(p.path(), "containers:\n  a:\n    image: m.wasm\n    restart: no\n").unwrap();
    assert_eq!(stack.containers[0].restart, RestartPolicy::No);
    let e = errors(load_in(
        p.path(),
        "containers:\n  a:\n    image: m.wasm\n    limits: {memory: 1KiB, queue: 0}\n",
    ));
    assert!(e.contains("at least 64KiB"), "{e}");
    assert!(e.contains("`limits.queue` must be between 1 and 65536, found 0"), "{e}");
}

#[test]
fn every_limit_is_decoded() {
    let p = project();
    let yaml = "containers:\n  a:\n    image: m.wasm\n    limits: {memory: 2MiB, cpu: 25%, max_timers: 3, queue: 8, max_subscriptions: 5, message_region: 1MiB}\n  b:\n    image: m.wasm\n    limits: {cpu: 0.5}\n  c:\n    image: m.wasm\n    limits: {cpu: 1}\n  d:\n    image: m.wasm\n    limits: {cpu: 1.5}\n  e:\n    image: m.wasm\n    limits: {cpu: \"150%\"}\n";
    let (stack, _) = load_in(p.path(), yaml).unwrap();
    let l = &stack.containers[0].limits;
    assert_eq!(l.memory, Some(2 << 20));
    assert_eq!(l.cpu.map(CpuShare::milli), Some(250));
    assert_eq!((l.max_timers, l.queue, l.max_subscriptions), (3, 8, 5));
    assert_eq!(l.message_region, 1 << 20);
    assert_eq!(
        stack.containers[1].limits.message_region,
        Limits::DEFAULT_MESSAGE_REGION
    );
    assert_eq!(stack.containers[1].limits.cpu.map(CpuShare::milli), Some(500));
    assert_eq!(stack.containers[2].limits.cpu.map(CpuShare::milli), Some(1000));
    // More than one core is accepted (a compose user's `cpus: 1.5`) and never throttles.
    let more = stack.containers[3].limits.cpu.expect("cpu: 1.5");
    assert_eq!(more.milli(), 1500);
    assert!(more.is_unthrottled() && !CpuShare::from_milli(999).unwrap().is_unthrottled());
    assert_eq!(stack.containers[4].limits.cpu.map(CpuShare::milli), Some(1500));
    for (bad, needle) in [
        ("cpu: 2000", "between 0.01 (1%) and 1024 (cores), found `2000`"),
        ("cpu: 0", "found `0`"),
        ("cpu: 0.001", "found `0.001`"),
        ("cpu: \"200000%\"", "found `200000%`"),
        ("cpu: lots", "invalid CPU share `lots`"),
        ("cpu: [1]", "found a list"),
        ("memory: 5GiB", "at most 4GiB"),
        (
            "message_region: 64KiB",
            "at least 128KiB (room for one largest message)",
        ),
        ("message_region: 1GiB", "`limits.message_region` must be at most 64MiB"),
        ("message_region: [1]", "must be a size such as `1MiB`, found a list"),
        ("max_timers: -1", "between 1 and 65536, found -1"),
        ("max_subscriptions: many", "must be a whole number, found a string"),
        ("stack: 1MiB", "--max-wasm-stack"),
        ("cpus: 1", "shoal calls it `limits.cpu`"),
    ] {
        let e = errors(load_in(
            p.path(),
            &format!("containers:\n  a:\n    image: m.wasm\n    limits: {{{bad}}}\n"),
        ));
        assert!(e.contains(needle), "{bad}: {e}");
    }
}

#[test]
fn unset_variable_warns() {
    let p = project();
    let (_, w) = load_in(
        p.path(),
        "containers:\n  a:\n    image: m.wasm\n    args: [\"${NOPE}\"]\n",
    )
    .unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].to_string().contains("variable `NOPE` is not set"), "{}", w[0]);
}

#[test]
fn watch_and_invalid_name() {
    let p = project();
    let (s, _) = load_in(p.path(), "watch: true\ncontainers:\n  a:\n    image: m.wasm\n").unwrap();
    assert!(s.watch);
    let e = errors(load_in(
        p.path(),
        "name: Bad Name\ncontainers:\n  a:\n    image: m.wasm\n",
    ));
    assert!(e.contains("invalid project name"), "{e}");
}

/// A name `up` could not bind a socket for, or a replica suffix past the limit, is refused
/// by the loader (so by `shoal config`), at the place it is written.
#[test]
fn names_past_the_length_limit() {
    let p = project();
    let long = "n".repeat(120);
    let e = errors(load_in(
        p.path(),
        &format!("name: {long}\ncontainers:\n  a:\n    image: m.wasm\n"),
    ));
    assert!(e.contains("shoal.yaml:1:7: project name `nnn"), "{e}");
    assert!(
        e.contains("too long (120 characters; at most 63)") && e.contains("socket"),
        "{e}"
    );
    let e = errors(load_in(
        p.path(),
        &format!("containers:\n  {long}:\n    image: m.wasm\n"),
    ));
    assert!(e.contains("shoal.yaml:2:3: container name `nnn"), "{e}");
    let service = "r".repeat(62);
    let yaml = format!("containers:\n  {service}:\n    image: m.wasm\n    replicas: 2\n");
    let e = errors(load_in(p.path(), &yaml));
    assert!(
        e.contains("shoal.yaml:2:3: replica name") && e.contains("-1` is too long"),
        "{e}"
    );
    let fits = format!("containers:\n  {service}:\n    image: m.wasm\n");
    assert_eq!(load_in(p.path(), &fits).unwrap().0.containers[0].name, service);
}

#[test]
fn digest_images() {
    let p = project();
    let (s, _) = load_in(p.path(), &format!("containers:\n  a:\n    image: {KNOWN_DIGEST}\n")).unwrap();
    assert_eq!(s.containers[0].image, ImageRef::Digest(KNOWN_DIGEST.parse().unwrap()));
}

#[test]
fn find_compose_file_order() {
    let p = project();
    assert_eq!(find_compose_file(p.path()), None);
    std::fs::write(p.path().join("compose.yml"), "").unwrap();
    assert_eq!(find_compose_file(p.path()), Some(p.path().join("compose.yml")));
    std::fs::write(p.path().join("compose.yaml"), "").unwrap();
    assert_eq!(find_compose_file(p.path()), Some(p.path().join("compose.yaml")));
    std::fs::write(p.path().join("shoal.yaml"), "").unwrap();
    assert_eq!(find_compose_file(p.path()), Some(p.path().join("shoal.yaml")));
}

#[test]
fn missing_file() {
    at_repo_root();
    let env = HashMap::new();
    let opts = LoadOptions {
        env: &env,
        lookup_digest: &lookup,
        resolve_reference: &crate::no_registry,
    };
    let e = load(Path::new("tests/golden/config/nope.yaml"), &opts).unwrap_err();
    assert!(e[0]
        .to_string()
        .starts_with("error: cannot read tests/golden/config/nope.yaml"));
}

#[test]
fn golden_ok_file_loads() {
    at_repo_root();
    let env = golden_env();
    let opts = LoadOptions {
        env: &env,
        lookup_digest: &lookup,
        resolve_reference: &crate::no_registry,
    };
    let (stack, warnings) = load(Path::new("tests/golden/config/ok.yaml"), &opts).unwrap();
    assert_eq!(warnings.len(), 2);
    assert_eq!(stack.name, "demo");
    let names: Vec<_> = stack.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["init", "app"]);
    let app = &stack.containers[1];
    assert_eq!(app.args, ["--port", "8080", "true"]);
    let env: Vec<_> = app.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(env, ["UNIT=celsius", "MODE=fast", "OVERRIDDEN=from-env"]);
    assert!(stack.file.is_absolute());
}

#[test]
fn extension_fields_and_merge_keys() {
    let p = project();
    let yaml = "x-common: &common\n  image: m.wasm\n  restart: always\ncontainers:\n  a:\n    <<: *common\n    x-note: hi\n  b:\n    <<: *common\n    restart: no\n";
    let (stack, w) = load_in(p.path(), yaml).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(stack.containers[0].restart, RestartPolicy::Always);
    assert_eq!(stack.containers[1].restart, RestartPolicy::No);
}

#[test]
fn interpolation_reports_key_path() {
    let p = project();
    let e = load_in(p.path(), "containers:\n  a:\n    image: m.wasm\n    args: [\"${X\"]\n").unwrap_err();
    assert_eq!(e[0].key, "containers.a.args[0]");
    assert_eq!(e[0].location.as_ref().unwrap().line, 4);
}

#[test]
fn container_must_be_mapping() {
    let p = project();
    let e = errors(load_in(p.path(), "containers:\n  a: m.wasm\n"));
    assert!(e.contains("container `a` must be a mapping, found a string"), "{e}");
    assert!(e.contains("hint: write `a: {image: ...}`"), "{e}");
}

#[test]
fn unknown_key_hint_and_key_path() {
    let p = project();
    let e = load_in(p.path(), "containers:\n  a:\n    image: m.wasm\n    replics: 2\n").unwrap_err();
    assert_eq!(e[0].key, "containers.a.replics");
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `replicas`?"));
    assert_eq!(
        e[0].to_string(),
        "error: shoal.yaml:4:5: unknown key `replics` in container `a`\n  hint: did you mean `replicas`?"
            .replace("shoal.yaml", &p.path().join("shoal.yaml").display().to_string())
    );
}

#[test]
fn diamond_is_not_a_cycle_and_two_cycles_are_both_reported() {
    let p = project();
    let yaml = "containers:\n  top:\n    image: m.wasm\n    depends_on: [l, r]\n  l:\n    image: m.wasm\n    depends_on: [base]\n  r:\n    image: m.wasm\n    depends_on: [base]\n  base:\n    image: m.wasm\n";
    let (stack, _) = load_in(p.path(), yaml).unwrap();
    let names: Vec<_> = stack.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["base", "l", "r", "top"]);
    let yaml = "containers:\n  a:\n    image: m.wasm\n    depends_on: [b]\n  b:\n    image: m.wasm\n    depends_on: [a]\n  c:\n    image: m.wasm\n    depends_on: [d]\n  d:\n    image: m.wasm\n    depends_on: [c]\n";
    let e = errors(load_in(p.path(), yaml));
    assert!(e.contains("dependency cycle: a -> b -> a"), "{e}");
    assert!(e.contains("dependency cycle: c -> d -> c"), "{e}");
}

#[test]
fn topics_without_messaging_warn() {
    let p = project();
    let (_, w) = load_in(p.path(), "containers:\n  a:\n    image: m.wasm\n    publish: [x/]\n").unwrap();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].to_string().contains("lacks the `messaging` capability"),
        "{}",
        w[0]
    );
}

#[test]
fn env_null_value_warns() {
    let p = project();
    let (s, w) = load_in(p.path(), "containers:\n  a:\n    image: m.wasm\n    env: {K: }\n").unwrap();
    assert_eq!(s.containers[0].env, vec![("K".to_string(), String::new())]);
    assert!(w[0].to_string().contains("hint: write `K: ${K}`"), "{}", w[0]);
}

#[test]
fn services_instead_of_containers_is_one_error() {
    let p = project();
    let e = load_in(p.path(), "services:\n  a:\n    image: m.wasm\n").unwrap_err();
    assert_eq!(e.len(), 1, "{}", render_diagnostics(&e));
    assert_eq!(e[0].hint.as_deref(), Some("rename `services:` to `containers:`"));
}

#[test]
fn bridges_defaults_references_and_client_ids() {
    let p = project();
    std::fs::write(p.path().join("pw"), "secret\n").unwrap();
    let yaml = "name: line-3\nbridges:\n  up:\n    url: mqtt://127.0.0.1\n    username_env: V\n    password_file: pw\n    export: [\"s/\"]\n    import: [{remote: \"c/+/x/#\", local: \"cmd/\", qos: 0}]\ncontainers:\n  app:\n    image: m.wasm\n";
    let (stack, warnings) = load_in(p.path(), yaml).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let b = &stack.bridges[0];
    // compose: unique per board (see `bridges::default_client_id`), at most 23 bytes.
    assert!(
        b.client_id.starts_with("line-3-up-") && b.client_id.len() <= 23,
        "{}",
        b.client_id
    );
    assert_eq!((b.host.as_str(), b.port, b.use_tls), ("127.0.0.1", 1883, false));
    assert_eq!(b.username, Some(SecretRef::Env("V".into())));
    assert_eq!(b.password, Some(SecretRef::File(p.path().join("pw"))));
    assert_eq!(b.queue, bridges::DEFAULT_QUEUE);
    assert_eq!(b.session_expiry, bridges::DEFAULT_SESSION_EXPIRY);
    assert_eq!(
        b.export,
        [ExportRule {
            local: "s/".into(),
            remote: "s/".into(),
            qos: 1
        }]
    );
    assert_eq!(b.import[0].local, "cmd/");
    assert_eq!(b.import[0].qos, 0);
    // The serialized stack names the references, never the secret itself.
    let json = serde_json::to_string(&stack).unwrap();
    assert!(
        json.contains(r#""password":{"file":"#) && !json.contains("secret"),
        "{json}"
    );

    let clash = "bridges:\n  a: {url: \"mqtt://h\", client_id: same, export: [x/]}\n  b: {url: \"mqtt://h\", client_id: same, export: [y/]}\ncontainers:\n  app:\n    image: m.wasm\n";
    assert!(errors(load_in(p.path(), clash))
        .contains(":3:3: bridge `b` uses client id `same` on mqtt://h like the bridge at line 2"));
    let no_rules = "bridges:\n  a: {url: \"mqtt://h\"}\ncontainers:\n  app:\n    image: m.wasm\n";
    let (_, warnings) = load_in(p.path(), no_rules).unwrap();
    assert!(render_diagnostics(&warnings).contains("has no `export` or `import` rules"));
    let password_alone =
        "bridges:\n  a: {url: \"mqtt://h\", password_file: pw, export: [x/]}\ncontainers:\n  app:\n    image: m.wasm\n";
    assert!(errors(load_in(p.path(), password_alone)).contains("has a password but no user name"));
}

/// Containers and bridges read durations through one accessor: same messages, each with an
/// example that fits the key.
#[test]
fn durations_of_the_wrong_type() {
    let p = project();
    let text = errors(load_in(
        p.path(),
        "containers:\n  app:\n    image: m.wasm\n    stop_timeout: [1]\n\
         bridges:\n  up:\n    url: mqtt://127.0.0.1\n    keep_alive: {a: 1}\n    export: [a/]\n",
    ));
    assert!(
        text.contains("`stop_timeout` must be a duration such as `5s`, found a list"),
        "{text}"
    );
    assert!(
        text.contains("`keep_alive` must be a duration such as `30s`, found a mapping"),
        "{text}"
    );
}

#[test]
fn a_given_compose_file_is_taken_as_is() {
    let file = Path::new("/no/such/place/stack.yaml");
    assert_eq!(compose_path(Some(file)).unwrap(), file);
}

#[test]
fn a_folder_is_searched_for_the_compose_file() {
    let dir = tempfile::tempdir().unwrap();
    let error = compose_path(Some(dir.path())).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("no shoal.yaml or compose.yaml in {}", dir.path().display())
    );
    std::fs::write(dir.path().join("compose.yaml"), "").unwrap();
    assert_eq!(compose_path(Some(dir.path())).unwrap(), dir.path().join("compose.yaml"));
}

/// Issue 16, faults 1 and 2: `limits.max_open_files` and the mount's `special_files`.
#[test]
fn descriptor_limit_and_special_files() {
    let p = project();
    let yaml = "containers:\n  a:\n    image: m.wasm\n    limits: {max_open_files: 12}\n    mounts:\n      - {source: data, target: /pipes, special_files: true}\n      - ./data:/data\n  b:\n    image: m.wasm\n";
    let (stack, _) = load_in(p.path(), yaml).unwrap();
    assert_eq!(stack.containers[0].limits.max_open_files, 12);
    assert_eq!(
        stack.containers[1].limits.max_open_files,
        Limits::DEFAULT_MAX_OPEN_FILES
    );
    let mounts = &stack.containers[0].mounts;
    assert!(mounts[0].special_files && !mounts[1].special_files);
    for (bad, needle) in [
        ("limits: {max_open_files: 0}", "between 1 and 65536, found 0"),
        ("limits: {nofile: 100}", "shoal calls it `limits.max_open_files`"),
        ("limits: {open_files: 100}", "write `max_open_files: 256`"),
        (
            "mounts: [{source: data, target: /d, special_files: yes please}]",
            "`special_files`",
        ),
    ] {
        let e = errors(load_in(
            p.path(),
            &format!("containers:\n  a:\n    image: m.wasm\n    {bad}\n"),
        ));
        assert!(e.contains(needle), "{bad}: {e}");
    }
}

#[test]
fn cpus_pins_a_container_to_cores() {
    let p = project();
    let yaml = "containers:\n  a:\n    image: m.wasm\n    cpus: [2, 0]\n  b:\n    image: m.wasm\n    cpus: \"0-1,3\"\n  c:\n    image: m.wasm\n    cpus: 1\n  d:\n    image: m.wasm\n";
    let (stack, _) = load_in(p.path(), yaml).unwrap();
    let cores = |i: usize| stack.containers[i].cpus.as_ref().map(|c| c.to_string());
    assert_eq!(cores(0).as_deref(), Some("0,2"));
    assert_eq!(cores(1).as_deref(), Some("0-1,3"));
    assert_eq!(cores(2).as_deref(), Some("1"));
    assert_eq!(cores(3), None);
    assert_eq!(stack.containers[0].cpus_location.line, 4);
    for (bad, needle) in [
        ("cpus: 1.5", "for a share of a core write `limits: {cpu: 1.5}`"),
        ("cpus: []", "`cpus` is empty"),
        ("cpus: [0, x]", "`cpus` lists core numbers, found a string"),
        ("cpus: 4096", "core numbers go from 0 to 1023, found 4096"),
        ("cpus: \"3-1\"", "goes backwards"),
        ("cpus: {a: 1}", "`cpus` must be core numbers"),
    ] {
        let e = errors(load_in(
            p.path(),
            &format!("containers:\n  a:\n    image: m.wasm\n    {bad}\n"),
        ));
        assert!(e.contains(needle), "{bad}: {e}");
        assert!(e.contains(":4:"), "{bad}: the place is named: {e}");
    }
}
