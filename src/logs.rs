//! Where container output and shoal's messages about a container go.
//!
//! The runtime and the host functions write through this trait so that `up` (prefixed,
//! coloured lines on the terminal), tests (collected lines) and later the control plane
//! (ring buffers) can each decide what to do with a line without the producers knowing.

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
