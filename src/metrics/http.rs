//! The smallest HTTP/1 responder a Prometheus scraper needs: `GET /metrics` answered with
//! the text format, anything else 404, one request per connection. Hand-written on tokio's
//! TCP listener rather than an HTTP server crate: it is ~80 lines, and an HTTP stack would
//! add to the binary every board carries for an endpoint most never turn on.
//!
//! A scraper (or anyone who can reach the port) cannot stall the stack: a request must
//! arrive whole within [`READ_TIMEOUT`] and [`MAX_REQUEST`] bytes, and at most
//! [`MAX_CONNECTIONS`] are served at once; more are closed at accept.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Source;

const READ_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUEST: usize = 8 * 1024;
const MAX_CONNECTIONS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen for metrics on {addr}: {source}\n  hint: another process may hold the port; pick another with --metrics ADDR (e.g. 127.0.0.1:9464)")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Bind `addr` now (so a taken port fails `up` at start, not later) and return the task
/// that serves scrapes until `stop`.
pub async fn serve(
    addr: &str,
    source: Source,
    stop: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), MetricsError> {
    let bind_error = |source| MetricsError::Bind {
        addr: addr.to_owned(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let task = tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else { continue };
            // Over the limit: close at once rather than queue.
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let source = source.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(READ_TIMEOUT, answer(stream, &source)).await;
                drop(permit);
            });
        }
    });
    Ok((local, task))
}

/// Read one request head and answer it.
async fn answer(mut stream: TcpStream, source: &Source) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let first = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = first.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, kind, body) = match (method, path) {
        (b"GET", b"/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            super::render(&source.snapshot()),
        ),
        (b"GET", _) => ("404 Not Found", "text/plain", "shoal serves only /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_owned()),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}
