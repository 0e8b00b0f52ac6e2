//! Which files make up a project, and reading them safely.
//!
//! [`ComposeFiles`] is everything a command line says about where the stack comes from
//! (`-f` files in merge order, `--env-file`, `-p`, `--profile`). It is kept in the loaded
//! [`crate::Stack`] so a reload reads the same files with the same settings, and it is what
//! `up -d` sends to a running project.
//!
//! Compose files and env files are read with [`read_text_file`]: regular files only (a FIFO
//! would hang `open`, `/dev/zero` would grow without end) and at most
//! [`MAX_CONFIG_FILE_SIZE`] bytes, counted while reading.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::names::ProjectName;
use crate::{find_compose_file, ComposeFileError};

/// Largest compose or env file shoal reads: 4 MiB, hundreds of times a real one, and small
/// enough to hold on the smallest board.
pub const MAX_CONFIG_FILE_SIZE: u64 = 4 << 20;

/// Override file names tried beside a main file found without `-f`, for each main name's
/// stem (Compose's rule: `compose.yaml` + `compose.override.yaml`).
pub const OVERRIDE_SUFFIXES: &[&str] = &[".override.yaml", ".override.yml"];

/// Where a stack comes from: the compose files in merge order and the settings that change
/// what they mean. `Default` is "the compose file in the current folder, its `.env`".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeFiles {
    /// Compose files, merged in this order (later wins). Empty: look in the current folder.
    pub files: Vec<PathBuf>,
    /// `--env-file`s, later wins; `None`: `.env` in the project folder if it exists.
    pub env_files: Option<Vec<PathBuf>>,
    /// `-p NAME`: wins over `SHOAL_PROJECT_NAME`, `name:` and the folder's name.
    pub project_name: Option<ProjectName>,
    /// `--profile`s; `None`: `SHOAL_PROFILES` (comma-separated) from the environment or `.env`.
    pub profiles: Option<Vec<String>>,
    /// Interpolate from the env files only, never from the process environment. The fleet
    /// agent sets it: the variables of a signed deployment are the device's (`DEVICE_ID`
    /// must be the agent's own), and a deployment must not read the agent's secrets
    /// (`SHOAL_FLEET_PASSWORD`) into a container.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub env_files_only: bool,
}

impl From<&Path> for ComposeFiles {
    fn from(path: &Path) -> Self {
        ComposeFiles {
            files: vec![path.to_path_buf()],
            ..Default::default()
        }
    }
}

impl From<&PathBuf> for ComposeFiles {
    fn from(path: &PathBuf) -> Self {
        ComposeFiles::from(path.as_path())
    }
}

impl From<PathBuf> for ComposeFiles {
    fn from(path: PathBuf) -> Self {
        ComposeFiles::from(path.as_path())
    }
}

impl ComposeFiles {
    /// The files a command means: each `-f` as given (a folder: the compose file in it plus
    /// its override file), or, with none, the compose file in the current folder plus its
    /// override file (`compose.override.yaml` beside `compose.yaml`, `shoal.override.yaml`
    /// beside `shoal.yaml`), as Compose does.
    pub fn resolve_files(explicit: &[PathBuf]) -> Result<Vec<PathBuf>, ComposeFileError> {
        if explicit.is_empty() {
            let here = std::env::current_dir()?;
            let main = find_compose_file(&here).ok_or_else(|| ComposeFileError::NotHere(here.clone()))?;
            return Ok(with_override(main));
        }
        let mut out = Vec::new();
        for path in explicit {
            if path.is_dir() {
                let main = find_compose_file(path).ok_or_else(|| ComposeFileError::NotInFolder(path.to_path_buf()))?;
                out.extend(with_override(main));
            } else {
                out.push(path.clone());
            }
        }
        Ok(out)
    }

    /// The first file: the project's folder is its folder.
    pub fn main_file(&self) -> Option<&Path> {
        self.files.first().map(PathBuf::as_path)
    }
}

/// `main` and, when it exists beside it, its override file.
fn with_override(main: PathBuf) -> Vec<PathBuf> {
    let stem = main
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once('.'))
        .map(|(stem, _)| stem.to_string());
    let over = stem.and_then(|stem| {
        OVERRIDE_SUFFIXES
            .iter()
            .map(|suffix| main.with_file_name(format!("{stem}{suffix}")))
            .find(|p| p.is_file())
    });
    std::iter::once(main).chain(over).collect()
}

/// Why a compose or env file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: no such file", path = .0.display())]
    NotFound(PathBuf),
    #[error("{path} is {kind}, not a regular file", path = .0.display(), kind = .1)]
    NotRegular(PathBuf, &'static str),
    #[error("{path} is larger than {max} MiB", path = .0.display(), max = MAX_CONFIG_FILE_SIZE >> 20)]
    TooLarge(PathBuf),
    /// Where the first byte that is not UTF-8 sits, and which byte it is.
    #[error("{message}")]
    NotText {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("cannot read {path}: {err}", path = .0.display(), err = .1)]
    Io(PathBuf, #[source] std::io::Error),
}

impl ReadError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ReadError::NotFound(_) => {
                Some("run shoal in the folder that holds `shoal.yaml`, or pass the file with `-f`".into())
            }
            ReadError::NotRegular(..) => {
                Some("pass a regular file; to feed a generated file, write it to disk first".into())
            }
            ReadError::TooLarge(_) => Some(format!(
                "a compose or env file may hold at most {} MiB; split it with several `-f` files",
                MAX_CONFIG_FILE_SIZE >> 20
            )),
            ReadError::NotText { .. } | ReadError::Io(..) => None,
        }
    }
}

/// Reads a compose or env file: a regular file (symlinks followed) of at most
/// [`MAX_CONFIG_FILE_SIZE`] bytes. The type is checked before opening, since opening a FIFO
/// blocks until a writer comes, and the size is capped while reading, since a file may grow
/// (or lie about its size, like those in /proc).
pub fn read_text_file(path: &Path) -> Result<String, ReadError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::NotFound(path.to_path_buf()),
        _ => ReadError::Io(path.to_path_buf(), e),
    })?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(path.to_path_buf(), kind_of(&meta)));
    }
    let file = std::fs::File::open(path).map_err(|e| ReadError::Io(path.to_path_buf(), e))?;
    // Swapped for something else between the two looks: refuse rather than read it.
    let opened = file.metadata().map_err(|e| ReadError::Io(path.to_path_buf(), e))?;
    if !opened.is_file() {
        return Err(ReadError::NotRegular(path.to_path_buf(), kind_of(&opened)));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io(path.to_path_buf(), e))?;
    if bytes.len() as u64 > MAX_CONFIG_FILE_SIZE {
        return Err(ReadError::TooLarge(path.to_path_buf()));
    }
    crate::node::utf8(bytes).map_err(|p| ReadError::NotText {
        path: path.to_path_buf(),
        line: p.pos.map_or(1, |pos| pos.line),
        column: p.pos.map_or(1, |pos| pos.column),
        message: p.message,
    })
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fifos_are_refused_without_reading() {
        let e = read_text_file(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular(_, "a character device")), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yaml");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        // Opening it would block forever: this returns at once.
        let e = read_text_file(&fifo).unwrap_err();
        assert!(e.to_string().contains("named pipe"), "{e}");
        let e = read_text_file(dir.path()).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
    }

    #[test]
    fn size_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_CONFIG_FILE_SIZE as usize + 1]).unwrap();
        let e = read_text_file(&big).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge(_)), "{e}");
        assert!(e.hint().unwrap().contains("4 MiB"));
        std::fs::write(&big, vec![b'#'; MAX_CONFIG_FILE_SIZE as usize]).unwrap();
        assert!(read_text_file(&big).is_ok());
    }

    #[test]
    fn override_file_is_picked_up_beside_the_main_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), "").unwrap();
        assert_eq!(
            ComposeFiles::resolve_files(&[dir.path().to_path_buf()]).unwrap().len(),
            1
        );
        std::fs::write(dir.path().join("compose.override.yml"), "").unwrap();
        std::fs::write(dir.path().join("shoal.override.yaml"), "").unwrap();
        let files = ComposeFiles::resolve_files(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(
            files,
            [dir.path().join("compose.yaml"), dir.path().join("compose.override.yml")]
        );
        // A file named with -f is taken alone, as Compose does.
        let main = dir.path().join("compose.yaml");
        assert_eq!(
            ComposeFiles::resolve_files(std::slice::from_ref(&main)).unwrap(),
            [main]
        );
    }
}
