//! shoal: a stack of WebAssembly containers in one small process.
//!
//! Data flows one way: file -> [`spec`] -> plan -> supervisor -> runtime.

pub mod broker;
pub mod check;
pub mod host;
pub mod logs;
pub mod spec;
pub mod images;
pub mod runtime;
pub mod supervisor;
pub mod cli;
