//! Grant-table bookkeeping (v1 entries), independent of the memory that holds the entries so
//! it is tested on the host.
//!
//! - Refs come from a free list; the first [`RESERVED`] refs belong to the toolstack.
//! - Granting writes `domid` and `frame`, then publishes the flags.
//! - Ending access clears the flags with a compare-and-swap that fails while the other domain
//!   has the page mapped (`GTF_reading`/`GTF_writing`). Such a ref is *not* freed: it is kept
//!   on a deferred list and retried by [`GrantTable::reclaim`], so a page is never reused while
//!   another domain can still touch it.
//! - [`Stats`] counts refs in use, so a leak shows as a number that grows.

use alloc::vec::Vec;

/// A grant reference.
pub type GrantRef = u32;

/// `GTF_permit_access`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_readonly`.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: the other domain has the page mapped for reading.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: the other domain has the page mapped for writing.
pub const GTF_WRITING: u16 = 1 << 4;
/// Entries per 4 KiB grant frame (8 bytes each).
pub const ENTRIES_PER_FRAME: u32 = 4096 / 8;
/// Entries reserved for the toolstack (xenstore and console pages).
pub const RESERVED: u32 = 8;

/// Access to the shared grant entries.
pub trait Entries {
    /// Writes `domid` and `frame` of entry `r`, then publishes `flags` (release ordering).
    fn publish(&mut self, r: GrantRef, domid: u16, frame: u32, flags: u16);
    /// Reads the flags of entry `r` (acquire ordering).
    fn flags(&self, r: GrantRef) -> u16;
    /// Replaces the flags of `r` with `new` if they still equal `old`.
    fn compare_exchange(&mut self, r: GrantRef, old: u16, new: u16) -> bool;
}

/// Grant-table errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantError {
    /// Every ref is in use.
    NoFreeRefs,
    /// The other domain still has the page mapped; the ref stays reserved.
    StillInUse(GrantRef),
    /// The ref is not currently granted by us.
    NotGranted(GrantRef),
    /// The frame number does not fit a v1 entry.
    FrameTooLarge(u64),
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries available.
    pub capacity: u32,
    /// Refs currently granted (including deferred ones).
    pub granted: u32,
    /// Foreign grants currently mapped by us (maintained by the mapping code).
    pub mapped: u32,
    /// End-of-access attempts that found the page still mapped.
    pub busy_on_end: u64,
}

/// The bookkeeping of one grant table.
#[derive(Debug)]
pub struct GrantTable<E> {
    entries: E,
    free: Vec<GrantRef>,
    in_use: Vec<bool>,
    deferred: Vec<GrantRef>,
    /// Counters; `mapped` is updated by the mapping code.
    pub stats: Stats,
}

impl<E: Entries> GrantTable<E> {
    /// A table of `capacity` entries, all free except the reserved ones.
    pub fn new(entries: E, capacity: u32) -> Self {
        Self {
            entries,
            free: (RESERVED..capacity).rev().collect(),
            in_use: alloc::vec![false; capacity as usize],
            deferred: Vec::new(),
            stats: Stats {
                capacity,
                ..Stats::default()
            },
        }
    }

    /// Grants `domid` access to `frame`.
    pub fn grant(
        &mut self,
        domid: u16,
        frame: u64,
        readonly: bool,
    ) -> Result<GrantRef, GrantError> {
        let frame32 = u32::try_from(frame).map_err(|_| GrantError::FrameTooLarge(frame))?;
        let r = self.free.pop().ok_or(GrantError::NoFreeRefs)?;
        let flags = GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 };
        self.entries.publish(r, domid, frame32, flags);
        if let Some(u) = self.in_use.get_mut(r as usize) {
            *u = true;
        }
        self.stats.granted += 1;
        Ok(r)
    }

    /// Ends access to `r`. `StillInUse` means the ref is deferred: do not reuse the page.
    pub fn end_access(&mut self, r: GrantRef) -> Result<(), GrantError> {
        if !self.in_use.get(r as usize).copied().unwrap_or(false) || self.deferred.contains(&r) {
            return Err(GrantError::NotGranted(r));
        }
        if self.try_end(r) {
            Ok(())
        } else {
            self.stats.busy_on_end += 1;
            self.deferred.push(r);
            Err(GrantError::StillInUse(r))
        }
    }

    fn try_end(&mut self, r: GrantRef) -> bool {
        loop {
            let flags = self.entries.flags(r);
            if flags & (GTF_READING | GTF_WRITING) != 0 {
                return false;
            }
            if self.entries.compare_exchange(r, flags, 0) {
                break;
            }
        }
        if let Some(u) = self.in_use.get_mut(r as usize) {
            *u = false;
        }
        self.free.push(r);
        self.stats.granted -= 1;
        true
    }

    /// Retries deferred refs; returns how many are still busy.
    pub fn reclaim(&mut self) -> usize {
        let pending = core::mem::take(&mut self.deferred);
        for r in pending {
            if !self.try_end(r) {
                self.deferred.push(r);
            }
        }
        self.deferred.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries in plain memory; tests set GTF_reading/writing to play the other domain.
    #[derive(Default)]
    struct Fake {
        e: std::collections::BTreeMap<GrantRef, (u16, u32, u16)>,
    }
    impl Entries for Fake {
        fn publish(&mut self, r: GrantRef, domid: u16, frame: u32, flags: u16) {
            self.e.insert(r, (domid, frame, flags));
        }
        fn flags(&self, r: GrantRef) -> u16 {
            self.e.get(&r).map_or(0, |x| x.2)
        }
        fn compare_exchange(&mut self, r: GrantRef, old: u16, new: u16) -> bool {
            match self.e.get_mut(&r) {
                Some(x) if x.2 == old => {
                    x.2 = new;
                    true
                }
                _ => false,
            }
        }
    }

    #[test]
    fn grant_and_end_balance() {
        let mut t = GrantTable::new(Fake::default(), 64);
        let a = t.grant(3, 0x1234, false).unwrap();
        let b = t.grant(3, 0x1235, true).unwrap();
        assert!(a >= RESERVED && b >= RESERVED && a != b);
        assert_eq!(t.entries.e[&a], (3, 0x1234, GTF_PERMIT_ACCESS));
        assert_eq!(t.entries.e[&b].2, GTF_PERMIT_ACCESS | GTF_READONLY);
        assert_eq!(t.stats.granted, 2);
        t.end_access(a).unwrap();
        t.end_access(b).unwrap();
        assert_eq!(t.stats.granted, 0);
        assert_eq!(t.entries.e[&a].2, 0);
    }

    #[test]
    fn mapped_page_is_deferred_until_unmapped() {
        let mut t = GrantTable::new(Fake::default(), 16);
        let r = t.grant(1, 7, false).unwrap();
        t.entries.e.get_mut(&r).unwrap().2 |= GTF_WRITING; // the other side maps it
        assert_eq!(t.end_access(r), Err(GrantError::StillInUse(r)));
        assert_eq!(t.stats.granted, 1, "a busy ref stays counted");
        assert_eq!(
            t.end_access(r),
            Err(GrantError::NotGranted(r)),
            "already ending"
        );
        assert_eq!(t.reclaim(), 1);
        // Every other ref can be handed out, but never the deferred one.
        let others: Vec<_> = std::iter::from_fn(|| t.grant(1, 8, false).ok()).collect();
        assert!(!others.contains(&r));
        t.entries.e.get_mut(&r).unwrap().2 &= !GTF_WRITING; // unmapped
        assert_eq!(t.reclaim(), 0);
        assert_eq!(t.grant(1, 9, false), Ok(r));
        assert_eq!(t.stats.busy_on_end, 1);
    }

    #[test]
    fn exhaustion_double_end_and_reserved_refs() {
        let mut t = GrantTable::new(Fake::default(), RESERVED + 3);
        let refs: Vec<_> = (0..3).map(|i| t.grant(0, i, true).unwrap()).collect();
        assert!(refs.iter().all(|&r| r >= RESERVED));
        assert_eq!(t.grant(0, 9, true), Err(GrantError::NoFreeRefs));
        t.end_access(refs[0]).unwrap();
        assert_eq!(t.end_access(refs[0]), Err(GrantError::NotGranted(refs[0])));
        assert_eq!(t.end_access(2), Err(GrantError::NotGranted(2)));
        assert_eq!(
            t.end_access(u32::MAX),
            Err(GrantError::NotGranted(u32::MAX))
        );
        assert_eq!(
            t.grant(0, 1 << 40, false),
            Err(GrantError::FrameTooLarge(1 << 40))
        );
    }

    #[test]
    fn many_cycles_do_not_leak() {
        let mut t = GrantTable::new(Fake::default(), 1024);
        for round in 0..50u64 {
            let refs: Vec<_> = (0..500)
                .map(|i| t.grant(2, round * 1000 + i, false).unwrap())
                .collect();
            for r in refs {
                t.end_access(r).unwrap();
            }
            assert_eq!(t.stats.granted, 0);
        }
        assert_eq!(t.free.len(), (1024 - RESERVED) as usize);
    }
}
