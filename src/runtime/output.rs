//! A guest's stdout/stderr, cut into lines and handed to the [`LogSink`].
//!
//! Lines are bounded ([`MAX_LINE`]): a guest that prints without newlines gets its output
//! split rather than growing host memory without limit.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::logs::{LogSink, Stream};

/// Longest line kept whole; longer output is emitted in pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

struct LineBuffer {
    container: Arc<str>,
    stream: Stream,
    sink: Arc<dyn LogSink>,
    pending: Vec<u8>,
    /// A flooding guest waits here, not the host (see [`crate::logs::throttle`]).
    throttle: crate::logs::throttle::Throttle,
}

impl LineBuffer {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&bytes[..newline]);
            self.emit();
            bytes = &bytes[newline + 1..];
        }
        self.pending.extend_from_slice(bytes);
        while self.pending.len() >= MAX_LINE {
            let rest = self.pending.split_off(MAX_LINE);
            self.emit();
            self.pending = rest;
        }
    }

    fn emit(&mut self) {
        if self.pending.last() == Some(&b'\r') {
            self.pending.pop();
        }
        let text = String::from_utf8_lossy(&self.pending);
        self.sink.line(&self.container, self.stream, &text);
        self.pending.clear();
    }
}

impl Drop for LineBuffer {
    /// A last line without a newline is still printed when the container ends.
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
    }
}

/// The WASI stdout or stderr of one container.
#[derive(Clone)]
pub struct LineOutput(Arc<Mutex<LineBuffer>>);

impl LineOutput {
    pub fn new(container: Arc<str>, stream: Stream, sink: Arc<dyn LogSink>) -> Self {
        LineOutput(Arc::new(Mutex::new(LineBuffer {
            container,
            stream,
            sink,
            pending: Vec::new(),
            throttle: Default::default(),
        })))
    }

    fn write_bytes(&self, bytes: &[u8]) {
        // A poisoned lock only means another writer panicked mid-line; keep the output.
        let mut buffer = self.0.lock().unwrap_or_else(|p| p.into_inner());
        buffer.push(bytes);
    }
}

/// Guests see a terminal so that wasi-libc line-buffers `stdout` (it fully buffers
/// anything else): a C guest's `printf` then shows up in `shoal up` when it is printed, as
/// on the reference runtime, rather than 4 KiB later or at exit.
impl IsTerminal for LineOutput {
    fn is_terminal(&self) -> bool {
        true
    }
}

impl StdoutStream for LineOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LineOutput {
    /// Ready once the stream's byte budget allows a write again.
    async fn ready(&mut self) {
        let wait = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .throttle
            .wait(std::time::Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl OutputStream for LineOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .throttle
            .spend(bytes.len());
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let mut buffer = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(buffer.throttle.allowance(std::time::Instant::now()).min(64 * 1024))
    }
}

impl tokio::io::AsyncWrite for LineOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<String>>);
    impl LogSink for Collect {
        fn line(&self, _: &str, _: Stream, text: &str) {
            self.0.lock().unwrap().push(text.to_string());
        }
    }

    #[test]
    fn splits_lines_and_flushes_the_tail_on_drop() {
        let sink = Arc::new(Collect::default());
        let out = LineOutput::new("c".into(), Stream::Stdout, sink.clone());
        out.write_bytes(b"one\ntw");
        out.write_bytes(b"o\r\nthree");
        assert_eq!(*sink.0.lock().unwrap(), ["one", "two"]);
        drop(out);
        assert_eq!(*sink.0.lock().unwrap(), ["one", "two", "three"]);
    }

    #[test]
    fn long_output_without_newline_is_bounded() {
        let sink = Arc::new(Collect::default());
        let out = LineOutput::new("c".into(), Stream::Stdout, sink.clone());
        out.write_bytes(&vec![b'x'; MAX_LINE * 2 + 5]);
        assert_eq!(sink.0.lock().unwrap().len(), 2);
        assert!(out.0.lock().unwrap().pending.len() == 5);
    }
}
