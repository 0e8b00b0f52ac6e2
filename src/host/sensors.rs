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
use super::{HostState, EINVAL, SUCCESS};
use crate::spec::{Capability, SensorKind};

type Get<T> = fn(&mut T) -> &mut HostState;

/// The channel type every channel reports.
pub const CHANNEL_TYPE_CUSTOM: i32 = 0x8000;
const MAX_NAME: u32 = 256;

impl HostState {
    fn sensor_index(&self, handle: i32) -> Option<usize> {
        usize::try_from(handle)
            .ok()
            .filter(|&i| i < self.sensors.len())
    }

    fn sensor_by_name(&self, name: &str) -> Option<usize> {
        self.sensors.iter().position(|s| s.name == name)
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
                let value = std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
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
                            format!(
                                "sensor `{name}`: cannot read {}: {e}; reads return NaN",
                                path.display()
                            )
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

/// Read a sensor name argument; `None` on any pointer error.
fn name_arg<T: 'static>(caller: &mut Caller<'_, T>, ptr: u32) -> Option<String> {
    let mem = guest_memory(caller).ok()?;
    read_cstr(mem.data(&*caller), ptr, MAX_NAME)
        .ok()
        .map(str::to_owned)
}

macro_rules! gate {
    ($st:expr, $name:expr, $err:expr) => {{
        $st.enter();
        if $st.require($name, Capability::Sensors).is_err() {
            return $err;
        }
    }};
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: Get<T>,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "ocre_sensors_init",
        move |mut caller: Caller<'_, T>| -> i32 {
            let st = get(caller.data_mut());
            gate!(st, "ocre_sensors_init", EINVAL);
            SUCCESS
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_discover",
        move |mut caller: Caller<'_, T>| -> i32 {
            let st = get(caller.data_mut());
            gate!(st, "ocre_sensors_discover", EINVAL);
            i32::try_from(st.sensors.len()).unwrap_or(i32::MAX)
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_open",
        move |mut caller: Caller<'_, T>, h: i32| -> i32 {
            let st = get(caller.data_mut());
            gate!(st, "ocre_sensors_open", EINVAL);
            if st.sensor_index(h).is_some() {
                SUCCESS
            } else {
                EINVAL
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_get_handle",
        move |mut caller: Caller<'_, T>, i: i32| -> i32 {
            let st = get(caller.data_mut());
            gate!(st, "ocre_sensors_get_handle", EINVAL);
            if st.sensor_index(i).is_some() {
                i
            } else {
                EINVAL
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_get_channel_count",
        move |mut caller: Caller<'_, T>, h: i32| -> i32 {
            let st = get(caller.data_mut());
            gate!(st, "ocre_sensors_get_channel_count", EINVAL);
            st.sensor_index(h).map_or(EINVAL, |i| {
                i32::try_from(st.sensors[i].channels).unwrap_or(i32::MAX)
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_get_channel_type",
        move |mut caller: Caller<'_, T>, h: i32, c: i32| -> i32 {
            let st = get(caller.data_mut());
            gate!(st, "ocre_sensors_get_channel_type", EINVAL);
            match st.sensor_index(h) {
                Some(i) if st.channel_ok(i, c) => CHANNEL_TYPE_CUSTOM,
                _ => EINVAL,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_read",
        move |mut caller: Caller<'_, T>, h: i32, c: i32| -> f64 {
            let st = get(caller.data_mut());
            gate!(st, "ocre_sensors_read", f64::NAN);
            match st.sensor_index(h) {
                Some(i) => st.read_sensor(i, c),
                None => f64::NAN,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_open_by_name",
        move |mut caller: Caller<'_, T>, name: u32| -> i32 {
            gate!(get(caller.data_mut()), "ocre_sensors_open_by_name", EINVAL);
            let Some(name) = name_arg(&mut caller, name) else {
                return EINVAL;
            };
            let st = get(caller.data_mut());
            st.sensor_by_name(&name).map_or(EINVAL, |i| i as i32)
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_get_handle_by_name",
        move |mut caller: Caller<'_, T>, name: u32| -> i32 {
            gate!(
                get(caller.data_mut()),
                "ocre_sensors_get_handle_by_name",
                EINVAL
            );
            let Some(name) = name_arg(&mut caller, name) else {
                return EINVAL;
            };
            let st = get(caller.data_mut());
            st.sensor_by_name(&name).map_or(EINVAL, |i| i as i32)
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_get_channel_count_by_name",
        move |mut caller: Caller<'_, T>, name: u32| -> i32 {
            gate!(
                get(caller.data_mut()),
                "ocre_sensors_get_channel_count_by_name",
                EINVAL
            );
            let Some(name) = name_arg(&mut caller, name) else {
                return EINVAL;
            };
            let st = get(caller.data_mut());
            st.sensor_by_name(&name).map_or(EINVAL, |i| {
                i32::try_from(st.sensors[i].channels).unwrap_or(i32::MAX)
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_get_channel_type_by_name",
        move |mut caller: Caller<'_, T>, name: u32, c: i32| -> i32 {
            gate!(
                get(caller.data_mut()),
                "ocre_sensors_get_channel_type_by_name",
                EINVAL
            );
            let Some(name) = name_arg(&mut caller, name) else {
                return EINVAL;
            };
            let st = get(caller.data_mut());
            match st.sensor_by_name(&name) {
                Some(i) if st.channel_ok(i, c) => CHANNEL_TYPE_CUSTOM,
                _ => EINVAL,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_read_by_name",
        move |mut caller: Caller<'_, T>, name: u32, c: i32| -> f64 {
            gate!(
                get(caller.data_mut()),
                "ocre_sensors_read_by_name",
                f64::NAN
            );
            let Some(name) = name_arg(&mut caller, name) else {
                return f64::NAN;
            };
            let st = get(caller.data_mut());
            match st.sensor_by_name(&name) {
                Some(i) => st.read_sensor(i, c),
                None => f64::NAN,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_sensors_get_list",
        move |mut caller: Caller<'_, T>, buf: u32, max: i32| -> i32 {
            gate!(get(caller.data_mut()), "ocre_sensors_get_list", EINVAL);
            let Ok(max) = usize::try_from(max) else {
                return EINVAL;
            };
            let Ok(mem) = guest_memory(&mut caller) else {
                return EINVAL;
            };
            let (data, t) = mem.data_and_store_mut(&mut caller);
            let st = get(t);
            let n = st.sensors.len().min(max);
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
        assert_eq!(
            g.i("ocre_sensors_get_channel_count_by_name", &[cpu]).await,
            1
        );
        assert_eq!(
            g.i("ocre_sensors_get_channel_type_by_name", &[cpu, 0])
                .await,
            super::CHANNEL_TYPE_CUSTOM
        );
        assert_eq!(
            g.i("ocre_sensors_get_channel_type_by_name", &[cpu, 1])
                .await,
            EINVAL
        );
        assert!((g.f("ocre_sensors_read_by_name", &[cpu, 0]).await - 43.0).abs() < 1e-9);
        assert!(g.f("ocre_sensors_read_by_name", &[nope, 0]).await.is_nan());
        assert!(g
            .f("ocre_sensors_read_by_name", &[i32::MAX, 0])
            .await
            .is_nan());

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
