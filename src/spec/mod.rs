//! The compose file: parse, interpolate, validate. No wasmtime, no tokio.

pub mod diagnostic;
pub mod interpolate;
pub mod model;
pub mod node;
pub mod schema;

pub use diagnostic::{render_diagnostics, Diagnostic, Severity};
pub use model::*;
pub use schema::json_schema;
