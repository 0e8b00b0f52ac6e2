//! `ocre_get_event` and `ocre_register_dispatcher`.
//!
//! `ocre_get_event` is non-blocking. It first checks that all six slots are writable (a
//! bad pointer returns `-22` and consumes nothing), then reports the earliest due timer,
//! else the next message. A message is copied into the host's region of guest memory (see
//! `heap`); if that region is full (the guest has not freed earlier events and the
//! `host_region_bytes` limit is reached) or the memory cannot grow (module maximum or
//! resource limiter), the call returns `-12` (ENOMEM), logs one warning, and the message
//! stays queued as the next event. Timers keep firing meanwhile.

use std::sync::Arc;

use wasmtime::{Caller, Extern, Linker};

use super::heap::GuestHeap;
use super::memory::{guest_memory, read_cstr, write_bytes, write_u32s};
use super::{Get, HostState, EINVAL, ENOMEM, ENOMSG, SUCCESS};
use crate::broker::Message;
use crate::spec::Capability;
use shoal_abi as abi;

pub const EVENT_TIMER: u32 = 0;
pub const EVENT_GPIO: u32 = 1;
pub const EVENT_SENSOR: u32 = 2;
pub const EVENT_MESSAGE: u32 = 3;

/// Longest export name `ocre_register_dispatcher` reads.
const MAX_NAME: u32 = 256;

pub(crate) fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: Get<T>) -> wasmtime::Result<()> {
    // Synchronous: it never waits (growing memory included, under shoal's synchronous
    // limiter), and a synchronous host call costs no boxed future per event.
    linker.func_wrap(
        "env",
        abi::OCRE_GET_EVENT.name,
        move |mut caller: Caller<'_, T>, a: u32, b: u32, c: u32, d: u32, e: u32, f: u32| -> i32 {
            get_event(&mut caller, get, [a, b, c, d, e, f])
        },
    )?;
    linker.func_wrap(
        "env",
        abi::OCRE_REGISTER_DISPATCHER.name,
        move |mut caller: Caller<'_, T>, kind: i32, name: u32| -> i32 {
            register_dispatcher(&mut caller, get, kind, name)
        },
    )?;
    Ok(())
}

fn get_event<T: Send + 'static>(caller: &mut Caller<'_, T>, get: Get<T>, slots: [u32; 6]) -> i32 {
    let Ok(mem) = guest_memory(caller, get) else {
        return EINVAL;
    };
    {
        let data = mem.data(&*caller);
        if slots.iter().any(|&p| super::memory::check(data, p, 4).is_err()) {
            get(caller.data_mut()).event_wait = false;
            return EINVAL;
        }
    }
    let st = get(caller.data_mut());
    st.event_wait = false;

    // 1. The earliest due timer.
    if let Some(id) = st.timers.take_due_now() {
        super::Counters::bump(&st.counters.timer_events);
        let (data, _) = mem.data_and_store_mut(&mut *caller);
        let values = [EVENT_TIMER, id as u32, 0, 0, 0, 0];
        return write_slots(data, slots, values);
    }

    // 2. The next GPIO edge.
    if let Some(e) = st.gpio_inbox.as_ref().and_then(|inbox| inbox.pop()) {
        let (data, _) = mem.data_and_store_mut(&mut *caller);
        let values = [EVENT_GPIO, e.pin, e.port, u32::from(e.state), 0, 0];
        return write_slots(data, slots, values);
    }

    // 3. The next message.
    let msg = match st
        .held
        .take()
        .or_else(|| st.mailbox.as_ref().and_then(|m| m.try_recv()))
    {
        Some(m) => m,
        None => {
            st.event_wait = true;
            return ENOMSG;
        }
    };
    let (tl, cl, pl) = (msg.topic().len(), msg.content_type().len(), msg.payload().len());
    // Pages the guest's allocator has taken over since the last event are its own now.
    let (data, st) = mem.data_and_store_mut(&mut *caller);
    let st = get(st);
    st.heap.reclaim_claimed(data);
    let block = match st.heap.alloc_message(tl, cl, pl) {
        Some(b) => b,
        None => {
            let mem_end = mem.data_size(&*caller) as u64;
            let st = get(caller.data_mut());
            let Some(pages) = st.heap.pages_for(GuestHeap::block_size(tl, cl, pl), mem_end) else {
                return hold(
                    st,
                    msg,
                    "the host message region is full (the guest has not freed earlier message events)",
                );
            };
            let grown = mem.grow(&mut *caller, pages);
            let st = get(caller.data_mut());
            let Ok(old_pages) = grown else {
                return hold(st, msg, "guest memory cannot grow to hold a message copy");
            };
            st.heap.add_region(old_pages * super::heap::PAGE, pages);
            match st.heap.alloc_message(tl, cl, pl) {
                Some(b) => return place(caller, get, mem, slots, msg, b),
                None => return hold(st, msg, "no room for a message copy"),
            }
        }
    };
    place(caller, get, mem, slots, msg, block)
}

fn hold(st: &mut HostState, msg: Arc<Message>, why: &str) -> i32 {
    st.held = Some(msg);
    st.warn_once("get_event:enomem", || {
        format!(
            "{}: {why}; the message stays queued and the call returns -12 (ENOMEM)",
            abi::OCRE_GET_EVENT.name
        )
    });
    ENOMEM
}

fn place<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: Get<T>,
    mem: wasmtime::Memory,
    slots: [u32; 6],
    msg: Arc<Message>,
    b: super::heap::MessageBlock,
) -> i32 {
    let (data, t) = mem.data_and_store_mut(&mut *caller);
    let st = get(t);
    let mut copy = |at: u32, bytes: &[u8]| -> bool {
        write_bytes(data, at, bytes).is_ok()
            && u32::try_from(bytes.len())
                .ok()
                .and_then(|n| at.checked_add(n))
                .is_some_and(|nul| write_bytes(data, nul, &[0]).is_ok())
    };
    let ok = copy(b.topic, msg.topic().as_bytes())
        && copy(b.content_type, msg.content_type().as_bytes())
        && copy(b.payload, msg.payload());
    if !ok {
        // Cannot happen (the block lies in pages we grew), but never trust it.
        st.heap.free_message(b.topic, b.content_type, b.payload);
        return hold(st, msg, "a message copy fell outside guest memory");
    }
    st.next_message_id = st.next_message_id.wrapping_add(1).max(1);
    let id = st.next_message_id;
    let values = [
        EVENT_MESSAGE,
        id,
        b.topic,
        b.content_type,
        b.payload,
        msg.payload().len() as u32,
    ];
    let rc = write_slots(data, slots, values);
    if rc == SUCCESS {
        super::Counters::bump(&st.counters.messages_in);
    }
    rc
}

fn write_slots(data: &mut [u8], slots: [u32; 6], values: [u32; 6]) -> i32 {
    // An array, not a `Vec`: this runs once per delivered message.
    let pairs: [(u32, u32); 6] = std::array::from_fn(|i| (slots[i], values[i]));
    match write_u32s(data, &pairs) {
        Ok(()) => SUCCESS,
        Err(_) => EINVAL,
    }
}

const REGISTER: &str = abi::OCRE_REGISTER_DISPATCHER.name;

fn register_dispatcher<T: 'static>(caller: &mut Caller<'_, T>, get: Get<T>, kind: i32, name: u32) -> i32 {
    {
        let st = get(caller.data_mut());
        st.enter();
        let cap = match kind {
            0 => Capability::Timers,
            2 => Capability::Sensors,
            3 => Capability::Messaging,
            1 => Capability::Gpio,
            _ => return EINVAL,
        };
        if let Err(e) = st.require(REGISTER, cap) {
            return e;
        }
    }
    let Ok(mem) = guest_memory(caller, get) else {
        return EINVAL;
    };
    let Ok(name) = read_cstr(mem.data(&*caller), name, MAX_NAME).map(str::to_owned) else {
        return EINVAL;
    };
    if matches!(caller.get_export(&name), Some(Extern::Func(_))) {
        return SUCCESS;
    }
    let st = get(caller.data_mut());
    st.warn_once(&format!("dispatcher:{name}"), || {
        format!("{REGISTER} refused: the module exports no function `{name}`")
    });
    EINVAL
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::broker::Broker;
    use crate::host::testutil::*;
    use crate::host::EINVAL;
    use crate::spec::Capability;

    #[tokio::test]
    async fn register_dispatcher_checks_capability_and_export() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut g = Guest::new(&engine, config("g", &[Capability::Messaging], &broker, &log)).await;
        let r = "ocre_register_dispatcher";
        let (m, t, none) = (
            g.cstr(100, "message_callback"),
            g.cstr(200, "timer_callback"),
            g.cstr(300, "nope"),
        );
        let mem = g.cstr(400, "memory");
        assert_eq!(g.i(r, &[3, m]).await, 0);
        assert_eq!(g.i(r, &[3, none]).await, EINVAL);
        assert_eq!(g.i(r, &[3, mem]).await, EINVAL, "not a function");
        assert_eq!(g.i(r, &[3, -1]).await, EINVAL);
        assert_eq!(g.i(r, &[0, t]).await, EINVAL, "no timers capability");
        assert_eq!(g.i(r, &[0, t]).await, EINVAL);
        assert_eq!(g.i(r, &[1, t]).await, EINVAL, "no gpio capability");
        assert_eq!(g.i(r, &[9, t]).await, EINVAL);
        let w = log.warnings();
        assert!(w.iter().any(|l| l.contains("no `gpio` capability")), "{w:?}");
        assert_eq!(
            w.iter().filter(|l| l.contains("no `timers` capability")).count(),
            1,
            "{w:?}"
        );
        assert!(w.iter().any(|l| l.contains("no function `nope`")), "{w:?}");
    }
}
