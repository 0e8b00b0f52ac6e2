use std::sync::Arc;
use std::time::Duration;

use crate::broker::Broker;
use crate::gpio::tests::{lines, sim};
use crate::host::gpio::GrantedLine;
use crate::host::testutil::*;
use crate::host::{EINVAL, ENOMSG};
use crate::spec::{Capability, GpioDirection, GpioEdge};

/// A guest granted `button` (input, port 0 pin 0) and `relay` (output, port 0 pin 1); the
/// stack also has `other`, granted to nobody here.
async fn guest(caps: &[Capability]) -> (Guest, crate::gpio::GpioLines, Arc<Collect>) {
    let l = lines(&[
        sim("button", GpioDirection::Input, GpioEdge::Both),
        sim("relay", GpioDirection::Output, GpioEdge::None),
        sim("other", GpioDirection::Output, GpioEdge::None),
    ]);
    let (engine, broker, log) = (engine(), Broker::new(), Arc::new(Collect::default()));
    let mut cfg = config("ctl", caps, &broker, &log);
    cfg.gpio = ["button", "relay"]
        .iter()
        .enumerate()
        .map(|(i, n)| GrantedLine {
            port: 0,
            pin: i as u32,
            line: l.get(n).unwrap().clone(),
        })
        .collect();
    (Guest::new(&engine, cfg).await, l, log)
}

#[tokio::test]
async fn set_get_toggle_and_configure_on_granted_lines() {
    let (mut g, l, log) = guest(ALL).await;
    assert_eq!(g.i("ocre_gpio_init", &[]).await, 0);
    assert_eq!(g.i("ocre_gpio_configure", &[0, 1, 1]).await, 0);
    assert_eq!(g.i("ocre_gpio_configure", &[0, 0, 0]).await, 0);
    assert_eq!(
        g.i("ocre_gpio_configure", &[0, 0, 1]).await,
        EINVAL,
        "button is an input"
    );
    assert_eq!(g.i("ocre_gpio_pin_set", &[0, 1, 1]).await, 0);
    assert!(l.get("relay").unwrap().get().unwrap());
    assert_eq!(g.i("ocre_gpio_pin_get", &[0, 1]).await, 1);
    assert_eq!(g.i("ocre_gpio_pin_toggle", &[0, 1]).await, 0);
    assert_eq!(g.i("ocre_gpio_pin_get", &[0, 1]).await, 0);
    assert_eq!(
        g.i("ocre_gpio_pin_set", &[0, 0, 1]).await,
        EINVAL,
        "inputs cannot be set"
    );
    l.get("button").unwrap().inject(true).unwrap();
    assert_eq!(g.i("ocre_gpio_pin_get", &[0, 0]).await, 1);

    let relay = g.cstr(100, "relay");
    let button = g.cstr(120, "button");
    assert_eq!(g.i("ocre_gpio_configure_by_name", &[relay, 1]).await, 0);
    assert_eq!(g.i("ocre_gpio_set_by_name", &[relay, 7]).await, 0);
    assert_eq!(g.i("ocre_gpio_get_by_name", &[relay]).await, 1);
    assert_eq!(g.i("ocre_gpio_toggle_by_name", &[relay]).await, 0);
    assert_eq!(g.i("ocre_gpio_get_by_name", &[relay]).await, 0);
    assert_eq!(g.i("ocre_gpio_get_by_name", &[button]).await, 1);
    assert_eq!(g.i("ocre_gpio_get_by_name", &[-1]).await, EINVAL, "bad pointer");
    let w = log.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("declared `input`"), "{w:?}");
}

#[tokio::test]
async fn lines_of_others_are_denied_loudly_once() {
    let (mut g, l, log) = guest(ALL).await;
    let other = g.cstr(100, "other");
    assert_eq!(g.i("ocre_gpio_set_by_name", &[other, 1]).await, EINVAL);
    assert_eq!(g.i("ocre_gpio_set_by_name", &[other, 1]).await, EINVAL);
    assert!(!l.get("other").unwrap().get().unwrap(), "untouched");
    assert_eq!(g.i("ocre_gpio_pin_set", &[0, 2, 1]).await, EINVAL);
    assert_eq!(g.i("ocre_gpio_pin_get", &[1, 0]).await, EINVAL);
    assert_eq!(g.i("ocre_gpio_pin_get", &[-1, -1]).await, EINVAL);
    assert_eq!(g.host().stats().denied, 5);
    let w = log.warnings();
    assert_eq!(w.len(), 4, "one per line or pin: {w:?}");
    assert!(
        w[0].contains("ocre_gpio_set_by_name denied: line \"other\" is not one of this container's GPIO lines"),
        "{w:?}"
    );
    assert!(
        w[0].contains("`button` = port 0, pin 0; `relay` = port 0, pin 1"),
        "{w:?}"
    );
    assert!(w[1].contains("port 0, pin 2"), "{w:?}");
}

#[tokio::test]
async fn without_the_capability_every_call_is_denied() {
    let (mut g, _l, log) = guest(&[Capability::Messaging]).await;
    assert_eq!(g.i("ocre_gpio_init", &[]).await, EINVAL);
    assert_eq!(g.i("ocre_gpio_pin_get", &[0, 0]).await, EINVAL);
    assert!(
        log.warnings()[0].contains("no `gpio` capability"),
        "{:?}",
        log.warnings()
    );
}

#[tokio::test]
async fn an_edge_is_an_event_and_wakes_an_event_wait() {
    let (mut g, l, _log) = guest(ALL).await;
    let cb = g.cstr(200, "gpio_callback");
    assert_eq!(g.i("ocre_register_dispatcher", &[1, cb]).await, 0);
    assert_eq!(
        g.i("ocre_gpio_register_callback", &[0, 1]).await,
        EINVAL,
        "relay is an output"
    );
    assert_eq!(g.i("ocre_gpio_register_callback", &[0, 0]).await, 0);
    assert_eq!(g.get_event().await.0, ENOMSG);
    let button = l.get("button").unwrap().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        button.inject(true).unwrap();
    });
    // An event wait of "forever" ends with the edge (the timeout only turns a broken
    // wake-up into a failure instead of a hang).
    let woke = tokio::time::timeout(Duration::from_secs(60), g.i("ocre_sleep", &[-1])).await;
    assert_eq!(woke.expect("the edge ends the event wait"), 0);
    assert_eq!(g.get_event().await, (0, [1, 0, 0, 1, 0, 0]));
    assert_eq!(g.get_event().await.0, ENOMSG);
    let name = g.cstr(100, "button");
    assert_eq!(g.i("ocre_gpio_unregister_callback_by_name", &[name]).await, 0);
    assert_eq!(
        g.i("ocre_gpio_unregister_callback", &[0, 0]).await,
        EINVAL,
        "not registered"
    );
    l.get("button").unwrap().inject(false).unwrap();
    assert_eq!(g.get_event().await.0, ENOMSG);
    assert_eq!(g.i("ocre_gpio_register_callback_by_name", &[name]).await, 0);
    l.get("button").unwrap().inject(true).unwrap();
    assert_eq!(g.get_event().await, (0, [1, 0, 0, 1, 0, 0]));
}
