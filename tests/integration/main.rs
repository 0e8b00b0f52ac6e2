//! One integration-test binary (a single link of wasmtime keeps CI fast). Each module drives
//! the real `shoal` binary on real guests built from `compose-examples/guests`, except
//! `fuzz`, which feeds mutated compose files and images to the library.

mod support;

mod bench;
mod bridge;
mod config;
mod confinement;
mod control;
mod faults;
mod fuzz;
mod gpio;
mod hostile;
mod image_check;
mod images;
mod memory;
mod messaging;
mod precompiled;
mod regressions;
mod reload;
mod sensors;
mod shape;
mod up;
