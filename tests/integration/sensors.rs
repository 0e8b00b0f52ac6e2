//! Sensors read the way Ocre SDK programs read them: by the channel type
//! `ocre_sensors_get_channel_type` returns (issue 14, item 1). Runs the C guest
//! `sensor_sdk` (both wasi-libc builds) and the older `sensor_rng`, which passes 0.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::support::*;

const STACK: &str = r#"sensors:
  "RNG Sensor": {kind: rng, range: [10, 20]}
  climate:
    kind: rng
    range: [40, 60]
    channel_types: [humidity, temperature]
  board:
    kind: file
    path: board_temp
    scale: 0.001
    channel_types: [temperature]
containers:
  reader:
    image: IMAGES/GUEST.wasm
    args: ["RNG Sensor", climate, board]
    capabilities: [sensors]
    sensors: ["RNG Sensor", climate, board]
"#;

/// One `... handle H channel C type T value V int I` line of `sensor_sdk`.
#[derive(Debug)]
struct Read {
    how: String,
    handle: i32,
    channel: i32,
    ty: i32,
    value: f64,
    int: i64,
}

fn parse_read(line: &str) -> Option<Read> {
    let rest = line.split("sensor_sdk: ").nth(1)?;
    let (how, tail) = rest.split_once(" handle ")?;
    let words: Vec<&str> = tail.split_whitespace().collect();
    match words.as_slice() {
        [h, "channel", c, "type", t, "value", v, "int", i] => Some(Read {
            how: how.to_string(),
            handle: h.parse().ok()?,
            channel: c.parse().ok()?,
            ty: t.parse().ok()?,
            value: v.parse().ok()?,
            int: i.parse().ok()?,
        }),
        _ => None,
    }
}

fn error_code(out: &str, what: &str) -> i64 {
    let line = out
        .lines()
        .find(|l| l.contains(&format!("sensor_sdk: {what}")))
        .unwrap_or_else(|| panic!("no `{what}` line:\n{out}"));
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a code at the end")
}

#[test]
fn sensor_sdk_guest_reads_by_channel_type_by_id_and_by_name() {
    for guest in ["sensor_sdk", "sensor_sdk.newlibc"] {
        let sandbox = Sandbox::new();
        sandbox.write("board_temp", "41500\n");
        let text = STACK
            .replace("IMAGES", &images().display().to_string())
            .replace("GUEST", guest);
        let file = sandbox.write("shoal.yaml", &text);
        let output = sandbox.run(&["up", "-f", arg(&file)]);
        let (out, err) = (stdout(&output), stderr(&output));
        assert!(output.status.success(), "{out}\n{err}");
        assert!(out.contains("sensor_sdk: done"), "{out}");
        assert!(out.contains("reader exited with code 0"), "{out}");
        let reads: Vec<Read> = out.lines().filter_map(parse_read).collect();

        // The types the guest got: the SDK's numbers and custom (0x8000) for the rng.
        let types: BTreeMap<(String, i32), i32> = reads.iter().map(|r| ((r.how.clone(), r.channel), r.ty)).collect();
        let want_types = [
            ("by id 0", 0, 0x8000),
            ("by id 1", 0, 6),
            ("by id 1", 1, 7),
            ("by id 2", 0, 7),
            ("by name \"RNG Sensor\"", 0, 0x8000),
            ("by name \"climate\"", 0, 6),
            ("by name \"climate\"", 1, 7),
            ("by name \"board\"", 0, 7),
        ];
        for (how, channel, ty) in want_types {
            assert_eq!(
                types.get(&(how.to_string(), channel)),
                Some(&ty),
                "{how} channel {channel}:\n{out}"
            );
        }
        assert_eq!(types.len(), want_types.len(), "{out}");

        // Discovery order is the container's `sensors:` list: "RNG Sensor", climate, board.
        for (how, handle, lo, hi, varies) in [
            ("by id 0", 0, 10.0, 20.0, true),
            ("by name \"RNG Sensor\"", 0, 10.0, 20.0, true),
            ("by id 1", 1, 40.0, 60.0, true),
            ("by name \"climate\"", 1, 40.0, 60.0, true),
            ("by id 2", 2, 41.5, 41.5, false),
            ("by name \"board\"", 2, 41.5, 41.5, false),
        ] {
            for channel in 0..2 {
                let got: Vec<&Read> = reads.iter().filter(|r| r.how == how && r.channel == channel).collect();
                if got.is_empty() {
                    continue;
                }
                assert_eq!(got.len(), 5, "{how} channel {channel}:\n{out}");
                let distinct: BTreeSet<u64> = got.iter().map(|r| r.value.to_bits()).collect();
                for r in &got {
                    assert_eq!(r.handle, handle, "{r:?}");
                    assert!(
                        (lo - 1e-6..=hi + 1e-6).contains(&r.value),
                        "{how} channel {channel}: {} outside [{lo}, {hi}]:\n{out}",
                        r.value
                    );
                    assert_ne!(r.int, i64::from(i32::MIN), "a NaN read reached the guest:\n{out}");
                }
                assert_eq!(distinct.len() > 1, varies, "{how} channel {channel} values:\n{out}");
            }
        }

        // Errors are the SDK's codes, never NaN (whose int is INT_MIN).
        assert_eq!(error_code(&out, "wrong type 4242"), -5, "{out}");
        assert_eq!(error_code(&out, "wrong handle 3"), -22, "{out}");
        assert_eq!(error_code(&out, "wrong name"), -2, "{out}");
        assert_eq!(error_code(&out, "wrong channel index"), -22, "{out}");
        // The operator hears about the wrong type, once.
        let all = format!("{out}{err}");
        assert_eq!(
            all.matches("ocre_sensors_read with channel type 4242").count(),
            1,
            "{all}"
        );
    }
}

/// The older guest reads `RNG Sensor` by name with channel 0 (an index, no channel's
/// type): still served, inside the declared range.
#[test]
fn sensor_rng_guest_passing_index_0_still_reads() {
    let sandbox = Sandbox::new();
    images();
    let text = STACK
        .replace("IMAGES", &images().display().to_string())
        .replace("GUEST", "sensor_rng")
        .replace(
            "    args: [\"RNG Sensor\", climate, board]\n",
            "    capabilities: [sensors, timers]\n",
        )
        .replace("    capabilities: [sensors]\n", "");
    sandbox.write("board_temp", "1\n");
    let file = sandbox.write("shoal.yaml", &text);
    let mut up = sandbox.up(&file);
    let mut values = Vec::new();
    for _ in 0..2 {
        let line = up.wait_for("Sensor RNG Sensor reading ", Duration::from_secs(60));
        let v: f64 = line
            .rsplit(": ")
            .next()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        assert!((10.0..=20.0).contains(&v), "{line}");
        values.push(v);
    }
    up.signal(libc::SIGINT);
    up.wait_exit(Duration::from_secs(60));
}

/// `compose-examples/sensors` runs and ends as its README says.
#[test]
fn sensors_example_runs_as_its_readme_says() {
    let sandbox = Sandbox::new();
    let example = repo().join("compose-examples/sensors");
    let text = std::fs::read_to_string(example.join("shoal.yaml")).unwrap();
    let text = text.replace("../images/", &format!("{}/", images().display()));
    std::fs::copy(example.join("board_temp"), sandbox.path().join("board_temp")).unwrap();
    let file = sandbox.write("shoal.yaml", &text);
    sandbox.ok(&["config", "-q", "-f", arg(&file)]);
    let out = sandbox.ok(&["up", "-f", arg(&file)]);
    let readme = std::fs::read_to_string(example.join("README.md")).unwrap();
    for line in [
        "sensor_sdk: discovered 3 sensors",
        "by id 2 handle 2 channel 0 type 7 value 41.500000 int 41",
        "by name \"board\" handle 2 channel 0 type 7 value 41.500000 int 41",
        "sensor_sdk: wrong type 4242 -> -5",
        "sensor_sdk: wrong handle 3 -> -22",
        "sensor_sdk: wrong name -> -2",
        "sensor_sdk: wrong channel index -> -22",
        "reader exited with code 0",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
        assert!(readme.contains(line), "README lacks {line:?}");
    }
}
