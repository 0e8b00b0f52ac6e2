//! Progress for long work (the first compile of a stack's images today; image pulls and
//! fleet rollouts are meant to reuse it): a bar on a terminal, nothing at all when stderr
//! is piped or a log file, or when log lines are JSON or journal entries, so scripts and
//! logs never see control characters.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A counted task: `total` steps, each with a message.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar when stderr is a terminal and log lines are plain text; a no-op otherwise.
    pub fn new(total: u64, label: &str) -> Self {
        let shown = std::io::stderr().is_terminal() && !crate::telemetry::structured();
        Progress::with_target(total, label, shown)
    }

    fn with_target(total: u64, label: &str, shown: bool) -> Self {
        if !shown || total == 0 {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {prefix} [{pos}/{len}] {wide_msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        // The spinner moves during one long step (a compile of several seconds on a Pi).
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    /// True when something is drawn.
    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    /// Say what the next step is.
    pub fn step(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_owned());
        }
    }

    /// One step done.
    pub fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Print a line above the bar (or plainly when there is none).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_drawn_when_not_shown_or_empty() {
        assert!(!Progress::with_target(3, "x", false).is_shown());
        assert!(!Progress::with_target(0, "x", true).is_shown());
        let p = Progress::with_target(2, "images", true);
        assert!(p.is_shown());
        p.step("a.wasm");
        p.inc();
    }
}
