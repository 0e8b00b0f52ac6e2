//! Where container output and shoal's messages about a container go.
//!
//! The runtime and the host functions write through this trait so that `up` (prefixed,
//! coloured lines on the terminal), tests (collected lines) and later the control plane
//! (ring buffers) can each decide what to do with a line without the producers knowing.

pub mod terminal;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
    /// shoal's own lifecycle messages about the container (started, exited, ...).
    System,
    /// shoal's warnings about the container (denied capability, dropped messages, ...).
    Warning,
}

/// Receives whole lines (without the trailing newline).
pub trait LogSink: Send + Sync + 'static {
    fn line(&self, container: &str, stream: Stream, text: &str);
}

/// One stored line, as `shoal logs` gets it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub container: String,
    /// `stdout`, `stderr`, `system` or `warning`.
    pub stream: String,
    pub text: String,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::System => "system",
            Stream::Warning => "warning",
        }
    }
}

/// Lines buffered per live follower before it starts missing some.
const LIVE_LINES: usize = 1024;

/// Keeps the last lines of every container in memory for `shoal logs`, and streams new
/// ones to followers (`logs -f`).
///
/// Bounded twice: [`LogBook::LINES_PER_CONTAINER`] lines per container (a chatty container
/// cannot push a quiet one's lines out) and a live buffer per follower; a follower that
/// falls behind misses lines instead of growing memory.
pub struct LogBook {
    lines: std::sync::Mutex<std::collections::HashMap<String, std::collections::VecDeque<LogLine>>>,
    /// Created on the first [`LogBook::snapshot`] and dropped on [`LogBook::clear`]: a
    /// broadcast ring keeps its last values alive, and scattered lines would pin pages of
    /// freed containers.
    live: std::sync::Mutex<Option<tokio::sync::broadcast::Sender<LogLine>>>,
    per_container: usize,
}

impl Default for LogBook {
    fn default() -> Self {
        LogBook::with_capacity(LogBook::LINES_PER_CONTAINER)
    }
}

impl LogBook {
    /// Default lines kept per container (at most ~1 MiB per container with 1 KiB lines).
    pub const LINES_PER_CONTAINER: usize = 1000;

    pub fn with_capacity(per_container: usize) -> Self {
        LogBook {
            lines: Default::default(),
            live: std::sync::Mutex::new(None),
            per_container: per_container.max(1),
        }
    }

    /// Forget every stored line (the stack is gone).
    pub fn clear(&self) {
        *self.lines.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The stored lines (all containers, in time order) and a receiver for new ones,
    /// taken together so that no line falls between them.
    pub fn snapshot(&self) -> (Vec<LogLine>, tokio::sync::broadcast::Receiver<LogLine>) {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<LogLine> = lines.values().flat_map(|q| q.iter().cloned()).collect();
        all.sort_by(|a, b| a.time.total_cmp(&b.time));
        let live = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| tokio::sync::broadcast::Sender::new(LIVE_LINES))
            .subscribe();
        (all, live)
    }
}

impl LogSink for LogBook {
    fn line(&self, container: &str, stream: Stream, text: &str) {
        let line = LogLine {
            time: crate::procstat::unix_now(),
            container: container.to_owned(),
            stream: stream.name().to_owned(),
            text: text.to_owned(),
        };
        {
            let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            let queue = lines.entry(container.to_owned()).or_default();
            if queue.len() >= self.per_container {
                queue.pop_front();
            }
            queue.push_back(line.clone());
        }
        if let Some(live) = self.live.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = live.send(line);
        }
    }
}

/// Sends every line to several sinks (the terminal and the log book).
pub struct Tee(pub Vec<std::sync::Arc<dyn LogSink>>);

impl LogSink for Tee {
    fn line(&self, container: &str, stream: Stream, text: &str) {
        for sink in &self.0 {
            sink.line(container, stream, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_book_keeps_the_last_lines_per_container() {
        let book = LogBook::with_capacity(2);
        for i in 0..5 {
            book.line("chatty", Stream::Stdout, &format!("c{i}"));
        }
        book.line("quiet", Stream::Stderr, "q");
        let (lines, mut live) = book.snapshot();
        let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["c3", "c4", "q"]);
        book.line("quiet", Stream::System, "later");
        assert_eq!(live.try_recv().map(|l| l.stream), Ok("system".to_owned()));
    }
}
