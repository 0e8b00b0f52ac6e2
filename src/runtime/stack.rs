//! The wasm stack depth limit, and why it is one setting for the whole process.
//!
//! wasmtime checks a guest's stack depth against `Config::max_wasm_stack`, a property of
//! the `Engine`: every store of an engine shares it, so shoal cannot give each container its
//! own. shoal runs one engine per process (one compile cache, one ticker), so the limit is
//! a command-line setting (`--max-wasm-stack`, env `SHOAL_MAX_WASM_STACK`, default
//! 512 KiB) rather than a `limits:` key; `limits.stack` in a compose file is refused with
//! a hint saying so. A guest that recurses deeper traps with "call stack exhausted" and is
//! reported as trapped; the host and the other containers are not affected.
//!
//! Each container's fiber stack holds the wasm stack plus the host functions it calls, so
//! it is kept [`HOST_HEADROOM`] larger than the wasm limit. Fiber stacks are address space:
//! only the pages a guest touches cost memory.

use super::RuntimeConfig;
use crate::spec::units::ByteSize;

/// Smallest accepted limit: less breaks ordinary guests (wasi-libc's start-up alone).
pub const MIN: usize = 64 << 10;
/// Largest accepted limit: a recursion this deep is a bug, and every container reserves
/// this much address space.
pub const MAX: usize = 64 << 20;
/// Room on a fiber's stack for host functions, above the wasm stack.
pub const HOST_HEADROOM: usize = 512 << 10;

#[derive(Debug, thiserror::Error)]
pub enum StackSizeError {
    #[error("--max-wasm-stack `{0}` is out of range: use 64KiB to 64MiB (default 512KiB)")]
    OutOfRange(ByteSize),
}

/// Set the wasm stack limit (and the fiber stack that must hold it) from the command line.
pub fn apply(config: &mut RuntimeConfig, size: Option<ByteSize>) -> Result<(), StackSizeError> {
    let Some(size) = size else { return Ok(()) };
    let bytes = usize::try_from(size.bytes())
        .ok()
        .filter(|b| (MIN..=MAX).contains(b))
        .ok_or(StackSizeError::OutOfRange(size))?;
    config.max_wasm_stack = bytes;
    config.async_stack_size = config.async_stack_size.max(bytes + HOST_HEADROOM);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fiber_stack_grows_with_the_wasm_stack() {
        let mut config = RuntimeConfig::default();
        apply(&mut config, None).unwrap();
        assert_eq!(config.max_wasm_stack, 512 << 10);
        apply(&mut config, Some(ByteSize(4 << 20))).unwrap();
        assert_eq!(config.max_wasm_stack, 4 << 20);
        assert_eq!(config.async_stack_size, (4 << 20) + HOST_HEADROOM);
        assert!(crate::runtime::Runtime::new(&config).is_ok());
        assert_eq!(
            apply(&mut config, Some(ByteSize(1024))).unwrap_err().to_string(),
            "--max-wasm-stack `1KiB` is out of range: use 64KiB to 64MiB (default 512KiB)"
        );
    }
}
