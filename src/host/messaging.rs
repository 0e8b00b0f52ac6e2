//! `ocre_publish_message`, `ocre_subscribe_message`, `ocre_messaging_free_module_event_data`.

use wasmtime::{Caller, Linker};

use super::memory::{guest_memory, read_bytes, read_cstr};
use super::{HostState, DENIED, E2BIG, EINVAL, SUCCESS};
use crate::broker::{PublishError, MAX_PAYLOAD};
use crate::spec::Capability;

type Get<T> = fn(&mut T) -> &mut HostState;

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: Get<T>,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "ocre_publish_message",
        move |mut caller: Caller<'_, T>, topic: u32, ct: u32, payload: u32, len: u32| -> i32 {
            publish(&mut caller, get, topic, ct, payload, len)
        },
    )?;
    linker.func_wrap(
        "env",
        "ocre_subscribe_message",
        move |mut caller: Caller<'_, T>, topic: u32| -> i32 { subscribe(&mut caller, get, topic) },
    )?;
    linker.func_wrap(
        "env",
        "ocre_messaging_free_module_event_data",
        move |mut caller: Caller<'_, T>, topic: u32, ct: u32, payload: u32| -> i32 {
            let st = get(caller.data_mut());
            st.enter();
            if let Err(e) = st.require(
                "ocre_messaging_free_module_event_data",
                Capability::Messaging,
            ) {
                return e;
            }
            if st.heap.free_message(topic, ct, payload) {
                SUCCESS
            } else {
                EINVAL
            }
        },
    )?;
    Ok(())
}

const PUBLISH: &str = "ocre_publish_message";
const SUBSCRIBE: &str = "ocre_subscribe_message";

fn publish<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: Get<T>,
    topic: u32,
    ct: u32,
    payload: u32,
    len: u32,
) -> i32 {
    {
        let st = get(caller.data_mut());
        st.enter();
        if let Err(e) = st.require(PUBLISH, Capability::Messaging) {
            return e;
        }
    }
    if payload == 0 || len == 0 {
        return EINVAL;
    }
    if len as usize > MAX_PAYLOAD {
        return E2BIG;
    }
    let Ok(mem) = guest_memory(caller) else {
        return EINVAL;
    };
    let (data, t) = mem.data_and_store_mut(caller);
    let st = get(t);
    let max = st.limits.max_topic_len;
    let (Ok(topic), Ok(ct), Ok(bytes)) = (
        read_cstr(data, topic, max),
        read_cstr(data, ct, max),
        read_bytes(data, payload, len),
    ) else {
        return EINVAL;
    };
    if topic.is_empty() || ct.is_empty() {
        return EINVAL;
    }
    if let Err(e) = st.require_topic(PUBLISH, false, topic) {
        return e;
    }
    match st.broker.publish(topic, ct, bytes) {
        Ok(_) => {
            st.stats.messages_out += 1;
            SUCCESS
        }
        Err(PublishError::TooLarge { .. }) => E2BIG,
    }
}

fn subscribe<T: 'static>(caller: &mut Caller<'_, T>, get: Get<T>, topic: u32) -> i32 {
    {
        let st = get(caller.data_mut());
        st.enter();
        if let Err(e) = st.require(SUBSCRIBE, Capability::Messaging) {
            return e;
        }
    }
    let Ok(mem) = guest_memory(caller) else {
        return EINVAL;
    };
    let (data, t) = mem.data_and_store_mut(caller);
    let st = get(t);
    let Ok(topic) = read_cstr(data, topic, st.limits.max_topic_len) else {
        return EINVAL;
    };
    if topic.is_empty() {
        return EINVAL;
    }
    if let Err(e) = st.require_topic(SUBSCRIBE, true, topic) {
        debug_assert_eq!(e, DENIED);
        return e;
    }
    let cap = st.limits.mailbox_capacity;
    let broker = st.broker.clone();
    st.mailbox
        .get_or_insert_with(|| broker.mailbox(cap))
        .subscribe(topic);
    SUCCESS
}
