//! The block cache's index: block number → slot, as an open-addressing hash table.
//!
//! A lookup is one multiplication and, at the load factor kept here (at most one half), one or
//! two probes of a flat array, where a `BTreeMap` of the same size walks several nodes. Every
//! request of a 9P read or write looks up each block it touches, so this is on the hot path.
//! Linear probing with backward-shift deletion (no tombstones), so the table never degrades
//! after many removals. Unordered: callers that need block order sort what they collect.

use alloc::vec;
use alloc::vec::Vec;

/// An empty entry's slot value.
const FREE: usize = usize::MAX;

/// Smallest table (entries); always a power of two.
const MIN_ENTRIES: usize = 16;

/// A map from block numbers to slot numbers (`usize::MAX` is not a valid slot).
#[derive(Debug, Clone)]
pub struct BlockIndex {
    /// `(block, slot)`; `slot == FREE` marks an empty entry.
    entries: Vec<(u64, usize)>,
    len: usize,
    /// `64 - log2(entries.len())`: the hash is the top bits of a multiplication.
    shift: u32,
}

impl Default for BlockIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockIndex {
    /// An empty index.
    pub fn new() -> Self {
        BlockIndex {
            entries: vec![(0, FREE); MIN_ENTRIES],
            len: 0,
            shift: 64 - MIN_ENTRIES.trailing_zeros(),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes of the table (it grows with the entries and is kept when they go).
    pub fn memory_bytes(&self) -> usize {
        self.entries
            .capacity()
            .saturating_mul(core::mem::size_of::<(u64, usize)>())
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// Home position of `blk` (Fibonacci hashing: consecutive blocks spread over the table).
    fn home(&self, blk: u64) -> usize {
        (blk.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The position holding `blk`, if any.
    fn find(&self, blk: u64) -> Option<usize> {
        let mask = self.mask();
        let mut p = self.home(blk);
        // At most half full, so an empty entry ends every probe sequence.
        for _ in 0..self.entries.len() {
            let &(k, v) = self.entries.get(p)?;
            if v == FREE {
                return None;
            }
            if k == blk {
                return Some(p);
            }
            p = (p + 1) & mask;
        }
        None
    }

    /// The slot of `blk`.
    pub fn get(&self, blk: u64) -> Option<usize> {
        self.find(blk)
            .and_then(|p| self.entries.get(p))
            .map(|&(_, v)| v)
    }

    /// Whether `blk` is held.
    pub fn contains(&self, blk: u64) -> bool {
        self.find(blk).is_some()
    }

    /// Maps `blk` to `slot` (replacing an earlier mapping). `slot` must not be `usize::MAX`;
    /// such a call is ignored.
    pub fn insert(&mut self, blk: u64, slot: usize) {
        if slot == FREE {
            return;
        }
        if let Some(p) = self.find(blk) {
            if let Some(e) = self.entries.get_mut(p) {
                e.1 = slot;
            }
            return;
        }
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut p = self.home(blk);
        while let Some(e) = self.entries.get_mut(p) {
            if e.1 == FREE {
                *e = (blk, slot);
                self.len += 1;
                return;
            }
            p = (p + 1) & mask;
        }
    }

    /// Removes `blk`; returns its slot.
    pub fn remove(&mut self, blk: u64) -> Option<usize> {
        let mut hole = self.find(blk)?;
        let slot = self.entries.get(hole).map(|&(_, v)| v)?;
        let mask = self.mask();
        // Backward shift: move later entries of the probe run into the hole when their home
        // position does not lie (cyclically) after the hole.
        let mut p = (hole + 1) & mask;
        while let Some(&(k, v)) = self.entries.get(p) {
            if v == FREE {
                break;
            }
            let home = self.home(k);
            // Distance from home to p, and from home to the hole, along the probe direction.
            if (p.wrapping_sub(home) & mask) >= (p.wrapping_sub(hole) & mask) {
                if let Some(e) = self.entries.get_mut(hole) {
                    *e = (k, v);
                }
                hole = p;
            }
            p = (p + 1) & mask;
        }
        if let Some(e) = self.entries.get_mut(hole) {
            *e = (0, FREE);
        }
        self.len -= 1;
        Some(slot)
    }

    fn grow(&mut self) {
        let n = self.entries.len().saturating_mul(2);
        let old = core::mem::replace(&mut self.entries, vec![(0, FREE); n]);
        self.shift = 64 - n.trailing_zeros();
        self.len = 0;
        for (k, v) in old {
            if v != FREE {
                self.insert(k, v);
            }
        }
    }

    /// Every `(block, slot)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        self.entries.iter().filter(|e| e.1 != FREE).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    /// A small deterministic generator (xorshift), so the model test needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn agrees_with_a_btreemap_under_random_inserts_and_removes() {
        let mut idx = BlockIndex::new();
        let mut model: BTreeMap<u64, usize> = BTreeMap::new();
        let mut rng = Rng(0x1234_5678_9ABC_DEF1);
        for step in 0..200_000usize {
            let r = rng.next();
            // Keys from a small range (so removes hit), from sequences (as block runs are),
            // and the extremes.
            let key = match r % 4 {
                0 => rng.next() % 512,
                1 => 1_000_000 + (step as u64 % 3000),
                2 => u64::MAX - (rng.next() % 4),
                _ => rng.next(),
            };
            match (r >> 8) % 3 {
                0 | 1 => {
                    idx.insert(key, step);
                    model.insert(key, step);
                }
                _ => assert_eq!(idx.remove(key), model.remove(&key), "remove {key}"),
            }
            if step % 997 == 0 {
                assert_eq!(idx.len(), model.len());
                for (&k, &v) in &model {
                    assert_eq!(idx.get(k), Some(v), "key {k}");
                }
                let mut all: Vec<_> = idx.iter().collect();
                all.sort_unstable();
                let want: Vec<_> = model.iter().map(|(&k, &v)| (k, v)).collect();
                assert_eq!(all, want);
            }
            assert_eq!(idx.get(key), model.get(&key).copied());
        }
    }

    #[test]
    fn stays_at_most_half_full_and_finds_misses() {
        let mut idx = BlockIndex::new();
        for b in 0..10_000u64 {
            idx.insert(b * 7, b as usize);
            assert!(idx.len() * 2 <= idx.entries.len());
        }
        assert!(!idx.contains(3));
        assert!(idx.contains(70));
        for b in 0..10_000u64 {
            assert_eq!(idx.remove(b * 7), Some(b as usize));
        }
        assert!(idx.is_empty());
        assert_eq!(idx.iter().count(), 0);
        assert_eq!(idx.remove(7), None);
    }

    #[test]
    fn the_invalid_slot_is_never_stored() {
        let mut idx = BlockIndex::new();
        idx.insert(5, usize::MAX);
        assert!(!idx.contains(5));
        assert!(idx.is_empty());
    }
}
