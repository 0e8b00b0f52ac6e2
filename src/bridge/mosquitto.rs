//! A private Mosquitto for tests and `shoal bench bridge`: started on a free loopback port
//! with its own configuration and persistence folder, stopped (or restarted) on demand,
//! killed when dropped. [`Mosquitto::start_with_auth`] adds an ACL file and a password
//! file (made with `mosquitto_passwd -b`, hashed as Mosquitto stores them): the fleet
//! tests run the broker the way a production one runs, with per-device credentials.

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
    /// ACL and password file: no anonymous clients.
    auth: Option<Auth>,
    child: Option<Child>,
}

/// Who may connect and what each user may read and write.
#[derive(Debug, Clone)]
pub struct Auth {
    /// A Mosquitto ACL file (`user NAME` blocks of `topic read|write|readwrite FILTER`).
    pub acl_file: PathBuf,
    /// User names and their passwords (stored hashed in the broker's password file).
    pub users: Vec<(String, String)>,
}

/// The `mosquitto_passwd` executable, on `PATH` or where Debian installs it.
fn find_passwd() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("mosquitto_passwd"));
    on_path
        .chain([PathBuf::from("/usr/bin/mosquitto_passwd")])
        .find(|p| p.is_file())
}

impl Mosquitto {
    /// Start a broker whose configuration, persistence file and log live in `dir` (created
    /// if missing). `remove_dir`: delete `dir` when dropped.
    pub fn start_in(dir: &Path, remove_dir: bool) -> std::io::Result<Self> {
        Self::start_with(dir, remove_dir, None, None)
    }

    /// Like [`Mosquitto::start_in`], with a TLS listener using this PEM certificate and key.
    pub fn start_tls_in(dir: &Path, cert: &Path, key: &Path) -> std::io::Result<Self> {
        Self::start_with(dir, false, Some((cert.to_path_buf(), key.to_path_buf())), None)
    }

    /// A broker in a fresh temporary folder that admits only `auth.users`, each limited by
    /// `auth.acl_file`.
    pub fn start_with_auth(auth: Auth) -> std::io::Result<Self> {
        let dir = Self::fresh_dir();
        Self::start_with(&dir, true, None, Some(auth))
    }

    fn start_with(
        dir: &Path,
        remove_dir: bool,
        tls: Option<(PathBuf, PathBuf)>,
        auth: Option<Auth>,
    ) -> std::io::Result<Self> {
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
            auth,
            child: None,
        };
        broker.write_passwords()?;
        broker.write_config()?;
        broker.restart()?;
        Ok(broker)
    }

    /// Start a broker in a fresh folder under the system's temporary directory.
    pub fn start() -> std::io::Result<Self> {
        Self::start_in(&Self::fresh_dir(), true)
    }

    fn fresh_dir() -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::env::temp_dir().join(format!("shoal-mosquitto-{}-{n}", std::process::id()))
    }

    fn passwords_path(&self) -> PathBuf {
        self.dir.join("passwords")
    }

    /// The password file, one `mosquitto_passwd -b` per user (the first creates it).
    fn write_passwords(&self) -> std::io::Result<()> {
        let Some(auth) = &self.auth else { return Ok(()) };
        let program = find_passwd().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "mosquitto_passwd not found (it comes with the `mosquitto` package: scripts/setup.sh)",
            )
        })?;
        let file = self.passwords_path();
        let _ = std::fs::remove_file(&file);
        std::fs::write(&file, "")?;
        for (user, password) in &auth.users {
            let status = Command::new(&program)
                .arg("-b")
                .arg(&file)
                .arg(user)
                .arg(password)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if !status.success() {
                return Err(std::io::Error::other(format!(
                    "mosquitto_passwd could not add user `{user}` ({status})"
                )));
            }
        }
        Ok(())
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
        let access = match &self.auth {
            Some(auth) => format!(
                "allow_anonymous false\npassword_file {}\nacl_file {}\n",
                self.passwords_path().display(),
                auth.acl_file.display()
            ),
            None => "allow_anonymous true\n".to_owned(),
        };
        let text = format!(
            "listener {port} 127.0.0.1\n{tls}{access}persistence true\npersistence_location {dir}/\n\
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
