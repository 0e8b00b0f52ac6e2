//! `ocre_timer_create/start/stop/delete/get_remaining`.
//!
//! Timers belong to one container (two containers may both use id 1). Valid ids are
//! `1..=i32::MAX` (`-22` otherwise, `-16` EBUSY when taken); a container holds at most
//! `HostLimits::max_timers` at once (`-12` beyond). No task runs per timer: deadlines are
//! kept here and become events lazily when the guest calls `ocre_get_event`, and an
//! event-wait `ocre_sleep` wakes at the next deadline. A periodic timer reschedules from
//! its previous deadline (no drift); periods missed while the guest was busy coalesce into
//! one event. Intervals must be at least 1 ms. Stopping or deleting a timer discards an
//! expiry not yet reported. Timers vanish with the container's `HostState`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wasmtime::{Caller, Linker};

use super::{Get, HostFn, HostState, EBUSY, EINVAL, ENOMEM, SUCCESS};
use shoal_abi as abi;

#[derive(Debug, Clone)]
struct Timer {
    interval: Duration,
    periodic: bool,
    deadline: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    map: BTreeMap<i32, Timer>,
}

impl Timers {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.map.values().filter_map(|t| t.deadline).min()
    }

    /// [`Timers::take_due`] at the present time, reading the clock only when a timer exists
    /// (most containers have none, and this runs at every `ocre_get_event`).
    pub fn take_due_now(&mut self) -> Option<i32> {
        if self.map.is_empty() {
            return None;
        }
        self.take_due(Instant::now())
    }

    /// Take the due timer with the earliest deadline, rearming it if periodic.
    pub fn take_due(&mut self, now: Instant) -> Option<i32> {
        let (&id, _) = self
            .map
            .iter()
            .filter(|(_, t)| t.deadline.is_some_and(|d| d <= now))
            .min_by_key(|(_, t)| t.deadline)?;
        let t = self.map.get_mut(&id)?;
        let deadline = t.deadline?;
        t.deadline = if t.periodic {
            let period = t.interval.as_nanos().max(1);
            let late = now.saturating_duration_since(deadline).as_nanos();
            let periods = late / period + 1;
            let step = u64::try_from(period.saturating_mul(periods)).unwrap_or(u64::MAX);
            deadline.checked_add(Duration::from_nanos(step))
        } else {
            None
        };
        Some(id)
    }
}

fn valid(id: i32) -> bool {
    id >= 1
}

/// A one-argument timer call, after the capability check.
type TimerOp = fn(&mut HostState, i32) -> i32;

fn create(st: &mut HostState, id: i32) -> i32 {
    if !valid(id) {
        return EINVAL;
    }
    if st.timers.map.contains_key(&id) {
        return EBUSY;
    }
    if st.timers.len() >= st.limits.max_timers {
        let max = st.limits.max_timers;
        st.warn_once("timer:max", || {
            format!(
                "{} refused: the container already has {max} timers (`limits.max_timers`); the call returns -12 (ENOMEM)",
                abi::OCRE_TIMER_CREATE.name
            )
        });
        return ENOMEM;
    }
    let timer = Timer {
        interval: Duration::ZERO,
        periodic: false,
        deadline: None,
    };
    st.timers.map.insert(id, timer);
    SUCCESS
}

fn stop(st: &mut HostState, id: i32) -> i32 {
    match st.timers.map.get_mut(&id) {
        Some(t) => {
            t.deadline = None;
            SUCCESS
        }
        None => EINVAL,
    }
}

fn delete(st: &mut HostState, id: i32) -> i32 {
    st.timers.map.remove(&id).map_or(EINVAL, |_| SUCCESS)
}

fn remaining(st: &mut HostState, id: i32) -> i32 {
    match st.timers.map.get(&id) {
        Some(t) => t.deadline.map_or(0, |d| {
            let ms = d.saturating_duration_since(Instant::now()).as_millis();
            i32::try_from(ms).unwrap_or(i32::MAX)
        }),
        None => EINVAL,
    }
}

fn start(st: &mut HostState, id: i32, interval_ms: i32, periodic: i32) -> i32 {
    if interval_ms <= 0 {
        return EINVAL;
    }
    let Some(t) = st.timers.map.get_mut(&id) else {
        return EINVAL;
    };
    t.interval = Duration::from_millis(interval_ms as u64);
    t.periodic = periodic != 0;
    t.deadline = Instant::now().checked_add(t.interval);
    SUCCESS
}

pub(crate) fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: Get<T>) -> wasmtime::Result<()> {
    let one_arg: [(&'static HostFn, TimerOp); 4] = [
        (&abi::OCRE_TIMER_CREATE, create),
        (&abi::OCRE_TIMER_STOP, stop),
        (&abi::OCRE_TIMER_DELETE, delete),
        (&abi::OCRE_TIMER_GET_REMAINING, remaining),
    ];
    for (function, op) in one_arg {
        linker.func_wrap("env", function.name, move |mut caller: Caller<'_, T>, id: i32| {
            let st = get(caller.data_mut());
            st.begin(function).map_or_else(|e| e, |()| op(st, id))
        })?;
    }
    linker.func_wrap(
        "env",
        abi::OCRE_TIMER_START.name,
        move |mut caller: Caller<'_, T>, id: i32, interval_ms: i32, periodic: i32| {
            let st = get(caller.data_mut());
            st.begin(&abi::OCRE_TIMER_START)
                .map_or_else(|e| e, |()| start(st, id, interval_ms, periodic))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_no_drift_and_coalesce() {
        let mut ts = Timers::default();
        let t0 = Instant::now();
        ts.map.insert(
            1,
            Timer {
                interval: Duration::from_millis(100),
                periodic: true,
                deadline: Some(t0 + Duration::from_millis(100)),
            },
        );
        assert_eq!(ts.take_due(t0), None);
        // Late by 30 ms: next deadline stays on the grid.
        assert_eq!(ts.take_due(t0 + Duration::from_millis(130)), Some(1));
        assert_eq!(ts.next_deadline(), Some(t0 + Duration::from_millis(200)));
        // Missed 3 periods: one event, then back on the grid.
        assert_eq!(ts.take_due(t0 + Duration::from_millis(550)), Some(1));
        assert_eq!(ts.take_due(t0 + Duration::from_millis(550)), None);
        assert_eq!(ts.next_deadline(), Some(t0 + Duration::from_millis(600)));
    }

    #[test]
    fn one_shot_and_order() {
        let mut ts = Timers::default();
        let t0 = Instant::now();
        for (id, ms) in [(5, 30), (2, 10), (9, 20)] {
            ts.map.insert(
                id,
                Timer {
                    interval: Duration::from_millis(ms),
                    periodic: false,
                    deadline: Some(t0 + Duration::from_millis(ms)),
                },
            );
        }
        let now = t0 + Duration::from_millis(50);
        assert_eq!(ts.take_due(now), Some(2));
        assert_eq!(ts.take_due(now), Some(9));
        assert_eq!(ts.take_due(now), Some(5));
        assert_eq!(ts.take_due(now), None);
        assert_eq!(ts.next_deadline(), None);
    }
}

#[cfg(test)]
mod wasm_tests {
    use std::sync::Arc;

    use crate::broker::Broker;
    use crate::host::testutil::*;
    use crate::host::{EBUSY, EINVAL, ENOMEM, ENOMSG};

    #[tokio::test]
    async fn ids_are_per_container() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut a = Guest::new(&engine, config("a", ALL, &broker, &log)).await;
        let mut b = Guest::new(&engine, config("b", ALL, &broker, &log)).await;
        assert_eq!(a.i("ocre_timer_create", &[1]).await, 0);
        assert_eq!(b.i("ocre_timer_create", &[1]).await, 0);
        assert_eq!(a.i("ocre_timer_create", &[1]).await, EBUSY);
        assert_eq!(a.i("ocre_timer_create", &[0]).await, EINVAL);
        assert_eq!(a.i("ocre_timer_create", &[-3]).await, EINVAL);
        assert_eq!(a.i("ocre_timer_start", &[1, 1, 0]).await, 0);
        assert_eq!(b.i("ocre_timer_start", &[1, 100_000, 0]).await, 0);
        a.i("ocre_sleep", &[20]).await;
        assert_eq!(a.get_event().await, (0, [0, 1, 0, 0, 0, 0]));
        assert_eq!(a.get_event().await.0, ENOMSG);
        assert_eq!(b.get_event().await.0, ENOMSG);
        let rem = b.i("ocre_timer_get_remaining", &[1]).await;
        assert!(rem > 90_000 && rem <= 100_000, "{rem}");
        assert_eq!(a.i("ocre_timer_get_remaining", &[1]).await, 0);
        assert_eq!(b.i("ocre_timer_stop", &[1]).await, 0);
        assert_eq!(b.i("ocre_timer_get_remaining", &[1]).await, 0);
        assert_eq!(b.i("ocre_timer_delete", &[1]).await, 0);
        assert_eq!(b.i("ocre_timer_delete", &[1]).await, EINVAL);
        assert_eq!(b.i("ocre_timer_start", &[1, 10, 0]).await, EINVAL);
        assert_eq!(b.i("ocre_timer_get_remaining", &[1]).await, EINVAL);
        assert_eq!(a.i("ocre_timer_start", &[1, 0, 1]).await, EINVAL);
        assert_eq!(a.i("ocre_timer_start", &[1, -5, 1]).await, EINVAL);
    }

    #[tokio::test]
    async fn periodic_timer_fires_repeatedly_and_stop_discards() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut a = Guest::new(&engine, config("a", ALL, &broker, &log)).await;
        assert_eq!(a.i("ocre_timer_create", &[3]).await, 0);
        assert_eq!(a.i("ocre_timer_start", &[3, 10, 1]).await, 0);
        let mut fired = 0;
        for _ in 0..200 {
            if a.get_event().await.0 == 0 {
                fired += 1;
                if fired == 3 {
                    break;
                }
            } else {
                a.i("ocre_sleep", &[1000]).await;
            }
        }
        assert_eq!(fired, 3);
        a.i("ocre_sleep", &[30]).await;
        assert_eq!(a.i("ocre_timer_stop", &[3]).await, 0);
        assert_eq!(a.get_event().await.0, ENOMSG);
        assert_eq!(a.host().stats().timer_events, 3);
    }

    #[tokio::test]
    async fn timer_count_is_limited() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut cfg = config("a", ALL, &broker, &log);
        cfg.limits.max_timers = 2;
        let mut a = Guest::new(&engine, cfg).await;
        assert_eq!(a.i("ocre_timer_create", &[1]).await, 0);
        assert_eq!(a.i("ocre_timer_create", &[i32::MAX]).await, 0);
        assert_eq!(a.i("ocre_timer_create", &[2]).await, ENOMEM);
        assert_eq!(a.i("ocre_timer_delete", &[1]).await, 0);
        assert_eq!(a.i("ocre_timer_create", &[2]).await, 0);
        assert_eq!(log.warnings().len(), 1);
    }
}
