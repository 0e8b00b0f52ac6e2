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
#[cfg(test)]
mod fuzz;
pub mod host;
pub mod images;
pub mod logs;
pub mod procstat;
pub mod runtime;
pub mod spec;
pub mod supervisor;
pub mod watch;
