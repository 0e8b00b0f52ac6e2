//! What the local servers shoal starts for tests and benches (Mosquitto in
//! [`crate::bridge::mosquitto`], docker-registry in [`crate::registry::local`]) share: a
//! free loopback port to configure them with, and the wait until the started process
//! accepts connections there, failing early (with its log's path) when it exits instead.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// A loopback port free right now: bind port 0, read the port the kernel picked, release
/// it for the server (which binds it a moment later; nothing else on a test machine asks
/// for that port in between in practice, and a clash shows as a failed start).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// Wait until `127.0.0.1:port` accepts a connection. An error when `child` (the server,
/// called `name` in messages) exits first, or nothing listens `within`; both name `log`,
/// where the server says why.
pub fn wait_listening(name: &str, port: u16, child: &mut Child, within: Duration, log: &Path) -> io::Result<()> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(io::Error::other(format!(
                "{name} exited at start ({status}); see {}",
                log.display()
            )));
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "{name} did not accept connections on port {port} within {within:?}; see {}",
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn spawn(program: &str, args: &[&str]) -> Child {
        Command::new(program).args(args).stdin(Stdio::null()).spawn().unwrap()
    }

    #[test]
    fn a_listening_port_is_ready() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut child = spawn("sleep", &["30"]);
        let ready = wait_listening("sleep", port, &mut child, Duration::from_secs(30), Path::new("/l"));
        let _ = child.kill();
        let _ = child.wait();
        ready.unwrap();
    }

    #[test]
    fn a_server_that_exits_is_told_with_its_log() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        let mut child = spawn("false", &[]);
        let err = wait_listening("false", port, &mut child, Duration::from_secs(600), Path::new("/x.log")).unwrap_err();
        assert!(err.to_string().starts_with("false exited at start"), "{err}");
        assert!(err.to_string().ends_with("see /x.log"), "{err}");
    }

    #[test]
    fn nothing_listening_ends_at_the_deadline() {
        let port = free_port().unwrap();
        let mut child = spawn("sleep", &["30"]);
        let err = wait_listening("sleep", port, &mut child, Duration::ZERO, Path::new("/l")).unwrap_err();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            err.to_string()
                .contains(&format!("did not accept connections on port {port}")),
            "{err}"
        );
    }
}
