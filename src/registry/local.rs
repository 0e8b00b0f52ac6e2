//! A private OCI registry for tests: Debian's `docker-registry` (the CNCF distribution
//! registry, the reference implementation) on a free loopback port, with its storage in
//! its own folder, optionally with basic auth (an htpasswd file made by `htpasswd -B`)
//! and TLS; stopped on demand, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::local_server;

/// How long a starting registry may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// The `docker-registry` executable (Debian's package name) or upstream's `registry`.
pub fn find() -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    ["docker-registry", "registry"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .chain([PathBuf::from("/usr/bin/docker-registry")])
        .find(|p| p.is_file())
}

/// How the registry is set up.
#[derive(Default, Clone)]
pub struct Options {
    /// `(user, password)`: basic auth through an htpasswd file.
    pub user: Option<(String, String)>,
    /// PEM certificate and key: HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A running (or stopped) private registry.
pub struct LocalRegistry {
    program: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl LocalRegistry {
    /// Start a registry whose configuration and storage live in `dir` (created if missing).
    pub fn start_in(dir: &Path, options: &Options) -> std::io::Result<Self> {
        let program = find().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "docker-registry not found (install the `docker-registry` package: scripts/setup.sh)",
            )
        })?;
        std::fs::create_dir_all(dir)?;
        let port = local_server::free_port()?;
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
             rootdirectory: {dir}/storage\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir = dir.display()
        );
        if let Some((cert, key)) = &options.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some((user, password)) = &options.user {
            let htpasswd = dir.join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| std::io::Error::new(e.kind(), format!("htpasswd (apache2-utils): {e}")))?;
            if !out.status.success() {
                return Err(std::io::Error::other("htpasswd failed"));
            }
            std::fs::write(&htpasswd, out.stdout)?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: shoal-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(dir.join("config.yml"), config)?;
        let mut registry = LocalRegistry {
            program,
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        registry.restart()?;
        Ok(registry)
    }

    /// `127.0.0.1:<port>`, the host part of a reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the registry keeps its blobs (`docker/registry/v2/blobs/sha256/..`).
    pub fn storage(&self) -> PathBuf {
        self.dir.join("storage")
    }

    /// Stop the registry and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it (again) on the same port and storage; wait until it accepts connections.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let log = std::fs::File::create(self.dir.join("registry.log"))?;
        let child = Command::new(&self.program)
            .arg("serve")
            .arg(self.dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let child = self.child.insert(child);
        let log = self.dir.join("registry.log");
        local_server::wait_listening("docker-registry", self.port, child, READY_WITHIN, &log)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
