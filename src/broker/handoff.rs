//! How a publisher that must wait for room hands the worker over to its reader.
//!
//! A stream into a full mailbox is a ping-pong: the publisher fills the mailbox and waits,
//! its reader (woken by the first message) empties it and wakes the publisher, and so on.
//! tokio runs a task woken by a task on the same worker next (its "LIFO slot"), so the pair
//! stays on one worker, but it lets at most 3 such hand-overs follow each other; the
//! fourth goes to the worker's stealable queue and wakes an idle worker, which steals one of
//! the pair. The two then run on two cores and every message's cache lines (the queue's
//! lock, the message, the allocator's free list) move between them: on the 2-vCPU machine
//! of the README, 2.6 times the CPU per message, with a context switch every few hundred
//! messages (issue 15).
//!
//! A chain of hand-overs also ends when the task's cooperative budget is spent, and then
//! tokio queues the next task without waking another worker. So a publisher about to wait
//! gives up the rest of its budget ([`give_up_turn`]), and waits without spending budget
//! ([`unconstrained`](tokio::task::coop::unconstrained)): its reader then runs next on the
//! same worker, from the worker's own queue, and nothing wakes an idle worker to steal it.
//! Other tasks queued on that worker are not passed over: the reader waits its turn behind
//! them, and a worker with more than one task queued still asks the idle ones for help.

/// Spend what is left of this task's cooperative budget (tokio's is 128 operations), so
/// that the task's next wait ends its worker's chain of hand-overs (see the module).
///
/// Bounded: inside [`unconstrained`](tokio::task::coop::unconstrained) or outside a
/// runtime there is no budget to spend, and the budget never runs out.
pub(super) async fn give_up_turn() {
    const MOST: usize = 256;
    for _ in 0..MOST {
        if !tokio::task::coop::has_budget_remaining() {
            break;
        }
        tokio::task::coop::consume_budget().await;
    }
}

#[cfg(test)]
mod tests {
    use super::give_up_turn;

    #[tokio::test]
    async fn the_budget_is_spent() {
        assert!(tokio::task::coop::has_budget_remaining());
        give_up_turn().await;
        assert!(!tokio::task::coop::has_budget_remaining());
    }

    #[tokio::test]
    async fn an_unconstrained_task_is_not_held() {
        // No budget to spend: the bound ends it.
        tokio::task::coop::unconstrained(give_up_turn()).await;
    }

    #[test]
    fn outside_a_runtime_it_returns() {
        poll_until_ready(give_up_turn());
    }

    /// A minimal executor for one future that never waits (no runtime, so no budget).
    fn poll_until_ready<F: std::future::Future>(fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }
}
