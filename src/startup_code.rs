//! Code that only starts a stack, unmapped from the process once the stack is up.
//!
//! Why: a detached `shoal up` spends its life parked, yet the code that parsed the flags and
//! the file, validated the stack, loaded its images and started its containers stays mapped
//! (and counted in its RSS) for as long as it runs: the kernel keeps a file-backed page
//! mapped once touched, and maps 64 KiB around every page a process touches.
//!
//! How: release builds on x86_64 Linux lay out their functions in the order of
//! `build/startup-functions.txt` (see `build.rs` and `scripts/startup-order.sh`): first the
//! functions a running server kept running after its stack was up (the steady state:
//! parking, the broker, the control socket's requests), then [`shoal_startup_code_begin`],
//! then the functions that ran only before (start-up) or in other commands, then
//! [`shoal_startup_code_end`]. Once the stack is up, [`stack_is_up`] unmaps the whole pages
//! between the two markers (`madvise(MADV_DONTNEED)`).
//!
//! What that costs: nothing is lost. The pages are the binary's own, unmodified, so they
//! stay in the page cache; a function of that range that runs again (a reload, `down`, a
//! request the ordering run did not see) faults its pages back in from there (a minor
//! fault, no disk read while the page cache holds them) and they count in RSS again. Pages
//! that keep being used are never hidden: they are outside the range, or come back at once.
//! `SHOAL_KEEP_STARTUP_CODE=1` leaves the mapping alone (for A/B measurements).

use std::sync::atomic::{AtomicBool, Ordering};

/// Marks where the start-up-only code begins in the ordered text. Never called; its address
/// is what counts. The body differs from [`shoal_startup_code_end`]'s so that the two are
/// never merged into one function (rustc merges identical functions).
#[no_mangle]
#[inline(never)]
pub extern "C" fn shoal_startup_code_begin() -> u32 {
    std::hint::black_box(0x5348_4f41)
}

/// Marks where the start-up-only code ends in the ordered text (see
/// [`shoal_startup_code_begin`]).
#[no_mangle]
#[inline(never)]
pub extern "C" fn shoal_startup_code_end() -> u32 {
    std::hint::black_box(0x454e_4421)
}

/// The markers' type, for their addresses.
type Marker = extern "C" fn() -> u32;

/// Whether this binary was linked with the ordering list (set by `build.rs`): without it the
/// markers sit wherever the linker put them and the range between them means nothing.
const ORDERED: bool = option_env!("SHOAL_STARTUP_ORDERED").is_some();

/// Set once the range has been released, so that a second stack in the same process (a
/// bench, a test) does not repeat it.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// What [`stack_is_up`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// This many bytes of start-up code were unmapped.
    Bytes(usize),
    /// Nothing: the binary is not ordered, `SHOAL_KEEP_STARTUP_CODE` is set, the range was
    /// released already, or the kernel refused (the reason is logged at debug level).
    Nothing,
}

/// The stack is up: unmap the start-up-only code of an ordered release binary (see the
/// module's doc). Cheap and safe to call in any build.
///
/// It calls [`shoal_startup_code_begin`] first, whatever the build: `scripts/startup-order.sh`
/// has callgrind split its profile there (`--dump-after`), so that the functions that run
/// after this point are the steady ones it lays out first.
pub fn stack_is_up() -> Released {
    std::hint::black_box(shoal_startup_code_begin as Marker)();
    if !ORDERED || keep_requested(std::env::var_os("SHOAL_KEEP_STARTUP_CODE").as_deref()) {
        return Released::Nothing;
    }
    if RELEASED.swap(true, Ordering::SeqCst) {
        return Released::Nothing;
    }
    let begin = shoal_startup_code_begin as Marker as usize;
    let end = shoal_startup_code_end as Marker as usize;
    let Some((start, len)) = inner_pages(begin, end, page_size()) else {
        return Released::Nothing;
    };
    release_range(start, len)
}

/// The stack starts to go down. Does nothing but call [`shoal_startup_code_end`], where
/// `scripts/startup-order.sh` has callgrind end the steady part of its profile
/// (`--dump-before`): tearing down runs once, so its code belongs with the start-up code.
pub fn stack_goes_down() {
    std::hint::black_box(shoal_startup_code_end as Marker)();
}

/// `SHOAL_KEEP_STARTUP_CODE` set to anything but empty or `0`.
fn keep_requested(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// The whole pages strictly inside `[begin, end)` (the markers' own pages may hold steady
/// code too, so they stay), as (start, length); `None` when there are none or the markers
/// are out of order.
fn inner_pages(begin: usize, end: usize, page: usize) -> Option<(usize, usize)> {
    if page == 0 || end <= begin {
        return None;
    }
    let start = begin.checked_add(page)? & !(page - 1);
    let stop = end & !(page - 1);
    (stop > start).then(|| (start, stop - start))
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

#[cfg(target_os = "linux")]
fn release_range(start: usize, len: usize) -> Released {
    // SAFETY: the range lies inside this binary's text (between two of its functions, both
    // in the executable's one text segment), a private mapping of the file that nothing
    // writes: dropping its page table entries loses no data, and any code in it that runs
    // again faults its pages back in from the file.
    let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    if rc == 0 {
        tracing::debug!(
            "start-up code released: {} KiB of text unmapped (it refaults from the page cache if it runs again)",
            len / 1024
        );
        Released::Bytes(len)
    } else {
        tracing::debug!(
            "start-up code kept mapped: madvise failed: {}",
            std::io::Error::last_os_error()
        );
        Released::Nothing
    }
}

#[cfg(not(target_os = "linux"))]
fn release_range(_start: usize, _len: usize) -> Released {
    Released::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_pages_strictly_between_the_markers() {
        // Markers inside pages 1 and 5: pages 2, 3 and 4 go.
        assert_eq!(inner_pages(0x1010, 0x5020, 0x1000), Some((0x2000, 0x3000)));
        // A marker at a page's first byte: that page still holds steady code around it.
        assert_eq!(inner_pages(0x1000, 0x5000, 0x1000), Some((0x2000, 0x3000)));
        // Same or neighbouring pages: nothing whole in between.
        assert_eq!(inner_pages(0x1010, 0x1f00, 0x1000), None);
        assert_eq!(inner_pages(0x1010, 0x2010, 0x1000), None);
        // Out of order (an unordered link): nothing.
        assert_eq!(inner_pages(0x9000, 0x1000, 0x1000), None);
        assert_eq!(inner_pages(usize::MAX - 10, usize::MAX, 0x1000), None);
    }

    #[test]
    fn the_keep_switch() {
        use std::ffi::OsStr;
        assert!(!keep_requested(None));
        assert!(!keep_requested(Some(OsStr::new(""))));
        assert!(!keep_requested(Some(OsStr::new("0"))));
        assert!(keep_requested(Some(OsStr::new("1"))));
    }

    #[test]
    fn the_markers_are_two_functions() {
        // Merged into one, they would mark an empty range.
        assert_ne!(
            shoal_startup_code_begin as Marker as usize,
            shoal_startup_code_end as Marker as usize
        );
        assert_ne!(shoal_startup_code_begin(), shoal_startup_code_end());
    }
}
