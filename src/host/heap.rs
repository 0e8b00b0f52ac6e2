//! The host's own region of guest linear memory, holding the copies of message events.
//!
//! The first message event that needs room grows the guest memory by whole 64 KiB pages
//! (`memory.grow`). Pages added at the end of memory are not handed out by the guest's
//! allocator once it is running: wasi-libc's dlmalloc gets more memory only through
//! `sbrk`, which grows from the current end. Its *first* heap differs by version: current
//! wasi-libc takes `[__heap_base, __heap_end)` from link-time symbols, so host pages are
//! never part of it; the 2022 wasi-libc (Debian 12's) takes `[__heap_base, memory.size)`
//! at its first `malloc`, which swallows host pages grown before that moment.
//!
//! So each contiguous run of host pages keeps its last [`GUARD`] bytes unused: dlmalloc
//! writes its top-chunk fencepost there when it claims memory up to that end. Before every
//! allocation ([`GuestHeap::reclaim_claimed`]) a run whose guard is no longer zero has been
//! claimed by the guest's allocator: shoal gives it up for good (blocks still out in it
//! stay valid for `free`, but nothing new goes there) and grows fresh pages past it, which
//! the now-initialised allocator will never take. The one window left is the guest's first
//! `malloc` inside the very callback that holds a copy, and that `malloc` allocates from
//! the bottom of the heap, far below the host pages. Tested with both wasi-libc versions
//! (`heap_check` guests).
//! Later grows may be non-contiguous (the guest may have grown in between); the allocator
//! handles any set of runs.
//!
//! Allocation is first-fit over a sorted free list with coalescing. Each message event is
//! one block holding topic, content type and payload, each NUL-terminated; the block is
//! freed only by `ocre_messaging_free_module_event_data` with exactly the three offsets
//! that were handed out. The total region is bounded by `HostLimits::host_region_bytes`.

use std::collections::BTreeMap;

use super::vec_map::VecMap;

pub const PAGE: u64 = 64 * 1024;
const ALIGN: u64 = 8;
/// Bytes kept unused at the end of each run of host pages, where an allocator that claims
/// memory up to that end writes its fencepost (dlmalloc's top foot is under 64 bytes).
pub const GUARD: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageBlock {
    pub topic: u32,
    pub content_type: u32,
    pub payload: u32,
    len: u64,
}

#[derive(Debug)]
pub struct GuestHeap {
    /// Bytes of pages grown so far.
    owned: u64,
    limit: u64,
    /// Free ranges (start -> len), sorted, coalesced.
    free: VecMap<u64, u64, 2>,
    /// Live blocks by topic offset.
    live: VecMap<u32, MessageBlock, 2>,
    /// Contiguous runs of host pages (start -> len); the last GUARD bytes of each are unused.
    runs: VecMap<u64, u64, 1>,
    /// Blocks that were out when their run was claimed by the guest: `free` accepts them
    /// (the guest did nothing wrong) but their space is not reused.
    orphaned: BTreeMap<u32, MessageBlock>,
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

impl GuestHeap {
    pub fn new(limit: u64) -> Self {
        GuestHeap {
            owned: 0,
            limit,
            free: VecMap::new(),
            live: VecMap::new(),
            runs: VecMap::new(),
            orphaned: BTreeMap::new(),
        }
    }

    /// Give up every run whose guard bytes the guest has written (its allocator claimed
    /// the run). `memory` is the guest's whole linear memory. Returns the runs given up.
    pub fn reclaim_claimed(&mut self, memory: &[u8]) -> usize {
        let claimed: Vec<(u64, u64)> = self
            .runs
            .iter()
            .filter(|(&start, &len)| {
                let guard = usize::try_from(start + len - GUARD)
                    .ok()
                    .zip(usize::try_from(start + len).ok());
                // A run beyond the memory we are shown cannot be checked; treat as claimed.
                guard
                    .and_then(|(a, b)| memory.get(a..b))
                    .is_none_or(|bytes| bytes.iter().any(|&b| b != 0))
            })
            .map(|(&s, &l)| (s, l))
            .collect();
        for &(start, len) in &claimed {
            self.runs.remove(&start);
            self.owned = self.owned.saturating_sub(len);
            let end = start + len;
            let inside: Vec<u64> = self.free.range(start..end).map(|(&s, _)| s).collect();
            for s in inside {
                self.free.remove(&s);
            }
            let live: Vec<u32> = self
                .live
                .range(u32::try_from(start).unwrap_or(u32::MAX)..)
                .take_while(|(&t, _)| u64::from(t) < end)
                .map(|(&t, _)| t)
                .collect();
            for t in live {
                if let Some(block) = self.live.remove(&t) {
                    self.orphaned.insert(t, block);
                }
            }
        }
        claimed.len()
    }

    /// Bytes a message block of these sizes needs.
    pub fn block_size(topic: usize, content_type: usize, payload: usize) -> u64 {
        (topic as u64 + 1) + (content_type as u64 + 1) + (payload as u64 + 1)
    }

    /// Pages to grow so that a block of `size` fits, given the current end of guest
    /// memory in bytes, or `None` when that would pass the limit. When a free range of ours
    /// ends at the end of memory (the guest has not grown since), only the missing part is
    /// grown, so blocks pack across grows.
    pub fn pages_for(&self, size: u64, mem_end: u64) -> Option<u64> {
        // Extending a run that ends at the end of memory frees its old guard and its free
        // tail; a new run needs room for its own guard.
        let run_ends_here = self
            .runs
            .range(..mem_end)
            .next_back()
            .is_some_and(|(&s, &l)| s + l == mem_end);
        let missing = if run_ends_here {
            let tail = self
                .free
                .range(..mem_end)
                .next_back()
                .filter(|(&s, &l)| s + l == mem_end - GUARD)
                .map_or(0, |(_, &l)| l);
            round_up(size).saturating_sub(tail + GUARD) + GUARD
        } else {
            round_up(size) + GUARD
        };
        let pages = missing.div_ceil(PAGE).max(1);
        let bytes = pages.checked_mul(PAGE)?;
        (self.owned.checked_add(bytes)? <= self.limit).then_some(pages)
    }

    /// Record pages grown at byte offset `start`.
    pub fn add_region(&mut self, start: u64, pages: u64) {
        let len = pages * PAGE;
        self.owned += len;
        let previous = self
            .runs
            .range(..start)
            .next_back()
            .map(|(&s, &l)| (s, l))
            .filter(|&(s, l)| s + l == start);
        match previous {
            Some((run, run_len)) => {
                // The old guard is in the middle of the run now: it becomes free space.
                self.runs.insert(run, run_len + len);
                self.release(start - GUARD, len);
            }
            None => {
                self.runs.insert(start, len);
                self.release(start, len - GUARD);
            }
        }
    }

    /// Allocate a block for (topic, ct, payload) sizes; returns the three offsets.
    pub fn alloc_message(&mut self, topic: usize, ct: usize, payload: usize) -> Option<MessageBlock> {
        let len = round_up(Self::block_size(topic, ct, payload));
        let (&start, &flen) = self.free.iter().find(|(_, &l)| l >= len)?;
        // Every offset of the block must be a valid u32 guest address.
        let end = start.checked_add(len)?;
        if end > u64::from(u32::MAX) + 1 {
            return None;
        }
        self.free.remove(&start);
        if flen > len {
            self.free.insert(start + len, flen - len);
        }
        let t = u32::try_from(start).ok()?;
        let c = u32::try_from(start + topic as u64 + 1).ok()?;
        let p = u32::try_from(start + topic as u64 + 1 + ct as u64 + 1).ok()?;
        let block = MessageBlock {
            topic: t,
            content_type: c,
            payload: p,
            len,
        };
        self.live.insert(t, block);
        Some(block)
    }

    /// Free the block handed out with exactly these offsets. False (and no effect) for
    /// anything else.
    pub fn free_message(&mut self, topic: u32, ct: u32, payload: u32) -> bool {
        if let Some(b) = self.orphaned.get(&topic) {
            if b.content_type == ct && b.payload == payload {
                self.orphaned.remove(&topic);
                return true;
            }
        }
        match self.live.get(&topic) {
            Some(b) if b.content_type == ct && b.payload == payload => {
                let b = *b;
                self.live.remove(&topic);
                self.release(u64::from(b.topic), b.len);
                true
            }
            _ => false,
        }
    }

    fn release(&mut self, start: u64, mut len: u64) {
        if let Some(next) = self.free.remove(&(start + len)) {
            len += next;
        }
        // Joined to the range before it in place: one length changes, no key moves.
        if let Some((&before, before_len)) = self.free.range_mut(..start).next_back() {
            if before + *before_len == start {
                *before_len += len;
                return;
            }
        }
        self.free.insert(start, len);
    }

    pub fn live_blocks(&self) -> usize {
        self.live.len() + self.orphaned.len()
    }

    pub fn owned_bytes(&self) -> u64 {
        self.owned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_coalesce() {
        let mut h = GuestHeap::new(2 * PAGE);
        assert!(h.alloc_message(1, 1, 1).is_none());
        let pages = h.pages_for(100, 2 * PAGE).unwrap();
        assert_eq!(pages, 1);
        h.add_region(2 * PAGE, pages);
        let a = h.alloc_message(3, 4, 10).unwrap();
        assert_eq!(a.topic as u64, 2 * PAGE);
        assert_eq!(a.content_type, a.topic + 4);
        assert_eq!(a.payload, a.content_type + 5);
        let b = h.alloc_message(3, 4, 10).unwrap();
        assert!(!h.free_message(a.topic, a.content_type, b.payload));
        assert!(!h.free_message(a.topic + 1, a.content_type, a.payload));
        assert!(h.free_message(a.topic, a.content_type, a.payload));
        assert!(!h.free_message(a.topic, a.content_type, a.payload));
        assert!(h.free_message(b.topic, b.content_type, b.payload));
        assert_eq!(h.free.len(), 1);
        assert_eq!(h.free.get(&(2 * PAGE)), Some(&(PAGE - GUARD)));
        // Memory grew elsewhere since: a new run (room for its guard too); the free tail
        // at the end of memory counts; past the limit: none.
        assert_eq!(h.pages_for(PAGE - GUARD, 5 * PAGE), Some(1));
        assert_eq!(h.pages_for(PAGE, 5 * PAGE), None, "two more pages would pass the limit");
        assert_eq!(h.pages_for(PAGE + 1, 3 * PAGE), Some(1));
        assert_eq!(h.pages_for(2 * PAGE + 1, 3 * PAGE), None);
    }

    #[test]
    fn grows_pack_at_the_end_of_memory() {
        let mut h = GuestHeap::new(5 * PAGE);
        let big = |h: &mut GuestHeap| h.alloc_message(1024, 1024, 65536);
        let need = GuestHeap::block_size(1024, 1024, 65536);
        let mut end = 2 * PAGE;
        for _ in 0..4 {
            if big(&mut h).is_none() {
                let pages = h.pages_for(need, end).unwrap();
                h.add_region(end, pages);
                end += pages * PAGE;
                assert!(big(&mut h).is_some());
            }
        }
        assert_eq!(h.owned_bytes(), 5 * PAGE);
        assert_eq!(h.live_blocks(), 4);
        assert_eq!(h.runs.len(), 1, "contiguous grows form one run");
    }

    #[test]
    fn a_run_whose_guard_the_guest_wrote_is_given_up() {
        let mut h = GuestHeap::new(8 * PAGE);
        let mut memory = vec![0u8; (3 * PAGE) as usize];
        h.add_region(2 * PAGE, 1);
        let a = h.alloc_message(3, 4, 10).unwrap();
        assert_eq!(h.reclaim_claimed(&memory), 0);
        // The guest's allocator claimed memory up to the end and wrote its fencepost.
        memory[(3 * PAGE - 40) as usize] = 0x2b;
        assert_eq!(h.reclaim_claimed(&memory), 1);
        assert_eq!(h.owned_bytes(), 0);
        assert!(
            h.alloc_message(1, 1, 1).is_none(),
            "nothing new goes into a claimed run"
        );
        // The block that was out is still accepted by free, once.
        assert!(h.free_message(a.topic, a.content_type, a.payload));
        assert!(!h.free_message(a.topic, a.content_type, a.payload));
        // A fresh run past it works.
        let pages = h.pages_for(100, 3 * PAGE).unwrap();
        h.add_region(3 * PAGE, pages);
        assert!(u64::from(h.alloc_message(1, 1, 1).unwrap().topic) >= 3 * PAGE);
    }
}
