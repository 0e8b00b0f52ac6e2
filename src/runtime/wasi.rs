//! shoal's layer over WASI preview 1's file calls (issue 16, faults 1 and 2).
//!
//! wasmtime-wasi gives every guest `path_open` a real descriptor of the shoal process and
//! runs file I/O on tokio's small blocking pool. Unchecked, one guest could open files until
//! the process had no descriptor left (its neighbours' opens failed, the control socket could
//! not accept), and a guest opening a FIFO nobody writes blocked a pool thread forever. This
//! module shadows `path_open`, `fd_close` and `fd_renumber` in the linker, delegates to the
//! wasmtime-wasi implementation, and around it:
//! - counts the descriptors each container opened and refuses the next open with `EMFILE`
//!   past `limits.max_open_files` (that guest only);
//! - keeps a process-wide cap on the descriptors all guests hold together, below the
//!   process limit by a reserve for the control socket, logs, bridges and the compile cache
//!   ([`reserve_descriptors`]), refusing with `ENFILE` beyond it;
//! - refuses (`EACCES`) to open FIFOs, sockets and device files unless the mount declares
//!   `special_files: true`: the type is read with a stat (which never blocks on them)
//!   before the open that would.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::types::{Fd, Filetype, Lookupflags};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wiggle::{GuestMemory, GuestPtr};

use super::ContainerCtx;
use crate::logs::{LogSink, Stream};
use crate::spec::ContainerSpec;

/// WASI preview 1 errno values (the `errno` enum of `wasi_snapshot_preview1.witx`).
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_ACCES: i32 = 2;
const ERRNO_MFILE: i32 = 33;
const ERRNO_NFILE: i32 = 41;

/// WASI numbers descriptors 0-2 for stdio and gives the preopens (the mounts, in order)
/// the numbers from 3.
const FIRST_PREOPEN: u32 = 3;

/// Descriptors all guests together hold now.
static GUEST_FILES: AtomicUsize = AtomicUsize::new(0);
/// Most descriptors all guests together may hold ([`reserve_descriptors`] sets it).
static GUEST_FILES_CAP: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Descriptors kept for shoal itself whatever the guests do: the control socket and its
/// connections (`ps`, 200 `logs -f`), log files, MQTT bridges, image and cache files.
pub const MIN_RESERVE: u64 = 256;

/// Raise the soft `RLIMIT_NOFILE` to the hard one (guests' files count against the one
/// process) and cap what guests may hold together at that limit minus a reserve: a quarter
/// of it, at least [`MIN_RESERVE`], at most 4096. Returns (limit, guest cap).
pub fn reserve_descriptors() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: setrlimit reads the struct; raising the soft limit up to the hard one
            // needs no privilege. On failure the old soft limit stays and is used below.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    } else {
        limit.rlim_cur = 1024;
    }
    let total = limit.rlim_cur;
    let cap = guest_cap(total);
    GUEST_FILES_CAP.store(usize::try_from(cap).unwrap_or(usize::MAX), Ordering::Relaxed);
    (total, cap)
}

/// What guests may hold of a process limit of `total` descriptors.
fn guest_cap(total: u64) -> u64 {
    let reserve = (total / 4).clamp(MIN_RESERVE, 4096);
    total.saturating_sub(reserve)
}

/// A container's open descriptors, as far as its limit is concerned.
pub struct FileGuard {
    /// Guest descriptor numbers this container opened with `path_open` and holds now.
    opened: HashSet<u32>,
    limit: usize,
    /// Guest descriptors (preopens and what was opened under them) of mounts with
    /// `special_files: true`.
    special: HashSet<u32>,
    container: Arc<str>,
    log: Arc<dyn LogSink>,
    warned_limit: bool,
    warned_special: bool,
}

impl FileGuard {
    /// `container` is the name the warnings give (shared with the rest of the store).
    pub fn new(spec: &ContainerSpec, container: Arc<str>, log: Arc<dyn LogSink>) -> FileGuard {
        let special = (FIRST_PREOPEN..)
            .zip(&spec.mounts)
            .filter(|(_, mount)| mount.special_files)
            .map(|(fd, _)| fd)
            .collect();
        FileGuard {
            opened: HashSet::new(),
            limit: usize::try_from(spec.limits.max_open_files).unwrap_or(usize::MAX),
            special,
            container,
            log,
            warned_limit: false,
            warned_special: false,
        }
    }

    /// Descriptors this container holds now.
    pub fn open_files(&self) -> usize {
        self.opened.len()
    }

    /// The errno refusing one more open, if the container or all guests are at their cap.
    /// Otherwise one slot of the guests' cap is taken for the open (containers open at the
    /// same time, so checking and counting later would overshoot); the caller gives it back
    /// with [`release_slot`] if the open fails.
    fn refuse_open(&mut self) -> Option<i32> {
        if self.opened.len() >= self.limit {
            if !self.warned_limit {
                self.warned_limit = true;
                self.warn(&format!(
                    "an open was refused: the container holds {} files, its `limits.max_open_files` (the guest gets EMFILE)",
                    self.limit
                ));
            }
            return Some(ERRNO_MFILE);
        }
        let cap = GUEST_FILES_CAP.load(Ordering::Relaxed);
        let claimed = GUEST_FILES.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < cap).then_some(n + 1));
        if claimed.is_err() {
            if !self.warned_limit {
                self.warned_limit = true;
                self.warn("an open was refused: the guests together hold every descriptor shoal gives them (the rest is kept for the control socket and logs; the guest gets ENFILE)");
            }
            return Some(ERRNO_NFILE);
        }
        None
    }

    /// Record a successful open whose slot [`FileGuard::refuse_open`] took; `false` if the
    /// number was held already (WASI hands out free numbers, so never), the slot unused.
    fn opened(&mut self, fd: u32, special: bool) -> bool {
        if special {
            self.special.insert(fd);
        }
        self.opened.insert(fd)
    }

    fn warn(&self, text: &str) {
        self.log.line(&self.container, Stream::Warning, text);
    }

    /// Replace the set of held descriptors, keeping the process-wide count in step.
    fn update(&mut self, change: impl FnOnce(&mut HashSet<u32>, &mut HashSet<u32>)) {
        let before = self.opened.len();
        change(&mut self.opened, &mut self.special);
        let after = self.opened.len();
        if after > before {
            GUEST_FILES.fetch_add(after - before, Ordering::Relaxed);
        } else {
            GUEST_FILES.fetch_sub(before - after, Ordering::Relaxed);
        }
    }
}

/// Give back a slot taken by [`FileGuard::refuse_open`] for an open that failed.
fn release_slot() {
    GUEST_FILES.fetch_sub(1, Ordering::Relaxed);
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        // The store (and the WASI context holding the files) goes with the container.
        GUEST_FILES.fetch_sub(self.opened.len(), Ordering::Relaxed);
    }
}

/// The guest's memory and the container's state, as wiggle's generated glue takes them.
/// (shoal's engine has no threads, so no guest memory is shared.)
fn memory_and_ctx<'a>(
    caller: &'a mut Caller<'_, ContainerCtx>,
) -> wasmtime::Result<(GuestMemory<'a>, &'a mut ContainerCtx)> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => {
            let (bytes, ctx) = memory.data_and_store_mut(caller);
            Ok((GuestMemory::Unshared(bytes), ctx))
        }
        _ => Err(wasmtime::Error::msg("missing required memory export")),
    }
}

/// Whether a file of this type may be opened from a mount without `special_files`.
fn ordinary(filetype: Filetype) -> bool {
    matches!(
        filetype,
        Filetype::RegularFile | Filetype::Directory | Filetype::SymbolicLink
    )
}

type OpenArgs = (i32, i32, i32, i32, i32, i64, i64, i32, i32);

async fn path_open(caller: &mut Caller<'_, ContainerCtx>, args: OpenArgs) -> wasmtime::Result<i32> {
    if let Some(errno) = caller.data_mut().files.refuse_open() {
        return Ok(errno);
    }
    let mut kept = false;
    let outcome = open_claimed(caller, args, &mut kept).await;
    if !kept {
        release_slot();
    }
    outcome
}

/// `path_open` once a slot of the guests' cap is held; `kept` is set when the new
/// descriptor was recorded (it then holds the slot until closed).
async fn open_claimed(caller: &mut Caller<'_, ContainerCtx>, args: OpenArgs, kept: &mut bool) -> wasmtime::Result<i32> {
    let (dir, dirflags, path, path_len, oflags, base, inheriting, fdflags, result) = args;
    let dir_fd = dir as u32;
    let special_ok = caller.data().files.special.contains(&dir_fd);
    let (mut memory, ctx) = memory_and_ctx(caller)?;
    if !special_ok {
        // Stat first: a stat never blocks on a FIFO, the open would. A path that does not
        // exist yet (a create) is left to the open.
        let flags = Lookupflags::from_bits_truncate(dirflags as u32);
        let target = GuestPtr::<str>::new((path as u32, path_len as u32));
        if let Ok(stat) = ctx
            .wasi
            .path_filestat_get(&mut memory, Fd::from(dir_fd), flags, target)
            .await
        {
            if !ordinary(stat.filetype) {
                if !ctx.files.warned_special {
                    ctx.files.warned_special = true;
                    let what = match stat.filetype {
                        Filetype::CharacterDevice | Filetype::BlockDevice => "a device file",
                        Filetype::SocketDgram | Filetype::SocketStream => "a socket",
                        _ => "a FIFO or other special file",
                    };
                    ctx.files.warn(&format!(
                        "an open of {what} was refused (EACCES): its mount does not declare `special_files: true`"
                    ));
                }
                return Ok(ERRNO_ACCES);
            }
        }
    }
    let errno = p1::path_open(
        &mut ctx.wasi,
        &mut memory,
        dir,
        dirflags,
        path,
        path_len,
        oflags,
        base,
        inheriting,
        fdflags,
        result,
    )
    .await?;
    if errno == ERRNO_SUCCESS {
        if let Ok(fd) = memory.read(GuestPtr::<u32>::new(result as u32)) {
            *kept = ctx.files.opened(fd, special_ok);
        }
    }
    Ok(errno)
}

async fn fd_close(caller: &mut Caller<'_, ContainerCtx>, fd: i32) -> wasmtime::Result<i32> {
    let (mut memory, ctx) = memory_and_ctx(caller)?;
    let errno = p1::fd_close(&mut ctx.wasi, &mut memory, fd).await?;
    if errno == ERRNO_SUCCESS {
        ctx.files.update(|opened, special| {
            opened.remove(&(fd as u32));
            special.remove(&(fd as u32));
        });
    }
    Ok(errno)
}

async fn fd_renumber(caller: &mut Caller<'_, ContainerCtx>, from: i32, to: i32) -> wasmtime::Result<i32> {
    let (mut memory, ctx) = memory_and_ctx(caller)?;
    let errno = p1::fd_renumber(&mut ctx.wasi, &mut memory, from, to).await?;
    if errno == ERRNO_SUCCESS && from != to {
        let (from, to) = (from as u32, to as u32);
        // `to`'s old descriptor is closed; `from`'s moves to `to`.
        ctx.files.update(|opened, special| {
            opened.remove(&to);
            special.remove(&to);
            if opened.remove(&from) {
                opened.insert(to);
            }
            if special.remove(&from) {
                special.insert(to);
            }
        });
    }
    Ok(errno)
}

/// Shadow the three calls in a linker that already holds wasmtime-wasi's preview 1.
pub fn add_to_linker(linker: &mut Linker<ContainerCtx>) -> wasmtime::Result<()> {
    const MODULE: &str = "wasi_snapshot_preview1";
    linker.allow_shadowing(true);
    linker.func_wrap_async(MODULE, "path_open", |mut caller, args: OpenArgs| {
        Box::new(async move { path_open(&mut caller, args).await })
    })?;
    linker.func_wrap_async(MODULE, "fd_close", |mut caller, (fd,): (i32,)| {
        Box::new(async move { fd_close(&mut caller, fd).await })
    })?;
    linker.func_wrap_async(MODULE, "fd_renumber", |mut caller, (from, to): (i32, i32)| {
        Box::new(async move { fd_renumber(&mut caller, from, to).await })
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_plane_keeps_a_reserve() {
        assert_eq!(guest_cap(1024), 1024 - 256);
        assert_eq!(guest_cap(20_000), 20_000 - 4096);
        assert_eq!(guest_cap(1 << 20), (1 << 20) - 4096);
        assert_eq!(guest_cap(100), 0);
    }
}
