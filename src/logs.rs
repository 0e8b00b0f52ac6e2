//! Where container output and shoal's messages about a container go.
//!
//! The runtime and the host functions write through this trait so that `up` (prefixed,
//! coloured lines on the terminal), tests (collected lines) and later the control plane
//! (ring buffers) can each decide what to do with a line without the producers knowing.

pub mod rotate;
pub mod terminal;
pub mod throttle;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};

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
    /// Every stream, in the order [`Stream::index`] numbers them.
    pub const ALL: [Stream; 4] = [Stream::Stdout, Stream::Stderr, Stream::System, Stream::Warning];

    /// The stream's place in [`Stream::ALL`] (a slot in per-stream counters).
    pub fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
            Stream::System => 2,
            Stream::Warning => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::System => "system",
            Stream::Warning => "warning",
        }
    }
}

/// Lines buffered per live follower before it starts missing some (at most
/// [`MAX_LINE_BYTES`] each, so at most 4 MiB).
const LIVE_LINES: usize = 1024;

/// Longest line kept or shown; the rest is cut and the line says so. The guest's output
/// is already cut into pieces of [`crate::runtime::output::MAX_LINE`]; this keeps each
/// stored and printed line small enough that the byte bounds below hold many of them.
pub const MAX_LINE_BYTES: usize = 4096;

/// `text`, cut to [`MAX_LINE_BYTES`] (at a character boundary) with a marker saying how
/// much went.
pub fn clip(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_LINE_BYTES {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_LINE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… [{} more bytes cut]", &text[..end], text.len() - end))
}

/// Guest text made safe for a terminal or a log file: control characters (ANSI escapes,
/// `\r`, backspace, C1 codes) are shown as visible escapes such as `\x1b` and `\r`, so a
/// guest cannot move the cursor, recolour the screen or overwrite its prefix to forge a
/// line like shoal's own "x exited with code 0". Tabs and all printable UTF-8 stay.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// One container's stored lines and what they weigh, and the bytes written per stream.
#[derive(Default)]
struct Kept {
    lines: VecDeque<LogLine>,
    bytes: usize,
    /// Bytes of every line that reached the book, each with its newline, before clipping
    /// and whatever eviction did since: a counter that only grows (the metrics'
    /// `shoal_container_log_bytes_total`), unlike `bytes`, which the bounds keep down.
    written: [u64; 4],
}

/// What a stored line costs: its text and container name plus the struct around them.
fn weight(line: &LogLine) -> usize {
    line.text.len() + line.container.len() + line.stream.len() + std::mem::size_of::<LogLine>()
}

/// Keeps the last lines of every container in memory for `shoal logs`, and streams new
/// ones to followers (`logs -f`).
///
/// Bounded three times: [`LogBook::LINES_PER_CONTAINER`] lines and
/// [`LogBook::BYTES_PER_CONTAINER`] bytes per container (a chatty container cannot push a
/// quiet one's lines out, and 20 containers printing 16 KiB lines cannot take the host's
/// memory: issue 16), and a live buffer per follower; a follower that falls behind misses
/// lines instead of growing memory.
pub struct LogBook {
    lines: std::sync::Mutex<HashMap<String, Kept>>,
    /// Created on the first [`LogBook::snapshot`] and dropped on [`LogBook::clear`]: a
    /// broadcast ring keeps its last values alive, and scattered lines would pin pages of
    /// freed containers.
    live: std::sync::Mutex<Option<tokio::sync::broadcast::Sender<LogLine>>>,
    per_container: usize,
    bytes_per_container: usize,
}

impl Default for LogBook {
    fn default() -> Self {
        LogBook::with_bounds(LogBook::LINES_PER_CONTAINER, LogBook::BYTES_PER_CONTAINER)
    }
}

impl LogBook {
    /// Default lines kept per container.
    pub const LINES_PER_CONTAINER: usize = 1000;
    /// Default bytes kept per container (`up --log-buffer`): 1,000 lines of ~250 bytes;
    /// fewer lines when they are longer.
    pub const BYTES_PER_CONTAINER: usize = 256 << 10;

    pub fn with_capacity(per_container: usize) -> Self {
        LogBook::with_bounds(per_container, usize::MAX)
    }

    /// At most `lines` lines and `bytes` bytes per container (the newest line is always
    /// kept, clipped to [`MAX_LINE_BYTES`]).
    pub fn with_bounds(lines: usize, bytes: usize) -> Self {
        LogBook {
            lines: Default::default(),
            live: std::sync::Mutex::new(None),
            per_container: lines.max(1),
            bytes_per_container: bytes,
        }
    }

    /// Bytes of stored lines per container, as `stats` shows them.
    pub fn bytes(&self) -> BTreeMap<String, u64> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .map(|(name, kept)| (name.clone(), kept.bytes as u64))
            .collect()
    }

    /// Bytes written per container and stream since the stack started (see [`Kept`]),
    /// sorted by container name.
    pub fn written(&self) -> BTreeMap<String, [u64; 4]> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().map(|(name, kept)| (name.clone(), kept.written)).collect()
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
        let mut all: Vec<LogLine> = lines.values().flat_map(|q| q.lines.iter().cloned()).collect();
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
            text: clip(text).into_owned(),
        };
        {
            let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            let kept = lines.entry(container.to_owned()).or_default();
            kept.written[stream.index()] += text.len() as u64 + 1;
            let size = weight(&line);
            while !kept.lines.is_empty()
                && (kept.lines.len() >= self.per_container || kept.bytes + size > self.bytes_per_container)
            {
                if let Some(old) = kept.lines.pop_front() {
                    kept.bytes -= weight(&old);
                }
            }
            kept.bytes += size;
            kept.lines.push_back(line.clone());
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

    #[test]
    fn log_book_is_bounded_by_bytes_and_counts_them() {
        let book = LogBook::with_bounds(1000, 64 << 10);
        let long = "y".repeat(16 << 10);
        for _ in 0..1200 {
            book.line("flood", Stream::Stdout, &long);
        }
        book.line("quiet", Stream::Stdout, "q");
        let bytes = book.bytes();
        assert!(bytes["flood"] <= 64 << 10, "{bytes:?}");
        assert!(
            bytes["flood"] > 32 << 10,
            "the bound is used, not just respected: {bytes:?}"
        );
        assert!(bytes["quiet"] > 0 && bytes["quiet"] < 1024, "{bytes:?}");
        let written = book.written();
        assert_eq!(
            written["flood"],
            [1200 * (16 << 10) + 1200, 0, 0, 0],
            "every byte written counts, clipped and evicted ones too"
        );
        assert_eq!(written["quiet"][Stream::Stdout.index()], 2);
        let (lines, _) = book.snapshot();
        let flood: Vec<_> = lines.iter().filter(|l| l.container == "flood").collect();
        assert!(flood.len() < 20, "{}", flood.len());
        assert!(
            flood[0].text.ends_with("… [12288 more bytes cut]"),
            "long lines are clipped with a marker"
        );
        assert_eq!(flood[0].text.len(), MAX_LINE_BYTES + "… [12288 more bytes cut]".len());
    }

    #[test]
    fn clip_keeps_characters_whole() {
        let text = format!("{}é", "a".repeat(MAX_LINE_BYTES - 1));
        assert_eq!(
            clip(&text),
            format!("{}… [2 more bytes cut]", "a".repeat(MAX_LINE_BYTES - 1))
        );
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(escape_controls("plain\ttext ünïcode ✔"), "plain\ttext ünïcode ✔");
        assert_eq!(
            escape_controls("\x1b[2K\rapp exited with code 0"),
            "\\x1b[2K\\rapp exited with code 0"
        );
        assert_eq!(escape_controls("a\u{8}b\u{9b}c"), "a\\x08b\\x9bc");
    }
}
