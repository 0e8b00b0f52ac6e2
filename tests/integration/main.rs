//! One integration-test binary (a single link of wasmtime keeps CI fast). Each module drives
//! the real `shoal` binary on real guests built from `compose-examples/guests`, except
//! `fuzz`, which feeds mutated compose files and images to the library.

mod support;
// `mosquitto_sub`/`mosquitto_pub` command lines, and the fleet tests' broker, registry and keys.
mod fleet_fixture;
mod mqtt_cli;

mod bench;
mod bridge;
// compose: per-environment habits and bridges on many boards.
mod compose;
mod config;
mod confinement;
mod control;
mod cores;
mod faults;
// fleet (issue 18): the board's agent.
mod fleet_agent;
mod fuzz;
mod gpio;
mod harden;
mod hostile;
mod image_check;
mod images;
mod lifecycle;
mod memory;
mod messaging;
// Operations (issue 19).
mod ops;
mod precompiled;
mod registry; // registry: OCI registries, compile-cache checksum, image file kinds
mod regressions;
mod reload;
mod sensors;
mod shape;
mod up;

// Added by the `tests` helper (issue 16): the fuzzer's guest-ABI and socket doors, and the
// README's promises.
mod fuzz_abi;
mod fuzz_socket;
mod promises;

// Added by the `heap` helper (issue 15): host heap per parked container.
mod heap;
// Added by the `fanout` helper (issues 15, 19): the publisher in `topics tail`.
mod fanout;
// fleet-ops (issue 18): the operator's commands against real agents, broker and registry.
mod fleet_ops;
