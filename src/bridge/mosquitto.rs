//! A private Mosquitto for tests and `shoal bench bridge`: started on a free loopback port
//! with its own configuration and persistence folder, stopped (or restarted) on demand,
//! killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::local_server;

/// How long a starting broker may take to accept connections before it counts as failed.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The `mosquitto` executable: on `PATH`, or where Debian installs it (`/usr/sbin` is not on
/// every user's `PATH`).
pub fn find() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("mosquitto"));
    on_path
        .chain([
            PathBuf::from("/usr/sbin/mosquitto"),
            PathBuf::from("/usr/local/sbin/mosquitto"),
        ])
        .find(|p| p.is_file())
}

/// A running (or stopped) private broker.
pub struct Mosquitto {
    program: PathBuf,
    dir: PathBuf,
    remove_dir: bool,
    port: u16,
    /// Server certificate and key: the listener speaks TLS (`mqtts://`).
    tls: Option<(PathBuf, PathBuf)>,
    child: Option<Child>,
}

impl Mosquitto {
    /// Start a broker whose configuration, persistence file and log live in `dir` (created
    /// if missing). `remove_dir`: delete `dir` when dropped.
    pub fn start_in(dir: &Path, remove_dir: bool) -> std::io::Result<Self> {
        Self::start_with(dir, remove_dir, None)
    }

    /// Like [`Mosquitto::start_in`], with a TLS listener using this PEM certificate and key.
    pub fn start_tls_in(dir: &Path, cert: &Path, key: &Path) -> std::io::Result<Self> {
        Self::start_with(dir, false, Some((cert.to_path_buf(), key.to_path_buf())))
    }

    fn start_with(dir: &Path, remove_dir: bool, tls: Option<(PathBuf, PathBuf)>) -> std::io::Result<Self> {
        let program = find().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "mosquitto not found (install the `mosquitto` package: scripts/setup.sh)",
            )
        })?;
        std::fs::create_dir_all(dir)?;
        let port = local_server::free_port()?;
        let mut broker = Mosquitto {
            program,
            dir: dir.to_path_buf(),
            remove_dir,
            port,
            tls,
            child: None,
        };
        broker.write_config()?;
        broker.restart()?;
        Ok(broker)
    }

    /// Start a broker in a fresh folder under the system's temporary directory.
    pub fn start() -> std::io::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("shoal-mosquitto-{}-{n}", std::process::id()));
        Self::start_in(&dir, true)
    }

    fn write_config(&self) -> std::io::Result<()> {
        // Mosquitto started as root switches to the `mosquitto` user unless told otherwise,
        // and that user could not write the persistence file here.
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root\n"
        } else {
            ""
        };
        let tls = match &self.tls {
            Some((cert, key)) => format!("certfile {}\nkeyfile {}\n", cert.display(), key.display()),
            None => String::new(),
        };
        let text = format!(
            "listener {port} 127.0.0.1\n{tls}allow_anonymous true\npersistence true\npersistence_location {dir}/\n\
             max_queued_messages 100000\nlog_dest file {dir}/mosquitto.log\n{user}",
            port = self.port,
            dir = self.dir.display()
        );
        std::fs::write(self.config_path(), text)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("mosquitto.conf")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stop the broker with SIGTERM (it saves its sessions and queued messages) and wait.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the broker (again) on the same port with the same persistence, and wait until
    /// it accepts connections.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let child = Command::new(&self.program)
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let child = self.child.insert(child);
        let log = self.dir.join("mosquitto.log");
        local_server::wait_listening("mosquitto", self.port, child, READY_WITHIN, &log)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
