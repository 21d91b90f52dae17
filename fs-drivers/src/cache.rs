//! A bounded LRU cache of file-system blocks over a [`BlockDevice`].
//!
//! The cache holds at most `capacity` blocks of `block_size` bytes each (both fixed at
//! creation). Lookups are `O(1)` (a hash index, [`crate::index::BlockIndex`]) and the recency
//! list is an intrusive doubly-linked list over a slab, so eviction is `O(1)` and allocation
//! happens only while the cache fills up.
//!
//! Write-back: [`BlockCache::get_mut`] / [`BlockCache::get_zeroed_mut`] mark a slot dirty;
//! eviction skips dirty slots (the cache grows rather than lose data) until
//! [`BlockCache::write_back`] writes them in one batch ending with a flush barrier.
//!
//! Bulk file data is read with [`BlockCache::read_run`], which takes what the cache holds and
//! reads the rest from the device without evicting anything, so that a large sequential read
//! does not wipe out the metadata working set.

use crate::block::{BlockDevice, DevError, Request};
use crate::index::BlockIndex;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

const NIL: usize = usize::MAX;

struct Slot {
    blk: u64,
    data: Box<[u8]>,
    prev: usize,
    next: usize,
    dirty: bool,
    /// What the file system verified of these bytes ([`BlockCache::set_checked`]); dropped
    /// whenever the slot's bytes can change.
    checked: Option<u64>,
}

/// Hit/miss counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups served from memory.
    pub hits: u64,
    /// Lookups that read the device.
    pub misses: u64,
    /// Blocks dropped to make room.
    pub evictions: u64,
}

/// LRU block cache; see the module documentation.
pub struct BlockCache {
    block_size: usize,
    capacity: usize,
    map: BlockIndex,
    slots: Vec<Slot>,
    /// Most recently used.
    head: usize,
    /// Least recently used.
    tail: usize,
    stats: CacheStats,
    /// Number of dirty slots.
    ndirty: usize,
}

impl BlockCache {
    /// A cache of `block_size`-byte blocks using at most `max_bytes` of block memory (at least
    /// 4 blocks are always allowed).
    pub fn new(block_size: usize, max_bytes: usize) -> Self {
        let capacity = (max_bytes / block_size.max(1)).max(4);
        BlockCache {
            block_size,
            capacity,
            map: BlockIndex::new(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            stats: CacheStats::default(),
            ndirty: 0,
        }
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Capacity in blocks.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counters since creation.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Heap bytes the cache holds: its block buffers (every slot keeps its buffer once made,
    /// so this only grows, up to the capacity and whatever dirty blocks push it over) and its
    /// bookkeeping, the slot array and the index, which grow with them (about 100 bytes a
    /// block, a tenth of the buffers with 1 KiB blocks).
    pub fn memory_bytes(&self) -> usize {
        self.buffer_bytes()
            .saturating_add(
                self.slots
                    .capacity()
                    .saturating_mul(core::mem::size_of::<Slot>()),
            )
            .saturating_add(self.map.memory_bytes())
    }

    /// Bytes of block buffers alone.
    pub fn buffer_bytes(&self) -> usize {
        self.slots.len().saturating_mul(self.block_size)
    }

    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn lba<D: BlockDevice>(&self, dev: &D, blk: u64, count: u64) -> Result<u64, DevError> {
        let ss = dev.sector_size().max(1) as usize;
        let per = (self.block_size / ss).max(1) as u64;
        let oor = DevError::OutOfRange {
            lba: u64::MAX,
            sectors: count.saturating_mul(per),
            capacity: dev.sector_count(),
        };
        blk.checked_mul(per).ok_or(oor)
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = match self.slots.get(i) {
            Some(s) => (s.prev, s.next),
            None => return,
        };
        match self.slots.get_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.slots.get_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_front(&mut self, i: usize) {
        let old = self.head;
        if let Some(s) = self.slots.get_mut(i) {
            s.prev = NIL;
            s.next = old;
        }
        if let Some(o) = self.slots.get_mut(old) {
            o.prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Add a slot for `blk` holding `data` (not linked into the LRU list yet); its index.
    fn push_slot(&mut self, blk: u64, data: Box<[u8]>, dirty: bool) -> usize {
        self.slots.push(Slot {
            blk,
            data,
            prev: NIL,
            next: NIL,
            dirty,
            checked: None,
        });
        self.slots.len() - 1
    }

    /// The least recently used clean slot, if any. Dirty slots found at the LRU end are moved
    /// to the front on the way, so each is passed over once per trip through the list rather
    /// than on every eviction (a cache with many dirty blocks stays O(1) amortized).
    fn evict_candidate(&mut self) -> Option<usize> {
        let mut left = self.ndirty;
        loop {
            let i = self.tail;
            let s = self.slots.get(i)?;
            if !s.dirty {
                return Some(i);
            }
            if left == 0 || self.head == i {
                return None;
            }
            left -= 1;
            self.unlink(i);
            self.push_front(i);
        }
    }

    /// Gives slot `i` (an eviction candidate) to block `blk`: drops the mapping of the block
    /// it held, counting an eviction, and takes it off the recency list (the caller maps it
    /// and puts it back at the front).
    fn rebind(&mut self, i: usize, blk: u64) {
        if let Some(s) = self.slots.get_mut(i) {
            let old = s.blk;
            s.blk = blk;
            s.checked = None;
            if old != blk && self.map.get(old) == Some(i) {
                self.map.remove(old);
                self.stats.evictions += 1;
            }
        }
        self.unlink(i);
    }

    /// The contents of block `blk`, reading it from `dev` on a miss.
    pub fn get<D: BlockDevice>(&mut self, dev: &mut D, blk: u64) -> Result<&[u8], DevError> {
        if let Some(i) = self.map.get(blk) {
            self.stats.hits += 1;
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return self
                .slots
                .get(i)
                .map(|s| &*s.data)
                .ok_or(DevError::Io { lba: 0, code: -1 });
        }
        self.stats.misses += 1;
        let lba = self.lba(dev, blk, 1)?;
        let i = if self.slots.len() < self.capacity {
            let mut data = vec![0u8; self.block_size].into_boxed_slice();
            dev.read(lba, &mut data)?;
            self.push_slot(blk, data, false)
        } else {
            let i = match self.evict_candidate() {
                // The slot's old block is dropped before the read overwrites its bytes.
                Some(i) => {
                    self.rebind(i, blk);
                    i
                }
                // Every slot is dirty: grow rather than lose data (only a writer can get here).
                None => {
                    let data = vec![0u8; self.block_size].into_boxed_slice();
                    self.push_slot(blk, data, false)
                }
            };
            let read = self
                .slots
                .get_mut(i)
                .map_or(Ok(()), |s| dev.read(lba, &mut s.data));
            if let Err(e) = read {
                // The slot holds no block now: parked, to be reused first.
                self.map.insert(blk, i);
                self.push_front(i);
                self.invalidate(blk);
                return Err(e);
            }
            i
        };
        self.map.insert(blk, i);
        self.push_front(i);
        self.slots
            .get(i)
            .map(|s| &*s.data)
            .ok_or(DevError::Io { lba, code: -1 })
    }

    /// The contents of block `blk` for writing: read on a miss, then marked dirty. A dirty
    /// block stays in memory until [`BlockCache::write_back`] writes it.
    pub fn get_mut<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        blk: u64,
    ) -> Result<&mut [u8], DevError> {
        self.get(dev, blk)?;
        self.dirty_slot(blk)
    }

    /// Block `blk` for overwriting as a whole: zero-filled without reading the device (when
    /// not cached yet), marked dirty.
    pub fn get_zeroed_mut<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        blk: u64,
    ) -> Result<&mut [u8], DevError> {
        let s = self.slot_for_overwrite(dev, blk)?;
        s.fill(0);
        Ok(s)
    }

    /// Sets block `blk` to `data` (exactly one block) without reading the device, marked
    /// dirty.
    pub fn put<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        blk: u64,
        data: &[u8],
    ) -> Result<(), DevError> {
        let bs = self.block_size;
        if data.len() != bs {
            return Err(DevError::Misaligned {
                len: data.len(),
                sector_size: bs as u32,
            });
        }
        if !self.map.contains(blk) && self.slots.len() < self.capacity {
            // A new slot made from the data itself: no zero fill before the copy.
            self.check_in_range(dev, blk)?;
            let i = self.push_slot(blk, data.into(), true);
            self.ndirty += 1;
            self.map.insert(blk, i);
            self.push_front(i);
            return Ok(());
        }
        self.slot_for_overwrite(dev, blk)?.copy_from_slice(data);
        Ok(())
    }

    /// The dirty slot of `blk`, taken (or created) without reading the device: its old
    /// contents are whatever the slot held, so the caller overwrites all of it.
    fn slot_for_overwrite<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        blk: u64,
    ) -> Result<&mut [u8], DevError> {
        self.check_in_range(dev, blk)?;
        if !self.map.contains(blk) {
            let reuse = if self.slots.len() < self.capacity {
                None
            } else {
                self.evict_candidate()
            };
            let i = match reuse {
                Some(i) => {
                    self.rebind(i, blk);
                    i
                }
                None => {
                    let data = vec![0u8; self.block_size].into_boxed_slice();
                    self.push_slot(blk, data, false)
                }
            };
            self.map.insert(blk, i);
            self.push_front(i);
        }
        self.dirty_slot(blk)
    }

    /// Whether block `blk` lies on the device (a block the cache may hold for writing).
    fn check_in_range<D: BlockDevice>(&self, dev: &D, blk: u64) -> Result<(), DevError> {
        let lba = self.lba(dev, blk, 1)?;
        let end = lba.saturating_add((self.block_size / dev.sector_size().max(1) as usize) as u64);
        if end > dev.sector_count() {
            return Err(DevError::OutOfRange {
                lba,
                sectors: end - lba,
                capacity: dev.sector_count(),
            });
        }
        Ok(())
    }

    fn dirty_slot(&mut self, blk: u64) -> Result<&mut [u8], DevError> {
        let i = self
            .map
            .get(blk)
            .ok_or(DevError::Io { lba: blk, code: -1 })?;
        let s = self
            .slots
            .get_mut(i)
            .ok_or(DevError::Io { lba: blk, code: -1 })?;
        if !s.dirty {
            s.dirty = true;
            self.ndirty += 1;
        }
        s.checked = None;
        Ok(&mut s.data)
    }

    /// The tag last recorded with [`set_checked`](Self::set_checked) for block `blk`, if the
    /// cache holds it and its bytes have not changed since (nor been read again): a file system
    /// records there that it verified the block (a checksum, under the tag's parameters), so
    /// that it need not verify the same bytes again on every use.
    pub fn checked(&self, blk: u64) -> Option<u64> {
        self.map
            .get(blk)
            .and_then(|i| self.slots.get(i))
            .and_then(|s| s.checked)
    }

    /// Records `tag` for the bytes block `blk` holds now (see [`checked`](Self::checked)); does
    /// nothing if the block is not cached. Any later change of the block's bytes, a new read
    /// of it or its eviction drops the tag.
    pub fn set_checked(&mut self, blk: u64, tag: u64) {
        if let Some(i) = self.map.get(blk) {
            if let Some(s) = self.slots.get_mut(i) {
                s.checked = Some(tag);
            }
        }
    }

    /// The dirty blocks, in block order.
    pub fn dirty_blocks(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .map
            .iter()
            .filter(|&(_, i)| self.slots.get(i).is_some_and(|s| s.dirty))
            .map(|(b, _)| b)
            .collect();
        v.sort_unstable();
        v
    }

    /// Number of dirty blocks.
    pub fn dirty_count(&self) -> usize {
        self.ndirty
    }

    /// Write every dirty block for which `select(blk)` is true, in block order, as one batch
    /// through [`BlockDevice::submit`] followed by a `Flush` barrier; the blocks are clean
    /// afterwards. On error the blocks stay dirty.
    pub fn write_back<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        select: impl Fn(u64) -> bool,
    ) -> Result<usize, DevError> {
        let mut picked: Vec<(u64, usize)> = Vec::new();
        for (blk, i) in self.map.iter() {
            if self.slots.get(i).is_some_and(|s| s.dirty) && select(blk) {
                picked.push((blk, i));
            }
        }
        if picked.is_empty() {
            return Ok(0);
        }
        picked.sort_unstable_by_key(|&(blk, _)| blk);
        let mut lbas = Vec::with_capacity(picked.len());
        for &(blk, _) in &picked {
            lbas.push(self.lba(dev, blk, 1)?);
        }
        {
            let mut reqs: Vec<Request<'_>> = Vec::with_capacity(picked.len() + 1);
            for (&(_, i), &lba) in picked.iter().zip(&lbas) {
                if let Some(s) = self.slots.get(i) {
                    reqs.push(Request::Write {
                        lba,
                        buf: &s.data,
                        fua: false,
                    });
                }
            }
            reqs.push(Request::Flush);
            dev.submit(&mut reqs)?;
        }
        for &(_, i) in &picked {
            if let Some(s) = self.slots.get_mut(i) {
                if s.dirty {
                    s.dirty = false;
                    self.ndirty = self.ndirty.saturating_sub(1);
                }
            }
        }
        Ok(picked.len())
    }

    /// Start writing back the dirty blocks among `candidates` (in the order given, at most
    /// `max` of them) as posted writes ([`BlockDevice::post_writes`]): the device copies them
    /// and the caller does not wait. The blocks the device took are clean afterwards and are
    /// returned; the rest stay dirty. Candidates that are not cached or not dirty are skipped.
    /// Nothing here flushes: the data is durable only after a later flush.
    pub fn post_back<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        candidates: impl IntoIterator<Item = u64>,
        max: usize,
    ) -> Result<Vec<u64>, DevError> {
        let mut picked: Vec<(u64, usize, u64)> = Vec::new();
        for blk in candidates {
            if picked.len() >= max {
                break;
            }
            let Some(i) = self.map.get(blk) else {
                continue;
            };
            if self.slots.get(i).is_some_and(|s| s.dirty) {
                picked.push((blk, i, self.lba(dev, blk, 1)?));
            }
        }
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let n = {
            let writes: Vec<(u64, &[u8])> = picked
                .iter()
                .filter_map(|&(_, i, lba)| self.slots.get(i).map(|s| (lba, &*s.data)))
                .collect();
            dev.post_writes(&writes)?
        };
        let mut done = Vec::with_capacity(n);
        for &(blk, i, _) in picked.iter().take(n) {
            if let Some(s) = self.slots.get_mut(i) {
                if s.dirty {
                    s.dirty = false;
                    self.ndirty = self.ndirty.saturating_sub(1);
                }
            }
            done.push(blk);
        }
        Ok(done)
    }

    /// Whether every block of `blk..blk + count` is cached.
    pub fn holds_all(&self, blk: u64, count: u64) -> bool {
        (blk..blk.saturating_add(count)).all(|b| self.map.contains(b))
    }

    /// Start reading the blocks of `runs` (`(first block, count)`) that are not cached, as
    /// posted reads ([`BlockDevice::post_reads`]) of at most `piece` bytes each; the data joins
    /// the cache at the next [`BlockCache::absorb`]. Returns the blocks the device took.
    pub fn readahead<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        runs: &[(u64, u64)],
        piece: usize,
    ) -> Result<u64, DevError> {
        self.readahead_all(dev, runs, piece).map(|(n, _)| n)
    }

    /// [`BlockCache::readahead`], also saying whether the device took every read it was
    /// offered (true when nothing needed reading).
    pub fn readahead_all<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        runs: &[(u64, u64)],
        piece: usize,
    ) -> Result<(u64, bool), DevError> {
        let bs = self.block_size.max(1);
        let per_piece = (piece / bs).max(1) as u64;
        let mut reads: Vec<(u64, usize)> = Vec::new();
        let mut counts: Vec<u64> = Vec::new();
        for &(first, count) in runs {
            let end = first.saturating_add(count);
            let mut b = first;
            while b < end {
                if self.map.contains(b) {
                    b += 1;
                    continue;
                }
                let mut n = 1;
                while b + n < end && n < per_piece && !self.map.contains(b + n) {
                    n += 1;
                }
                reads.push((self.lba(dev, b, n)?, (n as usize).saturating_mul(bs)));
                counts.push(n);
                b += n;
            }
        }
        if reads.is_empty() {
            return Ok((0, true));
        }
        let taken = dev.post_reads(&reads)?;
        Ok((counts.iter().take(taken).sum(), taken >= reads.len()))
    }

    /// Takes the data of completed posted reads from the device into the cache as clean
    /// blocks; blocks the cache already holds keep their (possibly newer) contents. When the
    /// cache is full, the least recently used clean blocks make room. Returns the blocks added.
    pub fn absorb<D: BlockDevice>(&mut self, dev: &mut D) -> u64 {
        let ss = dev.sector_size().max(1) as usize;
        let bs = self.block_size.max(1);
        let per = (bs / ss).max(1) as u64;
        let mut added = 0;
        dev.take_reads(&mut |lba, data| {
            if !lba.is_multiple_of(per) {
                return;
            }
            for (i, chunk) in data.chunks_exact(bs).enumerate() {
                if self.insert_clean(lba / per + i as u64, chunk) {
                    added += 1;
                }
            }
        });
        added
    }

    /// Adds block `blk` as clean with `data` unless it is cached; true if added.
    fn insert_clean(&mut self, blk: u64, data: &[u8]) -> bool {
        if self.map.contains(blk) || data.len() != self.block_size {
            return false;
        }
        let i = if self.slots.len() < self.capacity {
            self.push_slot(blk, data.into(), false)
        } else {
            let Some(i) = self.evict_candidate() else {
                return false;
            };
            let Some(s) = self.slots.get_mut(i) else {
                return false;
            };
            s.data.copy_from_slice(data);
            self.rebind(i, blk);
            i
        };
        self.map.insert(blk, i);
        self.push_front(i);
        true
    }

    /// Drop block `blk` from the cache (the next `get` re-reads it).
    pub fn invalidate(&mut self, blk: u64) {
        if let Some(i) = self.map.remove(blk) {
            self.unlink(i);
            // Park the slot at the LRU end with an impossible key so it is reused first.
            if let Some(s) = self.slots.get_mut(i) {
                s.blk = u64::MAX;
                s.checked = None;
                if s.dirty {
                    s.dirty = false;
                    self.ndirty = self.ndirty.saturating_sub(1);
                }
            }
            let old_tail = self.tail;
            if let Some(s) = self.slots.get_mut(i) {
                s.prev = old_tail;
                s.next = NIL;
            }
            match self.slots.get_mut(old_tail) {
                Some(t) => t.next = i,
                None => self.head = i,
            }
            self.tail = i;
        }
    }

    /// Read `buf.len() / block_size` consecutive blocks starting at `blk`: the blocks the
    /// cache holds (dirty or clean) are copied from memory, and each run of the others is read
    /// straight from the device into `buf` in one request. While the cache has free slots the
    /// blocks read are kept (clean), so a file read again is served from memory; a full cache
    /// is left as it is, so a large sequential read does not evict the working set.
    /// `buf.len()` must be a multiple of the block size.
    pub fn read_run<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        blk: u64,
        buf: &mut [u8],
    ) -> Result<(), DevError> {
        let bs = self.block_size.max(1);
        let count = buf.len() / bs;
        let end = blk.saturating_add(count as u64);
        let mut i = 0usize;
        while i < count {
            let b = blk + i as u64;
            let dst = buf.get_mut(i * bs..(i + 1) * bs).unwrap_or(&mut []);
            if let Some(slot) = self.map.get(b) {
                let src = self.slots.get(slot).map(|s| &*s.data).unwrap_or(&[]);
                if src.len() != dst.len() {
                    return Err(DevError::Io { lba: b, code: -1 });
                }
                dst.copy_from_slice(src);
                self.stats.hits += 1;
                i += 1;
                continue;
            }
            // The uncached run ends at the next cached block.
            let j = (b.saturating_add(1)..end)
                .find(|&k| self.map.contains(k))
                .map_or(count, |k| (k - blk) as usize);
            let run = buf.get_mut(i * bs..j * bs).unwrap_or(&mut []);
            let lba = self.lba(dev, b, (j - i) as u64)?;
            dev.read(lba, run)?;
            self.stats.misses += (j - i) as u64;
            for k in i..j {
                if self.slots.len() >= self.capacity {
                    break;
                }
                let data: Box<[u8]> = buf.get(k * bs..(k + 1) * bs).unwrap_or(&[]).into();
                let n = self.push_slot(blk + k as u64, data, false);
                self.map.insert(blk + k as u64, n);
                self.push_front(n);
            }
            i = j;
        }
        Ok(())
    }

    /// Read `buf.len() / block_size` consecutive blocks starting at `blk` straight from the
    /// device, without caching them. `buf.len()` must be a multiple of the block size.
    pub fn read_uncached<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        blk: u64,
        buf: &mut [u8],
    ) -> Result<(), DevError> {
        let count = (buf.len() / self.block_size.max(1)) as u64;
        let lba = self.lba(dev, blk, count)?;
        dev.read(lba, buf)
    }
}

#[cfg(test)]
mod tests;
