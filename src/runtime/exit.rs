//! How a container's run ended, told precisely: its own exit code, the trap and its reason,
//! an allocation failure it did not survive (the memory cap refused a growth, then it
//! trapped), or an error of the host rather than of the guest.

use wasmtime_wasi::I32Exit;

use super::limiter::MemoryLimiter;
use super::ExitStatus;

/// Serve WASI's `proc_exit` in place of wasmtime-wasi's, which refuses a status of 126 or
/// more with a host error (WASI's own rule for its range). C programs exit with any `int`:
/// `return -1` from `main` is `proc_exit(4294967295)`, and POSIX shows that as 255. So the
/// status is taken as a shell would see it, and the guest ends with its own exit code.
pub fn serve_proc_exit<T: 'static>(linker: &mut wasmtime::Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let served = linker
        .func_wrap(
            "wasi_snapshot_preview1",
            "proc_exit",
            |_: wasmtime::Caller<'_, T>, status: i32| -> wasmtime::Result<()> {
                Err(I32Exit(exit_code(status as u32)).into())
            },
        )
        .map(|_| ());
    linker.allow_shadowing(false);
    served
}

/// The exit code a POSIX shell reports for a `proc_exit(status)`: its low 8 bits, except
/// that a non-zero status never reads as success (256 would otherwise be 0).
pub fn exit_code(status: u32) -> i32 {
    match (status & 0xff) as i32 {
        0 if status != 0 => 255,
        code => code,
    }
}

/// Turn the result of `_start` into an exit status. `limiter` tells whether the guest's
/// memory cap refused a growth before it ended.
pub fn classify(result: wasmtime::Result<()>, limiter: &MemoryLimiter) -> ExitStatus {
    let error = match result {
        Ok(()) => return ExitStatus::Exited(0),
        Err(error) => error,
    };
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return ExitStatus::Exited(exit.0);
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        let why = trap_reason(*trap);
        return match limiter.first_denial() {
            Some(denial) => ExitStatus::OutOfMemory(format!("{denial}, then it trapped: {why}")),
            None => ExitStatus::Trapped(why),
        };
    }
    // WASI preview 1 says a function given a pointer outside memory "shall trap";
    // wasmtime-wasi ends the guest with this error for it.
    if let Some(guest) = error.downcast_ref::<wiggle::GuestError>() {
        let what = match innermost(guest) {
            wiggle::GuestError::PtrNotAligned(..) => "an unaligned pointer",
            _ => "memory outside the guest",
        };
        return ExitStatus::Trapped(format!("a WASI call was given {what}: {guest}"));
    }
    ExitStatus::HostError(root_message(error.as_ref()))
}

/// Why instantiation failed: a trap in the module's start function, the memory cap, or
/// anything else (a table or memory the engine could not create).
pub fn classify_start(error: wasmtime::Error, limiter: &MemoryLimiter) -> ExitStatus {
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return ExitStatus::Trapped(trap_reason(*trap));
    }
    ExitStatus::Failed(start_failure(&error, limiter))
}

/// Why a memory, table or instance could not be created.
pub fn start_failure(error: &wasmtime::Error, limiter: &MemoryLimiter) -> String {
    match limiter.first_denial() {
        Some(denial) => format!("its initial memory does not fit: {denial}; raise `limits.memory`"),
        None => root_message(error.as_ref()),
    }
}

/// wasmtime's text for the trap, with what to do about the ones shoal's settings cause.
fn trap_reason(trap: wasmtime::Trap) -> String {
    match trap {
        wasmtime::Trap::StackOverflow => {
            "call stack exhausted (the wasm stack limit; shoal's `--max-wasm-stack` sets it for every container)".into()
        }
        other => {
            let text = other.to_string();
            text.strip_prefix("wasm trap: ").map(str::to_owned).unwrap_or(text)
        }
    }
}

/// The error a WASI call's wrapper (`In func ...`) carries.
fn innermost(error: &wiggle::GuestError) -> &wiggle::GuestError {
    match error {
        wiggle::GuestError::InFunc { err, .. } => innermost(err),
        other => other,
    }
}

/// An error and every cause below it, on one line. A cause whose text the message already
/// holds is left out: many errors print their source themselves, and "x (os error 2): x
/// (os error 2)" said it twice.
pub fn root_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_is_told_apart() {
        let plain = MemoryLimiter::new(Some(65536));
        assert_eq!(classify(Ok(()), &plain), ExitStatus::Exited(0));
        assert_eq!(
            classify(Err(wasmtime::Error::new(I32Exit(7))), &plain),
            ExitStatus::Exited(7)
        );
        assert_eq!(
            classify(
                Err(wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached)),
                &plain
            ),
            ExitStatus::Trapped("wasm `unreachable` instruction executed".into())
        );
        let overflow = classify(Err(wasmtime::Error::new(wasmtime::Trap::StackOverflow)), &plain);
        assert!(
            matches!(&overflow, ExitStatus::Trapped(why) if why.contains("--max-wasm-stack")),
            "{overflow:?}"
        );
        let wasi = classify(Err(wasmtime::Error::new(wiggle::GuestError::PtrOverflow)), &plain);
        assert_eq!(
            wasi,
            ExitStatus::Trapped("a WASI call was given memory outside the guest: Pointer overflow".into())
        );
        let region = wiggle::Region { start: 3, len: 8 };
        let unaligned = classify(
            Err(wasmtime::Error::new(wiggle::GuestError::InFunc {
                modulename: "wasi_snapshot_preview1",
                funcname: "fd_write",
                location: "iovs",
                err: Box::new(wiggle::GuestError::PtrNotAligned(region, 4)),
            })),
            &plain,
        );
        assert!(
            matches!(&unaligned, ExitStatus::Trapped(why) if why.starts_with("a WASI call was given an unaligned pointer")),
            "{unaligned:?}"
        );
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let said = io.to_string();
        let twice = wasmtime::Error::new(io).context(format!("cannot open /x: {said}"));
        assert_eq!(
            root_message(twice.as_ref()),
            format!("cannot open /x: {said}"),
            "a cause is said once"
        );
        let host = classify(Err(wasmtime::Error::msg("disk on fire")), &plain);
        assert_eq!(host, ExitStatus::HostError("disk on fire".into()));
        assert_eq!(host.to_string(), "ended by a host error: disk on fire");
    }

    #[test]
    fn exit_statuses_read_as_a_shell_reads_them() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(125), 125);
        assert_eq!(exit_code(200), 200);
        assert_eq!(exit_code(-1i32 as u32), 255);
        assert_eq!(exit_code(256), 255, "a failure never reads as success");
        assert_eq!(exit_code(257), 1);
    }

    #[test]
    fn a_trap_after_a_refused_growth_is_out_of_memory() {
        use wasmtime::ResourceLimiter;
        let mut full = MemoryLimiter::new(Some(65536));
        assert!(!full.memory_growing(0, 2 * 65536, None).unwrap());
        let status = classify(Err(wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached)), &full);
        assert_eq!(
            status.to_string(),
            "ran out of memory: `limits.memory` (64 KiB) refused a growth of 128 KiB (it held 0 B), then it trapped: wasm `unreachable` instruction executed"
        );
        // A guest that handles the failure and exits keeps its own exit code.
        assert_eq!(
            classify(Err(wasmtime::Error::new(I32Exit(1))), &full),
            ExitStatus::Exited(1)
        );
        let start = classify_start(wasmtime::Error::msg("memory minimum too large"), &full);
        assert!(
            matches!(&start, ExitStatus::Failed(why) if why.contains("raise `limits.memory`")),
            "{start:?}"
        );
    }
}
