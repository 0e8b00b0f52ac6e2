//! `ocre_sleep(ms)`: park the container without a thread.
//!
//! `ms` is unsigned (up to ~49.7 days) and never overflows. A plain sleep lasts its full
//! length. An *event-wait* sleep — one whose previous host call was an `ocre_get_event`
//! that returned ENOMSG, as in the SDK's `ocre_process_events` loop — returns at once if
//! an event is already waiting, and otherwise parks until the container's next event: its
//! next timer deadline, a delivery into its mailbox or a GPIO edge, however long that takes. Always
//! returns 0.
//!
//! Why an event wait may outlast its `ms`: the SDK polls with 10 ms sleeps, so honouring
//! them would wake every idle container 100 times a second (the reference runtime's 0.1%
//! of a core each; 10,000 idle containers would need several cores). Parking until the
//! next event makes an idle container cost no CPU at all, and a message reaches a parked
//! subscriber as soon as it is published. The one guest this changes is one that counts
//! empty polls to measure time without making any other host call in between; such a
//! guest should use a timer (`ocre_timer_*`) or WASI clocks instead. This is documented
//! in the README.
//!
//! Cancel-safe: no lock or borrow is held across the `.await`; dropping the call (stop,
//! kill) ends the sleep at once and leaves nothing behind.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::{AsContextMut, Caller, Linker};

use super::{Get, HostState, SUCCESS};
use crate::broker::MailboxSignal;
use crate::gpio::GpioInbox;

/// About 100 years: stands in for "never" when an `Instant` would overflow.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(crate) fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: Get<T>) -> wasmtime::Result<()> {
    // The future below is boxed by wasmtime at every call, and a parked subscriber holds it
    // for as long as it is parked: it is kept to a few words (what to wait on is decided
    // before the first `.await`; the rare waits, a plain sleep's timer and a pause, are
    // boxed on their own). Written as one `async` block with the waits inline it was 888
    // bytes, allocated and first touched at every wake-up of every subscriber (issue 15).
    linker.func_wrap_async(
        "env",
        shoal_abi::OCRE_SLEEP.name,
        move |mut caller: Caller<'_, T>, (ms,): (u32,)| {
            let wait = prepare(get(caller.data_mut()), ms);
            Box::new(async move {
                let parked = wait.await;
                // A paused container's wake-up is held here, so it runs no guest code.
                let paused = get(caller.data_mut())
                    .paused
                    .as_ref()
                    .filter(|p| p.is_paused())
                    .cloned();
                if let Some(probe) = paused {
                    Box::pin(async move { probe.resumed().await }).await;
                }
                if parked {
                    // A guest that was parked has used no CPU since its last deadline was
                    // set: it gets a whole tick again. Without this, a subscriber parked
                    // for more than a tick met its old deadline at once on every wake-up and
                    // went back to the end of the run queue before reading its message (one
                    // more task switch per delivery). Only after a real suspension: a guest
                    // whose sleeps all return at once still yields at its deadline.
                    caller.as_context_mut().set_epoch_deadline(1);
                }
                SUCCESS
            })
        },
    )?;
    Ok(())
}

/// What one `ocre_sleep` waits for, decided when it is called. As a future, it says
/// whether it suspended (returned `Pending`) at least once: whether the guest was parked.
struct Wait {
    until: Until,
    suspended: bool,
}

enum Until {
    /// An event wait with an event already waiting: return at once.
    Now,
    /// A plain sleep: its whole length.
    Deadline(Pin<Box<tokio::time::Sleep>>),
    /// An event wait: until the container's next event.
    Event(EventWait),
}

impl Future for Wait {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let polled = match &mut self.until {
            Until::Now => Poll::Ready(()),
            Until::Deadline(sleep) => sleep.as_mut().poll(cx),
            Until::Event(event) => Pin::new(event).poll(cx),
        };
        match polled {
            Poll::Ready(()) => Poll::Ready(self.suspended),
            Poll::Pending => {
                self.suspended = true;
                Poll::Pending
            }
        }
    }
}

impl From<Until> for Wait {
    fn from(until: Until) -> Self {
        Wait {
            until,
            suspended: false,
        }
    }
}

fn prepare(st: &mut HostState, ms: u32) -> Wait {
    let event_wait = std::mem::take(&mut st.event_wait);
    let now = Instant::now();
    if !event_wait {
        let end = now
            .checked_add(Duration::from_millis(u64::from(ms)))
            .or_else(|| now.checked_add(FAR))
            .unwrap_or(now);
        return Until::Deadline(Box::pin(tokio::time::sleep_until(end.into()))).into();
    }
    let mailbox = st.mailbox.as_ref().map(|m| m.signal());
    let gpio = st.gpio_inbox.clone();
    // Take permits left by deliveries the guest has already read, so they do not end this
    // wait spuriously; what is still queued is seen below.
    if let Some(signal) = &mailbox {
        signal.take();
    }
    if let Some(inbox) = &gpio {
        inbox.signal().take();
    }
    if st.has_ready_event(now) {
        return Until::Now.into();
    }
    // About to park, maybe for a long time: give back the stack start-up or a burst left.
    st.stack_release.before_parking(now);
    Until::Event(EventWait {
        mailbox,
        gpio,
        timer: st
            .timers
            .next_deadline()
            .map(|deadline| Box::pin(tokio::time::sleep_until(deadline.into()))),
    })
    .into()
}

/// Ready at the container's next event: a delivery into its mailbox, a GPIO edge or its
/// next timer deadline. Holds no lock and no borrow of the store, so dropping it (stop,
/// kill) ends the wait at once and leaves nothing behind.
struct EventWait {
    mailbox: Option<MailboxSignal>,
    gpio: Option<Arc<GpioInbox>>,
    /// Boxed: most parked containers have no timer, and the box stays out of theirs.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Future for EventWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let message = self.mailbox.as_ref().is_some_and(|s| s.poll_wait(cx).is_ready());
        let edge = !message && self.gpio.as_ref().is_some_and(|g| g.signal().poll_wait(cx).is_ready());
        let due = !message && !edge && self.timer.as_mut().is_some_and(|t| t.as_mut().poll(cx).is_ready());
        if message || edge || due {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::broker::Broker;
    use crate::host::testutil::*;
    use crate::host::ENOMSG;

    fn publish_later(broker: &Broker, topic: &'static str, after: Duration) {
        let b = broker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            b.publish(topic, "t", b"wake").unwrap();
        });
    }

    #[tokio::test]
    async fn event_wait_sleep_wakes_on_publish() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut g = Guest::new(&engine, config("sub", ALL, &broker, &log)).await;
        let t = g.cstr(100, "w/");
        g.i("ocre_subscribe_message", &[t]).await;
        assert_eq!(g.get_event().await.0, ENOMSG);
        publish_later(&broker, "w/1", Duration::from_millis(50));
        let start = Instant::now();
        assert_eq!(g.i("ocre_sleep", &[10_000]).await, 0);
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        let (rc, v) = g.get_event().await;
        assert_eq!((rc, v[0]), (0, 3));
    }

    #[tokio::test]
    async fn event_wait_sleep_returns_at_once_when_an_event_is_waiting() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut g = Guest::new(&engine, config("sub", ALL, &broker, &log)).await;
        let t = g.cstr(100, "w/");
        g.i("ocre_subscribe_message", &[t]).await;
        assert_eq!(g.get_event().await.0, ENOMSG);
        broker.publish("w/1", "t", b"x").unwrap();
        let start = Instant::now();
        g.i("ocre_sleep", &[10_000]).await;
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn event_wait_sleep_wakes_on_a_due_timer() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut g = Guest::new(&engine, config("t", ALL, &broker, &log)).await;
        assert_eq!(g.i("ocre_timer_create", &[7]).await, 0);
        assert_eq!(g.i("ocre_timer_start", &[7, 50, 0]).await, 0);
        assert_eq!(g.get_event().await.0, ENOMSG);
        let start = Instant::now();
        g.i("ocre_sleep", &[10_000]).await;
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(g.get_event().await, (0, [0, 7, 0, 0, 0, 0]));
    }

    #[tokio::test]
    async fn idle_event_wait_parks_past_its_length_until_an_event() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut g = Guest::new(&engine, config("idle", ALL, &broker, &log)).await;
        let t = g.cstr(100, "w/");
        g.i("ocre_subscribe_message", &[t]).await;
        assert_eq!(g.get_event().await.0, ENOMSG);
        // The SDK's 10 ms poll sleep does not return while nothing happens...
        let parked = tokio::time::timeout(Duration::from_millis(300), g.i("ocre_sleep", &[10])).await;
        assert!(parked.is_err(), "an idle event wait must stay parked");
        // ...and a message ends the next one.
        assert_eq!(g.get_event().await.0, ENOMSG);
        publish_later(&broker, "w/1", Duration::from_millis(20));
        assert_eq!(g.i("ocre_sleep", &[10]).await, 0);
        assert_eq!(g.get_event().await.1[0], 3);
    }

    #[tokio::test]
    async fn plain_sleep_is_not_woken_by_events() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut g = Guest::new(&engine, config("sub", ALL, &broker, &log)).await;
        let t = g.cstr(100, "w/");
        g.i("ocre_subscribe_message", &[t]).await;
        publish_later(&broker, "w/1", Duration::from_millis(10));
        let start = Instant::now();
        g.i("ocre_sleep", &[300]).await;
        assert!(start.elapsed() >= Duration::from_millis(300));
        // An empty get_event followed by another call is not an event wait either.
        g.get_event().await; // takes the message
        assert_eq!(g.get_event().await.0, ENOMSG);
        g.i("ocre_timer_get_remaining", &[1]).await;
        publish_later(&broker, "w/2", Duration::from_millis(10));
        let start = Instant::now();
        g.i("ocre_sleep", &[300]).await;
        assert!(start.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn dropping_the_call_ends_a_sleep() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut g = Guest::new(&engine, config("s", ALL, &broker, &log)).await;
        let start = Instant::now();
        let r = tokio::time::timeout(Duration::from_millis(50), g.i("ocre_sleep", &[-1])).await;
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_secs(2));
        drop(g);
    }
}
