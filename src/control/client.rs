//! The client side of the control socket, used by `ps`, `logs`, `stop`, ... Blocking std
//! I/O: each command is one short conversation and needs no executor.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::protocol::{Envelope, Reply, Request, VERSION};
use super::ControlError;

pub struct Client {
    path: PathBuf,
}

impl Client {
    /// A client for `project`'s socket; fails when no stack answers there.
    pub fn for_project(project: &str) -> Result<Client, ControlError> {
        let path = super::socket_path(project);
        if !super::is_live(&path) {
            return Err(ControlError::NotRunning {
                project: project.to_owned(),
                path,
            });
        }
        // A socket in a folder someone else controls may be theirs: requests (and their
        // replies) must not go to it.
        if let Some(dir) = path.parent() {
            super::check_runtime_dir(dir)?;
        }
        Ok(Client { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self, request: Request) -> Result<BufReader<UnixStream>, ControlError> {
        let io = |source| ControlError::Io {
            path: self.path.clone(),
            source,
        };
        let mut stream = UnixStream::connect(&self.path).map_err(io)?;
        let mut line =
            serde_json::to_vec(&Envelope { v: VERSION, request }).map_err(|e| ControlError::Protocol(e.to_string()))?;
        line.push(b'\n');
        stream.write_all(&line).map_err(io)?;
        Ok(BufReader::new(stream))
    }

    /// Send `request` and return its single reply's data (`Reply::Error` becomes `Err`).
    pub fn call(&self, request: Request) -> Result<serde_json::Value, ControlError> {
        let mut reader = self.open(request)?;
        match read_reply(&mut reader, &self.path)? {
            Some(Reply::Ok(value)) => Ok(value),
            Some(Reply::Error(message)) => Err(ControlError::Refused(message)),
            Some(other) => Err(ControlError::Protocol(format!("unexpected reply {other:?}"))),
            None => Err(ControlError::Protocol(
                "the stack closed the connection without a reply".into(),
            )),
        }
    }

    /// Like [`Client::call`], decoding the data as `T`.
    pub fn call_as<T: serde::de::DeserializeOwned>(&self, request: Request) -> Result<T, ControlError> {
        let value = self.call(request)?;
        serde_json::from_value(value).map_err(|e| ControlError::Protocol(e.to_string()))
    }

    /// Send `request` and hand every reply line to `each` until the stack closes the
    /// connection or `each` returns false.
    pub fn stream(&self, request: Request, mut each: impl FnMut(Reply) -> bool) -> Result<(), ControlError> {
        let mut reader = self.open(request)?;
        while let Some(reply) = read_reply(&mut reader, &self.path)? {
            if let Reply::Error(message) = reply {
                return Err(ControlError::Refused(message));
            }
            if !each(reply) {
                break;
            }
        }
        Ok(())
    }
}

fn read_reply(reader: &mut BufReader<UnixStream>, path: &Path) -> Result<Option<Reply>, ControlError> {
    let mut line = String::new();
    let n = reader.read_line(&mut line).map_err(|source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if n == 0 {
        return Ok(None);
    }
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|e| ControlError::Protocol(format!("{e}: {}", line.trim_end())))
}
