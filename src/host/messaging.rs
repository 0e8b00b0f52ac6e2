//! `ocre_publish_message`, `ocre_subscribe_message`, `ocre_messaging_free_module_event_data`.

use wasmtime::{Caller, Linker};

use super::memory::{guest_memory, read_bytes, read_cstr};
use super::{Get, DENIED, E2BIG, EINVAL, ENOMEM, SUCCESS};
use crate::broker::{Origin, PublishError, MAX_PAYLOAD};
use shoal_abi as abi;

pub(crate) fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: Get<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        abi::OCRE_PUBLISH_MESSAGE.name,
        move |mut caller: Caller<'_, T>, topic: u32, ct: u32, payload: u32, len: u32| -> i32 {
            publish(&mut caller, get, topic, ct, payload, len)
        },
    )?;
    linker.func_wrap(
        "env",
        abi::OCRE_SUBSCRIBE_MESSAGE.name,
        move |mut caller: Caller<'_, T>, topic: u32| -> i32 { subscribe(&mut caller, get, topic) },
    )?;
    linker.func_wrap(
        "env",
        abi::OCRE_MESSAGING_FREE_MODULE_EVENT_DATA.name,
        move |mut caller: Caller<'_, T>, topic: u32, ct: u32, payload: u32| -> i32 {
            let st = get(caller.data_mut());
            if let Err(e) = st.begin(&abi::OCRE_MESSAGING_FREE_MODULE_EVENT_DATA) {
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

const PUBLISH: &str = abi::OCRE_PUBLISH_MESSAGE.name;
const SUBSCRIBE: &str = abi::OCRE_SUBSCRIBE_MESSAGE.name;

fn publish<T: 'static>(caller: &mut Caller<'_, T>, get: Get<T>, topic: u32, ct: u32, payload: u32, len: u32) -> i32 {
    if let Err(e) = get(caller.data_mut()).begin(&abi::OCRE_PUBLISH_MESSAGE) {
        return e;
    }
    if payload == 0 || len == 0 {
        return EINVAL;
    }
    if len as usize > MAX_PAYLOAD {
        return E2BIG;
    }
    let Ok(mem) = guest_memory(caller, get) else {
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
    match st.broker.publish_as(Origin::Local, &st.container, topic, ct, bytes) {
        Ok(_) => {
            super::Counters::bump(&st.counters.messages_out);
            SUCCESS
        }
        Err(PublishError::TooLarge { .. }) => E2BIG,
    }
}

fn subscribe<T: 'static>(caller: &mut Caller<'_, T>, get: Get<T>, topic: u32) -> i32 {
    if let Err(e) = get(caller.data_mut()).begin(&abi::OCRE_SUBSCRIBE_MESSAGE) {
        return e;
    }
    let Ok(mem) = guest_memory(caller, get) else {
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
    let (cap, max) = (st.limits.mailbox_capacity, st.limits.max_subscriptions);
    let broker = st.broker.clone();
    let drops = st.counters.dropped.clone();
    let mailbox = st
        .mailbox
        .get_or_insert_with(|| broker.mailbox_counting_drops(cap, drops));
    if mailbox.subscriptions() >= max && !mailbox.is_subscribed(topic) {
        st.warn_once("subscribe:max", || {
            format!("{SUBSCRIBE} refused: the container already has {max} subscriptions (`limits.max_subscriptions`); the call returns -12 (ENOMEM)")
        });
        return ENOMEM;
    }
    mailbox.subscribe(topic);
    SUCCESS
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::broker::Broker;
    use crate::host::testutil::*;
    use crate::host::{heap::PAGE, E2BIG, EINVAL, ENOMEM, ENOMSG};
    use crate::spec::Capability;

    async fn pair(engine: &wasmtime::Engine, broker: &Broker, log: &Arc<Collect>) -> (Guest, Guest) {
        let a = Guest::new(engine, config("pub", ALL, broker, log)).await;
        let b = Guest::new(engine, config("sub", ALL, broker, log)).await;
        (a, b)
    }

    #[tokio::test]
    async fn publish_reaches_subscriber_as_copies_in_guest_memory() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let (mut a, mut b) = pair(&engine, &broker, &log).await;
        let t = b.cstr(1000, "temp/");
        assert_eq!(b.i("ocre_subscribe_message", &[t]).await, 0);
        assert_eq!(b.get_event().await.0, ENOMSG);

        let (t, c) = (a.cstr(1000, "temp/inside"), a.cstr(1100, "text/plain"));
        a.write(1200, b"21.5");
        assert_eq!(a.i("ocre_publish_message", &[t, c, 1200, 4]).await, 0);
        let o = a.cstr(1300, "other/x");
        assert_eq!(a.i("ocre_publish_message", &[o, c, 1200, 4]).await, 0);

        let before = b.mem().len() as u32;
        let (rc, [ty, id, topic, ct, payload, len]) = b.get_event().await;
        assert_eq!((rc, ty, id, len), (0, 3, 1, 4));
        assert!(topic >= before && ct >= before && payload >= before, "in host pages");
        assert_eq!(b.cstr_at(topic), "temp/inside");
        assert_eq!(b.cstr_at(ct), "text/plain");
        assert_eq!(b.cstr_at(payload), "21.5");
        assert_eq!(b.mem()[payload as usize + 4], 0);
        assert_eq!(b.get_event().await.0, ENOMSG);

        let free = "ocre_messaging_free_module_event_data";
        let (t, c, p) = (topic as i32, ct as i32, payload as i32);
        assert_eq!(b.i(free, &[t, c, p + 1]).await, EINVAL);
        assert_eq!(b.i(free, &[1000, c, p]).await, EINVAL);
        assert_eq!(b.i(free, &[-1, -1, -1]).await, EINVAL);
        assert_eq!(b.host().stats().unfreed_events, 1);
        assert_eq!(b.i(free, &[t, c, p]).await, 0);
        assert_eq!(b.i(free, &[t, c, p]).await, EINVAL);
        assert_eq!(b.host().stats().unfreed_events, 0);
        assert_eq!(a.host().stats().messages_out, 2);
        assert_eq!(b.host().stats().messages_in, 1);

        // The freed block is reused; ids count up.
        assert_eq!(a.i("ocre_publish_message", &[1000, 1100, 1200, 4]).await, 0);
        let (rc, v) = b.get_event().await;
        assert_eq!((rc, v[1], v[2]), (0, 2, topic));
    }

    #[tokio::test]
    async fn payload_of_64_kib_is_intact_and_larger_is_e2big() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let (mut a, mut b) = pair(&engine, &broker, &log).await;
        let t = b.cstr(100, "big");
        assert_eq!(b.i("ocre_subscribe_message", &[t]).await, 0);
        let payload: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8 + 1).collect();
        a.write(65536, &payload);
        let (t, c) = (a.cstr(100, "big/1"), a.cstr(200, "application/octet-stream"));
        assert_eq!(a.i("ocre_publish_message", &[t, c, 65536, 65536]).await, 0);
        assert_eq!(a.i("ocre_publish_message", &[t, c, 65536, 65537]).await, E2BIG);
        let (rc, v) = b.get_event().await;
        assert_eq!((rc, v[5]), (0, 65536));
        assert_eq!(&b.mem()[v[4] as usize..v[4] as usize + 65536], &payload[..]);
        assert_eq!(b.mem()[v[4] as usize + 65536], 0);
    }

    #[tokio::test]
    async fn full_host_region_returns_enomem_and_keeps_the_message() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut a = Guest::new(&engine, config("pub", ALL, &broker, &log)).await;
        let mut cfg = config("sub", ALL, &broker, &log);
        cfg.limits.host_region_bytes = PAGE;
        let mut b = Guest::new(&engine, cfg).await;
        let t = b.cstr(100, "x");
        b.i("ocre_subscribe_message", &[t]).await;
        let (t, c) = (a.cstr(100, "x"), a.cstr(200, "t"));
        a.write(1024, &[b'a'; 40000]);
        assert_eq!(a.i("ocre_publish_message", &[t, c, 1024, 40000]).await, 0);
        a.write(1024, &[b'b'; 40000]);
        assert_eq!(a.i("ocre_publish_message", &[t, c, 1024, 40000]).await, 0);

        let (rc, first) = b.get_event().await;
        assert_eq!(rc, 0);
        assert_eq!(b.get_event().await.0, ENOMEM);
        assert_eq!(b.get_event().await.0, ENOMEM);
        assert_eq!(log.warnings().len(), 1, "{:?}", log.warnings());
        let free = "ocre_messaging_free_module_event_data";
        assert_eq!(b.i(free, &[first[2] as i32, first[3] as i32, first[4] as i32]).await, 0);
        let (rc, second) = b.get_event().await;
        assert_eq!(rc, 0);
        assert_eq!(b.mem()[second[4] as usize], b'b');
        assert_eq!(b.host().stats().host_region_bytes, PAGE);
    }

    #[tokio::test]
    async fn host_pages_and_guest_grown_pages_never_overlap() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let (mut a, mut b) = pair(&engine, &broker, &log).await;
        let t = b.cstr(100, "x");
        b.i("ocre_subscribe_message", &[t]).await;
        let (t, c) = (a.cstr(100, "x"), a.cstr(200, "t"));
        a.write(1024, &[b'm'; 40000]);
        a.i("ocre_publish_message", &[t, c, 1024, 40000]).await;
        a.i("ocre_publish_message", &[t, c, 1024, 40000]).await;

        let (rc, first) = b.get_event().await;
        assert_eq!(rc, 0);
        assert_eq!(first[2] as u64, 2 * PAGE, "host page right after the initial memory");
        // The guest grows memory itself (its sbrk) and fills its new page.
        assert_eq!(b.i("grow", &[1]).await, 3);
        b.write(3 * PAGE as u32, &vec![0x5a; PAGE as usize]);
        // The second copy does not fit in the rest of the host page: a new host page after
        // the guest's.
        let (rc, second) = b.get_event().await;
        assert_eq!(rc, 0);
        assert!(second[2] as u64 >= 4 * PAGE, "{second:?}");
        assert!(b.mem()[3 * PAGE as usize..4 * PAGE as usize].iter().all(|&x| x == 0x5a));
        assert_eq!(b.mem()[first[4] as usize + 39999], b'm');
        assert_eq!(b.host().stats().host_region_bytes, 2 * PAGE);
    }

    #[tokio::test]
    async fn memory_that_cannot_grow_returns_enomem() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut a = Guest::new(&engine, config("pub", ALL, &broker, &log)).await;
        let mut b = Guest::with(&engine, config("sub", ALL, &broker, &log), false, 2).await;
        let t = b.cstr(100, "x");
        b.i("ocre_subscribe_message", &[t]).await;
        let (t, c) = (a.cstr(100, "x"), a.cstr(200, "t"));
        assert_eq!(a.i("ocre_publish_message", &[t, c, 100, 1]).await, 0);
        assert_eq!(b.get_event().await.0, ENOMEM);
        assert_eq!(b.host().stats().messages_in, 0);
    }

    #[tokio::test]
    async fn subscriptions_are_capped_per_container() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut cfg = config("storm", ALL, &broker, &log);
        cfg.limits.max_subscriptions = 3;
        let mut g = Guest::new(&engine, cfg).await;
        let mut other = Guest::new(&engine, config("calm", ALL, &broker, &log)).await;
        for (i, topic) in ["a/", "b/", "c/"].into_iter().enumerate() {
            let t = g.cstr(100 + 10 * i as u32, topic);
            assert_eq!(g.i("ocre_subscribe_message", &[t]).await, 0);
        }
        let d = g.cstr(200, "d/");
        assert_eq!(g.i("ocre_subscribe_message", &[d]).await, ENOMEM);
        assert_eq!(g.i("ocre_subscribe_message", &[d]).await, ENOMEM);
        // Subscribing again to a prefix it holds is not a new subscription.
        assert_eq!(g.i("ocre_subscribe_message", &[100]).await, 0);
        // The cap is per container.
        let t = other.cstr(100, "d/");
        assert_eq!(other.i("ocre_subscribe_message", &[t]).await, 0);
        assert_eq!(broker.stats().subscriptions, 4);
        let w = log.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("limits.max_subscriptions"), "{w:?}");
    }

    #[tokio::test]
    async fn topic_prefix_lists_are_enforced() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut cfg = config("c", ALL, &broker, &log);
        cfg.publish = Some(vec!["sensors/".into()]);
        cfg.subscribe = Some(vec!["cmd/".into()]);
        let mut g = Guest::new(&engine, cfg).await;
        let (ok, bad, c) = (g.cstr(100, "sensors/t"), g.cstr(200, "other"), g.cstr(300, "t"));
        assert_eq!(g.i("ocre_publish_message", &[ok, c, 300, 1]).await, 0);
        assert_eq!(g.i("ocre_publish_message", &[bad, c, 300, 1]).await, EINVAL);
        assert_eq!(g.i("ocre_publish_message", &[bad, c, 300, 1]).await, EINVAL);
        let (sub_ok, sub_all) = (g.cstr(400, "cmd/x"), g.cstr(500, "cmd"));
        assert_eq!(g.i("ocre_subscribe_message", &[sub_ok]).await, 0);
        assert_eq!(g.i("ocre_subscribe_message", &[sub_all]).await, EINVAL);
        let w = log.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("ocre_publish_message denied") && w[0].contains("\"sensors/\""),
            "{w:?}"
        );
        assert!(
            w[1].contains("ocre_subscribe_message denied") && w[1].contains("`subscribe:`"),
            "{w:?}"
        );
        assert_eq!(g.host().stats().denied, 3);
    }

    #[tokio::test]
    async fn bad_pointers_are_errors_and_the_host_keeps_working() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let (mut a, mut b) = pair(&engine, &broker, &log).await;
        let end = a.mem().len() as i32;
        let (t, c) = (a.cstr(100, "x/y"), a.cstr(200, "t"));
        a.write(300, b"p");
        let p = "ocre_publish_message";
        for args in [
            [end, c, 300, 1],
            [-1, c, 300, 1],
            [t, end + 5, 300, 1],
            [t, c, end - 1, 2],
            [t, c, -1, 1],
            [t, c, 300, -1],
            [t, c, 0, 1],
            [t, c, 300, 0],
            [t, t + 3, 300, 1], // empty content type
        ] {
            let rc = a.i(p, &args).await;
            assert!(rc < 0, "{args:?} -> {rc}");
        }
        // Unterminated topic running to the end of memory, and one over the length cap.
        let tail = vec![b'z'; 2000];
        a.write(end as u32 - 2000, &tail);
        assert_eq!(a.i(p, &[end - 2000, c, 300, 1]).await, EINVAL);
        a.write(10_000, &[b'q'; 1500]);
        a.write(11_500, &[0]);
        assert_eq!(a.i(p, &[10_000, c, 300, 1]).await, EINVAL);
        // Non-UTF-8 topic.
        a.write(12_000, &[0xff, 0xfe, 0]);
        assert_eq!(a.i(p, &[12_000, c, 300, 1]).await, EINVAL);

        let s = "ocre_subscribe_message";
        assert_eq!(b.i(s, &[end]).await, EINVAL);
        assert_eq!(b.i(s, &[-8]).await, EINVAL);
        let e = b.cstr(100, "");
        assert_eq!(b.i(s, &[e]).await, EINVAL);
        let good = b.cstr(100, "x/");
        assert_eq!(b.i(s, &[good]).await, 0);

        // Still works.
        assert_eq!(a.i(p, &[t, c, 300, 1]).await, 0);
        let ge = "ocre_get_event";
        assert_eq!(b.i(ge, &[64, 68, 72, 76, 80, end - 2]).await, EINVAL);
        assert_eq!(b.i(ge, &[-4, 68, 72, 76, 80, 84]).await, EINVAL);
        // The event was not consumed by the failed calls.
        let (rc, v) = b.get_event().await;
        assert_eq!((rc, v[0]), (0, 3));
        assert_eq!(b.cstr_at(v[2]), "x/y");
        assert!(log.warnings().is_empty(), "{:?}", log.warnings());
    }

    #[tokio::test]
    async fn capability_less_calls_are_denied_with_one_warning_per_import() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut g = Guest::new(&engine, config("bare", &[], &broker, &log)).await;
        let mut other = Guest::new(&engine, config("bare2", &[Capability::Timers], &broker, &log)).await;
        let (t, c) = (g.cstr(100, "x"), g.cstr(200, "t"));
        for _ in 0..3 {
            assert_eq!(g.i("ocre_publish_message", &[t, c, 100, 1]).await, EINVAL);
            assert_eq!(g.i("ocre_subscribe_message", &[t]).await, EINVAL);
            assert_eq!(g.i("ocre_messaging_free_module_event_data", &[1, 2, 3]).await, EINVAL);
            assert_eq!(g.i("ocre_timer_create", &[1]).await, EINVAL);
            assert_eq!(g.i("ocre_timer_start", &[1, 10, 0]).await, EINVAL);
            assert_eq!(g.f("ocre_sensors_read", &[0, 0]).await, f64::from(EINVAL));
            assert_eq!(g.i("ocre_sensors_discover", &[]).await, EINVAL);
            assert_eq!(other.i("ocre_publish_message", &[t, c, 100, 1]).await, EINVAL);
        }
        let w = log.warnings();
        assert_eq!(w.len(), 8, "{w:?}");
        for import in [
            "ocre_publish_message",
            "ocre_subscribe_message",
            "ocre_messaging_free_module_event_data",
            "ocre_timer_create",
            "ocre_timer_start",
            "ocre_sensors_read",
            "ocre_sensors_discover",
        ] {
            assert_eq!(
                w.iter()
                    .filter(|l| l.starts_with("bare: ") && l.contains(import))
                    .count(),
                1,
                "{import}: {w:?}"
            );
        }
        assert!(w.contains(&"bare: ocre_publish_message denied: container has no `messaging` capability; add it to `capabilities:` at shoal.yaml:12:5".to_owned()), "{w:?}");
        assert_eq!(w.iter().filter(|l| l.starts_with("bare2: ")).count(), 1);
        assert_eq!(broker.stats().published, 0);
        assert_eq!(broker.stats().mailboxes, 0);
    }

    #[tokio::test]
    async fn dropping_the_store_unsubscribes() {
        let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
        let mut b = Guest::new(&engine, config("sub", ALL, &broker, &log)).await;
        let (x, y) = (b.cstr(100, "x"), b.cstr(200, "y"));
        b.i("ocre_subscribe_message", &[x]).await;
        b.i("ocre_subscribe_message", &[y]).await;
        assert_eq!(b.i("ocre_timer_create", &[1]).await, 0);
        assert_eq!(b.i("ocre_timer_start", &[1, 5, 1]).await, 0);
        assert_eq!(broker.stats().mailboxes, 1);
        assert_eq!(broker.stats().subscriptions, 2);
        drop(b);
        assert_eq!(broker.stats().mailboxes, 0);
        assert_eq!(broker.stats().subscriptions, 0);
        assert_eq!(broker.publish("x", "t", b"1").unwrap(), 0);
    }
}
