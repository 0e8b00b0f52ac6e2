//! CPU share per container (`limits.cpu`) and what a guest does at each epoch deadline.
//!
//! Containers run as tasks on the executor's workers (one per core, see
//! [`crate::executor`]); a container is one task, so it runs on one worker at a time and
//! can use at most one core. Epoch interruption makes a running guest yield its worker to
//! the others at every tick (10 ms); a guest with `limits.cpu` is in addition held off the
//! executor once it has used more than its share, for as long as it takes to be back
//! within it, so a spinning guest at `0.25` runs 10 ms and waits 30 ms. A share of 1 or
//! more (`1.5`, what a compose user writes for "one and a half cores") is never held off:
//! one core is already the most a guest can use.
//!
//! Measuring. The guest's CPU time is the CPU time of the worker thread that polls its
//! `_start` call, counted inside each `poll` ([`metered`]; a poll runs on one thread even
//! when work stealing moves the task between polls): that covers its wasm and the host functions it
//! calls (a publish flood is mostly host time), and excludes the time it is parked
//! (`ocre_sleep`, event waits) or waits its turn behind other containers. The thread's own
//! CPU clock (not wall time) is read, so a machine busy with other processes does not make
//! a guest look busier than it is.
//!
//! Deciding. A token bucket: the container earns `share` of every elapsed second as credit
//! (at most [`BURST`] saved up, so a guest that was idle may run a short burst at full speed)
//! and spends what it uses. At each epoch deadline, `at_epoch_deadline` asks [`decide`]
//! what to do; with credit below zero the guest sleeps `-credit / share` (a tokio timer, not
//! a blocked thread: the executor runs everyone else meanwhile) and counts as not executing,
//! so the epoch ticker can stop when nothing else runs.
//!
//! Precision: the decision is taken at epoch ticks, so a guest may overrun its share by up
//! to one tick per decision; over any second the share holds within a few percent.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, StoreContextMut, UpdateDeadline};

use super::ContainerCtx;
use crate::logs::{LogSink, Stream};
use crate::spec::CpuShare;

/// The most CPU credit a container saves up while it is idle.
pub const BURST: Duration = Duration::from_millis(20);

/// Install the per-container epoch-deadline behaviour on a new store. The one hook point of
/// this module in `Runtime::new_store`.
pub fn install(store: &mut Store<ContainerCtx>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(at_epoch_deadline);
}

/// What a guest does when its epoch deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtDeadline {
    /// Let the others run once, then continue (every guest, every tick).
    Yield,
    /// Stay off the executor this long, then continue (over its CPU share).
    Sleep(Duration),
    /// Stay off the executor until the operator unpauses it (`shoal pause`).
    Paused,
}

/// The one place that decides what a guest does at an epoch deadline. Other reasons to
/// hold a guest (an operator's pause) belong here beside the CPU share.
pub fn decide(ctx: &mut ContainerCtx, now: Instant) -> AtDeadline {
    if ctx.probe.is_paused() {
        return AtDeadline::Paused;
    }
    ctx.cpu.decide(now)
}

/// The store's epoch-deadline callback: carries out [`decide`].
fn at_epoch_deadline(mut cx: StoreContextMut<'_, ContainerCtx>) -> wasmtime::Result<UpdateDeadline> {
    let ctx = cx.data_mut();
    ctx.probe.note_deadline_hold();
    match decide(ctx, Instant::now()) {
        // tokio's `yield_now`, not wasmtime's own `Yield`: tokio defers the task until it
        // has polled its drivers, so timers (a neighbour's `ocre_sleep`, a throttled guest's
        // pause) and signals (Ctrl-C) are seen at every tick. wasmtime's yield wakes the task
        // at once, and a busy current-thread executor then checks its drivers only every 61
        // polls: 0.6 s late behind one spinning guest.
        AtDeadline::Yield => Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))),
        // While held off, the call is not being polled, so the epoch ticker does not count
        // the guest as running (see `runtime::polled`).
        AtDeadline::Sleep(pause) => Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::time::sleep(pause)))),
        AtDeadline::Paused => {
            let probe = ctx.probe.clone();
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move { probe.resumed().await }),
            ))
        }
    }
}

/// CPU time used by one container, shared between its metered `_start` call and its
/// epoch callback (both run on the thread that polls the container).
#[derive(Debug)]
pub struct Meter {
    /// Nanoseconds used in finished polls.
    used: AtomicU64,
    /// The polling thread's CPU clock at the start of the poll in progress, plus one
    /// (0: no poll in progress).
    poll_started: AtomicU64,
}

/// This thread's CPU time in nanoseconds, plus one (so that 0 can mean "none").
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec we pass.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    if !ok {
        return 1;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
        .saturating_add(1)
}

impl Meter {
    fn new() -> Self {
        Meter {
            used: AtomicU64::new(0),
            poll_started: AtomicU64::new(0),
        }
    }

    fn begin_poll(&self) {
        self.poll_started.store(thread_cpu_ns(), Ordering::Relaxed);
    }

    fn end_poll(&self) {
        let started = self.poll_started.swap(0, Ordering::Relaxed);
        if started != 0 {
            self.used
                .fetch_add(thread_cpu_ns().saturating_sub(started), Ordering::Relaxed);
        }
    }

    /// CPU time used so far, including the poll in progress (call it on the polling thread).
    pub fn used(&self) -> Duration {
        let mut used = self.used.load(Ordering::Relaxed);
        let started = self.poll_started.load(Ordering::Relaxed);
        if started != 0 {
            used = used.saturating_add(thread_cpu_ns().saturating_sub(started));
        }
        Duration::from_nanos(used)
    }
}

/// Run `call` (a container's `_start`) and count the time spent polling it as the
/// container's CPU time (without a meter: just run it).
///
/// `call` comes pinned by the caller, as in [`super::polled`]: a future taken by value and
/// pinned inside an `async fn` is kept twice in its state, and this one (wasmtime's call)
/// is what a parked container's task holds for as long as it runs.
pub async fn metered<F: Future>(meter: Option<Arc<Meter>>, mut call: std::pin::Pin<&mut F>) -> F::Output {
    let Some(meter) = meter else {
        return call.await;
    };
    std::future::poll_fn(|cx| {
        meter.begin_poll();
        let polled = call.as_mut().poll(cx);
        meter.end_poll();
        polled
    })
    .await
}

/// Throttle counters, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Times the guest was held off the executor for exceeding its share.
    pub throttles: u64,
    /// Total time it was held off.
    pub throttled: Duration,
}

/// One container's share, meter and credit.
pub struct CpuState {
    share: Option<CpuShare>,
    meter: Arc<Meter>,
    /// Credit in nanoseconds of CPU time; below zero the guest must wait.
    credit: i128,
    last_refill: Instant,
    last_used: Duration,
    stats: CpuStats,
    report: Option<(Arc<str>, Arc<dyn LogSink>)>,
}

impl CpuState {
    pub fn new(share: Option<CpuShare>) -> Self {
        CpuState {
            share,
            meter: Arc::new(Meter::new()),
            credit: BURST.as_nanos() as i128,
            last_refill: Instant::now(),
            last_used: Duration::ZERO,
            stats: CpuStats::default(),
            report: None,
        }
    }

    /// Report the first throttle as a warning about `container` on `log`.
    pub fn reporting_to(mut self, container: impl Into<Arc<str>>, log: Arc<dyn LogSink>) -> Self {
        self.report = Some((container.into(), log));
        self
    }

    /// The meter to pass to [`metered`], or `None` when no share can hold this guest off
    /// (no `limits.cpu`, or one of a core or more): then nothing reads the meter, and
    /// reading the thread's CPU clock (a system call, twice per poll) would only slow every
    /// wake-up of every container.
    pub fn meter(&self) -> Option<Arc<Meter>> {
        self.throttling_share().map(|_| self.meter.clone())
    }

    /// The share, if it can ever hold the guest off.
    fn throttling_share(&self) -> Option<CpuShare> {
        self.share.filter(|s| !s.is_unthrottled())
    }

    pub fn stats(&self) -> CpuStats {
        self.stats
    }

    /// Settle the credit at `now` and say whether the guest may go on.
    fn decide(&mut self, now: Instant) -> AtDeadline {
        let Some(share) = self.throttling_share() else {
            return AtDeadline::Yield;
        };
        let used = self.meter.used();
        let spent = used.saturating_sub(self.last_used).as_nanos() as i128;
        self.last_used = used;
        let elapsed = now.saturating_duration_since(self.last_refill).as_nanos() as i128;
        self.last_refill = now;
        let milli = i128::from(share.milli());
        let earned = elapsed * milli / 1000;
        // Net first, then the cap: a guest using all of a 100% share never goes below zero,
        // however late a tick comes.
        self.credit = (self.credit + earned - spent).min(BURST.as_nanos() as i128);
        if self.credit >= 0 {
            return AtDeadline::Yield;
        }
        let wait_ns = (-self.credit) * 1000 / milli;
        let wait = Duration::from_nanos(u64::try_from(wait_ns).unwrap_or(u64::MAX));
        self.stats.throttles += 1;
        self.stats.throttled += wait;
        if self.stats.throttles == 1 {
            if let Some((container, log)) = &self.report {
                log.line(
                    container,
                    Stream::Warning,
                    &format!(
                        "over its `limits.cpu` share ({}%): held off the executor until it is back within it (reported once)",
                        f64::from(share.milli()) / 10.0
                    ),
                );
            }
        }
        AtDeadline::Sleep(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(milli: u32) -> CpuState {
        CpuState::new(CpuShare::from_milli(milli))
    }

    /// Pretend the guest ran `ran` inside one poll.
    fn run_for(st: &CpuState, ran: Duration) {
        st.meter.used.fetch_add(ran.as_nanos() as u64, Ordering::Relaxed);
    }

    #[test]
    fn without_a_share_the_guest_only_yields() {
        let mut st = CpuState::new(None);
        run_for(&st, Duration::from_secs(10));
        assert_eq!(st.decide(Instant::now()), AtDeadline::Yield);
    }

    #[test]
    fn a_spinning_guest_settles_at_its_share() {
        let mut st = state(250);
        let start = st.last_refill;
        let tick = Duration::from_millis(10);
        let mut now = start;
        let mut ran = Duration::ZERO;
        // Simulate 10 s of a guest that runs whenever it is allowed to.
        while now < start + Duration::from_secs(10) {
            run_for(&st, tick);
            ran += tick;
            now += tick;
            if let AtDeadline::Sleep(wait) = st.decide(now) {
                now += wait;
            }
        }
        let share = ran.as_secs_f64() / (now - start).as_secs_f64();
        assert!((0.24..=0.26).contains(&share), "ran {share:.3} of the time");
        assert!(st.stats().throttles > 100);
    }

    #[test]
    fn an_idle_guest_keeps_only_a_short_burst_of_credit() {
        let mut st = state(100);
        // Idle for a minute: the first deadline after it wakes finds little spent.
        let later = st.last_refill + Duration::from_secs(60);
        assert_eq!(st.decide(later), AtDeadline::Yield);
        run_for(&st, Duration::from_millis(15));
        assert_eq!(st.decide(later), AtDeadline::Yield, "within the 20 ms burst");
        run_for(&st, Duration::from_millis(10));
        match st.decide(later) {
            // 5 ms over at 10%: 50 ms off.
            AtDeadline::Sleep(wait) => assert_eq!(wait, Duration::from_millis(50)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_whole_core_is_never_throttled_even_when_ticks_come_late() {
        let mut st = state(1000);
        let mut now = st.last_refill;
        for late in [10, 26, 50, 10, 200, 3] {
            let window = Duration::from_millis(late);
            run_for(&st, window);
            now += window;
            assert_eq!(st.decide(now), AtDeadline::Yield);
        }
    }

    #[test]
    fn more_than_one_core_is_never_throttled() {
        let mut st = state(1500);
        let mut now = st.last_refill;
        for _ in 0..100 {
            // A guest that used twice the wall time (impossible on one thread) still runs.
            run_for(&st, Duration::from_millis(20));
            now += Duration::from_millis(10);
            assert_eq!(st.decide(now), AtDeadline::Yield);
        }
        assert_eq!(st.stats().throttles, 0);
    }

    #[test]
    fn only_a_share_that_can_hold_the_guest_off_is_metered() {
        assert!(CpuState::new(None).meter().is_none());
        assert!(state(1000).meter().is_none());
        assert!(state(1500).meter().is_none());
        assert!(state(250).meter().is_some());
    }

    #[tokio::test]
    async fn metered_counts_time_inside_poll_only() {
        let meter = Arc::new(Meter::new());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // Another thread wakes the call after a long wait, during which it is not polled.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            let _ = tx.send(());
        });
        let call = std::pin::pin!(async {
            let spin = thread_cpu_ns();
            while thread_cpu_ns() - spin < 30_000_000 {
                std::hint::spin_loop();
            }
            let _ = rx.await;
        });
        metered(Some(meter.clone()), call).await;
        let used = meter.used();
        assert!(used >= Duration::from_millis(30), "{used:?}");
        assert!(used < Duration::from_millis(500), "the wait is not CPU time: {used:?}");
    }
}
