//! One integration-test binary (a single link of wasmtime keeps CI fast). Each module drives
//! the real `shoal` binary on real guests built from `compose-examples/guests`.

mod support;

mod config;
mod control;
mod images;
mod messaging;
mod precompiled;
mod reload;
mod up;
