//! `ocre_sensors_*`, served from the sensors declared in the compose file.
//!
//! A handle is the index of the sensor in the container's own list
//! (`HostConfig::sensors`, only the sensors the container may open); the `_by_name` forms
//! look names up in that list. Every call needs the `sensors` capability.
//!
//! * `rng`: a uniform random value in `[min, max]`, independently per channel.
//! * `file` / `hwmon`: the file is read at each call, its first whitespace-separated token
//!   parsed as a number and multiplied by `scale`.
//!
//! Channels have types (`shoal_spec::channel_type`: the Ocre SDK's numbers, declared per
//! channel in the compose file). As the SDK header defines, `ocre_sensors_read(sensor,
//! channel_type)` takes the *type* `ocre_sensors_get_channel_type` returned; a number that
//! is no channel's type is accepted as a channel index ([`SensorSpec::channel_for`]).
//!
//! Errors are the Ocre runtime's negated errno values, for `read` too (as an `f64`, as the
//! SDK header says): `-22` (EINVAL) for a bad handle or channel index, a bad name pointer or
//! a denied call; `-2` (ENOENT) for a name the container has no sensor by; `-5` (EIO) for a
//! type no channel has or a file that cannot be read or parsed. A `read` error is never NaN
//! (an SDK guest's double-to-int turns NaN into INT_MIN). As with the reference runtime, a
//! reading of exactly -2, -5 or -22 looks like an error; one warning per sensor tells the
//! operator about a wrong type or an unreadable file.

use std::path::{Path, PathBuf};

use wasmtime::{Caller, Linker};

use super::memory::{guest_memory, read_cstr, write_bytes};
use super::{Get, HostFn, HostState, EINVAL, SUCCESS};
use crate::spec::{SensorKind, SensorSpec};
use shoal_abi as abi;

/// No sensor by that name (the Ocre runtime's answer for every `_by_name` form).
pub const ENOENT: i32 = -2;
/// The sensor has no channel of that type, or its value cannot be read.
pub const EIO: i32 = -5;
const MAX_NAME: u32 = 256;

/// The channels of `s` as `index = type (code)` for messages.
fn describe_channels(s: &SensorSpec) -> String {
    (0..s.channels)
        .filter_map(|i| {
            Some(format!(
                "{i} = {} ({})",
                s.channel_types.get(i as usize)?,
                s.channel_type_code(i)?
            ))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl HostState {
    fn sensor_index(&self, handle: i32) -> Result<usize, i32> {
        usize::try_from(handle)
            .ok()
            .filter(|&i| i < self.sensors.len())
            .ok_or(EINVAL)
    }

    /// The first half of a read: the channel check, and the value itself when it needs no
    /// file. A file is read by [`read_number`] off the executor, then [`Self::end_read`].
    fn begin_read(&mut self, i: usize, arg: i32) -> Reading {
        let sensor = &self.sensors[i];
        if sensor.channel_for(arg).is_none() {
            let (name, channels) = (sensor.name.clone(), describe_channels(sensor));
            self.warn_once(&format!("sensor-type:{name}"), || {
                format!(
                    "sensor `{name}`: ocre_sensors_read with channel type {arg}, which no channel has \
                     (channels: {channels}); reads return -5 (EIO)"
                )
            });
            return Reading::Value(f64::from(EIO));
        }
        // Every channel of one sensor reads the same source.
        match &self.sensors[i].kind {
            SensorKind::Rng { min, max } => {
                let (min, max) = (*min, *max);
                Reading::Value(min + (max - min) * self.next_unit())
            }
            SensorKind::File { path, scale } | SensorKind::Hwmon { path, scale } => Reading::File {
                path: path.clone(),
                scale: *scale,
            },
        }
    }

    /// The second half of a file read: the scaled value, or EIO and one warning.
    fn end_read(&mut self, i: usize, path: &Path, value: Result<f64, String>) -> f64 {
        match value {
            Ok(v) => v,
            Err(e) => {
                let name = self.sensors[i].name.clone();
                self.warn_once(&format!("sensor:{name}"), || {
                    format!(
                        "sensor `{name}`: cannot read {}: {e}; reads return -5 (EIO)",
                        path.display()
                    )
                });
                f64::from(EIO)
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

/// The sensor a call names: its index in the container's list, or the error code to return
/// (EINVAL for a bad handle, ENOENT for an unknown name).
type Target = Result<usize, i32>;

/// An operation on one sensor of the container: (state, target, channel argument or 0).
type Op<R> = fn(&mut HostState, Target, i32) -> R;

/// `ocre_sensors_open` and `ocre_sensors_open_by_name` answer 0 (OCRE_SUCCESS), as the SDK
/// header says: SDK programs compare the result with OCRE_SUCCESS, so answering a handle
/// (which shoal once did by name) failed them for every sensor but the first.
fn open(_: &mut HostState, t: Target, _: i32) -> i32 {
    t.map_or_else(|e| e, |_| SUCCESS)
}

fn handle(_: &mut HostState, t: Target, _: i32) -> i32 {
    t.map_or_else(|e| e, |i| i32::try_from(i).unwrap_or(EINVAL))
}

fn channel_count(st: &mut HostState, t: Target, _: i32) -> i32 {
    t.map_or_else(|e| e, |i| i32::try_from(st.sensors[i].channels).unwrap_or(i32::MAX))
}

/// The type code of channel *index* `c` (the SDK's `get_channel_type(sensor, index)`).
fn channel_type(st: &mut HostState, t: Target, c: i32) -> i32 {
    match t {
        Ok(i) => u32::try_from(c)
            .ok()
            .and_then(|c| st.sensors[i].channel_type_code(c))
            .unwrap_or(EINVAL),
        Err(e) => e,
    }
}

/// What a read needs after the checks made on the guest's call.
enum Reading {
    /// Known at once: a random value, or an error code.
    Value(f64),
    /// A file (`file` or `hwmon` sensor) to read off the executor.
    File { path: PathBuf, scale: f64 },
}

/// Longest sensor file read: a value is a number and a unit or two, and a path the
/// operator got wrong (a log, an image) must not make each read copy megabytes.
const MAX_SENSOR_FILE: u64 = 4096;

/// The first whitespace-separated number in the file at `path`. Runs on the blocking pool:
/// an `hwmon` read may wait on an I2C bus for milliseconds. The open does not wait either
/// (`O_NONBLOCK`), and anything but a regular file is refused: a FIFO nobody writes, a
/// socket or a device would otherwise hold the pool thread and the guest forever.
fn read_number(path: &Path) -> Result<f64, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| e.to_string())?;
    let kind = file.metadata().map_err(|e| e.to_string())?.file_type();
    if !kind.is_file() {
        return Err("not a regular file (a FIFO, socket or device could block every read)".to_owned());
    }
    let mut text = String::new();
    file.take(MAX_SENSOR_FILE)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    text.split_whitespace()
        .next()
        .and_then(|t| t.parse::<f64>().ok())
        .ok_or_else(|| "no number in it".to_owned())
}

/// `read` after the capability check and the sensor lookup (`target`: the outer error is a
/// denied call or a bad name pointer, the inner one an unknown sensor).
async fn finish_read<T: Send + 'static>(
    caller: &mut Caller<'_, T>,
    get: Get<T>,
    target: Result<Target, i32>,
    arg: i32,
) -> f64 {
    let i = match target {
        Ok(Ok(i)) => i,
        Ok(Err(e)) | Err(e) => return f64::from(e),
    };
    match get(caller.data_mut()).begin_read(i, arg) {
        Reading::Value(v) => v,
        Reading::File { path, scale } => {
            let job = path.clone();
            let value = tokio::task::spawn_blocking(move || read_number(&job))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
                .map(|v| v * scale);
            get(caller.data_mut()).end_read(i, &path, value)
        }
    }
}

/// `ocre_sensors_read` and `_by_name`: async, so a file read never runs on an executor
/// thread, where a slow or blocking file would stall every container sharing the thread.
fn add_read<T: Send + 'static>(linker: &mut Linker<T>, get: Get<T>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        "env",
        abi::OCRE_SENSORS_READ.name,
        move |mut caller: Caller<'_, T>, (h, c): (i32, i32)| {
            let st = get(caller.data_mut());
            let target = st.begin(&abi::OCRE_SENSORS_READ).map(|()| st.sensor_index(h));
            Box::new(async move { finish_read(&mut caller, get, target, c).await })
        },
    )?;
    linker.func_wrap_async(
        "env",
        abi::OCRE_SENSORS_READ_BY_NAME.name,
        move |mut caller: Caller<'_, T>, (name, c): (u32, i32)| {
            let target = resolve_name(&mut caller, get, &abi::OCRE_SENSORS_READ_BY_NAME, name);
            Box::new(async move { finish_read(&mut caller, get, target, c).await })
        },
    )?;
    Ok(())
}

/// Resolve a name argument to a sensor after the capability check. The outer `Err` is the
/// code for a denied call or a bad pointer; an unknown name is the target `Err(ENOENT)`.
fn resolve_name<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: Get<T>,
    function: &'static HostFn,
    ptr: u32,
) -> Result<Target, i32> {
    get(caller.data_mut()).begin(function)?;
    let mem = guest_memory(caller, get).map_err(|_| EINVAL)?;
    let (data, t) = mem.data_and_store_mut(caller);
    let name = read_cstr(data, ptr, MAX_NAME).map_err(|_| EINVAL)?;
    Ok(get(t).sensors.iter().position(|s| s.name == name).ok_or(ENOENT))
}

/// A function served twice, by sensor handle and by sensor name, with the same operation.
struct SensorFns<R> {
    by_handle: &'static HostFn,
    by_name: &'static HostFn,
    /// Takes a channel argument after the handle or name.
    with_channel: bool,
    op: Op<R>,
    /// Turns an error code into the function's return type (`read` returns an `f64`).
    err: fn(i32) -> R,
}

impl<R> SensorFns<R> {
    fn new(
        by_handle: &'static HostFn,
        by_name: &'static HostFn,
        with_channel: bool,
        op: Op<R>,
        err: fn(i32) -> R,
    ) -> Self {
        SensorFns {
            by_handle,
            by_name,
            with_channel,
            op,
            err,
        }
    }
}

fn add_op<T: Send + 'static, R: wasmtime::WasmRet + Copy + Send + Sync + 'static>(
    linker: &mut Linker<T>,
    get: Get<T>,
    fns: SensorFns<R>,
) -> wasmtime::Result<()> {
    let SensorFns {
        by_handle: by_handle_fn,
        by_name,
        with_channel,
        op,
        err,
    } = fns;
    let by_handle = move |caller: &mut Caller<'_, T>, h: i32, c: i32| -> R {
        let st = get(caller.data_mut());
        if let Err(e) = st.begin(by_handle_fn) {
            return err(e);
        }
        let i = st.sensor_index(h);
        op(st, i, c)
    };
    let named = move |caller: &mut Caller<'_, T>, name: u32, c: i32| -> R {
        match resolve_name(caller, get, by_name, name) {
            Ok(target) => op(get(caller.data_mut()), target, c),
            Err(e) => err(e),
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
        (
            &abi::OCRE_SENSORS_OPEN,
            &abi::OCRE_SENSORS_OPEN_BY_NAME,
            false,
            open as Op<i32>,
        ),
        (
            &abi::OCRE_SENSORS_GET_HANDLE,
            &abi::OCRE_SENSORS_GET_HANDLE_BY_NAME,
            false,
            handle,
        ),
        (
            &abi::OCRE_SENSORS_GET_CHANNEL_COUNT,
            &abi::OCRE_SENSORS_GET_CHANNEL_COUNT_BY_NAME,
            false,
            channel_count,
        ),
        (
            &abi::OCRE_SENSORS_GET_CHANNEL_TYPE,
            &abi::OCRE_SENSORS_GET_CHANNEL_TYPE_BY_NAME,
            true,
            channel_type,
        ),
    ];
    for (by_handle, by_name, with_channel, op) in int_fns {
        add_op(linker, get, SensorFns::new(by_handle, by_name, with_channel, op, |e| e))?;
    }
    add_read(linker, get)?;
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

    use super::{EIO, ENOENT};
    use crate::broker::Broker;
    use crate::host::testutil::*;
    use crate::host::EINVAL;
    use crate::spec::{ChannelType, SensorKind, SensorSpec};

    fn sensors(dir: &std::path::Path) -> Vec<SensorSpec> {
        vec![
            SensorSpec {
                name: "dice".into(),
                kind: SensorKind::Rng { min: 1.0, max: 6.0 },
                channels: 2,
                channel_types: vec![ChannelType::Custom, ChannelType::Custom],
            },
            SensorSpec {
                name: "cpu".into(),
                kind: SensorKind::Hwmon {
                    path: dir.join("temp1_input"),
                    scale: 0.001,
                },
                channels: 1,
                channel_types: vec![ChannelType::Temperature],
            },
            SensorSpec {
                name: "gone".into(),
                kind: SensorKind::File {
                    path: dir.join("missing"),
                    scale: 1.0,
                },
                channels: 1,
                channel_types: vec![ChannelType::Custom],
            },
            SensorSpec {
                name: "climate".into(),
                kind: SensorKind::Rng { min: 40.0, max: 60.0 },
                channels: 2,
                channel_types: vec![ChannelType::Humidity, ChannelType::Temperature],
            },
        ]
    }

    /// A FIFO nobody writes used to block the read in open(2) on an executor thread, and
    /// with it every container sharing that thread and the systemd watchdog.
    #[tokio::test]
    async fn a_sensor_on_a_fifo_reads_eio_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("temp1_input");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut cfg = config("s", ALL, &broker, &log);
        cfg.sensors = sensors(dir.path());
        let mut g = Guest::new(&engine, cfg).await;
        assert_eq!(g.f("ocre_sensors_read", &[1, 0]).await, f64::from(EIO));
        let w = log.warnings();
        assert!(w.iter().any(|w| w.contains("not a regular file")), "{w:?}");
    }

    #[tokio::test]
    async fn sensors_rng_file_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("temp1_input");
        std::fs::write(&temp, "42500\n").unwrap();
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut cfg = config("s", ALL, &broker, &log);
        cfg.sensors = sensors(dir.path());
        let mut g = Guest::new(&engine, cfg).await;
        assert_eq!(g.i("ocre_sensors_init", &[]).await, 0);
        assert_eq!(g.i("ocre_sensors_discover", &[]).await, 4);
        assert_eq!(g.i("ocre_sensors_open", &[1]).await, 0);
        assert_eq!(g.i("ocre_sensors_open", &[4]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_handle", &[2]).await, 2);
        assert_eq!(g.i("ocre_sensors_get_handle", &[-1]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_channel_count", &[0]).await, 2);
        assert_eq!(g.i("ocre_sensors_get_channel_type", &[0, 1]).await, 0x8001);
        assert_eq!(g.i("ocre_sensors_get_channel_type", &[0, 2]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_channel_type", &[0, -1]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_channel_type", &[9, 0]).await, EINVAL);
        for _ in 0..100 {
            let v = g.f("ocre_sensors_read", &[0, 1]).await;
            assert!((1.0..=6.0).contains(&v), "{v}");
        }
        assert_eq!(g.f("ocre_sensors_read", &[0, 2]).await, f64::from(EIO));
        assert_eq!(g.f("ocre_sensors_read", &[7, 0]).await, f64::from(EINVAL));
        assert!((g.f("ocre_sensors_read", &[1, 0]).await - 42.5).abs() < 1e-9);
        std::fs::write(&temp, "43000").unwrap();
        assert!((g.f("ocre_sensors_read", &[1, 0]).await - 43.0).abs() < 1e-9);
        assert_eq!(g.f("ocre_sensors_read", &[2, 0]).await, f64::from(EIO));
        assert_eq!(g.f("ocre_sensors_read", &[2, 0]).await, f64::from(EIO));
        let w = log.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("channel type 2") && w[0].contains("0 = custom (32768)"),
            "{w:?}"
        );
        assert!(w[1].contains("cannot read"), "{w:?}");

        let cpu = g.cstr(100, "cpu");
        let nope = g.cstr(200, "nope");
        assert_eq!(g.i("ocre_sensors_open_by_name", &[cpu]).await, 0);
        assert_eq!(g.i("ocre_sensors_open_by_name", &[nope]).await, ENOENT);
        assert_eq!(g.i("ocre_sensors_open_by_name", &[-1]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_handle_by_name", &[cpu]).await, 1);
        assert_eq!(g.i("ocre_sensors_get_handle_by_name", &[nope]).await, ENOENT);
        assert_eq!(g.i("ocre_sensors_get_channel_count_by_name", &[cpu]).await, 1);
        assert_eq!(g.i("ocre_sensors_get_channel_type_by_name", &[cpu, 0]).await, 7);
        assert_eq!(g.i("ocre_sensors_get_channel_type_by_name", &[cpu, 1]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_channel_type_by_name", &[nope, 0]).await, ENOENT);
        // By type (7, temperature) as the SDK does, and by index 0 (no channel has type 0).
        assert!((g.f("ocre_sensors_read_by_name", &[cpu, 7]).await - 43.0).abs() < 1e-9);
        assert!((g.f("ocre_sensors_read_by_name", &[cpu, 0]).await - 43.0).abs() < 1e-9);
        assert_eq!(g.f("ocre_sensors_read_by_name", &[cpu, 6]).await, f64::from(EIO));
        assert_eq!(g.f("ocre_sensors_read_by_name", &[nope, 0]).await, f64::from(ENOENT));
        assert_eq!(
            g.f("ocre_sensors_read_by_name", &[i32::MAX, 0]).await,
            f64::from(EINVAL)
        );

        g.write(1000, &[0xAA; 20]);
        assert_eq!(g.i("ocre_sensors_get_list", &[1000, 2]).await, 2);
        assert_eq!(g.u32_at(1000), 0);
        assert_eq!(g.u32_at(1004), 1);
        assert_eq!(g.u32_at(1008), 0xAAAA_AAAA);
        assert_eq!(g.i("ocre_sensors_get_list", &[1000, 10]).await, 4);
        assert_eq!(g.i("ocre_sensors_get_list", &[1000, -1]).await, EINVAL);
        let end = g.mem().len() as i32;
        assert_eq!(g.i("ocre_sensors_get_list", &[end - 4, 3]).await, EINVAL);
        assert_eq!(g.i("ocre_sensors_get_list", &[end - 4, 1]).await, 1);
    }

    /// What an SDK program does: ask each channel's type, then read by that type.
    #[tokio::test]
    async fn sensors_read_by_the_type_get_channel_type_returns() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut cfg = config("s", ALL, &broker, &log);
        cfg.sensors = sensors(dir.path());
        let mut g = Guest::new(&engine, cfg).await;
        let climate = g.cstr(100, "climate");
        for (handle, channel) in [(0, 0), (0, 1), (3, 0), (3, 1)] {
            let t = g.i("ocre_sensors_get_channel_type", &[handle, channel]).await;
            let (lo, hi) = if handle == 0 { (1.0, 6.0) } else { (40.0, 60.0) };
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..20 {
                let v = g.f("ocre_sensors_read", &[handle, t]).await;
                assert!((lo..=hi).contains(&v), "sensor {handle} type {t}: {v}");
                seen.insert(v.to_bits());
            }
            assert!(seen.len() > 1, "values vary");
        }
        // climate: humidity (6) is channel 0, temperature (7) channel 1.
        assert_eq!(g.i("ocre_sensors_get_channel_type_by_name", &[climate, 0]).await, 6);
        assert_eq!(g.i("ocre_sensors_get_channel_type_by_name", &[climate, 1]).await, 7);
        let v = g.f("ocre_sensors_read_by_name", &[climate, 7]).await;
        assert!((40.0..=60.0).contains(&v), "{v}");
        // 1 is no channel's type, so it is read as channel index 1.
        let v = g.f("ocre_sensors_read_by_name", &[climate, 1]).await;
        assert!((40.0..=60.0).contains(&v), "{v}");
        assert_eq!(
            g.f("ocre_sensors_read_by_name", &[climate, 0x8000]).await,
            f64::from(EIO)
        );
        assert_eq!(g.f("ocre_sensors_read", &[3, 2]).await, f64::from(EIO));
        assert_eq!(log.warnings().len(), 1, "{:?}", log.warnings());
    }
}
