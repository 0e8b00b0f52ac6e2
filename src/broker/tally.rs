//! One publish's bookkeeping: which mailboxes get which reference to the message, and the
//! broker's counters, added once when the publish ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Inner, MailboxShared, Message, Target};

/// The mailboxes of `route` that take `msg`'s origin, each with its own reference to it: the
/// last one gets `msg` itself (one reference count less to write per delivery).
pub(super) fn copies(route: &[Target], msg: Arc<Message>) -> impl Iterator<Item = (&Target, Arc<Message>)> {
    let origin = msg.origin;
    let mut targets = route.iter().filter(move |t| t.takes(origin)).peekable();
    let mut msg = Some(msg);
    std::iter::from_fn(move || {
        let target = targets.next()?;
        let copy = if targets.peek().is_some() {
            msg.clone()
        } else {
            msg.take()
        };
        copy.map(|copy| (target, copy))
    })
}

/// The broker's counters for one publish, added when it ends (also when a waiting publish
/// is dropped: the mailboxes it reached are counted).
pub(super) struct Tally<'a> {
    inner: &'a Inner,
    pub(super) delivered: usize,
    dropped: u64,
}

impl<'a> Tally<'a> {
    pub(super) fn new(inner: &'a Inner) -> Self {
        Tally {
            inner,
            delivered: 0,
            dropped: 0,
        }
    }

    /// [`MailboxShared::push`], counted.
    pub(super) fn delivered_to(
        &mut self,
        shared: &MailboxShared,
        msg: Arc<Message>,
        drop_oldest: bool,
    ) -> Result<(), Arc<Message>> {
        let dropped = shared.push(msg, drop_oldest)?;
        self.delivered += 1;
        self.dropped += u64::from(dropped);
        Ok(())
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        let inner = self.inner;
        inner.published.fetch_add(1, Ordering::Relaxed);
        if self.delivered > 0 {
            inner.delivered.fetch_add(self.delivered as u64, Ordering::Relaxed);
        }
        if self.dropped > 0 {
            inner.dropped.fetch_add(self.dropped, Ordering::Relaxed);
        }
    }
}
