//! The file allocation table, kept in memory (one copy, the part that maps clusters), with the
//! sectors changed since the last [`Table::take_dirty`] remembered so that the engine can write
//! them to every copy at the points its write ordering needs.

use super::bpb::{FatType, Geometry};
use super::Error;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

/// What a table entry says about the cluster after a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The chain continues at this (range-checked) cluster.
    Next(u32),
    /// The chain ends here.
    End,
    /// Free, bad, reserved or out of range: not valid inside a chain.
    Invalid(u32),
}

/// The in-memory FAT.
pub struct Table {
    kind: FatType,
    bytes: Vec<u8>,
    sector_size: u32,
    /// Valid cluster numbers are `2..limit`.
    limit: u32,
    dirty: BTreeSet<u32>,
    free: u32,
    next_free: u32,
}

impl Table {
    /// Wraps the bytes of the first FAT copy (at least the entries of every cluster).
    pub fn new(g: &Geometry, bytes: Vec<u8>) -> Result<Table, Error> {
        let limit = g.clusters + 2;
        let mut t = Table {
            kind: g.kind,
            bytes,
            sector_size: g.sector_size,
            limit,
            dirty: BTreeSet::new(),
            free: 0,
            next_free: 2,
        };
        if t.byte_span(limit - 1).1 > t.bytes.len() {
            return Err(Error::Corrupt {
                what: "FAT shorter than its clusters",
                at: 0,
            });
        }
        t.free = (2..limit).filter(|&c| t.get(c) == 0).count() as u32;
        Ok(t)
    }

    /// Bytes of the table in memory (whole sectors).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the table is empty (never, for a mounted volume).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Free clusters.
    pub fn free(&self) -> u32 {
        self.free
    }

    /// Where the next allocation starts looking.
    pub fn next_free(&self) -> u32 {
        self.next_free
    }

    /// Byte range of entry `c` in the table.
    fn byte_span(&self, c: u32) -> (usize, usize) {
        let c = c as usize;
        match self.kind {
            FatType::Fat12 => (c + c / 2, c + c / 2 + 2),
            FatType::Fat16 => (c * 2, c * 2 + 2),
            FatType::Fat32 => (c * 4, c * 4 + 4),
        }
    }

    /// Raw value of entry `c` (`c < limit`; 0 otherwise).
    pub fn get(&self, c: u32) -> u32 {
        if c >= self.limit {
            return 0;
        }
        let (a, _) = self.byte_span(c);
        let b = &self.bytes;
        match self.kind {
            FatType::Fat12 => {
                let v = u32::from(u16::from_le_bytes([b[a], b[a + 1]]));
                if c & 1 == 1 {
                    v >> 4
                } else {
                    v & 0xFFF
                }
            }
            FatType::Fat16 => u32::from(u16::from_le_bytes([b[a], b[a + 1]])),
            FatType::Fat32 => {
                u32::from_le_bytes([b[a], b[a + 1], b[a + 2], b[a + 3]]) & 0x0FFF_FFFF
            }
        }
    }

    /// The end-of-chain value this variant writes.
    pub fn eoc(&self) -> u32 {
        match self.kind {
            FatType::Fat12 => 0xFFF,
            FatType::Fat16 => 0xFFFF,
            FatType::Fat32 => 0x0FFF_FFFF,
        }
    }

    fn is_eoc(&self, v: u32) -> bool {
        match self.kind {
            FatType::Fat12 => v >= 0xFF8,
            FatType::Fat16 => v >= 0xFFF8,
            FatType::Fat32 => v >= 0x0FFF_FFF8,
        }
    }

    /// What follows cluster `c`.
    pub fn link(&self, c: u32) -> Link {
        let v = self.get(c);
        if self.is_eoc(v) {
            Link::End
        } else if v >= 2 && v < self.limit {
            Link::Next(v)
        } else {
            Link::Invalid(v)
        }
    }

    /// Whether `c` is a valid data cluster number.
    pub fn valid(&self, c: u32) -> bool {
        c >= 2 && c < self.limit
    }

    /// Sets entry `c` (a valid cluster) to `v`, keeping the free count and the dirty sectors.
    pub fn set(&mut self, c: u32, v: u32) {
        if !self.valid(c) {
            return;
        }
        let old = self.get(c);
        let (a, e) = self.byte_span(c);
        let b = &mut self.bytes;
        match self.kind {
            FatType::Fat12 => {
                let cur = u16::from_le_bytes([b[a], b[a + 1]]);
                let v = (v & 0xFFF) as u16;
                let new = if c & 1 == 1 {
                    (cur & 0x000F) | (v << 4)
                } else {
                    (cur & 0xF000) | v
                };
                b[a..a + 2].copy_from_slice(&new.to_le_bytes());
            }
            FatType::Fat16 => b[a..a + 2].copy_from_slice(&(v as u16).to_le_bytes()),
            FatType::Fat32 => {
                let top = u32::from_le_bytes([b[a], b[a + 1], b[a + 2], b[a + 3]]) & 0xF000_0000;
                b[a..a + 4].copy_from_slice(&(top | (v & 0x0FFF_FFFF)).to_le_bytes());
            }
        }
        let ss = self.sector_size as usize;
        self.dirty.insert((a / ss) as u32);
        self.dirty.insert(((e - 1) / ss) as u32);
        match (old == 0, v == 0) {
            (true, false) => self.free = self.free.saturating_sub(1),
            (false, true) => self.free = self.free.saturating_add(1),
            _ => {}
        }
    }

    /// The clusters of the chain starting at `first`, at most `max` of them (the chain is
    /// followed no further). A loop, a free or bad cluster inside the chain is corruption.
    pub fn chain(&self, first: u32, max: usize) -> Result<Vec<u32>, Error> {
        let mut out = Vec::new();
        if first == 0 {
            return Ok(out);
        }
        if !self.valid(first) {
            return Err(Error::Corrupt {
                what: "first cluster out of range",
                at: u64::from(first),
            });
        }
        let mut c = first;
        loop {
            if out.len() >= max {
                return Ok(out);
            }
            // A chain longer than the volume's clusters has a loop.
            if out.len() >= (self.limit - 2) as usize {
                return Err(Error::Corrupt {
                    what: "cluster chain loops",
                    at: u64::from(first),
                });
            }
            out.push(c);
            match self.link(c) {
                Link::Next(n) => c = n,
                Link::End => return Ok(out),
                Link::Invalid(_) => {
                    return Err(Error::Corrupt {
                        what: "cluster chain runs into a free or bad cluster",
                        at: u64::from(c),
                    })
                }
            }
        }
    }

    /// Takes `n` free clusters, links them into one chain ending with end-of-chain and returns
    /// them in order (nothing is taken when there are fewer than `n`).
    pub fn allocate(&mut self, n: usize) -> Result<Vec<u32>, Error> {
        if n > self.free as usize {
            return Err(Error::NoSpace);
        }
        let mut got = Vec::with_capacity(n);
        let mut c = self.next_free.clamp(2, self.limit - 1);
        let mut scanned = 0u32;
        while got.len() < n && scanned < self.limit {
            if self.get(c) == 0 {
                got.push(c);
            }
            c = if c + 1 >= self.limit { 2 } else { c + 1 };
            scanned += 1;
        }
        if got.len() < n {
            return Err(Error::Corrupt {
                what: "free cluster count",
                at: 0,
            });
        }
        let eoc = self.eoc();
        for (i, &c) in got.iter().enumerate() {
            let v = got.get(i + 1).copied().unwrap_or(eoc);
            self.set(c, v);
        }
        self.next_free = c;
        Ok(got)
    }

    /// Marks every cluster of `chain` free.
    pub fn release(&mut self, chain: &[u32]) {
        for &c in chain {
            self.set(c, 0);
        }
    }

    /// The table sectors changed since the last call, with their bytes, in order.
    pub fn take_dirty(&mut self) -> Vec<(u32, &[u8])> {
        let ss = self.sector_size as usize;
        let dirty = core::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter_map(|s| {
                let a = s as usize * ss;
                self.bytes.get(a..a + ss).map(|b| (s, b))
            })
            .collect()
    }

    /// Whether sectors are waiting to be written.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }
}
