//! The one place the wasmtime [`Config`] is built from a [`RuntimeConfig`].
//!
//! Precompiled images carry the settings they were compiled with, and an engine refuses a
//! file whose settings differ from its own. `Runtime::new` and `shoal images compile` both
//! build their engine here, so an image compiled for a board with the board's settings
//! (same `--memory-reservation`, same shoal) loads there.

use wasmtime::{Config, WasmBacktraceDetails};

use super::RuntimeConfig;

/// The engine settings for `config`, for the machine this shoal runs on. A cross-compiler
/// adds [`Config::target`] on top and nothing else.
pub fn engine_config(config: &RuntimeConfig) -> Config {
    let mut wasm = Config::new();
    wasm.epoch_interruption(true)
        .memory_reservation(config.memory_reservation)
        .memory_reservation_for_growth(config.memory_reservation_for_growth)
        .memory_guard_size(0)
        .guard_before_linear_memory(false)
        .async_stack_size(config.async_stack_size)
        // shoal's own stacks, so a parked container can give back the pages it left.
        .with_host_stack(super::fiber_stack::FiberStacks::shared())
        .max_wasm_stack(config.max_wasm_stack)
        // Trap messages name the wasm function; never let RUST_BACKTRACE switch on
        // debug-info symbolisation, which costs ~32 MB that never comes back.
        .wasm_backtrace_details(WasmBacktraceDetails::Disable);
    wasm
}
