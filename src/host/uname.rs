//! `uname(buf*)`: fills the SDK's `struct utsname`, six fields of 65 bytes, NUL-padded:
//! sysname `shoal`, nodename = the container name, release = shoal's version, version =
//! `wasmtime 48`, machine `wasm32`, domainname empty. Long values are cut to 64 bytes.

use wasmtime::{Caller, Linker};

use super::memory::{guest_memory, write_bytes};
use super::{Get, EINVAL, SUCCESS};

pub const FIELD: usize = 65;
pub const FIELDS: usize = 6;

pub fn utsname(container: &str) -> [u8; FIELD * FIELDS] {
    let mut buf = [0u8; FIELD * FIELDS];
    let values = [
        "shoal",
        container,
        env!("CARGO_PKG_VERSION"),
        "wasmtime 48",
        "wasm32",
        "",
    ];
    for (i, v) in values.iter().enumerate() {
        let n = v.len().min(FIELD - 1);
        buf[i * FIELD..i * FIELD + n].copy_from_slice(&v.as_bytes()[..n]);
    }
    buf
}

pub(crate) fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: Get<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        shoal_abi::UNAME.name,
        move |mut caller: Caller<'_, T>, buf: u32| -> i32 {
            let Ok(mem) = guest_memory(&mut caller, get) else {
                return EINVAL;
            };
            let (data, t) = mem.data_and_store_mut(&mut caller);
            let st = get(t);
            st.enter();
            let u = utsname(&st.container);
            match write_bytes(data, buf, &u) {
                Ok(()) => SUCCESS,
                Err(_) => EINVAL,
            }
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::broker::Broker;
    use crate::host::testutil::*;
    use crate::host::EINVAL;

    #[tokio::test]
    async fn uname_writes_six_fields() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut g = Guest::new(&engine, config("node-1", &[], &broker, &log)).await;
        g.write(1000, &[0xAA; 400]);
        assert_eq!(g.i("uname", &[1000]).await, 0);
        assert_eq!(g.cstr_at(1000), "shoal");
        assert_eq!(g.cstr_at(1065), "node-1");
        assert_eq!(g.cstr_at(1130), env!("CARGO_PKG_VERSION"));
        assert_eq!(g.cstr_at(1195), "wasmtime 48");
        assert_eq!(g.cstr_at(1260), "wasm32");
        assert_eq!(g.cstr_at(1325), "");
        assert_eq!(g.mem()[1389], 0);
        assert_eq!(g.mem()[1390], 0xAA);
        let end = g.mem().len() as i32;
        assert_eq!(g.i("uname", &[end - 389]).await, EINVAL);
        assert_eq!(g.i("uname", &[-1]).await, EINVAL);
        assert_eq!(g.i("uname", &[end - 390]).await, 0);
    }
}
