//! Reading an image file safely: the one reader every part of shoal uses for `image:`
//! files, pulled blobs and compile-cache entries.
//!
//! A path in a compose file is under the writer's control, and on a shared board under
//! another user's too: `image: /dev/zero` once read 2 GB in 3 s, and a FIFO blocked the
//! reader for ever. So only regular files are read, and at most [`MAX_IMAGE_BYTES`].

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest image shoal reads: 256 MiB. The biggest guests seen are a few MB (a `.cwasm`
/// is about 3x its `.wasm`); a file over this is a mistake or an attack, and a board with
/// 1 GB could not hold it with its compiled code anyway.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Why an image file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageFileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is larger than {} MiB (the most shoal reads as an image)", MAX_IMAGE_BYTES >> 20)]
    TooLarge,
}

impl ImageFileError {
    /// Whether the file does not exist (callers give a hint about the path).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ImageFileError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Read a whole image file: a regular file (symlinks followed) of at most
/// [`MAX_IMAGE_BYTES`]. Opened non-blocking, so a FIFO put in place of the file after any
/// check cannot stall the reader; the type is checked on the open handle, not the path.
pub fn read(path: &Path) -> Result<Vec<u8>, ImageFileError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(ImageFileError::NotRegular(what));
    }
    if meta.len() > MAX_IMAGE_BYTES {
        return Err(ImageFileError::TooLarge);
    }
    // The size can change while reading (a file still being written): `take` caps it.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_IMAGE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        return Err(ImageFileError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_folders_are_refused() {
        let err = read(Path::new("/dev/zero")).unwrap_err().to_string();
        assert_eq!(err, "it is a device, not a regular file");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read(dir.path()).unwrap_err().to_string(),
            "it is a directory, not a regular file"
        );
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read(&fifo).unwrap_err().to_string(), "it is a FIFO, not a regular file");
        let big = dir.path().join("big.wasm");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_IMAGE_BYTES + 1)
            .unwrap();
        assert!(matches!(read(&big), Err(ImageFileError::TooLarge)));
        std::fs::write(&big, b"\0asm").unwrap();
        assert_eq!(read(&big).unwrap(), b"\0asm");
        assert!(read(&dir.path().join("none")).unwrap_err().is_not_found());
    }
}
