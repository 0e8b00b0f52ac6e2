//! `ocre_sleep(ms)`: park the container without a thread.
//!
//! `ms` is unsigned (up to ~49.7 days) and never overflows. A plain sleep lasts its full
//! length. An *event-wait* sleep — one whose previous host call was an `ocre_get_event`
//! that returned ENOMSG, as in the SDK's `ocre_process_events` loop — returns at once if
//! an event is already waiting, and otherwise ends at the earliest of its own end, the
//! container's next timer deadline, or a delivery into its mailbox. Always returns 0.
//!
//! Cancel-safe: no lock or borrow is held across the `.await`; dropping the call (stop,
//! kill) ends the sleep at once and leaves nothing behind.

use std::time::{Duration, Instant};

use wasmtime::{Caller, Linker};

use super::{HostState, SUCCESS};

type Get<T> = fn(&mut T) -> &mut HostState;

/// About 100 years: stands in for "never" when an `Instant` would overflow.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: Get<T>,
) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        "env",
        "ocre_sleep",
        move |mut caller: Caller<'_, T>, (ms,): (u32,)| {
            Box::new(async move {
                let st = get(caller.data_mut());
                let event_wait = std::mem::take(&mut st.event_wait);
                let now = Instant::now();
                let end = now
                    .checked_add(Duration::from_millis(u64::from(ms)))
                    .or_else(|| now.checked_add(FAR))
                    .unwrap_or(now);
                if !event_wait {
                    tokio::time::sleep_until(end.into()).await;
                    return SUCCESS;
                }
                let notify = st.mailbox.as_ref().map(|m| m.notify());
                if let Some(n) = &notify {
                    // Consume a permit left by a delivery the guest has already read, so it
                    // does not end this wait spuriously; what is still queued is seen below.
                    tokio::select! {
                        biased;
                        _ = n.notified() => {}
                        _ = std::future::ready(()) => {}
                    }
                }
                let st = get(caller.data_mut());
                if st.has_ready_event(Instant::now()) {
                    return SUCCESS;
                }
                let wake = st.timers.next_deadline().map_or(end, |d| d.min(end));
                match notify {
                    Some(notify) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(wake.into()) => {}
                            _ = notify.notified() => {}
                        }
                    }
                    None => tokio::time::sleep_until(wake.into()).await,
                }
                SUCCESS
            })
        },
    )?;
    Ok(())
}
