//! The benchmark's guests: the C guests are built the way the Ocre SDK builds its samples
//! (so figures from them are those of SDK programs), and `shoal bench density` runs the
//! SDK-built subscriber unless told otherwise.

use wasmparser::{ConstExpr, DataKind, Operator, Parser, Payload, TypeRef};

use crate::support::{image, Sandbox};

/// What the linker decided about one module's memory layout.
#[derive(Debug, Default)]
struct Layout {
    /// `(module, name, min pages, max pages)` of each imported memory.
    memories: Vec<(String, String, u64, Option<u64>)>,
    /// Initial value of the first global: wasm-ld's `__stack_pointer`, the stack's top.
    stack_top: Option<i32>,
    /// Lowest offset of an active data segment.
    data_start: Option<i32>,
    exports: Vec<String>,
}

fn i32_const(expr: &ConstExpr) -> Option<i32> {
    match expr.get_operators_reader().read().ok()? {
        Operator::I32Const { value } => Some(value),
        _ => None,
    }
}

fn layout(bytes: &[u8]) -> Layout {
    let mut out = Layout::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("a valid module") {
            Payload::ImportSection(section) => {
                for import in section {
                    let import = import.expect("an import");
                    if let TypeRef::Memory(m) = import.ty {
                        out.memories
                            .push((import.module.into(), import.name.into(), m.initial, m.maximum));
                    }
                }
            }
            Payload::GlobalSection(section) => {
                if let Some(global) = section.into_iter().next() {
                    out.stack_top = i32_const(&global.expect("a global").init_expr);
                }
            }
            Payload::DataSection(section) => {
                for data in section {
                    if let DataKind::Active { offset_expr, .. } = data.expect("a data segment").kind {
                        let offset = i32_const(&offset_expr);
                        out.data_start = match (out.data_start, offset) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    out.exports.push(export.expect("an export").name.into());
                }
            }
            _ => {}
        }
    }
    out
}

/// The Ocre SDK links with `--import-memory --export-memory --strip-all --allow-undefined
/// --max-memory=4194304` and nothing else: wasm-ld's default 64 KiB stack comes first, data
/// starts at 0x10000 and the memory is 2 pages (max 64). A guest linked with a smaller stack
/// or a different memory would make the density figures lighter than real SDK programs.
#[test]
fn the_c_guests_are_linked_as_the_sdk_links_them() {
    for name in ["subscriber", "publisher", "idle_subscriber", "hello_c"] {
        for file in [format!("{name}.wasm"), format!("{name}.newlibc.wasm")] {
            let bytes = std::fs::read(image(&file)).expect("read the image");
            let got = layout(&bytes);
            assert_eq!(
                got.memories,
                [("env".to_string(), "memory".to_string(), 2, Some(64))],
                "{file}"
            );
            assert_eq!(
                got.stack_top,
                Some(65536),
                "{file}: the stack is not wasm-ld's default 64 KiB"
            );
            assert_eq!(got.data_start, Some(65536), "{file}: data does not start at 0x10000");
            assert!(got.exports.iter().any(|e| e == "memory"), "{file}: {:?}", got.exports);
        }
    }
}

/// SDK programs export the three dispatcher callbacks of the SDK's event code.
#[test]
fn event_loop_guests_export_the_sdk_callbacks() {
    for file in ["subscriber.wasm", "publisher.newlibc.wasm", "subscriber_temp.wasm"] {
        let got = layout(&std::fs::read(image(file)).expect("read the image"));
        for callback in ["timer_callback", "gpio_callback", "message_callback"] {
            assert!(got.exports.iter().any(|e| e == callback), "{file}: {:?}", got.exports);
        }
    }
}

#[test]
fn density_runs_the_sdk_built_subscriber_by_default_and_says_so() {
    image("subscriber.wasm");
    let sandbox = Sandbox::new();
    let out = sandbox.ok(&["bench", "density", "--max", "3", "--idle-secs", "0"]);
    assert!(out.starts_with("guest: sdk: subscriber.wasm"), "{out}");
    assert!(out.lines().any(|l| l.trim_start().starts_with("3 |")), "{out}");

    let out = sandbox.ok(&[
        "bench",
        "density",
        "--max",
        "2",
        "--idle-secs",
        "0",
        "--guest",
        "minimal",
    ]);
    assert!(
        out.starts_with("guest: minimal: built-in idle-subscriber.wasm"),
        "{out}"
    );

    let out = sandbox.ok(&["bench", "density", "--max", "2", "--mode", "exited"]);
    assert!(out.starts_with("guest: sdk: hello_c.wasm"), "{out}");
}

/// `bench messaging` streams to every subscriber without losing a message (the publisher
/// waits for room, the subscribers read every one) and counts both streams in its JSON.
#[test]
fn the_messaging_streams_reach_every_subscriber_in_full() {
    let sandbox = Sandbox::new();
    let json = sandbox.path().join("messaging.json");
    let out = sandbox.ok(&[
        "bench",
        "messaging",
        "--subscribers",
        "1,3",
        "--rounds",
        "3",
        "--deliveries",
        "1500",
        "--per-worker-subscribers",
        "0",
        "--json",
        crate::support::arg(&json),
    ]);
    assert!(out.contains("Echoed/s"), "{out}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{report}");
    // 1,500 deliveries in all: 1,500 messages to one subscriber, 500 to each of three
    // (more than the 256 a mailbox holds, so the publisher had to wait for room).
    for (row, subscribers) in rows.iter().zip([1u64, 3]) {
        assert_eq!(row["subscribers"], subscribers, "{row}");
        assert_eq!(row["latency_samples"], 3 * subscribers, "{row}");
        // The first round is reported on its own, not among the samples.
        assert!(row["first_round_max_us"].as_f64().unwrap() > 0.0, "{row}");
        assert_eq!(row["stream_delivered"], 1500, "{row}");
        assert_eq!(row["stream_echoed"], 1500, "{row}");
        assert!(row["deliveries_per_second"].as_f64().unwrap() > 0.0, "{row}");
    }
}
