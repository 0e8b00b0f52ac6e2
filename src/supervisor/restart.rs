//! The restart policy in one place: whether a container that ended starts again, after
//! how long, and when its restarts count as a crash loop. Pure, so it is tested without a
//! clock or a guest; the container task ([`super::container`]) only acts on the answers.

use std::time::Duration;

use crate::runtime::ExitStatus;
use crate::spec::RestartPolicy;

/// Runs shorter than this count towards the backoff and the crash-loop report.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);
/// Consecutive quick failures after which a restart is reported as a crash loop.
const CRASH_LOOP_AFTER: u32 = 3;
/// Longest wait between two restarts.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(300);

/// Whether a container that ended with `status` is started again under `policy`, after
/// `restarts` restarts so far. A container shoal stopped is never restarted.
pub fn should_restart(policy: RestartPolicy, status: &ExitStatus, restarts: u32) -> bool {
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::OnFailure { max_retries } => {
            !status.is_success() && !status.is_stop() && max_retries.is_none_or(|max| restarts < max)
        }
        RestartPolicy::Always => !status.is_stop(),
    }
}

/// `restart_delay`, doubled for every quick failure before this one, capped.
pub fn restart_backoff(base: Duration, quick_failures: u32) -> Duration {
    let factor = 1u32.checked_shl(quick_failures.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX_RESTART_DELAY)
}

/// One container's restart history across its runs (kept by its task, reset only when a
/// reload replaces the container).
#[derive(Debug, Default)]
pub(super) struct Restarts {
    /// Restarts so far.
    pub count: u32,
    /// Consecutive runs shorter than [`BACKOFF_RESET_AFTER`].
    quick_failures: u32,
}

/// What to do about one restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Restart {
    pub delay: Duration,
    pub crash_loop: bool,
}

impl Restarts {
    /// A run that lasted `ran_for` ended with `status`: `None` when `policy` does not start
    /// it again, else how long to wait first. The backoff doubles per quick failure; a run
    /// that lasted a while resets it, as Docker does.
    pub fn next(
        &mut self,
        policy: RestartPolicy,
        base_delay: Duration,
        status: &ExitStatus,
        ran_for: Duration,
    ) -> Option<Restart> {
        if !should_restart(policy, status, self.count) {
            return None;
        }
        if ran_for >= BACKOFF_RESET_AFTER {
            self.quick_failures = 0;
        } else {
            self.quick_failures += 1;
        }
        self.count += 1;
        Some(Restart {
            delay: restart_backoff(base_delay, self.quick_failures),
            crash_loop: self.quick_failures >= CRASH_LOOP_AFTER,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        let failed = ExitStatus::Exited(1);
        let trapped = ExitStatus::Trapped("unreachable".into());
        let ok = ExitStatus::Exited(0);
        assert!(!should_restart(RestartPolicy::No, &failed, 0));
        let three = RestartPolicy::OnFailure { max_retries: Some(3) };
        assert!(should_restart(three, &failed, 0) && should_restart(three, &trapped, 2));
        assert!(!should_restart(three, &failed, 3), "at most 3 restarts");
        assert!(!should_restart(three, &ok, 0), "success is not a failure");
        assert!(should_restart(
            RestartPolicy::OnFailure { max_retries: None },
            &failed,
            1000
        ));
        assert!(should_restart(RestartPolicy::Always, &ok, 1000));
        assert!(
            !should_restart(RestartPolicy::Always, &ExitStatus::Killed, 0),
            "a stopped container stays stopped"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        assert_eq!(restart_backoff(base, 0), base);
        assert_eq!(restart_backoff(base, 1), base);
        assert_eq!(restart_backoff(base, 2), base * 2);
        assert_eq!(restart_backoff(base, 4), base * 8);
        assert_eq!(restart_backoff(base, 40), MAX_RESTART_DELAY);
        assert_eq!(restart_backoff(Duration::from_secs(1000), 1), MAX_RESTART_DELAY);
    }

    #[test]
    fn quick_failures_double_the_delay_flag_a_crash_loop_and_a_long_run_resets_them() {
        let base = Duration::from_millis(100);
        let policy = RestartPolicy::OnFailure { max_retries: Some(5) };
        let failed = ExitStatus::Exited(1);
        let quick = Duration::from_millis(5);
        let mut restarts = Restarts::default();
        let delays: Vec<Restart> = (0..3)
            .filter_map(|_| restarts.next(policy, base, &failed, quick))
            .collect();
        assert_eq!(
            delays,
            [
                Restart {
                    delay: base,
                    crash_loop: false
                },
                Restart {
                    delay: base * 2,
                    crash_loop: false
                },
                Restart {
                    delay: base * 4,
                    crash_loop: true
                },
            ]
        );
        let after_a_long_run = restarts.next(policy, base, &failed, BACKOFF_RESET_AFTER);
        assert_eq!(
            after_a_long_run,
            Some(Restart {
                delay: base,
                crash_loop: false
            })
        );
        assert_eq!(restarts.count, 4);
        assert!(restarts.next(policy, base, &failed, quick).is_some(), "the 5th restart");
        assert_eq!(restarts.next(policy, base, &failed, quick), None, "max_retries: 5");
        assert_eq!(restarts.count, 5);
        assert_eq!(
            Restarts::default().next(policy, base, &ExitStatus::Exited(0), quick),
            None
        );
    }
}
