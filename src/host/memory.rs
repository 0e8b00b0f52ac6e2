//! The one bounds-checked view of guest linear memory used by every host function.
//!
//! Every offset and length is a `u32` as the guest passes it; all arithmetic is checked and
//! every failure is a [`MemError`] value. Nothing here panics or indexes out of range.

use wasmtime::{Caller, Extern, Memory};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    #[error("the guest exports no `memory`")]
    NoMemory,
    #[error("range {ptr}+{len} is outside guest memory")]
    OutOfBounds { ptr: u32, len: u32 },
    #[error("string at {ptr} has no NUL within {max} bytes")]
    Unterminated { ptr: u32, max: u32 },
    #[error("string at {ptr} is not UTF-8")]
    NotUtf8 { ptr: u32 },
}

/// The guest's linear memory: its `memory` export (SDK guests export the memory they
/// import, and the image loader adds that export to modules that only import it), else
/// the memory the runtime created for its `env.memory` import.
pub fn guest_memory<T>(caller: &mut Caller<'_, T>, get: super::Get<T>) -> Result<Memory, MemError> {
    if let Some(memory) = get(caller.data_mut()).resolved_memory {
        return Ok(memory);
    }
    let memory = match caller.get_export("memory") {
        Some(Extern::Memory(m)) => m,
        _ => get(caller.data_mut()).imported_memory.ok_or(MemError::NoMemory)?,
    };
    get(caller.data_mut()).resolved_memory = Some(memory);
    Ok(memory)
}

fn range(data_len: usize, ptr: u32, len: u32) -> Result<std::ops::Range<usize>, MemError> {
    let start = ptr as usize;
    let end = start
        .checked_add(len as usize)
        .ok_or(MemError::OutOfBounds { ptr, len })?;
    if end > data_len {
        return Err(MemError::OutOfBounds { ptr, len });
    }
    Ok(start..end)
}

/// `len` bytes at `ptr`.
pub fn read_bytes(data: &[u8], ptr: u32, len: u32) -> Result<&[u8], MemError> {
    let r = range(data.len(), ptr, len)?;
    data.get(r).ok_or(MemError::OutOfBounds { ptr, len })
}

/// A NUL-terminated string at `ptr` of at most `max` bytes (NUL excluded), as bytes.
pub fn read_cstr_bytes(data: &[u8], ptr: u32, max: u32) -> Result<&[u8], MemError> {
    let start = ptr as usize;
    if start >= data.len() {
        return Err(MemError::OutOfBounds { ptr, len: 1 });
    }
    let window_end = start.saturating_add(max as usize + 1).min(data.len());
    let window = data
        .get(start..window_end)
        .ok_or(MemError::OutOfBounds { ptr, len: 1 })?;
    match window.iter().position(|&b| b == 0) {
        Some(n) => Ok(&window[..n]),
        None => Err(MemError::Unterminated { ptr, max }),
    }
}

/// A NUL-terminated UTF-8 string at `ptr` of at most `max` bytes.
pub fn read_cstr(data: &[u8], ptr: u32, max: u32) -> Result<&str, MemError> {
    std::str::from_utf8(read_cstr_bytes(data, ptr, max)?).map_err(|_| MemError::NotUtf8 { ptr })
}

/// Check that `len` bytes at `ptr` are inside memory, without reading them.
pub fn check(data: &[u8], ptr: u32, len: u32) -> Result<(), MemError> {
    range(data.len(), ptr, len).map(|_| ())
}

/// Write `bytes` at `ptr`.
pub fn write_bytes(data: &mut [u8], ptr: u32, bytes: &[u8]) -> Result<(), MemError> {
    let len = u32::try_from(bytes.len()).map_err(|_| MemError::OutOfBounds { ptr, len: u32::MAX })?;
    let r = range(data.len(), ptr, len)?;
    data.get_mut(r)
        .ok_or(MemError::OutOfBounds { ptr, len })?
        .copy_from_slice(bytes);
    Ok(())
}

/// Write little-endian `u32` values into slots; all slots are checked before any is
/// written, so a bad pointer leaves memory untouched.
pub fn write_u32s(data: &mut [u8], slots: &[(u32, u32)]) -> Result<(), MemError> {
    for &(ptr, _) in slots {
        check(data, ptr, 4)?;
    }
    for &(ptr, value) in slots {
        write_bytes(data, ptr, &value.to_le_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let mut m = vec![0u8; 16];
        assert!(read_bytes(&m, 0, 16).is_ok());
        assert!(read_bytes(&m, 1, 16).is_err());
        assert!(read_bytes(&m, u32::MAX, u32::MAX).is_err());
        assert!(read_bytes(&m, 16, 0).is_ok());
        assert!(read_bytes(&m, 17, 0).is_err());
        assert!(write_bytes(&mut m, 14, b"abc").is_err());
        assert!(write_u32s(&mut m, &[(0, 1), (13, 2)]).is_err());
        assert_eq!(m, [0u8; 16]);
        assert!(write_u32s(&mut m, &[(0, 1), (12, 2)]).is_ok());
        assert_eq!(m[12], 2);
    }

    #[test]
    fn strings() {
        let m = b"hello\0world".to_vec();
        assert_eq!(read_cstr(&m, 0, 100).unwrap(), "hello");
        assert_eq!(read_cstr(&m, 0, 5).unwrap(), "hello");
        assert!(matches!(read_cstr(&m, 0, 4), Err(MemError::Unterminated { .. })));
        assert!(matches!(read_cstr(&m, 6, 100), Err(MemError::Unterminated { .. })));
        assert!(read_cstr(&m, 11, 100).is_err());
        assert!(read_cstr(&m, u32::MAX, u32::MAX).is_err());
        assert_eq!(read_cstr(&m, 5, 0).unwrap(), "");
    }
}
