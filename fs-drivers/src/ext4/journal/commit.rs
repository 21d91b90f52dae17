//! jbd2 journal writing for the read-write engine: every [`Ext4::sync`] (and so every
//! [`Ext4::fsync`]) is one transaction in the internal journal (inode `s_journal_inum`).
//!
//! The scheme is deliberately simple; one transaction is in the log at a time:
//! 1. **Ordered data**: dirty file-data blocks are written in place, then a flush. A data
//!    block freed earlier in the same transaction (and reused) is journalled instead: written
//!    in place before the commit it could overwrite a block that the committed state still
//!    uses (a file unlinked but not yet committed).
//! 2. **Log**: descriptor blocks (jbd2 tags; with `metadata_csum` the journal uses checksum v3
//!    tags, descriptor tails and commit checksums, as Linux sets up at mount) followed by a copy
//!    of every other dirty block (escaped when it starts with the jbd2 magic), and the journal
//!    superblock pointing at the transaction (`s_start`, `s_sequence`); a flush.
//! 3. **Commit** block (checksummed), written FUA: from here the transaction survives a
//!    crash.
//! 4. **Checkpoint**: the blocks are written home; a flush.
//! 5. The journal superblock marks the journal **empty** (`s_start = 0`, next sequence), FUA.
//!
//! Because a transaction is checkpointed before the next one starts, no revoke records are
//! needed. The log head moves on after each transaction and wraps at the end of the journal
//! as jbd2's does; wrapping is safe because nothing older than the running transaction is ever
//! needed.
//!
//! Mount state, as Linux: a read-write mount sets `needs_recovery` in the superblock (written
//! home before any transaction) and `close` clears it (written home after the last
//! transaction is checkpointed); `s_state` stays "clean". After a crash the flag is
//! still set and the next read-write mount replays the log for real (`recover`): the
//! committed blocks are written home, flushed, the journal is marked empty (sequence moved
//! past the end of the log, as jbd2 does) and the flag cleared. Read-only mounts keep
//! replaying in memory only (see [`super::journal`]).
//!
//! Size: a transaction must fit in the journal. The engine commits at the end of an operation
//! (`maybe_sync`) once the dirty metadata plus the blocks freed in the transaction reach a
//! quarter of the journal, so operations stay well below that; a transaction that still does
//! not fit is refused with [`Error::Unsupported`] before anything is written.
//!
//! A device error in the middle of a commit aborts the journal: the engine turns read-only
//! (every later write or sync fails) and the next mount replays whatever was committed.

use crate::block::{BlockDevice, Request};
use crate::crc::crc32c_raw;
use crate::ext4::bytes::{le32, put32};
use crate::ext4::error::{Error, Result};
use crate::ext4::journal;
use crate::ext4::journal::replay::{
    be32, COMMIT, DESCRIPTOR, INCOMPAT_64BIT, INCOMPAT_ASYNC_COMMIT, INCOMPAT_CSUM_V2,
    INCOMPAT_CSUM_V3, INCOMPAT_KNOWN, JBD2_MAGIC, SB_V2, TAG_ESCAPE, TAG_LAST, TAG_SAME_UUID,
};
use crate::ext4::sb::s;
use crate::ext4::types::Options;
use crate::ext4::{sb, Ext4, Ino};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

/// jbd2 `COMPAT_CHECKSUM` (v1 commit checksums), dropped when v3 is set.
const COMPAT_CHECKSUM: u32 = 0x1;
/// `s_checksum_type` for crc32c.
const CRC32C_CHKSUM: u8 = 4;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const ABORTED: Error = Error::ReadOnly {
    reason: "journal aborted after a device error",
};

fn put_be32(b: &mut [u8], off: usize, v: u32) {
    if let Some(d) = b.get_mut(off..off + 4) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

fn put_be16(b: &mut [u8], off: usize, v: u16) {
    if let Some(d) = b.get_mut(off..off + 2) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

/// Checksum of `b` with the 4-byte field at `at` counted as zero.
fn csum_without(seed: u32, b: &[u8], at: usize) -> u32 {
    let mut c = crc32c_raw(seed, b.get(..at).unwrap_or(&[]));
    c = crc32c_raw(c, &[0; 4]);
    crc32c_raw(c, b.get(at + 4..).unwrap_or(&[]))
}

/// Recompute the journal superblock checksum (over its first 1024 bytes) if it has one.
fn seal_jsb(jsb: &mut [u8]) {
    if be32(jsb, 0x28) & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0 {
        let c = csum_without(!0, jsb.get(..1024).unwrap_or(&[]), 0xFC);
        put_be32(jsb, 0xFC, c);
    }
}

/// Whether the commit writes dirty block `b` in place before its log (ordered data: file
/// data, or a block outside the committed file system) rather than log it: a block in
/// `data` not freed in the running transaction.
fn is_ordered(j: &Jnl, data: &BTreeSet<u64>, b: u64) -> bool {
    data.contains(&b) && !j.is_freed(b)
}

/// Journal logical → physical: (first logical block, length, first physical block) runs.
pub(crate) type JournalRuns = Vec<(u64, u64, u64)>;

/// The internal journal as the writer uses it.
pub(crate) struct Jnl {
    /// Where the journal's blocks are.
    runs: JournalRuns,
    /// The journal superblock as last written.
    jsb: Vec<u8>,
    first: u32,
    maxlen: u32,
    /// Where the next transaction starts.
    head: u32,
    /// Sequence number of the next transaction.
    seq: u32,
    v3: bool,
    is64: bool,
    seed: u32,
    /// Blocks freed in the running transaction: start → end (exclusive), disjoint.
    freed: BTreeMap<u64, u64>,
    freed_count: u64,
    aborted: bool,
}

impl Jnl {
    /// The journal's blocks on the device: (first physical block, count) a run.
    pub(crate) fn phys_runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs.iter().map(|&(_, n, p)| (p, n))
    }

    fn phys(&self, lblk: u32) -> Result<u64> {
        let l = u64::from(lblk);
        let i = self.runs.partition_point(|&(s, _, _)| s <= l);
        match i.checked_sub(1).and_then(|i| self.runs.get(i)) {
            Some(&(s, n, p)) if l < s + n => Ok(p + (l - s)),
            _ => Err(Error::Corrupt {
                what: "journal block",
                at: l,
            }),
        }
    }
    fn next(&self, pos: u32) -> u32 {
        let n = pos.wrapping_add(1);
        if n >= self.maxlen {
            self.first
        } else {
            n
        }
    }
    /// Blocks the log can hold.
    fn capacity(&self) -> u64 {
        u64::from(self.maxlen - self.first)
    }
    fn tag_bytes(&self) -> usize {
        if self.v3 {
            16
        } else if self.is64 {
            12
        } else {
            8
        }
    }
    /// Tags per descriptor block (the first tag is followed by the 16-byte UUID).
    fn tags_per_desc(&self, bs: usize) -> usize {
        let end = bs - if self.v3 { 4 } else { 0 };
        (end.saturating_sub(12 + 16) / self.tag_bytes()).max(1)
    }
    /// Log blocks a transaction of `n` journalled blocks takes (descriptors and commit too).
    fn blocks_needed(&self, n: usize, bs: usize) -> u64 {
        (n + n.div_ceil(self.tags_per_desc(bs)) + 1) as u64
    }
    fn is_freed(&self, b: u64) -> bool {
        self.freed
            .range(..=b)
            .next_back()
            .is_some_and(|(_, &e)| b < e)
    }
    fn add_freed(&mut self, mut s: u64, mut e: u64) {
        if let Some((&ps, &pe)) = self.freed.range(..=s).next_back() {
            if pe >= s {
                s = ps;
                e = e.max(pe);
                self.freed.remove(&ps);
                self.freed_count -= pe - ps;
            }
        }
        while let Some((&a, &b)) = self.freed.range(s..=e).next() {
            e = e.max(b);
            self.freed.remove(&a);
            self.freed_count -= b - a;
        }
        self.freed.insert(s, e);
        self.freed_count += e - s;
    }
}

impl<D: BlockDevice> Ext4<D> {
    /// Device sector of file-system block `blk`.
    fn dev_lba(&self, blk: u64) -> Result<u64> {
        let per = (self.ctx.bs as u64 / u64::from(self.dev.sector_size().max(1))).max(1);
        blk.checked_mul(per).ok_or(Error::Corrupt {
            what: "block number",
            at: blk,
        })
    }

    /// Write block `blk` to the device at once, bypassing the cache, durable when this
    /// returns (FUA): journal superblocks and commit records.
    fn dev_write_fua(&mut self, blk: u64, buf: &[u8]) -> Result<()> {
        let lba = self.dev_lba(blk)?;
        self.dev.submit(&mut [Request::Write {
            lba,
            buf,
            fua: true,
        }])?;
        Ok(())
    }

    /// Read block `blk` from the device, bypassing the cache.
    fn dev_block(&mut self, blk: u64) -> Result<Vec<u8>> {
        let mut b = vec![0u8; self.ctx.bs];
        self.cache.read_uncached(&mut self.dev, blk, &mut b)?;
        Ok(b)
    }

    /// Replay a journal that needs recovery for real before a read-write mount (see the
    /// module documentation). Images that do not need it, read-only devices and images the
    /// writer must not touch come back unchanged (the mount policy refuses the latter). A log
    /// left behind while `needs_recovery` is clear (the file system says it is consistent:
    /// a crash after the last checkpoint but before the journal was marked empty) is skipped,
    /// as Linux does.
    pub(crate) fn recover(dev: D, opts: &Options) -> Result<D> {
        let mut fs = Self::open_with(dev, opts)?;
        let needed = fs.sb.feature_incompat & sb::INCOMPAT_RECOVER != 0;
        if fs.dev.read_only()
            || fs.sb.check_features()?.is_some()
            || fs.sb.feature_compat & sb::COMPAT_HAS_JOURNAL == 0
            || fs.sb.journal_inum == 0
        {
            return Ok(fs.dev);
        }
        // Scan again from the device alone (the mount consulted the replayed blocks).
        fs.overlay.clear();
        let (blocks, end) = journal::replay(&mut fs)?;
        let jinode = fs.load_inode(fs.sb.journal_inum)?;
        let jsb_blk = fs.map(&jinode, 0)?.phys.ok_or(Error::JournalRecovery {
            what: "hole in the journal",
        })?;
        if needed {
            for (&blk, data) in &blocks {
                let lba = fs.dev_lba(blk)?;
                fs.dev.write(lba, data, false)?;
            }
            fs.dev.flush()?;
        }
        let mut jsb = fs.dev_block(jsb_blk)?;
        if be32(&jsb, 0x1C) != 0 {
            put_be32(&mut jsb, 0x18, end.wrapping_add(1));
            put_be32(&mut jsb, 0x1C, 0);
            seal_jsb(&mut jsb);
            fs.dev_write_fua(jsb_blk, &jsb)?;
        }
        if !needed {
            return Ok(fs.dev);
        }
        // Recovery complete: clear needs_recovery in the (possibly replayed) superblock.
        let bs = fs.ctx.bs;
        let (sb_blk, off) = ((1024 / bs) as u64, 1024 % bs);
        let mut b = fs.dev_block(sb_blk)?;
        let raw = b.get_mut(off..off + 1024).ok_or(Error::BadSuperblock {
            what: "superblock location",
        })?;
        let inc = le32(raw, s::FEATURE_INCOMPAT);
        put32(raw, s::FEATURE_INCOMPAT, inc & !sb::INCOMPAT_RECOVER);
        let ro = le32(raw, s::FEATURE_RO_COMPAT);
        if ro & RO_COMPAT_METADATA_CSUM != 0 {
            let c = crc32c_raw(!0, raw.get(..s::CHECKSUM).unwrap_or(&[]));
            put32(raw, s::CHECKSUM, c);
        }
        let lba = fs.dev_lba(sb_blk)?;
        fs.dev.submit(&mut [
            Request::Write {
                lba,
                buf: &b,
                fua: false,
            },
            Request::Flush,
        ])?;
        Ok(fs.dev)
    }

    /// Set up journal writing for a read-write mount: map the journal, check its superblock
    /// (it must be empty: recovery ran first) and set its features as Linux does at mount
    /// (checksum v3 with `metadata_csum`, 64-bit block numbers on 64-bit file systems). No
    /// journal (`has_journal` clear) leaves the engine writing back without one.
    /// Where journal inode `ino`'s blocks are ([`JournalRuns`]), and the journal's length in
    /// blocks.
    pub(crate) fn journal_runs(&mut self, ino: Ino) -> Result<(JournalRuns, u64)> {
        let bad = |what: &'static str| Error::JournalRecovery { what };
        let inode = self.load_inode(ino)?;
        let bs = self.ctx.bs as u64;
        let nblocks = inode.size / bs;
        if nblocks < 4 || nblocks > u64::from(u32::MAX) {
            return Err(bad("journal size"));
        }
        let mut runs = Vec::new();
        let mut l = 0u64;
        while l < nblocks {
            let r = self.map(&inode, l)?;
            let p = r.phys.ok_or(bad("hole in the journal"))?;
            let n = r.len.min(nblocks - l);
            if n == 0 || p.checked_add(n).is_none_or(|e| e > self.ctx.blocks_count) {
                return Err(bad("journal extent"));
            }
            runs.push((l, n, p));
            l += n;
        }
        Ok((runs, nblocks))
    }

    pub(crate) fn journal_load(&mut self) -> Result<()> {
        self.jnl = None;
        if self.sb.feature_compat & sb::COMPAT_HAS_JOURNAL == 0 {
            return Ok(());
        }
        let ino: Ino = self.sb.journal_inum;
        if ino == 0 {
            return Err(Error::ReadOnly {
                reason: "external journal",
            });
        }
        let bad = |what: &'static str| Error::JournalRecovery { what };
        let (runs, nblocks) = self.journal_runs(ino)?;
        let bs = self.ctx.bs as u64;
        let mut j = Jnl {
            runs,
            jsb: Vec::new(),
            first: 0,
            maxlen: 0,
            head: 0,
            seq: 0,
            v3: false,
            is64: false,
            seed: 0,
            freed: BTreeMap::new(),
            freed_count: 0,
            aborted: false,
        };
        let jsb_blk = j.phys(0)?;
        let mut jsb = self.dev_block(jsb_blk)?;
        if be32(&jsb, 0) != JBD2_MAGIC || be32(&jsb, 4) != SB_V2 {
            return Err(bad("journal superblock (v2 needed for writing)"));
        }
        if u64::from(be32(&jsb, 0xC)) != bs {
            return Err(bad("journal block size differs from the file system's"));
        }
        j.maxlen = be32(&jsb, 0x10);
        j.first = be32(&jsb, 0x14);
        if j.first == 0 || j.first >= j.maxlen || u64::from(j.maxlen) > nblocks {
            return Err(bad("journal geometry"));
        }
        if j.maxlen - j.first < 16 {
            return Err(bad("journal too small"));
        }
        if be32(&jsb, 0x1C) != 0 {
            return Err(bad("journal not empty"));
        }
        let incompat = be32(&jsb, 0x28);
        if incompat & !INCOMPAT_KNOWN != 0 {
            return Err(bad("unknown journal feature"));
        }
        if incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0
            && csum_without(!0, jsb.get(..1024).unwrap_or(&[]), 0xFC) != be32(&jsb, 0xFC)
        {
            return Err(Error::Checksum {
                what: "journal superblock",
                at: jsb_blk,
            });
        }
        let old = jsb.clone();
        let mut inc = incompat & !(INCOMPAT_CSUM_V2 | INCOMPAT_ASYNC_COMMIT);
        let mut compat = be32(&jsb, 0x24);
        if self.ctx.csum {
            inc |= INCOMPAT_CSUM_V3;
            compat &= !COMPAT_CHECKSUM;
            if let Some(t) = jsb.get_mut(0x50) {
                *t = CRC32C_CHKSUM;
            }
        } else {
            inc &= !INCOMPAT_CSUM_V3;
        }
        if self.sb.feature_incompat & sb::INCOMPAT_64BIT != 0 {
            inc |= INCOMPAT_64BIT;
        }
        put_be32(&mut jsb, 0x24, compat);
        put_be32(&mut jsb, 0x28, inc);
        seal_jsb(&mut jsb);
        if jsb != old {
            self.dev_write_fua(jsb_blk, &jsb)?;
        }
        j.v3 = inc & INCOMPAT_CSUM_V3 != 0;
        j.is64 = inc & INCOMPAT_64BIT != 0;
        j.seed = crc32c_raw(!0, jsb.get(0x30..0x40).unwrap_or(&[]));
        j.head = j.first;
        j.seq = be32(&jsb, 0x18);
        j.jsb = jsb;
        self.jnl = Some(j);
        self.build_system_zone()
    }

    /// Write the mount state (`needs_recovery`, already changed in the cached superblock) home
    /// at once, outside any transaction, while the journal is empty: set at mount before the
    /// first transaction (from then on a crash always leads to a replay), cleared at close
    /// after the last one is checkpointed.
    pub(crate) fn journal_write_state(&mut self) -> Result<()> {
        if self.jnl.is_some() {
            self.cache.write_back(&mut self.dev, |_| true)?;
        }
        Ok(())
    }

    /// Start writing file data back without waiting for it (posted writes, see
    /// `BlockDevice::post_writes`), once at least `min` blocks of it are dirty; at most `max`
    /// blocks per call. Only ordered data is started: the blocks a commit would write in place
    /// before its journal records (not blocks freed and reused in the running transaction,
    /// which the journal carries). So the volume on disk is what it would be after a crash
    /// before this call, plus file data in blocks no committed metadata points to yet or that
    /// already belonged to the file. The commit then waits for these writes (the device orders
    /// them before its flush) instead of issuing them: durability still comes from `sync` or
    /// `fsync`. Returns the number of blocks started.
    pub fn start_write_back(&mut self, min: usize, max: usize) -> Result<usize> {
        if !self.writable || self.dirty_data.len() < min.max(1) {
            return Ok(0);
        }
        let jnl = self.jnl.as_ref();
        let candidates = self
            .dirty_data
            .iter()
            .copied()
            .filter(|&b| !jnl.is_some_and(|j| j.is_freed(b)));
        let done = self.cache.post_back(&mut self.dev, candidates, max)?;
        for b in &done {
            self.dirty_data.remove(b);
        }
        Ok(done.len())
    }

    /// Whether this engine writes through a journal.
    pub(crate) fn journalled(&self) -> bool {
        self.jnl.is_some()
    }

    /// Record blocks freed in the running transaction (see the module documentation).
    pub(crate) fn journal_note_freed(&mut self, first: u64, count: u64) {
        if let Some(j) = self.jnl.as_mut() {
            j.add_freed(first, first.saturating_add(count));
        }
    }

    /// Whether a transaction of `blocks` metadata blocks fits the journal (always without
    /// one).
    pub(crate) fn journal_fits(&self, blocks: u64) -> bool {
        self.jnl.as_ref().is_none_or(|j| {
            usize::try_from(blocks).is_ok_and(|n| j.blocks_needed(n, self.ctx.bs) <= j.capacity())
        })
    }

    /// Whether block `b` was freed in the running transaction (so not to be taken for
    /// anything written in place before its commit).
    pub(crate) fn journal_freed(&self, b: u64) -> bool {
        self.jnl.as_ref().is_some_and(|j| j.is_freed(b))
    }

    /// Forget the blocks freed in the running transaction, when the transaction's changes
    /// are dropped from memory before its commit.
    pub(crate) fn journal_forget_freed(&mut self) {
        if let Some(j) = self.jnl.as_mut() {
            j.freed.clear();
            j.freed_count = 0;
        }
    }

    /// Whether the running transaction as it stands fits the journal: the dirty blocks but
    /// ordered data, as the commit divides them (always without a journal).
    pub(crate) fn journal_running_fits(&self) -> bool {
        self.jnl.as_ref().is_none_or(|j| {
            let logged = self
                .cache
                .dirty_blocks()
                .into_iter()
                .filter(|&b| !is_ordered(j, &self.dirty_data, b))
                .count();
            j.blocks_needed(logged, self.ctx.bs) <= j.capacity()
        })
    }

    /// Whether the running transaction has grown enough to commit now (at an operation
    /// boundary), so that no transaction outgrows the journal.
    pub(crate) fn journal_wants_commit(&self) -> bool {
        let Some(j) = self.jnl.as_ref() else {
            return false;
        };
        let meta = self
            .cache
            .dirty_count()
            .saturating_sub(self.dirty_data.len()) as u64;
        meta.saturating_add(j.freed_count) >= j.capacity() / 4
    }

    /// Commit the running transaction and checkpoint it (see the module documentation).
    /// Returns once everything is durable.
    pub(crate) fn journal_commit(&mut self) -> Result<()> {
        let Some(mut j) = self.jnl.take() else {
            return Ok(());
        };
        let r = self.journal_commit_with(&mut j);
        if r.is_err() && j.aborted {
            self.writable = false;
        }
        self.jnl = Some(j);
        r
    }

    fn journal_commit_with(&mut self, j: &mut Jnl) -> Result<()> {
        if j.aborted {
            return Err(ABORTED);
        }
        let bs = self.ctx.bs;
        let dirty = self.cache.dirty_blocks();
        let data = core::mem::take(&mut self.dirty_data);
        let mut ordered = BTreeSet::new();
        let mut logged = Vec::new();
        for b in dirty {
            if is_ordered(j, &data, b) {
                ordered.insert(b);
            } else {
                logged.push(b);
            }
        }
        if j.blocks_needed(logged.len(), bs) > j.capacity() {
            self.dirty_data = data;
            return Err(Error::Unsupported {
                what: "transaction larger than the journal",
            });
        }
        // From here on a failure leaves the device in an unknown (but recoverable) state.
        j.aborted = true;
        // 1. Ordered data.
        self.cache
            .write_back(&mut self.dev, |b| ordered.contains(&b))?;
        if !logged.is_empty() {
            // 2. Descriptors and copies, and the journal superblock pointing at them.
            let seq = j.seq;
            let start = j.head;
            let mut bufs: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut pos = start;
            let tag_bytes = j.tag_bytes();
            for chunk in logged.chunks(j.tags_per_desc(bs)) {
                let desc_at = bufs.len();
                let mut desc = vec![0u8; bs];
                put_be32(&mut desc, 0, JBD2_MAGIC);
                put_be32(&mut desc, 4, DESCRIPTOR);
                put_be32(&mut desc, 8, seq);
                bufs.push((j.phys(pos)?, Vec::new()));
                pos = j.next(pos);
                let mut off = 12;
                for (i, &blk) in chunk.iter().enumerate() {
                    let mut copy = self.cache.get(&mut self.dev, blk)?.to_vec();
                    let mut fl = 0u32;
                    if be32(&copy, 0) == JBD2_MAGIC {
                        put_be32(&mut copy, 0, 0);
                        fl |= TAG_ESCAPE;
                    }
                    if i > 0 {
                        fl |= TAG_SAME_UUID;
                    }
                    if i + 1 == chunk.len() {
                        fl |= TAG_LAST;
                    }
                    put_be32(&mut desc, off, blk as u32);
                    if j.v3 {
                        let c = crc32c_raw(crc32c_raw(j.seed, &seq.to_be_bytes()), &copy);
                        put_be32(&mut desc, off + 4, fl);
                        put_be32(&mut desc, off + 8, (blk >> 32) as u32);
                        put_be32(&mut desc, off + 12, c);
                    } else {
                        put_be16(&mut desc, off + 6, fl as u16);
                        if j.is64 {
                            put_be32(&mut desc, off + 8, (blk >> 32) as u32);
                        }
                    }
                    off += tag_bytes;
                    if i == 0 {
                        let uuid = j.jsb.get(0x30..0x40).unwrap_or(&[0; 16]).to_vec();
                        if let Some(d) = desc.get_mut(off..off + 16) {
                            d.copy_from_slice(&uuid);
                        }
                        off += 16;
                    }
                    bufs.push((j.phys(pos)?, copy));
                    pos = j.next(pos);
                }
                if j.v3 {
                    let c = csum_without(j.seed, &desc, bs - 4);
                    put_be32(&mut desc, bs - 4, c);
                }
                if let Some(slot) = bufs.get_mut(desc_at) {
                    slot.1 = desc;
                }
            }
            let commit_pos = pos;
            put_be32(&mut j.jsb, 0x18, seq);
            put_be32(&mut j.jsb, 0x1C, start);
            seal_jsb(&mut j.jsb);
            bufs.push((j.phys(0)?, j.jsb.clone()));
            let mut lbas = Vec::with_capacity(bufs.len());
            for (blk, _) in &bufs {
                lbas.push(self.dev_lba(*blk)?);
                self.cache.invalidate(*blk);
            }
            let mut reqs: Vec<Request<'_>> = bufs
                .iter()
                .zip(&lbas)
                .map(|((_, buf), &lba)| Request::Write {
                    lba,
                    buf,
                    fua: false,
                })
                .collect();
            reqs.push(Request::Flush);
            self.dev.submit(&mut reqs)?;
            // 3. Commit.
            let mut commit = vec![0u8; bs];
            put_be32(&mut commit, 0, JBD2_MAGIC);
            put_be32(&mut commit, 4, COMMIT);
            put_be32(&mut commit, 8, seq);
            let sec = self.clock.sec.max(0) as u64;
            put_be32(&mut commit, 0x30, (sec >> 32) as u32);
            put_be32(&mut commit, 0x34, sec as u32);
            put_be32(&mut commit, 0x38, self.clock.nsec);
            if j.v3 {
                let c = csum_without(j.seed, &commit, 0x10);
                put_be32(&mut commit, 0x10, c);
            }
            j.seq = seq.wrapping_add(1);
            j.head = j.next(commit_pos);
            let commit_blk = j.phys(commit_pos)?;
            self.dev_write_fua(commit_blk, &commit)?;
            // 4. Checkpoint.
            self.cache.write_back(&mut self.dev, |_| true)?;
            // 5. The journal is empty again.
            put_be32(&mut j.jsb, 0x18, j.seq);
            put_be32(&mut j.jsb, 0x1C, 0);
            seal_jsb(&mut j.jsb);
            self.dev_write_fua(j.phys(0)?, &j.jsb)?;
        }
        j.freed.clear();
        j.freed_count = 0;
        j.aborted = false;
        Ok(())
    }

    /// Make the changes to `ino` durable: commits the running transaction (which holds
    /// every change so far) and returns once it is on stable storage. `ino` must exist.
    pub fn fsync(&mut self, ino: Ino) -> Result<()> {
        self.load_inode(ino)?;
        if self.jnl.as_ref().is_some_and(|j| j.aborted) {
            return Err(ABORTED);
        }
        self.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jnl(v3: bool, is64: bool) -> Jnl {
        Jnl {
            runs: alloc::vec![(0, 10, 100), (10, 1014, 500)],
            jsb: Vec::new(),
            first: 1,
            maxlen: 1024,
            head: 1,
            seq: 1,
            v3,
            is64,
            seed: 0,
            freed: BTreeMap::new(),
            freed_count: 0,
            aborted: false,
        }
    }

    #[test]
    fn log_geometry() {
        let j = jnl(true, true);
        assert_eq!((j.phys(0).unwrap(), j.phys(9).unwrap()), (100, 109));
        assert_eq!((j.phys(10).unwrap(), j.phys(1023).unwrap()), (500, 1513));
        assert!(j.phys(1024).is_err());
        assert_eq!((j.next(5), j.next(1023)), (6, 1));
        // 1k blocks, v3: (1024 - 12 - 4 - 16) / 16 tags per descriptor.
        assert_eq!(j.tags_per_desc(1024), 62);
        assert_eq!(j.blocks_needed(62, 1024), 64);
        assert_eq!(j.blocks_needed(63, 1024), 66);
        assert_eq!(jnl(false, false).tags_per_desc(1024), 124);
        assert_eq!(jnl(false, true).tags_per_desc(4096), 339);
        // The largest transaction that fits: capacity 1023.
        let max = (0..2000).take_while(|&n| j.blocks_needed(n, 1024) <= j.capacity());
        assert_eq!(max.last(), Some(1005)); // 1005 + 17 descriptors + commit
    }

    #[test]
    fn freed_ranges_merge() {
        let mut j = jnl(true, true);
        j.add_freed(100, 150);
        j.add_freed(110, 111); // inside
        j.add_freed(200, 210);
        j.add_freed(150, 160); // touches the first
        j.add_freed(90, 205); // spans both
        assert_eq!(j.freed.len(), 1);
        assert_eq!(j.freed_count, 120);
        assert!(j.is_freed(90) && j.is_freed(209) && !j.is_freed(89) && !j.is_freed(210));
        j.add_freed(300, 301);
        assert!(j.is_freed(300) && !j.is_freed(250) && j.freed_count == 121);
    }
}
