//! Talking to systemd when it runs shoal as a `Type=notify` service: `READY=1` once the
//! stack is up, `WATCHDOG=1` at half of `WATCHDOG_USEC` with a `STATUS=` line of counts,
//! and `STOPPING=1` when the teardown begins. Outside systemd (`NOTIFY_SOCKET` unset)
//! every call does nothing.
//!
//! The notify protocol is one datagram of `KEY=VALUE` lines to a unix socket (sd_notify(3));
//! it is written here in a few lines rather than through a crate.
//!
//! The watchdog pings come from a task on the executor that runs the containers, so they
//! stop when that executor stalls (a guest or a host function holding its thread): the
//! executor's health is what systemd's `WatchdogSec=` should see, not just the process's.

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

/// Spawn the watchdog task on the current executor when systemd asked for one: every
/// interval it sends `WATCHDOG=1` and the status line, until `stop`.
pub fn spawn_watchdog(board: Board, stop: CancellationToken) {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    tracing::debug!("systemd watchdog: pinging every {interval:?}");
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            notify(&format!("WATCHDOG=1\nSTATUS={}", status_line(&board)));
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

    #[test]
    fn an_empty_board_says_so() {
        assert_eq!(status_line(&Board::default()), "no containers");
    }
}
