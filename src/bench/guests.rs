//! The benchmarks' guests: the SDK-built C guests from `compose-examples/images/` (what
//! users compare with the article) and the built-in minimal guests, in WAT so that
//! `shoal bench` can also run with no build step.
//!
//! `IDLE` and `ECHO` are shaped like Ocre-SDK subscribers: they import their memory
//! (`env.memory`, 2..64 pages, as the SDK links them), register a message dispatcher,
//! subscribe to `bench/`, and poll with `ocre_get_event` + `ocre_sleep(10)` like
//! `ocre_process_events`. `ECHO` also answers every message of 8 bytes or more on `ack/` with
//! 16 bytes: the 8-byte publish time it received and its own receive time (WASI realtime
//! clock, ns); shorter messages it reads and frees without answering.

use std::path::{Path, PathBuf};

use super::BenchError;

/// Which guest `shoal bench density` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DensityGuest {
    /// The C guests built with the Ocre SDK's flags and event loop (`scripts/build-guests.sh`):
    /// `subscriber.wasm` (idle mode) or `hello_c.wasm` (exited mode)
    Sdk,
    /// The built-in WAT guests: no libc, a 2-page memory, the same host calls
    Minimal,
}

impl DensityGuest {
    /// The image file of the SDK-built guest for `idle` (`true`) or exited mode.
    pub fn sdk_file(idle: bool) -> &'static str {
        if idle {
            "subscriber.wasm"
        } else {
            "hello_c.wasm"
        }
    }

    /// What the printed table and the JSON say about the guest.
    pub fn describe(self, image: &str) -> String {
        match self {
            DensityGuest::Sdk => format!(
                "sdk: {image} (C built like Ocre SDK programs: the SDK's link flags and 64 KiB stack, its event loop)"
            ),
            DensityGuest::Minimal => format!("minimal: built-in {image} (WAT, no libc, same host calls)"),
        }
    }
}

/// Where the SDK-built guests are looked for: `compose-examples/images/` under the current
/// directory (a checkout, as the scripts run it), then under the source tree this shoal was
/// built from. Reading them at run time (not embedding them) keeps the figures from an
/// image as `scripts/build-guests.sh` last built it.
pub fn sdk_image_dirs() -> Vec<PathBuf> {
    let relative = Path::new("compose-examples").join("images");
    let mut dirs = Vec::new();
    if let Ok(here) = std::env::current_dir() {
        dirs.push(here.join(&relative));
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(&relative);
    if !dirs.contains(&source) {
        dirs.push(source);
    }
    dirs
}

/// The first `dirs/file` that exists, or an error naming every place looked and the fix.
pub fn find_sdk_image(dirs: &[PathBuf], file: &str) -> Result<PathBuf, BenchError> {
    dirs.iter()
        .map(|dir| dir.join(file))
        .find(|path| path.is_file())
        .ok_or_else(|| BenchError::MissingGuest {
            file: file.to_string(),
            looked: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// What every SDK-shaped subscriber in WAT imports: its memory (2..64 pages, as the SDK
/// links them, exported again), the dispatcher and subscription calls and the poll loop's
/// `ocre_get_event` + `ocre_sleep`. A macro so that `concat!` can put modules together.
macro_rules! subscriber_imports {
    () => {
        r#"
  (import "env" "memory" (memory $mem 2 64))
  (export "memory" (memory $mem))
  (import "env" "ocre_register_dispatcher" (func $register (param i32 i32) (result i32)))
  (import "env" "ocre_subscribe_message" (func $subscribe (param i32) (result i32)))
  (import "env" "ocre_get_event" (func $get_event (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "ocre_sleep" (func $sleep (param i32) (result i32)))"#
    };
}
// For the fiber stack's tests (`runtime::fiber_stack`), whose guest parks like these.
#[cfg(all(test, feature = "compiler", target_os = "linux"))]
pub(crate) use subscriber_imports;

/// Shared body; `ECHO_CODE` is replaced by the echo instructions or by nothing.
const SUBSCRIBER: &str = concat!(
    "\n(module",
    subscriber_imports!(),
    r#"
  (import "env" "ocre_messaging_free_module_event_data" (func $free (param i32 i32 i32) (result i32)))
  (import "env" "ocre_publish_message" (func $publish (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (data (i32.const 1024) "bench/\00")
  (data (i32.const 1040) "message_callback\00")
  (data (i32.const 1072) "ack/\00")
  (data (i32.const 1088) "application/octet-stream\00")
  (func (export "message_callback") (param i32 i32 i32 i32 i32))
  (func (export "_start")
    (drop (call $register (i32.const 3) (i32.const 1040)))
    (drop (call $subscribe (i32.const 1024)))
    (loop $poll
      (if (i32.eqz (call $get_event (i32.const 2048) (i32.const 2052) (i32.const 2056)
                                    (i32.const 2060) (i32.const 2064) (i32.const 2068)))
        (then
          (if (i32.eq (i32.load (i32.const 2048)) (i32.const 3))
            (then
              ECHO_CODE
              (drop (call $free (i32.load (i32.const 2056)) (i32.load (i32.const 2060))
                                (i32.load (i32.const 2064)))))))
        (else (drop (call $sleep (i32.const 10)))))
      (br $poll))))
"#
);

const ECHO_CODE: &str = r#"
              (if (i32.ge_u (i32.load (i32.const 2068)) (i32.const 8))
                (then
                  (i64.store (i32.const 2112) (i64.load (i32.load (i32.const 2064))))
                  (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 2120)))
                  (drop (call $publish (i32.const 1072) (i32.const 1088) (i32.const 2112) (i32.const 16)))))
"#;

/// A WASI command that prints one line and returns, like the article's hello-world.
const HELLO: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from a shoal bench container\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 35))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#;

/// Burns CPU without any host call, forever (`shoal bench isolation`).
const SPIN: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $spin (br $spin))))
"#;

/// `shoal bench gpio`: registers a callback on port 0 pin 0 (the `button` line) and, in an
/// SDK-style poll loop, sets port 0 pin 1 (the `relay` line) to each edge's state.
const GPIO_FOLLOWER: &str = r#"
(module
  (import "env" "memory" (memory $mem 2 64))
  (export "memory" (memory $mem))
  (import "env" "ocre_register_dispatcher" (func $register (param i32 i32) (result i32)))
  (import "env" "ocre_gpio_register_callback" (func $listen (param i32 i32) (result i32)))
  (import "env" "ocre_gpio_pin_set" (func $set (param i32 i32 i32) (result i32)))
  (import "env" "ocre_get_event" (func $get_event (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "ocre_sleep" (func $sleep (param i32) (result i32)))
  (data (i32.const 1024) "gpio_callback\00")
  (func (export "gpio_callback") (param i32 i32 i32))
  (func (export "_start")
    (drop (call $register (i32.const 1) (i32.const 1024)))
    (drop (call $listen (i32.const 0) (i32.const 0)))
    (loop $poll
      (if (i32.eqz (call $get_event (i32.const 2048) (i32.const 2052) (i32.const 2056)
                                    (i32.const 2060) (i32.const 2064) (i32.const 2068)))
        (then
          (if (i32.eq (i32.load (i32.const 2048)) (i32.const 1))
            (then (drop (call $set (i32.const 0) (i32.const 1) (i32.load (i32.const 2060)))))))
        (else (drop (call $sleep (i32.const 10)))))
      (br $poll))))
"#;

pub fn gpio_follower() -> wasmtime::Result<Vec<u8>> {
    assemble(GPIO_FOLLOWER)
}

/// The built-in guests as wasm bytes.
pub fn idle_subscriber() -> wasmtime::Result<Vec<u8>> {
    assemble(&SUBSCRIBER.replace("ECHO_CODE", ""))
}

pub fn echo_subscriber() -> wasmtime::Result<Vec<u8>> {
    assemble(&SUBSCRIBER.replace("ECHO_CODE", ECHO_CODE))
}

pub fn hello() -> wasmtime::Result<Vec<u8>> {
    assemble(HELLO)
}

#[cfg(feature = "compiler")]
pub(crate) fn assemble(text: &str) -> wasmtime::Result<Vec<u8>> {
    Ok(wat::parse_str(text)?)
}

/// A lean shoal could turn the text into wasm but not the wasm into machine code, so say
/// at once what works instead.
#[cfg(not(feature = "compiler"))]
pub(crate) fn assemble(_text: &str) -> wasmtime::Result<Vec<u8>> {
    Err(wasmtime::Error::msg(
        "the built-in benchmark guests need a compiler and this shoal has none (it was built without the \
         `compiler` feature)\n  hint: `shoal bench density --image GUEST.cwasm` runs a precompiled guest; make \
         one on a bigger machine with `shoal images compile GUEST.wasm --target TRIPLE`",
    ))
}

pub fn spin() -> wasmtime::Result<Vec<u8>> {
    assemble(SPIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_guest_is_found_in_the_first_folder_that_has_it() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        std::fs::write(second.path().join("subscriber.wasm"), b"\0asm").unwrap();
        let dirs = [first.path().to_path_buf(), second.path().to_path_buf()];
        let found = find_sdk_image(&dirs, DensityGuest::sdk_file(true)).unwrap();
        assert_eq!(found, second.path().join("subscriber.wasm"));
        std::fs::write(first.path().join("subscriber.wasm"), b"\0asm").unwrap();
        let found = find_sdk_image(&dirs, "subscriber.wasm").unwrap();
        assert_eq!(found, first.path().join("subscriber.wasm"));
    }

    #[test]
    fn a_missing_sdk_guest_names_the_folders_and_the_build_script() {
        let empty = tempfile::tempdir().unwrap();
        let dirs = [empty.path().to_path_buf()];
        let message = find_sdk_image(&dirs, DensityGuest::sdk_file(false))
            .unwrap_err()
            .to_string();
        assert!(message.contains("hello_c.wasm"), "{message}");
        assert!(message.contains(&empty.path().display().to_string()), "{message}");
        assert!(message.contains("scripts/build-guests.sh"), "{message}");
        assert!(message.contains("--guest minimal"), "{message}");
    }

    #[test]
    fn the_source_tree_is_always_searched() {
        let dirs = sdk_image_dirs();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("compose-examples/images");
        assert!(dirs.contains(&source), "{dirs:?}");
    }

    #[test]
    fn built_in_guests_are_valid_wasm() {
        for bytes in [
            super::idle_subscriber(),
            super::echo_subscriber(),
            super::hello(),
            super::spin(),
            super::gpio_follower(),
        ] {
            let bytes = bytes.unwrap();
            wasmparser::Validator::new().validate_all(&bytes).unwrap();
        }
    }
}
