//! [`VecMap`]: a sorted map kept in a small vector, for the host region's bookkeeping.
//!
//! The host region ([`super::heap`]) usually holds one run of pages, one free range and
//! one or two message blocks, and it is looked at on every delivery. As `BTreeMap`s its
//! three maps were three heap nodes of 200-320 bytes each, first touched at every
//! wake-up of a parked subscriber; inline in the container's state they take two or three
//! cache lines it loads anyway. Larger maps (a guest holding many events) spill to the
//! heap and stay sorted; lookups are binary searches.

use std::ops::{Bound, RangeBounds};

use smallvec::SmallVec;

/// A map from `K` to `V` sorted by key, holding up to `N` entries without allocating.
#[derive(Debug, Clone, Default)]
pub struct VecMap<K, V, const N: usize> {
    entries: SmallVec<[(K, V); N]>,
}

impl<K: Ord + Copy, V, const N: usize> VecMap<K, V, N> {
    pub fn new() -> Self {
        VecMap {
            entries: SmallVec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn search(&self, key: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(key))
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.search(key).ok().map(|i| &self.entries[i].1)
    }

    /// Insert or replace; returns the value replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.search(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.search(key).ok().map(|i| self.entries.remove(i).1)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Index range of the entries whose keys are in `range`.
    fn span(&self, range: impl RangeBounds<K>) -> std::ops::Range<usize> {
        let start = match range.start_bound() {
            Bound::Included(k) => self.entries.partition_point(|(e, _)| e < k),
            Bound::Excluded(k) => self.entries.partition_point(|(e, _)| e <= k),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(k) => self.entries.partition_point(|(e, _)| e <= k),
            Bound::Excluded(k) => self.entries.partition_point(|(e, _)| e < k),
            Bound::Unbounded => self.entries.len(),
        };
        start..end.max(start)
    }

    pub fn range(&self, range: impl RangeBounds<K>) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        let span = self.span(range);
        self.entries[span].iter().map(|(k, v)| (k, v))
    }

    pub fn range_mut(&mut self, range: impl RangeBounds<K>) -> impl DoubleEndedIterator<Item = (&K, &mut V)> {
        let span = self.span(range);
        self.entries[span].iter_mut().map(|(k, v)| (&*k, v))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The same operations on a `BTreeMap` and a `VecMap` (past its inline size) agree.
    #[test]
    fn behaves_like_a_btree_map() {
        let mut ours: VecMap<u64, u64, 2> = VecMap::new();
        let mut theirs = BTreeMap::new();
        let mut x: u64 = 12345;
        for step in 0..2000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = (x >> 33) % 64;
            match step % 3 {
                0 | 1 => assert_eq!(ours.insert(key, step), theirs.insert(key, step)),
                _ => assert_eq!(ours.remove(&key), theirs.remove(&key)),
            }
            assert_eq!(ours.len(), theirs.len());
            assert_eq!(ours.get(&key), theirs.get(&key));
            let (lo, hi) = (key / 2, key + 5);
            assert!(ours.range(lo..hi).eq(theirs.range(lo..hi)));
            assert!(ours.range(..hi).next_back().eq(&theirs.range(..hi).next_back()));
            assert!(ours.range(lo..).eq(theirs.range(lo..)));
            assert!(ours.iter().eq(theirs.iter()));
        }
        if let Some((_, v)) = ours.range_mut(..32).next_back() {
            *v = 7;
        }
        if let Some((_, v)) = theirs.range_mut(..32).next_back() {
            *v = 7;
        }
        assert!(ours.iter().eq(theirs.iter()));
    }
}
