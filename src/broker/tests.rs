//! Unit tests of the broker: matching, overflow, ordering, waiting for room.

use super::*;
use std::time::Duration;

#[test]
fn prefix_matching() {
    let b = Broker::new();
    let m = b.mailbox(16);
    m.subscribe("temperature/");
    assert_eq!(b.publish("temperature/inside", "text/plain", b"21").unwrap(), 1);
    assert_eq!(b.publish("temperature", "text/plain", b"x").unwrap(), 0);
    assert_eq!(b.publish("humidity/inside", "text/plain", b"x").unwrap(), 0);
    let got = m.try_recv().unwrap();
    assert_eq!(got.topic(), "temperature/inside");
    assert_eq!(got.payload(), b"21");
    assert!(m.try_recv().is_none());
}

#[test]
fn overlapping_prefixes_deliver_once() {
    let b = Broker::new();
    let m = b.mailbox(16);
    m.subscribe("a/");
    m.subscribe("a/b");
    m.subscribe("a/");
    assert_eq!(b.stats().subscriptions, 2);
    assert_eq!(b.publish("a/b/c", "t", b"1").unwrap(), 1);
    assert_eq!(m.len(), 1);
}

#[test]
fn no_subscriber_is_success() {
    let b = Broker::new();
    assert_eq!(b.publish("nobody", "t", b"x").unwrap(), 0);
    assert_eq!(b.stats().published, 1);
}

#[test]
fn payload_limit() {
    let b = Broker::new();
    let m = b.mailbox(4);
    m.subscribe("");
    assert!(b.publish("t", "t", &vec![7u8; MAX_PAYLOAD]).is_ok());
    assert!(matches!(
        b.publish("t", "t", &vec![7u8; MAX_PAYLOAD + 1]),
        Err(PublishError::TooLarge { .. })
    ));
    assert_eq!(m.try_recv().unwrap().payload().len(), MAX_PAYLOAD);
}

#[test]
fn order_is_kept() {
    let b = Broker::new();
    let m = b.mailbox(1000);
    m.subscribe("t/");
    for i in 0..500u32 {
        b.publish("t/x", "n", &i.to_le_bytes()).unwrap();
    }
    for i in 0..500u32 {
        assert_eq!(m.try_recv().unwrap().payload(), i.to_le_bytes());
    }
}

#[test]
fn thousand_subscribers_share_one_copy() {
    let b = Broker::new();
    let boxes: Vec<_> = (0..1000)
        .map(|_| {
            let m = b.mailbox(8);
            m.subscribe("s/");
            m
        })
        .collect();
    assert_eq!(b.publish("s/1", "t", &[1; 1024]).unwrap(), 1000);
    let first = boxes[0].try_recv().unwrap();
    for m in &boxes[1..] {
        assert!(Arc::ptr_eq(&first, &m.try_recv().unwrap()));
    }
    assert_eq!(b.stats().delivered, 1000);
}

#[test]
fn a_reader_that_never_reads_hurts_only_itself() {
    let b = Broker::new();
    let lazy = b.mailbox(4);
    lazy.subscribe("x/");
    let busy = b.mailbox(4);
    busy.subscribe("x/");
    for i in 0..100u8 {
        assert_eq!(b.publish("x/y", "t", &[i]).unwrap(), 2);
        assert_eq!(busy.try_recv().unwrap().payload(), [i]);
    }
    assert_eq!(busy.dropped(), 0);
    assert_eq!(lazy.dropped(), 96);
    assert_eq!(b.stats().dropped, 96);
    // The lazy reader keeps the freshest four.
    let kept: Vec<u8> = std::iter::from_fn(|| lazy.try_recv()).map(|m| m.payload()[0]).collect();
    assert_eq!(kept, [96, 97, 98, 99]);
}

#[test]
fn drop_unsubscribes() {
    let b = Broker::new();
    let m = b.mailbox(4);
    m.subscribe("a");
    m.subscribe("b");
    assert_eq!(b.stats().mailboxes, 1);
    assert_eq!(b.stats().subscriptions, 2);
    drop(m);
    assert_eq!(b.stats().mailboxes, 0);
    assert_eq!(b.stats().subscriptions, 0);
    assert_eq!(b.publish("a", "t", b"x").unwrap(), 0);
}

#[test]
fn imported_messages_skip_local_only_mailboxes() {
    let b = Broker::new();
    let guest = b.mailbox(8);
    guest.subscribe("s/");
    let tap = b.local_mailbox(8);
    tap.subscribe("s/");
    assert_eq!(b.publish("s/1", "t", b"local").unwrap(), 2);
    assert_eq!(b.publish_from(Origin::Bridge, "s/2", "t", b"remote").unwrap(), 1);
    let first = guest.try_recv().unwrap();
    assert_eq!(first.origin, Origin::Local);
    let second = guest.try_recv().unwrap();
    assert_eq!((second.origin, second.payload()), (Origin::Bridge, &b"remote"[..]));
    assert_eq!(tap.try_recv().unwrap().payload(), b"local");
    assert!(tap.try_recv().is_none(), "an imported message reached an export tap");
}

#[test]
fn routes_follow_subscription_changes() {
    let b = Broker::new();
    let first = b.mailbox(8);
    first.subscribe("a/");
    assert_eq!(b.publish("a/1", "t", b"x").unwrap(), 1);
    // The route of `a/1` is remembered now; a new subscriber must still be seen.
    let second = b.mailbox(8);
    second.subscribe("a/1");
    assert_eq!(b.publish("a/1", "t", b"y").unwrap(), 2);
    assert_eq!(second.try_recv().unwrap().payload(), b"y");
    drop(first);
    assert_eq!(b.publish("a/1", "t", b"z").unwrap(), 1);
    // A mailbox without subscriptions never changes a route.
    let _idle = b.mailbox(8);
    assert_eq!(b.publish("a/1", "t", b"w").unwrap(), 1);
    assert_eq!(b.publish("a/2", "t", b"v").unwrap(), 0);
}

#[test]
fn a_message_names_its_publisher() {
    let b = Broker::new();
    let m = b.mailbox(8);
    m.subscribe("");
    let sensor: Arc<str> = Arc::from("sensor");
    b.publish_as(Origin::Local, &sensor, "t", "c", b"1").unwrap();
    b.publish("t", "c", b"2").unwrap();
    assert_eq!(m.try_recv().unwrap().publisher(), "sensor");
    assert_eq!(m.try_recv().unwrap().publisher(), "shoal");
    // The name is the message's own: the publisher's handle can go first.
    b.publish_as(Origin::Local, &sensor, "t", "c", b"3").unwrap();
    drop(sensor);
    assert_eq!(m.try_recv().unwrap().publisher(), "sensor");
}

#[tokio::test]
async fn publishing_with_room_waits_for_the_reader_instead_of_dropping() {
    let b = Broker::new();
    let m = b.mailbox(2);
    m.subscribe("q/");
    let bridge: Arc<str> = Arc::from("bridge:up");
    for i in 0..2u8 {
        b.publish("q/x", "t", &[i]).unwrap();
    }
    let (b2, name) = (b.clone(), bridge.clone());
    let third = tokio::spawn(async move {
        b2.publish_with_room(Origin::Bridge, &name, "q/x", "t", &[2], Duration::from_secs(3600))
            .await
    });
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(!third.is_finished(), "published into a full mailbox without waiting");
    assert_eq!(m.try_recv().unwrap().payload(), [0]);
    let delivery = third.await.unwrap().unwrap();
    assert_eq!(
        delivery,
        Delivery {
            delivered: 1,
            stalled: 0
        }
    );
    assert_eq!(m.dropped(), 0);
    let rest: Vec<u8> = std::iter::from_fn(|| m.try_recv()).map(|m| m.payload()[0]).collect();
    assert_eq!(rest, [1, 2]);
}

/// A mailbox of 8 holding 8 messages, and a bridge's publish waiting up to `max_wait` for
/// room in it, given a few polls to start waiting.
async fn full_mailbox_and_a_waiting_publisher(
    max_wait: Duration,
) -> (Mailbox, tokio::task::JoinHandle<Result<Delivery, PublishError>>) {
    let b = Broker::new();
    let m = b.mailbox(8);
    m.subscribe("q/");
    for i in 0..8u8 {
        b.publish("q/x", "t", &[i]).unwrap();
    }
    let name = Arc::<str>::from("bridge:up");
    let ninth = tokio::spawn(async move {
        b.publish_with_room(Origin::Bridge, &name, "q/x", "t", &[8], max_wait)
            .await
    });
    settle().await;
    (m, ninth)
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_waiting_publisher_goes_on_once_half_the_mailbox_is_read() {
    let (m, ninth) = full_mailbox_and_a_waiting_publisher(Duration::from_secs(3600)).await;
    for _ in 0..3 {
        assert!(m.try_recv().is_some());
    }
    settle().await;
    assert!(!ninth.is_finished(), "woken before half the mailbox was read");
    assert!(m.try_recv().is_some());
    let delivery = ninth.await.unwrap().unwrap();
    assert_eq!(delivery.stalled, 0);
    assert_eq!(m.len(), 5);
    assert_eq!(m.dropped(), 0);
}

/// A reader that takes fewer than half its mailbox within the wait is slow, not stalled:
/// the publisher goes on at the end of the wait and nothing is dropped.
#[tokio::test]
async fn a_slow_reader_is_not_taken_for_a_stalled_one() {
    let (m, ninth) = full_mailbox_and_a_waiting_publisher(Duration::from_millis(200)).await;
    assert!(m.try_recv().is_some());
    let delivery = ninth.await.unwrap().unwrap();
    assert_eq!(
        delivery,
        Delivery {
            delivered: 1,
            stalled: 0
        }
    );
    assert_eq!(m.len(), 8);
    assert_eq!(m.dropped(), 0);
}

#[tokio::test]
async fn a_reader_that_never_reads_is_waited_for_once() {
    let b = Broker::new();
    let deaf = b.mailbox(1);
    deaf.subscribe("q/");
    let name: Arc<str> = Arc::from("bridge:up");
    b.publish("q/x", "t", b"0").unwrap();
    let short = Duration::from_millis(20);
    let first = b
        .publish_with_room(Origin::Bridge, &name, "q/x", "t", b"1", short)
        .await
        .unwrap();
    assert_eq!(
        first,
        Delivery {
            delivered: 1,
            stalled: 1
        }
    );
    // Stalled: the next publishes do not wait at all (an hour's wait would end the test).
    let hour = Duration::from_secs(3600);
    for _ in 0..3 {
        let next = tokio::time::timeout(
            Duration::from_secs(60),
            b.publish_with_room(Origin::Bridge, &name, "q/x", "t", b"2", hour),
        )
        .await
        .expect("waited for a stalled reader");
        assert_eq!(
            next.unwrap(),
            Delivery {
                delivered: 1,
                stalled: 0
            }
        );
    }
    assert_eq!(deaf.dropped(), 4);
    // Reading again makes it one that is waited for.
    assert!(deaf.try_recv().is_some());
    b.publish("q/x", "t", b"3").unwrap();
    let again = b
        .publish_with_room(Origin::Bridge, &name, "q/x", "t", b"4", short)
        .await
        .unwrap();
    assert_eq!(
        again,
        Delivery {
            delivered: 1,
            stalled: 1
        }
    );
}

#[tokio::test]
async fn a_parked_subscriber_wakes() {
    let b = Broker::new();
    let m = b.mailbox(4);
    m.subscribe("w/");
    let signal = m.signal();
    let b2 = b.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        b2.publish("w/1", "t", b"x").unwrap();
    });
    tokio::time::timeout(Duration::from_secs(5), signal.wait())
        .await
        .expect("woken");
    assert!(m.try_recv().is_some());
}
