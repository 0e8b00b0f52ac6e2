//! The WASI preview 1 functions shoal serves (through wasmtime-wasi's `p1` linker), with
//! their core wasm signatures, so the static check can tell a module that imports a WASI
//! function shoal lacks, or one with another signature, before anything starts; otherwise
//! the first sign would be a link error at `up`, with no place in the compose file.
//!
//! The rows were read from the linker wasmtime-wasi 48 builds; a test in the runtime crate
//! (`check::image::tests`) compares this table with that linker, so a wasmtime upgrade that
//! adds or changes a function fails the test instead of the check going stale.

use crate::{HostFn, WasmType};
use WasmType::{I32, I64};

/// The import module name of WASI preview 1.
pub const WASI_P1_MODULE: &str = "wasi_snapshot_preview1";

const fn wasi(name: &'static str, params: &'static [WasmType], results: &'static [WasmType]) -> HostFn {
    HostFn {
        name,
        params,
        results,
        capability: None,
    }
}

/// Every `wasi_snapshot_preview1` function, sorted by name. The capability is always
/// `None`: what a WASI call may touch is decided by the container's mounts, not by grants.
pub const WASI_P1_FUNCTIONS: &[HostFn] = &[
    wasi("args_get", &[I32, I32], &[I32]),
    wasi("args_sizes_get", &[I32, I32], &[I32]),
    wasi("clock_res_get", &[I32, I32], &[I32]),
    wasi("clock_time_get", &[I32, I64, I32], &[I32]),
    wasi("environ_get", &[I32, I32], &[I32]),
    wasi("environ_sizes_get", &[I32, I32], &[I32]),
    wasi("fd_advise", &[I32, I64, I64, I32], &[I32]),
    wasi("fd_allocate", &[I32, I64, I64], &[I32]),
    wasi("fd_close", &[I32], &[I32]),
    wasi("fd_datasync", &[I32], &[I32]),
    wasi("fd_fdstat_get", &[I32, I32], &[I32]),
    wasi("fd_fdstat_set_flags", &[I32, I32], &[I32]),
    wasi("fd_fdstat_set_rights", &[I32, I64, I64], &[I32]),
    wasi("fd_filestat_get", &[I32, I32], &[I32]),
    wasi("fd_filestat_set_size", &[I32, I64], &[I32]),
    wasi("fd_filestat_set_times", &[I32, I64, I64, I32], &[I32]),
    wasi("fd_pread", &[I32, I32, I32, I64, I32], &[I32]),
    wasi("fd_prestat_dir_name", &[I32, I32, I32], &[I32]),
    wasi("fd_prestat_get", &[I32, I32], &[I32]),
    wasi("fd_pwrite", &[I32, I32, I32, I64, I32], &[I32]),
    wasi("fd_read", &[I32, I32, I32, I32], &[I32]),
    wasi("fd_readdir", &[I32, I32, I32, I64, I32], &[I32]),
    wasi("fd_renumber", &[I32, I32], &[I32]),
    wasi("fd_seek", &[I32, I64, I32, I32], &[I32]),
    wasi("fd_sync", &[I32], &[I32]),
    wasi("fd_tell", &[I32, I32], &[I32]),
    wasi("fd_write", &[I32, I32, I32, I32], &[I32]),
    wasi("path_create_directory", &[I32, I32, I32], &[I32]),
    wasi("path_filestat_get", &[I32, I32, I32, I32, I32], &[I32]),
    wasi("path_filestat_set_times", &[I32, I32, I32, I32, I64, I64, I32], &[I32]),
    wasi("path_link", &[I32, I32, I32, I32, I32, I32, I32], &[I32]),
    wasi("path_open", &[I32, I32, I32, I32, I32, I64, I64, I32, I32], &[I32]),
    wasi("path_readlink", &[I32, I32, I32, I32, I32, I32], &[I32]),
    wasi("path_remove_directory", &[I32, I32, I32], &[I32]),
    wasi("path_rename", &[I32, I32, I32, I32, I32, I32], &[I32]),
    wasi("path_symlink", &[I32, I32, I32, I32, I32], &[I32]),
    wasi("path_unlink_file", &[I32, I32, I32], &[I32]),
    wasi("poll_oneoff", &[I32, I32, I32, I32], &[I32]),
    wasi("proc_exit", &[I32], &[]),
    wasi("proc_raise", &[I32], &[I32]),
    wasi("random_get", &[I32, I32], &[I32]),
    wasi("sched_yield", &[], &[I32]),
    wasi("sock_accept", &[I32, I32, I32], &[I32]),
    wasi("sock_recv", &[I32, I32, I32, I32, I32, I32], &[I32]),
    wasi("sock_send", &[I32, I32, I32, I32, I32], &[I32]),
    wasi("sock_shutdown", &[I32, I32], &[I32]),
];

/// The row for a `wasi_snapshot_preview1` function name, if shoal serves it.
pub fn find_wasi(name: &str) -> Option<&'static HostFn> {
    WASI_P1_FUNCTIONS.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_sorted_and_unique() {
        assert!(WASI_P1_FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(
            find_wasi("fd_write").map(|f| f.signature()).as_deref(),
            Some("(param i32 i32 i32 i32) (result i32)")
        );
        assert_eq!(
            find_wasi("proc_exit").map(|f| f.signature()).as_deref(),
            Some("(param i32)")
        );
        assert!(find_wasi("thread_spawn").is_none());
    }
}
