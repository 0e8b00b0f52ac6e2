//! The compose file: parse, interpolate, validate. No wasmtime, no tokio.

pub mod model;

pub use model::*;
