//! Fiber stacks that shoal allocates itself, so a parked container can give back the pages
//! of its stack it no longer uses.
//!
//! Every container runs on its own wasmtime fiber, and a fiber's stack is an `mmap` of
//! [`super::RuntimeConfig::async_stack_size`] plus a guard page: address space, of which only
//! the touched pages cost memory. A guest's start-up (wasi-libc's initialisation, the first
//! `printf` through wasmtime-wasi) reaches deeper than its event loop ever does again, so
//! without help a parked SDK-built subscriber keeps a page of stack it will not read again:
//! 4 KB of every parked container, ~39 MB at 10,000 (`shoal bench density`).
//!
//! wasmtime lets the embedder supply the stacks ([`wasmtime::StackCreator`]); shoal's
//! [`FiberStacks`] makes them as wasmtime would (a private anonymous mapping, the lowest page
//! inaccessible) and records each one's bounds. When a container is about to park in an
//! event wait, [`release_unused`] (called on the container's own fiber) finds the stack it
//! runs on and hands the whole pages below the current stack pointer back to the kernel
//! (`madvise(MADV_DONTNEED)`): everything below the stack pointer is dead, and a page touched
//! again later is a fresh zero page, as it was the first time. A guest that recurses deep
//! after a release still works (it faults the pages in again), the guard page is never
//! touched, and a wasm stack overflow still traps at `max_wasm_stack`, which is checked by
//! the compiled code, not by the mapping.
//!
//! Why not from outside the fiber, where the exact suspended stack pointer is known: that
//! pointer is kept inside the stack at a place private to wasmtime's fiber code; reading it
//! would tie shoal to that layout. From inside, the stack pointer is the function's own.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use wasmtime::{StackCreator, StackMemory};

/// Room kept below the stack pointer when releasing: what the rest of the parking path
/// (the `madvise` call itself, registering the wakers) uses, so it does not fault a page
/// back in at once.
const PARKING_ROOM: usize = 1024;

/// The bounds of every live stack [`FiberStacks`] made: top -> lowest usable address (just
/// above the guard page). A stack is in it from its creation to its unmapping.
fn registry() -> &'static Mutex<BTreeMap<usize, usize>> {
    static STACKS: OnceLock<Mutex<BTreeMap<usize, usize>>> = OnceLock::new();
    STACKS.get_or_init(|| Mutex::new(BTreeMap::new()))
}

fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(page)
            .ok()
            .filter(|p| p.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// The [`StackCreator`] shoal gives its engine (see the module docs).
#[derive(Debug, Default)]
pub struct FiberStacks;

impl FiberStacks {
    pub fn shared() -> Arc<dyn StackCreator> {
        Arc::new(FiberStacks)
    }
}

// SAFETY: each stack is a fresh private mapping of at least `size` usable bytes, page
// aligned, zero filled (a new anonymous mapping always is, which also satisfies `zeroed`),
// with an inaccessible guard page below it, and it lives until wasmtime drops it.
unsafe impl StackCreator for FiberStacks {
    fn new_stack(&self, size: usize, _zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        Ok(Box::new(FiberStack::map(size)?))
    }
}

/// One fiber stack: `[base, base + guard)` inaccessible, `[base + guard, base + len)` the
/// stack, growing down from `base + len`.
#[derive(Debug)]
struct FiberStack {
    base: usize,
    len: usize,
    guard: usize,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot map a {size}-byte fiber stack: {source} (too many containers for the address space or `vm.max_map_count`?)"
)]
struct MapError {
    size: usize,
    source: std::io::Error,
}

impl FiberStack {
    fn map(size: usize) -> Result<Self, MapError> {
        let page = page_size();
        let error = |source| MapError { size, source };
        let usable = size
            .max(page)
            .checked_next_multiple_of(page)
            .ok_or_else(|| error(std::io::Error::from(std::io::ErrorKind::OutOfMemory)))?;
        let len = usable
            .checked_add(page)
            .ok_or_else(|| error(std::io::Error::from(std::io::ErrorKind::OutOfMemory)))?;
        // SAFETY: a new private anonymous mapping at an address of the kernel's choosing;
        // nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(error(std::io::Error::last_os_error()));
        }
        let stack = FiberStack {
            base: base as usize,
            len,
            guard: page,
        };
        // SAFETY: the range lies inside the mapping just made.
        let rc = unsafe {
            libc::mprotect(
                (stack.base + page) as *mut libc::c_void,
                usable,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if rc != 0 {
            return Err(error(std::io::Error::last_os_error())); // `stack` unmaps on drop
        }
        registry()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(stack.top_address(), stack.base + stack.guard);
        Ok(stack)
    }

    fn top_address(&self) -> usize {
        self.base + self.len
    }
}

// SAFETY: the pointers describe a mapping this value owns until it is dropped.
unsafe impl StackMemory for FiberStack {
    fn top(&self) -> *mut u8 {
        self.top_address() as *mut u8
    }

    fn range(&self) -> Range<usize> {
        self.base + self.guard..self.top_address()
    }

    fn guard_range(&self) -> Range<*mut u8> {
        self.base as *mut u8..(self.base + self.guard) as *mut u8
    }
}

impl Drop for FiberStack {
    fn drop(&mut self) {
        let mut stacks = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        stacks.remove(&self.top_address());
        // Unmapped under the lock, so that a lookup never finds bounds whose pages have
        // already been given to another mapping.
        // SAFETY: the whole mapping made in `map`, no longer used by any fiber.
        let rc = unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
        if rc != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot unmap a fiber stack");
        }
    }
}

/// The stack pointer of the caller's frame (this is inlined), or `None` on architectures
/// shoal has no instruction for (then nothing is released).
#[inline(always)]
fn stack_pointer() -> Option<usize> {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register, touches no memory.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register, touches no memory.
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        return None;
    }
    #[allow(unreachable_code)]
    Some(sp)
}

/// Give back the pages of the current fiber stack below the stack pointer (less
/// [`PARKING_ROOM`]); returns how many bytes were released. Does nothing (0) when not
/// running on a stack [`FiberStacks`] made (a test calling a host function directly, another
/// engine).
///
/// Call it on the container's fiber right before it parks: the frames below this point are
/// dead, and the pages a later deeper call needs come back as zero pages.
#[inline(never)]
pub fn release_unused() -> usize {
    let Some(sp) = stack_pointer() else { return 0 };
    let page = page_size();
    let lowest = {
        let stacks = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match stacks.range(sp..).next() {
            Some((_, &lowest)) if lowest <= sp => lowest,
            _ => return 0,
        }
        // The lock is released before the system call: the stack cannot be unmapped while
        // this fiber runs on it.
    };
    let end = sp.saturating_sub(PARKING_ROOM) & !(page - 1);
    if end <= lowest {
        return 0;
    }
    // SAFETY: `[lowest, end)` is the part of this fiber's own stack below its stack pointer:
    // no live frame is there, and after MADV_DONTNEED the range reads as zeros and stays
    // mapped read-write.
    let rc = unsafe { libc::madvise(lowest as *mut libc::c_void, end - lowest, libc::MADV_DONTNEED) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot release unused fiber stack pages");
        return 0;
    }
    #[cfg(test)]
    LAST_RELEASED.with(|r| r.set(lowest..end));
    end - lowest
}

/// When a container last gave back its stack, so that it does so at its first park and then
/// at most once in each second of a process-wide clock, however many messages wake it.
///
/// A release is a system call (and, when it finds pages, a TLB flush on every core running
/// this process), about a microsecond: paid on every park it would add that to every
/// delivery, where a parked subscriber's whole wake-up costs a few. What matters is the
/// parked state of a container that stays idle: its first park, after the deep start-up,
/// gives back what start-up left, and a container that handled a burst gives back what the
/// burst left at its next park a second later.
#[derive(Debug, Default)]
pub struct StackRelease {
    /// The whole second (since [`origin`], plus one) of the last release; 0: never released.
    last: u32,
}

/// The clock [`StackRelease`] counts from (the first park of the process).
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl StackRelease {
    /// Call on the container's fiber right before it parks; `now` is the time the caller
    /// already read. Returns the bytes given back (see [`release_unused`]).
    pub fn before_parking(&mut self, now: Instant) -> usize {
        let second = u32::try_from(now.saturating_duration_since(origin()).as_secs())
            .unwrap_or(u32::MAX - 1)
            .saturating_add(1);
        if self.last != 0 && second <= self.last {
            return 0;
        }
        self.last = second;
        release_unused()
    }
}

#[cfg(test)]
thread_local! {
    // The range the last `release_unused` on this thread gave back (tests look at it).
    static LAST_RELEASED: std::cell::Cell<Range<usize>> = const { std::cell::Cell::new(0..0) };
}

#[cfg(all(test, feature = "compiler", target_os = "linux"))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use wasmtime::Module;

    use super::*;
    use crate::broker::Broker;
    use crate::host::testutil::{config, Collect, ALL};
    use crate::runtime::{ExitStatus, Probe, Runtime, RuntimeConfig};

    /// Recurses 4,000 calls deep (a few hundred KiB of fiber stack), parks in an event
    /// wait until a message comes, then recurses AFTER calls deep: exit code 0 when both
    /// recursions return the same sum, 1 when they differ.
    const DEEP_THEN_PARK: &str = concat!(
        "(module",
        crate::bench::guests::subscriber_imports!(),
        r#"
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (data (i32.const 1024) "wake/\00")
  (data (i32.const 1040) "message_callback\00")
  (func (export "message_callback") (param i32 i32 i32 i32 i32))
  (func $deep (param $n i32) (result i64)
    (if (result i64) (i32.eqz (local.get $n))
      (then (i64.const 0))
      (else (i64.add (i64.extend_i32_u (local.get $n))
                     (call $deep (i32.sub (local.get $n) (i32.const 1)))))))
  (func (export "_start") (local $first i64)
    (local.set $first (call $deep (i32.const 4000)))
    (drop (call $register (i32.const 3) (i32.const 1040)))
    (drop (call $subscribe (i32.const 1024)))
    (block $woken
      (loop $poll
        (br_if $woken (i32.eqz (call $get_event (i32.const 2048) (i32.const 2052) (i32.const 2056)
                                                (i32.const 2060) (i32.const 2064) (i32.const 2068))))
        (drop (call $sleep (i32.const 10)))
        (br $poll)))
    (call $exit (i64.ne (local.get $first) (call $deep (i32.const AFTER))))))
"#
    );

    fn resident_pages(range: &Range<usize>) -> usize {
        let page = page_size();
        let mut flags = vec![0u8; (range.end - range.start) / page];
        // SAFETY: `range` is page aligned, inside a live mapping, and `flags` has one byte
        // per page of it.
        let rc = unsafe {
            libc::mincore(
                range.start as *mut libc::c_void,
                range.end - range.start,
                flags.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
        flags.iter().filter(|f| **f & 1 == 1).count()
    }

    /// Runs [`DEEP_THEN_PARK`] with its second recursion `after` calls deep; checks that
    /// its park gave back the stack below it, then wakes it.
    fn deep_then_park(after: u32) -> ExitStatus {
        let executor = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let runtime = Runtime::new(&RuntimeConfig::default()).unwrap();
        let wasm = wat::parse_str(DEEP_THEN_PARK.replace("AFTER", &after.to_string())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep.wasm");
        std::fs::write(&path, &wasm).unwrap();
        let stack = crate::bench::replicated_stack(&path, 1, &["messaging"]).unwrap();
        let module = Module::new(runtime.engine(), &wasm).unwrap();
        let broker = Broker::new();
        let log = Arc::new(Collect::default());
        LAST_RELEASED.with(|r| r.set(0..0));
        executor.block_on(async {
            let prepared = runtime
                .prepare(
                    &stack.containers[0],
                    &module,
                    config("deep", ALL, &broker, &log),
                    Arc::new(Probe::default()),
                )
                .await
                .map_err(|e| e.to_string())
                .unwrap();
            // The guest runs on this thread, so the release it makes is seen here.
            let run = tokio::spawn(prepared.start(Default::default()));
            // Not a timing check: a bound so that a release that never comes fails the test
            // instead of hanging it.
            let mut waited = Duration::ZERO;
            let released = loop {
                let range = LAST_RELEASED.with(|r| r.take());
                if !range.is_empty() {
                    break range;
                }
                assert!(!run.is_finished(), "the guest ended before it parked");
                assert!(waited < Duration::from_secs(120), "the parked guest released nothing");
                tokio::time::sleep(Duration::from_millis(5)).await;
                waited += Duration::from_millis(5);
            };
            // 4,000 wasm frames reach far below the parking point: all of that is gone.
            assert!(released.end - released.start >= 64 << 10, "released only {released:?}");
            assert_eq!(resident_pages(&released), 0);
            broker.publish("wake/now", "text/plain", b"x").unwrap();
            run.await.unwrap()
        })
    }

    #[test]
    fn a_parked_guest_gives_back_its_deep_stack_and_recurses_again_unharmed() {
        assert_eq!(deep_then_park(4000), ExitStatus::Exited(0));
    }

    #[test]
    fn a_stack_overflow_after_a_release_still_traps() {
        match deep_then_park(1 << 30) {
            ExitStatus::Trapped(why) => assert!(why.contains("call stack exhausted"), "{why}"),
            other => panic!("expected a stack overflow trap, got {other:?}"),
        }
    }

    #[test]
    fn a_container_releases_at_its_first_park_then_once_a_second() {
        let mut release = StackRelease::default();
        // The start of a whole second of the release clock, so that +10 ms is the same one.
        let now = origin() + Duration::from_secs(1_000);
        release.before_parking(now);
        let first = release.last;
        assert_ne!(first, 0);
        release.before_parking(now + Duration::from_millis(10));
        assert_eq!(release.last, first, "a second release within the same second");
        release.before_parking(now + Duration::from_millis(2100));
        assert!(release.last > first);
    }
}
