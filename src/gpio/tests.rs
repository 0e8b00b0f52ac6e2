use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::spec::{GpioBias, GpioEdge};

pub(crate) fn sim(name: &str, direction: GpioDirection, edge: GpioEdge) -> GpioLineSpec {
    GpioLineSpec {
        name: name.into(),
        backend: GpioBackend::Sim,
        direction,
        active_low: false,
        bias: GpioBias::AsIs,
        debounce: None,
        edge,
        initial: false,
        port: None,
        pin: None,
        location: Location {
            file: "shoal.yaml".into(),
            line: 3,
            column: 3,
        },
    }
}

pub(crate) fn lines(specs: &[GpioLineSpec]) -> GpioLines {
    let map: BTreeMap<String, GpioLineSpec> = specs.iter().map(|s| (s.name.clone(), s.clone())).collect();
    GpioLines::open(&map).unwrap()
}

#[test]
fn an_injected_change_of_an_input_is_an_event_for_each_listener() {
    let l = lines(&[sim("button", GpioDirection::Input, GpioEdge::Both)]);
    let button = l.get("button").unwrap();
    let (a, b) = (Arc::new(GpioInbox::default()), Arc::new(GpioInbox::default()));
    button.listen(&a, 0, 2);
    button.listen(&a, 0, 2);
    button.listen(&b, 1, 7);
    button.inject(true).unwrap();
    button.inject(true).unwrap(); // no change, no edge
    button.inject(false).unwrap();
    let got: Vec<(u32, u32, bool)> = std::iter::from_fn(|| a.pop())
        .map(|e| (e.port, e.pin, e.state))
        .collect();
    assert_eq!(got, vec![(0, 2, true), (0, 2, false)], "one registration, two edges");
    assert_eq!(b.pop().map(|e| (e.port, e.pin, e.state)), Some((1, 7, true)));
    assert_eq!(b.pop().map(|e| (e.port, e.pin, e.state)), Some((1, 7, false)));
    assert!(button.unlisten(&b));
    assert!(!button.unlisten(&b));
    button.inject(true).unwrap();
    assert!(b.is_empty());
    assert!(button.get().unwrap());
    assert!(button.known_value());
}

#[test]
fn the_edge_setting_filters_events() {
    let l = lines(&[
        sim("up", GpioDirection::Input, GpioEdge::Rising),
        sim("quiet", GpioDirection::Input, GpioEdge::None),
    ]);
    let inbox = Arc::new(GpioInbox::default());
    l.get("up").unwrap().listen(&inbox, 0, 0);
    l.get("quiet").unwrap().listen(&inbox, 0, 1);
    for v in [true, false, true, false] {
        l.get("up").unwrap().inject(v).unwrap();
        l.get("quiet").unwrap().inject(v).unwrap();
    }
    let got: Vec<(u32, bool)> = std::iter::from_fn(|| inbox.pop()).map(|e| (e.pin, e.state)).collect();
    assert_eq!(got, vec![(0, true), (0, true)]);
}

#[test]
fn outputs_are_driven_by_their_container_and_inputs_from_outside() {
    let mut relay = sim("relay", GpioDirection::Output, GpioEdge::None);
    relay.initial = true;
    let l = lines(&[relay, sim("button", GpioDirection::Input, GpioEdge::Both)]);
    let relay = l.get("relay").unwrap();
    assert!(relay.get().unwrap(), "initial: 1");
    assert!(matches!(relay.inject(false), Err(GpioError::DrivenOutput { .. })));
    relay.set(false).unwrap();
    assert!(!relay.get().unwrap());
    let button = l.get("button").unwrap();
    assert!(matches!(button.set(true), Err(GpioError::Input { .. })));
    let e = l.get("nope").err().unwrap().to_string();
    assert!(e.contains("no GPIO line `nope`") && e.contains("button, relay"), "{e}");
}

#[test]
fn a_full_inbox_drops_the_oldest_and_a_dropped_inbox_stops_listening() {
    let l = lines(&[sim("b", GpioDirection::Input, GpioEdge::Both)]);
    let b = l.get("b").unwrap();
    let inbox = Arc::new(GpioInbox::default());
    b.listen(&inbox, 0, 0);
    for i in 0..INBOX_CAPACITY + 10 {
        b.inject(i % 2 == 0).unwrap();
    }
    assert_eq!(inbox.dropped(), 10);
    drop(inbox);
    b.inject(true).unwrap();
    b.inject(false).unwrap();
    assert_eq!(lock(&b.listeners).len(), 0);
}

#[cfg(target_os = "linux")]
#[test]
fn a_missing_chip_names_the_line_and_its_place() {
    let mut spec = sim("button", GpioDirection::Input, GpioEdge::Both);
    spec.backend = GpioBackend::Cdev {
        chip: "/dev/no-such-gpiochip".into(),
        line: crate::spec::GpioLineId::Offset(0),
    };
    let map: BTreeMap<String, GpioLineSpec> = [("button".to_string(), spec)].into();
    let e = GpioLines::open(&map).err().unwrap().to_string();
    assert!(e.contains("GPIO line `button` (declared at shoal.yaml:3:3)"), "{e}");
    assert!(e.contains("/dev/no-such-gpiochip"), "{e}");
    let mut spec = sim("led", GpioDirection::Output, GpioEdge::None);
    spec.backend = GpioBackend::Cdev {
        chip: "no-such-label".into(),
        line: crate::spec::GpioLineId::Name("LED".into()),
    };
    let map: BTreeMap<String, GpioLineSpec> = [("led".to_string(), spec)].into();
    let e = GpioLines::open(&map).err().unwrap().to_string();
    assert!(e.contains("cannot open chip `no-such-label`"), "{e}");
}
