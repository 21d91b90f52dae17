//! Open-unlinked inodes: [`Ext4::pin`]/[`Ext4::unpin`] and the two on-disk orphan records.
//!
//! An inode whose last link goes while it is pinned is not freed: it is recorded as an orphan
//! so that a crash cannot leak it, and freed by its last unpin (or by `close`). The record is
//! the orphan file when the image has one (`COMPAT_ORPHAN_FILE`: an inode named by
//! `s_orphan_file_inum` whose blocks are arrays of inode numbers closed by an 8-byte tail, the
//! magic `0x0b10ca04` and a crc32c of the block number and the entries, seeded by the orphan
//! file inode; `RO_COMPAT_ORPHAN_PRESENT` is set while it has entries), else the classic list
//! (`s_last_orphan`, chained through `i_dtime`). [`Ext4::open_rw`] reclaims the orphans a
//! crash left in either.

use crate::block::BlockDevice;
use crate::crc::{crc32c_raw, crc32c_raw_change};
use crate::ext4::bytes::{le32, put16, put32};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::{raw_size, set_ctime, I_DTIME, I_LINKS_COUNT};
use crate::ext4::sb::s;
use crate::ext4::types::flags;
use crate::ext4::types::mode::{S_IFDIR, S_IFMT, S_IFREG};
use crate::ext4::{Ext4, Ino};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

const ORPHAN_MAGIC: u32 = 0x0b10_ca04;
const COMPAT_ORPHAN_FILE: u32 = 0x1000;
const RO_COMPAT_ORPHAN_PRESENT: u32 = 0x1_0000;
/// `struct ext4_orphan_block_tail`, the last 8 bytes of each orphan file block; the inode
/// slots (u32) fill the rest.
const OB_TAIL_LEN: usize = 8;
/// `ob_magic`, from the tail.
const OB_MAGIC: usize = 0;
/// `ob_checksum`, from the tail.
const OB_CHECKSUM: usize = 4;

/// Marks a block-cache tag ([`Ext4::block_checked`]) of an orphan file block whose magic and
/// checksum were verified: bits 0..32 hold the orphan file's checksum seed, bits 32..48 the
/// number of slots in use. Directory tags never set bits past 33 (see `dir_tag`), inode table
/// tags set bit 63.
const ORPHAN_TAG: u64 = 1 << 62;

/// The tag of a verified orphan file block with `used` slots in use (`None`: too many to
/// record; such a block is verified on every use).
fn orphan_tag(seed: u32, used: usize) -> Option<u64> {
    let used = u16::try_from(used).ok()?;
    Some(ORPHAN_TAG | (u64::from(used) << 32) | u64::from(seed))
}

/// The slots in use that `known` (a block's tag) records for an orphan file block verified
/// under `seed`, if it records one.
fn tagged_use(known: Option<u64>, seed: u32) -> Option<usize> {
    let t = known?;
    let mark = ORPHAN_TAG | u64::from(seed);
    let used = usize::from(u16::try_from((t >> 32) & 0xffff).ok()?);
    (t & !(0xffff << 32) == mark).then_some(used)
}

/// What the engine remembers of the orphan file between changes (see [`OrphanFile`]).
#[derive(Default)]
pub(crate) struct Orphans {
    /// The orphan file, once read.
    file: Option<OrphanFile>,
    /// The block and slot each orphan this mount added was put in, so that removing it need
    /// not search the file (checked against the slot before use).
    slots: BTreeMap<Ino, (u64, usize)>,
}

/// The orphan file as the engine keeps it while mounted: read and checked once (its size
/// never changes while mounted), its blocks' bytes verified whenever the cache (re)reads them.
#[derive(Clone)]
pub(crate) struct OrphanFile {
    /// The orphan file inode's checksum seed.
    seed: u32,
    /// Its blocks, in order.
    blocks: Vec<u64>,
}

impl<D: BlockDevice> Ext4<D> {
    /// The orphan file's checksum seed and blocks, if the image has one (read once a mount).
    fn orphan_file(&mut self) -> Result<Option<OrphanFile>> {
        if self.sb.feature_compat & COMPAT_ORPHAN_FILE == 0 {
            return Ok(None);
        }
        if let Some(of) = &self.orphans.file {
            return Ok(Some(of.clone()));
        }
        let ino = self.sb_u32(s::ORPHAN_FILE_INUM)?;
        let inode = self.load_inode(ino)?;
        let bs = self.ctx.bs;
        let n = inode.size / bs as u64;
        if n > self.ctx.blocks_count || n > 1 << 16 {
            return corrupt("orphan file size", u64::from(ino));
        }
        let mut blocks = Vec::new();
        for l in 0..n {
            let phys = self.map(&inode, l)?.phys.ok_or(Error::Corrupt {
                what: "orphan file hole",
                at: u64::from(ino),
            })?;
            blocks.push(phys);
        }
        let of = OrphanFile {
            seed: inode.seed,
            blocks,
        };
        for &phys in &of.blocks {
            self.orphan_block_use(of.seed, phys)?;
        }
        self.orphans.file = Some(of.clone());
        Ok(Some(of))
    }

    /// Verifies orphan file block `phys` (its magic and checksum), unless its cached bytes were
    /// verified already, and returns how many of its slots are in use.
    fn orphan_block_use(&mut self, seed: u32, phys: u64) -> Result<usize> {
        let known = self.block_checked(phys);
        if let Some(used) = tagged_use(known, seed) {
            return Ok(used);
        }
        let (bs, csum) = (self.ctx.bs, self.ctx.csum);
        let b = self.block(phys)?;
        if le32(b, bs - OB_TAIL_LEN + OB_MAGIC) != ORPHAN_MAGIC {
            return corrupt("orphan file block magic", phys);
        }
        if csum && orphan_csum(seed, phys, b, bs) != le32(b, bs - OB_TAIL_LEN + OB_CHECKSUM) {
            return Err(Error::Checksum {
                what: "orphan file block",
                at: phys,
            });
        }
        let used = (0..(bs - OB_TAIL_LEN) / 4)
            .filter(|&j| le32(b, 4 * j) != 0)
            .count();
        if let Some(tag) = orphan_tag(seed, used) {
            self.set_block_checked(phys, tag);
        }
        Ok(used)
    }

    /// Sets slot `j` of orphan file block `phys` (verified: [`Self::orphan_block_use`] just
    /// returned `used`) to `ino`, carrying the block's checksum over the change.
    fn put_orphan_slot(
        &mut self,
        seed: u32,
        phys: u64,
        j: usize,
        ino: Ino,
        used: usize,
    ) -> Result<()> {
        let (bs, csum) = (self.ctx.bs, self.ctx.csum);
        let b = self.block_mut(phys)?;
        let at = 4 * j;
        let old = le32(b, at);
        put32(b, at, ino);
        let used = match (old != 0, ino != 0) {
            (false, true) => used + 1,
            (true, false) => used.saturating_sub(1),
            _ => used,
        };
        if csum {
            let stored = le32(b, bs - OB_TAIL_LEN + OB_CHECKSUM);
            let c = crc32c_raw_change(
                stored,
                bs - OB_TAIL_LEN,
                at,
                &old.to_le_bytes(),
                &ino.to_le_bytes(),
            )
            .unwrap_or_else(|| orphan_csum(seed, phys, b, bs));
            debug_assert_eq!(
                c,
                orphan_csum(seed, phys, b, bs),
                "orphan block checksum carried over"
            );
            put32(b, bs - OB_TAIL_LEN + OB_CHECKSUM, c);
        }
        if let Some(tag) = orphan_tag(seed, used) {
            self.set_block_checked(phys, tag);
        }
        Ok(())
    }

    /// Record `ino` (links already 0) as an orphan: a free slot of the orphan file, else the
    /// head of the classic list.
    pub(crate) fn orphan_add(&mut self, ino: Ino) -> Result<()> {
        let slots = (self.ctx.bs - OB_TAIL_LEN) / 4;
        if let Some(of) = self.orphan_file()? {
            for &phys in &of.blocks {
                let used = self.orphan_block_use(of.seed, phys)?;
                if used >= slots {
                    continue;
                }
                let b = self.block(phys)?;
                let Some(j) = (0..slots).find(|&j| le32(b, 4 * j) == 0) else {
                    continue;
                };
                self.put_orphan_slot(of.seed, phys, j, ino, used)?;
                self.orphans.slots.insert(ino, (phys, j));
                if self.sb.feature_ro_compat & RO_COMPAT_ORPHAN_PRESENT == 0 {
                    self.patch_sb(|raw| {
                        let ro = le32(raw, s::FEATURE_RO_COMPAT) | RO_COMPAT_ORPHAN_PRESENT;
                        put32(raw, s::FEATURE_RO_COMPAT, ro);
                    })?;
                }
                return Ok(());
            }
        }
        let head = self.sb_u32(s::LAST_ORPHAN)?;
        self.patch_inode(ino, |raw| put32(raw, I_DTIME, head))?;
        self.patch_sb(|raw| put32(raw, s::LAST_ORPHAN, ino))
    }

    /// `i_dtime` of `ino` (the next orphan in the classic list).
    fn orphan_next(&mut self, ino: Ino) -> Result<Ino> {
        if ino > self.ctx.inodes_count {
            return corrupt("orphan list entry", u64::from(ino));
        }
        let raw = self.inode_raw(ino)?;
        Ok(le32(&raw, I_DTIME))
    }

    /// Remove `ino` from the orphan file or the classic list (not found: nothing to do).
    pub(crate) fn orphan_del(&mut self, ino: Ino) -> Result<()> {
        let slots = (self.ctx.bs - OB_TAIL_LEN) / 4;
        if let Some(of) = self.orphan_file()? {
            let mut found = false;
            // Where it was put, if that slot still holds it; else wherever it is.
            if let Some((phys, j)) = self.orphans.slots.remove(&ino) {
                let used = self.orphan_block_use(of.seed, phys)?;
                if j < slots && le32(self.block(phys)?, 4 * j) == ino {
                    self.put_orphan_slot(of.seed, phys, j, 0, used)?;
                    found = true;
                }
            }
            if !found {
                for &phys in &of.blocks {
                    self.orphan_block_use(of.seed, phys)?;
                    let b = self.block(phys)?;
                    let hits: Vec<usize> = (0..slots).filter(|&j| le32(b, 4 * j) == ino).collect();
                    for j in hits {
                        let used = self.orphan_block_use(of.seed, phys)?;
                        self.put_orphan_slot(of.seed, phys, j, 0, used)?;
                        found = true;
                    }
                }
            }
            if self.sb.feature_ro_compat & RO_COMPAT_ORPHAN_PRESENT != 0 {
                let mut empty = true;
                for &phys in &of.blocks {
                    if self.orphan_block_use(of.seed, phys)? != 0 {
                        empty = false;
                        break;
                    }
                }
                if empty {
                    self.patch_sb(|raw| {
                        let ro = le32(raw, s::FEATURE_RO_COMPAT) & !RO_COMPAT_ORPHAN_PRESENT;
                        put32(raw, s::FEATURE_RO_COMPAT, ro);
                    })?;
                }
            }
            if found {
                return Ok(());
            }
        }
        let mut prev: Option<Ino> = None;
        let mut cur = self.sb_u32(s::LAST_ORPHAN)?;
        for _ in 0..=self.ctx.inodes_count {
            if cur == 0 {
                return Ok(());
            }
            let next = self.orphan_next(cur)?;
            if cur == ino {
                return match prev {
                    None => self.patch_sb(|raw| put32(raw, s::LAST_ORPHAN, next)),
                    Some(p) => self.patch_inode(p, |raw| put32(raw, I_DTIME, next)),
                };
            }
            prev = Some(cur);
            cur = next;
        }
        corrupt("orphan list loop", u64::from(ino))
    }

    /// The last link of `ino` is gone: free it, or, while it is pinned, keep it as an
    /// orphan until its last unpin.
    pub(crate) fn last_link_gone(&mut self, ino: Ino, dir: bool) -> Result<()> {
        if !self.pins.contains_key(&ino) {
            return self.release_inode(ino, dir);
        }
        let now = self.clock;
        self.patch_inode(ino, |raw| {
            put16(raw, I_LINKS_COUNT, 0);
            set_ctime(raw, now);
        })?;
        self.orphan_add(ino)
    }

    /// Free an orphan: take it off the orphan records, then release it with its blocks.
    fn free_orphan(&mut self, ino: Ino) -> Result<()> {
        let inode = self.load_inode(ino)?;
        self.check_releasable(&inode)?;
        self.orphan_del(ino)?;
        self.release_inode(ino, inode.mode & S_IFMT == S_IFDIR)
    }

    /// Pin `ino` (an open file or directory): while pinned, dropping its last link keeps it
    /// as an orphan (readable and writable through its inode number) instead of freeing it.
    /// Pins nest; each needs an [`Ext4::unpin`].
    pub fn pin(&mut self, ino: Ino) -> Result<()> {
        self.ensure_rw()?;
        let inode = self.load_inode(ino)?;
        let count = self.pins.get(&ino).copied().unwrap_or(0);
        if inode.links == 0 && count == 0 {
            return Err(Error::BadInode { ino });
        }
        let count = count.checked_add(1).ok_or(Error::Invalid {
            what: "too many pins",
        })?;
        self.pins.insert(ino, count);
        Ok(())
    }

    /// Drop a pin of `ino` ([`Error::Invalid`] if it has none). The last unpin of an inode
    /// whose last link is gone frees it and its blocks and clears its orphan record.
    pub fn unpin(&mut self, ino: Ino) -> Result<()> {
        self.ensure_rw()?;
        let count = self.pins.get(&ino).copied().ok_or(Error::Invalid {
            what: "inode is not pinned",
        })?;
        if count > 1 {
            self.pins.insert(ino, count - 1);
            return Ok(());
        }
        self.pins.remove(&ino);
        if self.load_inode(ino)?.links == 0 {
            self.free_orphan(ino)?;
        }
        self.maybe_sync()
    }

    /// Drop every pin (at `close`): orphans among them are freed.
    pub(crate) fn release_pins(&mut self) -> Result<()> {
        let pinned: Vec<Ino> = self.pins.keys().copied().collect();
        self.pins.clear();
        for ino in pinned {
            if self.load_inode(ino)?.links == 0 {
                self.free_orphan(ino)?;
            }
        }
        Ok(())
    }

    /// At a read-write mount: free every orphan a crash left in the orphan file and the
    /// classic list, and clear both. An orphan regular file that still has links (a truncate
    /// Linux had in progress) loses the blocks past its size instead; other linked orphans are
    /// just taken off. Anything that cannot be done fails the mount before a change.
    pub(crate) fn reclaim_orphans(&mut self) -> Result<()> {
        let bs = self.ctx.bs;
        let slots = (bs - OB_TAIL_LEN) / 4;
        let mut list: Vec<Ino> = Vec::new();
        let file = self.orphan_file()?;
        if let Some(of) = &file {
            for &phys in &of.blocks {
                let b = self.block(phys)?;
                list.extend((0..slots).map(|j| le32(b, 4 * j)).filter(|&i| i != 0));
            }
        }
        let mut cur = self.sb_u32(s::LAST_ORPHAN)?;
        for _ in 0..=self.ctx.inodes_count {
            if cur == 0 {
                break;
            }
            if list.contains(&cur) {
                return corrupt("orphan list loop", u64::from(cur));
            }
            list.push(cur);
            cur = self.orphan_next(cur)?;
        }
        if cur != 0 {
            return corrupt("orphan list length", u64::from(cur));
        }
        let present = self.sb.feature_ro_compat & RO_COMPAT_ORPHAN_PRESENT != 0;
        if list.is_empty() && !present {
            return Ok(());
        }
        // Unlinked orphans are freed; linked ones (a truncate Linux had in progress) are cut
        // to their size, freeing the blocks past it.
        let mut plan = Vec::with_capacity(list.len());
        for &ino in &list {
            let inode = self.load_inode(ino)?;
            if inode.links == 0 {
                self.check_releasable(&inode)?;
                plan.push((ino, Some(inode.mode & S_IFMT == S_IFDIR)));
                continue;
            }
            if inode.mode & S_IFMT != S_IFREG {
                continue;
            }
            if inode.flags & flags::EXTENTS == 0
                || inode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0
            {
                return Err(Error::ReadOnly {
                    reason:
                        "orphan block-mapped file with links (truncate in progress): run e2fsck",
                });
            }
            self.load_tree(&inode)?;
            plan.push((ino, None));
        }
        if let Some(of) = file {
            for phys in of.blocks {
                let csum = self.ctx.csum;
                let b = self.block_mut(phys)?;
                if let Some(d) = b.get_mut(..bs - OB_TAIL_LEN) {
                    d.fill(0);
                }
                if csum {
                    let c = orphan_csum(of.seed, phys, b, bs);
                    put32(b, bs - OB_TAIL_LEN + OB_CHECKSUM, c);
                }
            }
        }
        self.patch_sb(|raw| {
            put32(raw, s::LAST_ORPHAN, 0);
            let ro = le32(raw, s::FEATURE_RO_COMPAT) & !RO_COMPAT_ORPHAN_PRESENT;
            put32(raw, s::FEATURE_RO_COMPAT, ro);
        })?;
        for (ino, free) in plan {
            match free {
                Some(dir) => self.release_inode(ino, dir)?,
                None => self.finish_truncate(ino)?,
            }
        }
        Ok(())
    }

    /// Free the blocks of linked orphan `ino` past its size, keeping its timestamps.
    fn finish_truncate(&mut self, ino: Ino) -> Result<()> {
        let raw = self.inode_raw(ino)?;
        let size = raw_size(&raw);
        self.truncate(ino, size)?;
        self.patch_inode(ino, |now| {
            for (from, to) in [(0xC, 0x14), (0x84, 0x8C)] {
                if let (Some(d), Some(s)) = (now.get_mut(from..to), raw.get(from..to)) {
                    d.copy_from_slice(s);
                }
            }
        })
    }
}

/// Checksum of an orphan file block at `phys`: crc32c seeded by the orphan file inode, over
/// the little-endian 64-bit block number and the entries (everything before the tail).
fn orphan_csum(seed: u32, phys: u64, b: &[u8], bs: usize) -> u32 {
    let c = crc32c_raw(seed, &phys.to_le_bytes());
    crc32c_raw(c, b.get(..bs - OB_TAIL_LEN).unwrap_or(&[]))
}
