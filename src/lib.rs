//! shoal: a stack of WebAssembly containers in one small process.
//!
//! Data flows one way: file -> [`spec`] -> plan -> supervisor -> runtime.

pub mod bench;
pub mod bridge;
pub mod broker;
pub mod check;
pub mod cli;
pub mod control;
pub mod controller;
pub mod executor;
// Fleet deployment through an MQTT broker (issue 18).
pub mod fleet;
pub mod gpio;
pub mod host;
pub mod images;
pub mod local_server;
pub mod logs;
pub mod procstat;
pub mod registry;
// glibc targets: `pow`, `log`, `log10` without loading libm.so.6 (0.55 MB of RSS).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod libm_shim;
pub mod runtime;
pub mod startup_code;
pub mod supervisor;
pub mod watch;
// Operations (issue 19): log lines, metrics, systemd.
pub mod metrics;
pub mod progress;
pub mod systemd;
pub mod telemetry;

/// The compose file (its own crate, with no engine in it), under the name the modules use.
pub use shoal_spec as spec;
