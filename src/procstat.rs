//! What this process costs, read from the kernel: resident memory, its peak, CPU time.
//! And giving freed heap back, which glibc does not do on its own. Also the one clock
//! shoal stamps its events, log lines and status rows with ([`unix_now`]).

use std::time::{Duration, SystemTime};

/// Now, in seconds since the Unix epoch (with sub-microsecond digits): the time of every
/// event, log line and `started_at`, and what `--since` counts back from.
pub fn unix_now() -> f64 {
    unix_seconds(SystemTime::now())
}

/// `when` in seconds since the Unix epoch; 0 for a time before it (a clock set wrong).
pub fn unix_seconds(when: SystemTime) -> f64 {
    when.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`, ...); `None` off Linux.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Resident set size now, in KiB.
pub fn rss_kib() -> Option<u64> {
    status_kib("VmRSS")
}

/// Anonymous resident memory now (heap, stacks, linear memories), in KiB: what `down
/// --verify` checks. File-backed pages (the shoal binary's code, mapped compile-cache
/// files) are page cache the kernel may drop at any time, not memory a stack kept.
pub fn anon_kib() -> Option<u64> {
    status_kib("RssAnon")
}

/// The glibc tunables shoal runs with: one arena, and a per-thread cache (tcache) of at most
/// 3 freed chunks of each size up to 128 bytes.
///
/// One arena: with containers spread over several executor threads (issue 15), glibc gave
/// each thread its own arena, and what they held after a teardown could not be trimmed:
/// `down --verify` after 1,000 containers left 3.9 MB behind with 2 workers (1.1 MB even
/// with 1 worker, from the blocking pool's threads) and 0 with one arena. The measured
/// cost, after teardown of 10,000 containers, anonymous memory above the start: 68-72 KB
/// with one arena, 196-204 KB with two, 0.3-59 MB with glibc's default of 8 per core.
///
/// The small cache: with one arena every `malloc` takes the arena's lock, and the workers
/// met on it at every wake-up. A parked subscriber's wake-up allocates three chunks: the
/// two boxed futures of its next `ocre_sleep` (wasmtime boxes an async host call's future,
/// and its own around it; 120 bytes each) and its ack's message (72 bytes). A fan-out to
/// 1,000 subscribers on 2 workers made 110-150 `futex` calls per round without a cache,
/// 45-60 with this one (`perf stat -e syscalls:sys_enter_futex shoal bench messaging
/// --workers 2 --subscribers 1000 --deliveries 1000 --rounds 400`); the p50 fell by a
/// fifth, the fan-out rate rose by a quarter. 3 chunks of each size cover the two boxes a
/// wake-up frees and takes again; 128 bytes, the sizes on that path. What they hold is
/// bounded (8 sizes x 3 chunks per thread): after a teardown they keep 100-140 KB more
/// anonymous memory than no cache did, and it does not grow (`shoal bench soak`: flat over
/// 1,000 cycles). glibc's default cache (7 chunks of every size up to 1,032 bytes) grew
/// by ~170 KB over those 1,000 cycles; see [`reexec_with_malloc_tunables`].
const MALLOC_TUNABLE: &str = "glibc.malloc.tcache_count=3:glibc.malloc.tcache_max=128:glibc.malloc.arena_max=1";

/// Re-execute this program once with [`MALLOC_TUNABLE`]: glibc's per-thread malloc cache
/// (tcache) cut down to small chunks, and one arena. Returns when the setting is already
/// there, or when it cannot be done (then shoal runs with glibc's defaults).
///
/// Why a cut-down cache: glibc's default keeps up to 7 freed chunks of every size up to
/// 1,032 bytes per thread, outside the arenas. `malloc_trim` cannot give their pages back,
/// and which pages they pin drifts as stacks come and go: 1,000 up/down cycles (`shoal
/// bench soak`) grew the anonymous memory by ~170 KB with it and not at all without it,
/// and `bench density` left 256 KB instead of 72 KB after its teardown. glibc reads the
/// setting only from `GLIBC_TUNABLES` when a program starts, hence the `exec` (same
/// process id, so `up -d` and systemd keep tracking the right one). A `GLIBC_TUNABLES` that
/// already sets `glibc.malloc.tcache_count` is left as it is: that is how to choose another
/// cache, and how to measure without one arena (`GLIBC_TUNABLES=glibc.malloc.tcache_count=3:
/// glibc.malloc.tcache_max=128 shoal bench ...`).
pub fn reexec_with_malloc_tunables() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;

        let current = std::env::var_os("GLIBC_TUNABLES");
        let current_text = current.as_deref().map(|v| v.to_string_lossy()).unwrap_or_default();
        if current_text.contains("glibc.malloc.tcache_count") {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let Ok(path) = CString::new(exe.as_os_str().as_bytes()) else {
            return;
        };
        let Ok(args) = std::env::args_os()
            .map(|arg| CString::new(arg.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
        else {
            return;
        };
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|arg| arg.as_ptr()).collect();
        argv.push(std::ptr::null());
        let tunables = if current_text.is_empty() {
            MALLOC_TUNABLE.to_string()
        } else {
            format!("{current_text}:{MALLOC_TUNABLE}")
        };
        // Called before anything starts a thread: nothing else reads the environment while
        // it changes.
        std::env::set_var("GLIBC_TUNABLES", tunables);
        // SAFETY: `path` and the strings behind `argv` are NUL-terminated and outlive the
        // call, and `argv` ends with a null pointer. `execv`, unlike `execvp` (which
        // `std::process::Command` uses), never retries through `/bin/sh`: a binary the
        // kernel cannot run itself (an aarch64 shoal under qemu-user) only makes it fail.
        unsafe {
            libc::execv(path.as_ptr(), argv.as_ptr());
        }
        // It failed: carry on as we are, with the environment as it was.
        match current {
            Some(value) => std::env::set_var("GLIBC_TUNABLES", value),
            None => std::env::remove_var("GLIBC_TUNABLES"),
        }
    }
}

/// Bytes malloc has handed out and not had back, in KiB: live heap, whatever the arenas
/// around it hold. Anonymous memory growing while this stays flat is fragmentation, not a
/// leak. `None` where the C library cannot tell (not glibc).
pub fn heap_in_use_kib() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 has no preconditions and returns a plain struct.
        let info = unsafe { libc::mallinfo2() };
        Some(((info.uordblks + info.hblkhd) / 1024) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Peak resident set size of the process, in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM")
}

/// User + system CPU time of the whole process (all threads), microsecond resolution.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let micros = |t: libc::timeval| Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64);
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// Return freed heap to the kernel.
///
/// After dropping thousands of stores glibc keeps ~100 MB of free heap mapped (it trims
/// only the top of the main arena, and only past a threshold). shoal calls this after every
/// teardown so that memory freed by containers shows up as freed.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Memory before, at the peak of, and after one stack's life, for `down`-style reports.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Reclamation {
    pub baseline_kib: u64,
    pub peak_kib: u64,
    pub after_kib: u64,
    /// Anonymous part of `baseline_kib` and `after_kib` (see [`anon_kib`]).
    #[serde(default)]
    pub baseline_anon_kib: u64,
    #[serde(default)]
    pub after_anon_kib: u64,
}

impl Reclamation {
    /// Read the memory now, against a baseline taken earlier with [`Reclamation::baseline`].
    pub fn since(baseline: (u64, u64)) -> Self {
        Reclamation {
            baseline_kib: baseline.0,
            peak_kib: peak_rss_kib().unwrap_or(0),
            after_kib: rss_kib().unwrap_or(0),
            baseline_anon_kib: baseline.1,
            after_anon_kib: anon_kib().unwrap_or(0),
        }
    }

    /// `(VmRSS, RssAnon)` now.
    pub fn baseline() -> (u64, u64) {
        (rss_kib().unwrap_or(0), anon_kib().unwrap_or(0))
    }

    /// Anonymous memory still held after teardown beyond the baseline (0 when below).
    pub fn residue_kib(&self) -> u64 {
        self.after_anon_kib.saturating_sub(self.baseline_anon_kib)
    }

    /// The verdict of `down --verify`: the residue (KiB) when it is within
    /// `threshold_kib`, else what was not returned.
    pub fn verify(&self, threshold_kib: u64) -> Result<u64, Unreturned> {
        let residue_kib = self.residue_kib();
        if residue_kib > threshold_kib {
            return Err(Unreturned {
                residue_kib,
                threshold_kib,
            });
        }
        Ok(residue_kib)
    }
}

/// Memory a stack kept after its teardown, beyond what `down --verify` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{residue_kib} KB of memory was not returned after teardown (the threshold is {threshold_kib} KB)")]
pub struct Unreturned {
    pub residue_kib: u64,
    pub threshold_kib: u64,
}

impl std::fmt::Display for Reclamation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |kib: u64| kib as f64 / 1024.0;
        write!(
            f,
            "memory: {:.1} MB before the containers, {:.1} MB at the peak, {:.1} MB after teardown ({} KB above the start; anonymous memory {} KB above)",
            mb(self.baseline_kib),
            mb(self.peak_kib),
            mb(self.after_kib),
            self.after_kib as i64 - self.baseline_kib as i64,
            self.after_anon_kib as i64 - self.baseline_anon_kib as i64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reclamation(baseline_anon_kib: u64, after_anon_kib: u64) -> Reclamation {
        Reclamation {
            baseline_kib: 6_000,
            peak_kib: 60_000,
            after_kib: 6_500,
            baseline_anon_kib,
            after_anon_kib,
        }
    }

    #[test]
    fn verify_fails_when_more_than_the_threshold_stayed_behind() {
        let leaky = reclamation(2_000, 2_000 + 8_192);
        let error = leaky
            .verify(1_024)
            .expect_err("an 8 MiB residue fails a 1 MiB threshold");
        assert_eq!(
            error,
            Unreturned {
                residue_kib: 8_192,
                threshold_kib: 1_024
            }
        );
        assert_eq!(
            error.to_string(),
            "8192 KB of memory was not returned after teardown (the threshold is 1024 KB)"
        );
        assert_eq!(
            reclamation(2_000, 3_024).verify(1_024),
            Ok(1_024),
            "the threshold itself passes"
        );
        assert_eq!(
            reclamation(2_000, 1_500).verify(0),
            Ok(0),
            "less than the baseline is no residue"
        );
    }

    #[test]
    fn unix_time_is_now_and_never_negative() {
        let before = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let now = unix_now();
        assert!(now >= before && now - before < 60.0, "{before} {now}");
        assert_eq!(unix_seconds(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), 0.0);
    }

    #[test]
    fn reads_this_process() {
        // Touching 64 MiB must show in the resident set: a reader that returns a constant
        // (or another process's figure) fails here.
        let rss = rss_kib().expect("VmRSS on Linux");
        assert!(rss > 0);
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        let grown = rss_kib().expect("VmRSS on Linux");
        assert!(
            grown >= rss + (48 << 10),
            "RSS {rss} KiB -> {grown} KiB after touching 64 MiB"
        );
        assert!(peak_rss_kib().unwrap() >= grown);
        drop(block);
        // Spinning must advance the CPU time (it moves in clock ticks, so spin until it
        // does; the 30 s wall-clock bound is a hang guard, not a timing assertion).
        let spent = cpu_time();
        let began = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_time() <= spent {
            for i in 0..1_000_000u64 {
                x = x.wrapping_add(std::hint::black_box(i));
            }
            assert!(began.elapsed() < Duration::from_secs(30), "CPU time stuck at {spent:?}");
        }
        std::hint::black_box(x);
        release_free_memory();
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        assert!(
            heap_in_use_kib().is_some_and(|kib| kib > 0),
            "a test binary has live heap"
        );
    }
}
