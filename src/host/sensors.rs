//! `ocre_sensors_*`, served from the sensors declared in the compose file.
//!
//! A handle is the index of the sensor in the container's own list
//! (`HostConfig::sensors`, only the sensors the container may open); the `_by_name` forms
//! look names up in that list. Every call needs the `sensors` capability.
//!
//! * `rng`: a uniform random value in `[min, max]`, independently per channel.
//! * `file` / `hwmon`: the file is read at each call, its first whitespace-separated token
//!   parsed as a number and multiplied by `scale` (same value on every channel).
//!
//! `ocre_sensors_read*` return an `f64`; an error (denied, bad handle or channel, unreadable
//! or unparsable file) returns **NaN** (a negative errno would be indistinguishable from a
//! valid negative reading), and an unreadable file logs one warning per sensor.
//! Channel types have no Zephyr meaning here: every channel reports
//! [`CHANNEL_TYPE_CUSTOM`].

use wasmtime::{Caller, Linker};

use super::memory::{guest_memory, read_cstr, write_bytes};
use super::{Get, HostFn, HostState, EINVAL, SUCCESS};
use crate::spec::SensorKind;
use shoal_abi as abi;

/// The channel type every channel reports.
pub const CHANNEL_TYPE_CUSTOM: i32 = 0x8000;
const MAX_NAME: u32 = 256;

impl HostState {
    fn sensor_index(&self, handle: i32) -> Option<usize> {
        usize::try_from(handle).ok().filter(|&i| i < self.sensors.len())
    }

    fn channel_ok(&self, i: usize, channel: i32) -> bool {
        u32::try_from(channel).is_ok_and(|c| c < self.sensors[i].channels)
    }

    fn read_sensor(&mut self, i: usize, channel: i32) -> f64 {
        if !self.channel_ok(i, channel) {
            return f64::NAN;
        }
        match &self.sensors[i].kind {
            SensorKind::Rng { min, max } => {
                let (min, max) = (*min, *max);
                min + (max - min) * self.next_unit()
            }
            SensorKind::File { path, scale } | SensorKind::Hwmon { path, scale } => {
                let (path, scale) = (path.clone(), *scale);
                let value = std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|s| {
                    s.split_whitespace()
                        .next()
                        .and_then(|t| t.parse::<f64>().ok())
                        .ok_or_else(|| "no number in it".to_owned())
                });
                match value {
                    Ok(v) => v * scale,
                    Err(e) => {
                        let name = self.sensors[i].name.clone();
                        self.warn_once(&format!("sensor:{name}"), || {
                            format!("sensor `{name}`: cannot read {}: {e}; reads return NaN", path.display())
                        });
                        f64::NAN
                    }
                }
            }
        }
    }

    /// A uniform value in `[0, 1]` (splitmix64, seeded from the clock).
    fn next_unit(&mut self) -> f64 {
        if self.rng_state == 0 {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            self.rng_state = t | 1;
        }
        self.rng_state = self.rng_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / ((1u64 << 53) - 1) as f64
    }
}

/// `ocre_sensors_open` answers 0, `ocre_sensors_open_by_name` the handle.
/// An operation on one sensor of the container: (state, sensor index if the handle or
/// name resolved, channel argument or 0) -> result.
type Op<R> = fn(&mut HostState, Option<usize>, i32) -> R;

fn open(_: &mut HostState, i: Option<usize>, _: i32) -> i32 {
    i.map_or(EINVAL, |_| SUCCESS)
}

fn handle(_: &mut HostState, i: Option<usize>, _: i32) -> i32 {
    i.map_or(EINVAL, |i| i32::try_from(i).unwrap_or(EINVAL))
}

fn channel_count(st: &mut HostState, i: Option<usize>, _: i32) -> i32 {
    i.map_or(EINVAL, |i| i32::try_from(st.sensors[i].channels).unwrap_or(i32::MAX))
}

fn channel_type(st: &mut HostState, i: Option<usize>, c: i32) -> i32 {
    match i {
        Some(i) if st.channel_ok(i, c) => CHANNEL_TYPE_CUSTOM,
        _ => EINVAL,
    }
}

fn read(st: &mut HostState, i: Option<usize>, c: i32) -> f64 {
    i.map_or(f64::NAN, |i| st.read_sensor(i, c))
}

/// Resolve a name argument to a sensor index after the capability check; `Err` carries
/// "denied or bad pointer".
fn resolve_name<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: Get<T>,
    function: &'static HostFn,
    ptr: u32,
) -> Result<Option<usize>, ()> {
    get(caller.data_mut()).begin(function).map_err(|_| ())?;
    let mem = guest_memory(caller, get).map_err(|_| ())?;
    let (data, t) = mem.data_and_store_mut(caller);
    let name = read_cstr(data, ptr, MAX_NAME).map_err(|_| ())?;
    Ok(get(t).sensors.iter().position(|s| s.name == name))
}

/// Register `import(handle[, channel])` for `ops.0` and `import_by_name(name[, channel])`
/// for `ops.1`.
/// A function served twice, by sensor handle and by sensor name, with the same operation.
struct SensorFns<R> {
    by_handle: &'static HostFn,
    by_name: &'static HostFn,
    /// Takes a channel argument after the handle or name.
    with_channel: bool,
    ops: (Op<R>, Op<R>),
}

impl<R> SensorFns<R> {
    fn new(by_handle: &'static HostFn, by_name: &'static HostFn, with_channel: bool, ops: (Op<R>, Op<R>)) -> Self {
        SensorFns {
            by_handle,
            by_name,
            with_channel,
            ops,
        }
    }
}

fn add_op<T: Send + 'static, R: wasmtime::WasmRet + Copy + Send + Sync + 'static>(
    linker: &mut Linker<T>,
    get: Get<T>,
    fns: SensorFns<R>,
    err: R,
) -> wasmtime::Result<()> {
    let SensorFns {
        by_handle: by_handle_fn,
        by_name,
        with_channel,
        ops: (op, op_by_name),
    } = fns;
    let by_handle = move |caller: &mut Caller<'_, T>, h: i32, c: i32| -> R {
        let st = get(caller.data_mut());
        if st.begin(by_handle_fn).is_err() {
            return err;
        }
        let i = st.sensor_index(h);
        op(st, i, c)
    };
    let named = move |caller: &mut Caller<'_, T>, name: u32, c: i32| -> R {
        match resolve_name(caller, get, by_name, name) {
            Ok(i) => op_by_name(get(caller.data_mut()), i, c),
            Err(()) => err,
        }
    };
    if with_channel {
        linker.func_wrap(
            "env",
            by_handle_fn.name,
            move |mut c: Caller<'_, T>, h: i32, ch: i32| by_handle(&mut c, h, ch),
        )?;
        linker.func_wrap("env", by_name.name, move |mut c: Caller<'_, T>, n: u32, ch: i32| {
            named(&mut c, n, ch)
        })?;
    } else {
        linker.func_wrap("env", by_handle_fn.name, move |mut c: Caller<'_, T>, h: i32| {
            by_handle(&mut c, h, 0)
        })?;
        linker.func_wrap("env", by_name.name, move |mut c: Caller<'_, T>, n: u32| {
            named(&mut c, n, 0)
        })?;
    }
    Ok(())
}

pub(crate) fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: Get<T>) -> wasmtime::Result<()> {
    linker.func_wrap("env", abi::OCRE_SENSORS_INIT.name, move |mut caller: Caller<'_, T>| {
        let st = get(caller.data_mut());
        st.begin(&abi::OCRE_SENSORS_INIT).map_or_else(|e| e, |()| SUCCESS)
    })?;
    linker.func_wrap(
        "env",
        abi::OCRE_SENSORS_DISCOVER.name,
        move |mut caller: Caller<'_, T>| {
            let st = get(caller.data_mut());
            st.begin(&abi::OCRE_SENSORS_DISCOVER)
                .map_or_else(|e| e, |()| i32::try_from(st.sensors.len()).unwrap_or(i32::MAX))
        },
    )?;
    let int_fns = [
        SensorFns::new(
            &abi::OCRE_SENSORS_OPEN,
            &abi::OCRE_SENSORS_OPEN_BY_NAME,
            false,
            (open, handle),
        ),
        SensorFns::new(
            &abi::OCRE_SENSORS_GET_HANDLE,
            &abi::OCRE_SENSORS_GET_HANDLE_BY_NAME,
            false,
            (handle, handle),
        ),
        SensorFns::new(
            &abi::OCRE_SENSORS_GET_CHANNEL_COUNT,
            &abi::OCRE_SENSORS_GET_CHANNEL_COUNT_BY_NAME,
            false,
            (channel_count, channel_count),
        ),
        SensorFns::new(
            &abi::OCRE_SENSORS_GET_CHANNEL_TYPE,
            &abi::OCRE_SENSORS_GET_CHANNEL_TYPE_BY_NAME,
            true,
            (channel_type, channel_type),
        ),
    ];
    for fns in int_fns {
        add_op(linker, get, fns, EINVAL)?;
    }
    let read_fns = SensorFns::new(
        &abi::OCRE_SENSORS_READ,
        &abi::OCRE_SENSORS_READ_BY_NAME,
        true,
        (read, read),
    );
    add_op(linker, get, read_fns, f64::NAN)?;
    linker.func_wrap(
        "env",
        abi::OCRE_SENSORS_GET_LIST.name,
        move |mut caller: Caller<'_, T>, buf: u32, max: i32| -> i32 {
            if let Err(e) = get(caller.data_mut()).begin(&abi::OCRE_SENSORS_GET_LIST) {
                return e;
            }
            let Ok(max) = usize::try_from(max) else {
                return EINVAL;
            };
            let Ok(mem) = guest_memory(&mut caller, get) else {
                return EINVAL;
            };
            let (data, t) = mem.data_and_store_mut(&mut caller);
            let n = get(t).sensors.len().min(max);
            let bytes: Vec<u8> = (0..n as i32).flat_map(|h| h.to_le_bytes()).collect();
            match write_bytes(data, buf, &bytes) {
                Ok(()) => n as i32,
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
    use crate::spec::{SensorKind, SensorSpec};

    #[tokio::test]
    async fn sensors_rng_file_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("temp1_input");
        std::fs::write(&temp, "42500\n").unwrap();
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut cfg = config("s", ALL, &broker, &log);
        cfg.sensors = vec![
            SensorSpec {
                name: "dice".into(),
                kind: SensorKind::Rng { min: 1.0, max: 6.0 },
                channels: 2,
            },
            SensorSpec {
                name: "cpu".into(),
                kind: SensorKind::Hwmon {
                    path: temp.clone(),
                    scale: 0.001,
                },
                channels: 1,
            },
            SensorSpec {
                name: "gone".into(),
                kind: SensorKind::File {
                    path: dir.path().join("missing"),
                    scale: 1.0,
                },
                channels: 1,
            },
        ];
        let mut g = Guest::new(&engine, cfg).await;
        assert_eq!(g.i("ocre_sensors_init", &[]).await, 0);
        assert_eq!(g.i("ocre_sensors_discover", &[]).await, 3);
        assert_eq!(g.i("ocre_sensors_open", &[1]).await, 0);
        assert_eq!(g.i("ocre_sensors_open", &[3]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_handle", &[2]).await, 2);
        assert_eq!(g.i("ocre_sensors_get_handle", &[-1]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_channel_count", &[0]).await, 2);
        assert_eq!(
            g.i("ocre_sensors_get_channel_type", &[0, 1]).await,
            super::CHANNEL_TYPE_CUSTOM
        );
        assert_eq!(g.i("ocre_sensors_get_channel_type", &[0, 2]).await, EINVAL);
        for _ in 0..100 {
            let v = g.f("ocre_sensors_read", &[0, 1]).await;
            assert!((1.0..=6.0).contains(&v), "{v}");
        }
        assert!(g.f("ocre_sensors_read", &[0, 2]).await.is_nan());
        assert!(g.f("ocre_sensors_read", &[7, 0]).await.is_nan());
        assert!((g.f("ocre_sensors_read", &[1, 0]).await - 42.5).abs() < 1e-9);
        std::fs::write(&temp, "43000").unwrap();
        assert!((g.f("ocre_sensors_read", &[1, 0]).await - 43.0).abs() < 1e-9);
        assert!(g.f("ocre_sensors_read", &[2, 0]).await.is_nan());
        assert!(g.f("ocre_sensors_read", &[2, 0]).await.is_nan());
        assert_eq!(log.warnings().len(), 1, "{:?}", log.warnings());

        let cpu = g.cstr(100, "cpu");
        let nope = g.cstr(200, "nope");
        assert_eq!(g.i("ocre_sensors_open_by_name", &[cpu]).await, 1);
        assert_eq!(g.i("ocre_sensors_open_by_name", &[nope]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_open_by_name", &[-1]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_handle_by_name", &[cpu]).await, 1);
        assert_eq!(g.i("ocre_sensors_get_channel_count_by_name", &[cpu]).await, 1);
        assert_eq!(
            g.i("ocre_sensors_get_channel_type_by_name", &[cpu, 0]).await,
            super::CHANNEL_TYPE_CUSTOM
        );
        assert_eq!(g.i("ocre_sensors_get_channel_type_by_name", &[cpu, 1]).await, EINVAL);
        assert!((g.f("ocre_sensors_read_by_name", &[cpu, 0]).await - 43.0).abs() < 1e-9);
        assert!(g.f("ocre_sensors_read_by_name", &[nope, 0]).await.is_nan());
        assert!(g.f("ocre_sensors_read_by_name", &[i32::MAX, 0]).await.is_nan());

        g.write(1000, &[0xAA; 16]);
        assert_eq!(g.i("ocre_sensors_get_list", &[1000, 2]).await, 2);
        assert_eq!(g.u32_at(1000), 0);
        assert_eq!(g.u32_at(1004), 1);
        assert_eq!(g.u32_at(1008), 0xAAAA_AAAA);
        assert_eq!(g.i("ocre_sensors_get_list", &[1000, 10]).await, 3);
        assert_eq!(g.i("ocre_sensors_get_list", &[1000, -1]).await, EINVAL);
        let end = g.mem().len() as i32;
        assert_eq!(g.i("ocre_sensors_get_list", &[end - 4, 3]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_list", &[end - 4, 1]).await, 1);
    }
}
