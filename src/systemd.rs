//! Talking to systemd when it runs shoal as a `Type=notify` service: `READY=1` once the
//! stack is up, `WATCHDOG=1` at half of `WATCHDOG_USEC` with a `STATUS=` line of counts,
//! and `STOPPING=1` when the teardown begins. Outside systemd (`NOTIFY_SOCKET` unset)
//! every call does nothing.
//!
//! The notify protocol is one datagram of `KEY=VALUE` lines to a unix socket (sd_notify(3));
//! it is written here in a few lines rather than through a crate.
//!
//! A ping is sent only while every executor thread makes progress: each worker of the
//! stack's executor and of every pinned one (`cpus:`) must, since the last check, have
//! parked (idle is healthy) or finished polls, read from tokio's runtime metrics
//! ([`Heartbeat`]). A ping from one task alone was not enough with several workers: a
//! healthy worker kept pinging while another sat stalled inside one poll (a blocking call
//! run on the executor by mistake), and systemd never saw it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::supervisor::Board;

/// Send `state` (newline-separated assignments) to `NOTIFY_SOCKET`; false when there is
/// no socket or the send failed (systemd is then not listening: nothing to do about it).
pub fn notify(state: &str) -> bool {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(sender) = std::os::unix::net::UnixDatagram::unbound() else {
        return false;
    };
    let bytes = socket.as_encoded_bytes();
    if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        match std::os::unix::net::SocketAddr::from_abstract_name(abstract_name) {
            Ok(addr) => sender.send_to_addr(state.as_bytes(), &addr).is_ok(),
            Err(_) => false,
        }
    } else {
        sender.send_to(state.as_bytes(), PathBuf::from(socket)).is_ok()
    }
}

/// How often to ping: half of `WATCHDOG_USEC`, when the watchdog is on for this process
/// (`WATCHDOG_PID`, when set, must be ours: a child must not ping for its parent).
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_interval_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != me {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// "5 running, 1 restarting" from the board's states (the first word of each).
pub fn status_line(board: &Board) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for info in board.infos() {
        let word = info.state.split_whitespace().next().unwrap_or("unknown").to_owned();
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some((_, n)) => *n += 1,
            None => counts.push((word, 1)),
        }
    }
    if counts.is_empty() {
        return "no containers".to_owned();
    }
    counts
        .iter()
        .map(|(word, n)| format!("{n} {word}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One worker as the watchdog saw it: tokio's park/unpark count (odd while parked) and
/// its busy time, which a worker publishes when it parks and at its maintenance between
/// polls (after every poll on the stack's executor: `event_interval(1)`; every 61 polls on a
/// pinned one, tokio's default, which with guest polls of at most an epoch tick is under a
/// second: an interval shorter than that would see a busy pinned worker as stalled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WorkerSample {
    park_unpark: u64,
    busy_nanos: u64,
}

impl WorkerSample {
    /// The worker's published state; `None` where tokio has no 64-bit metrics (a target
    /// without 64-bit atomics), where the worker then counts as healthy.
    #[cfg(target_has_atomic = "64")]
    fn of(metrics: &tokio::runtime::RuntimeMetrics, worker: usize) -> Option<WorkerSample> {
        Some(WorkerSample {
            park_unpark: metrics.worker_park_unpark_count(worker),
            busy_nanos: u64::try_from(metrics.worker_total_busy_duration(worker).as_nanos()).unwrap_or(u64::MAX),
        })
    }

    #[cfg(not(target_has_atomic = "64"))]
    fn of(_: &tokio::runtime::RuntimeMetrics, _: usize) -> Option<WorkerSample> {
        None
    }

    fn parked(self) -> bool {
        self.park_unpark % 2 == 1
    }
}

/// Tells, at each watchdog interval, which executor threads made no progress since the
/// previous check: a worker is healthy when it is parked (idle) or its sample changed (it
/// parked and woke, or finished polls); a worker awake with the same sample as last time
/// has been inside one poll for the whole interval.
#[derive(Default)]
pub struct Heartbeat {
    last: HashMap<(String, usize), WorkerSample>,
}

impl Heartbeat {
    /// The stalled workers of `executors` (named as [`crate::executor::executors`] names
    /// them), as "NAME worker N"; empty when all made progress.
    pub fn stalled(&mut self, executors: &[(String, tokio::runtime::Handle)]) -> Vec<String> {
        let mut stalled = Vec::new();
        for (name, handle) in executors {
            let metrics = handle.metrics();
            for worker in 0..metrics.num_workers() {
                let Some(now) = WorkerSample::of(&metrics, worker) else {
                    continue;
                };
                let before = self.last.insert((name.clone(), worker), now);
                if !now.parked() && before == Some(now) {
                    stalled.push(format!("{name} worker {worker}"));
                }
            }
        }
        stalled
    }
}

/// Spawn the watchdog task on the current executor when systemd asked for one: every
/// interval it sends `WATCHDOG=1` and the status line while every executor thread made
/// progress ([`Heartbeat`]), and only a `STATUS=` naming the stalled ones otherwise, until
/// `stop`. The task itself needs a worker to run, so a wholly stalled executor stops the
/// pings too.
pub fn spawn_watchdog(board: Board, stop: CancellationToken) {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    tracing::debug!("systemd watchdog: pinging every {interval:?} while every executor thread makes progress");
    let main = tokio::runtime::Handle::current();
    tokio::spawn(async move {
        let mut heartbeat = Heartbeat::default();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let stalled = heartbeat.stalled(&crate::executor::executors(&main));
            if stalled.is_empty() {
                notify(&format!("WATCHDOG=1\nSTATUS={}", status_line(&board)));
            } else {
                let names = stalled.join(", ");
                tracing::error!("systemd watchdog: no ping, executor threads stalled inside one poll: {names}");
                notify(&format!("STATUS=stalled: {names}"));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ping_interval_is_half_the_watchdog_and_only_for_our_pid() {
        assert_eq!(
            watchdog_interval_from(Some("4000000"), None, 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            watchdog_interval_from(Some("4000000"), Some("7"), 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(watchdog_interval_from(Some("4000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval_from(None, None, 7), None);
    }

    /// Calls `check` until it gives a value. A hang guard, not a timing assertion.
    fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let began = std::time::Instant::now();
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(began.elapsed() < Duration::from_secs(60), "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A worker held inside one poll (a task blocking its thread, standing in for a
    /// blocking call run on the executor by mistake) is named, while its idle neighbour,
    /// parked, is not; once released, no worker is stalled.
    #[test]
    fn a_worker_stuck_in_one_poll_stops_the_heartbeat_and_an_idle_one_does_not() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .event_interval(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        runtime.spawn(async move {
            let _ = started_tx.send(());
            let _ = released.recv();
        });
        started.recv().expect("the blocking task started");
        let executors = [("test".to_owned(), runtime.handle().clone())];
        let mut heartbeat = Heartbeat::default();
        let stalled = until("exactly the blocked worker stalled", || {
            let stalled = heartbeat.stalled(&executors);
            (stalled.len() == 1).then_some(stalled)
        });
        assert!(stalled[0].starts_with("test worker "), "{stalled:?}");
        // It stays stalled however often it is asked: nothing it publishes changes.
        assert!(heartbeat.stalled(&executors).contains(&stalled[0]));
        release.send(()).expect("release");
        until("no worker stalled once released", || {
            heartbeat.stalled(&executors).is_empty().then_some(())
        });
    }

    #[test]
    fn an_empty_board_says_so() {
        assert_eq!(status_line(&Board::default()), "no containers");
    }
}
