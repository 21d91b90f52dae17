//! jbd2 journal recovery, in memory, for reading.
//!
//! When `needs_recovery` is set, mounting scans the internal journal (inode
//! `s_journal_inum`) the way jbd2's three recovery passes do — find the complete transactions
//! starting at `s_start`/`s_sequence`, collect revoke records, then take the newest
//! non-revoked copy of every journalled block — and returns the result as an overlay
//! (file-system block → contents) that the engine consults before the device. Nothing is
//! written here; a read-write mount ([`Ext4::open_rw`]) writes the result home and marks the
//! journal empty first (see `journal::commit`).
//!
//! Supported: journal superblock v1/v2, 32- and 64-bit block numbers, revoke records, escaped
//! blocks, and checksums v2/v3 (descriptor tails, data-block tags, commit blocks). Transactions
//! whose commit block is missing or fails its checksum end the replay, as in jbd2. A data block
//! of a committed transaction whose tag checksum fails is an error (the image is refused rather
//! than read wrongly); the copies of the uncommitted transaction a crash cut short are not
//! checked.
//!
//! All journal fields are big-endian. Every loop is bounded by the journal length.

use crate::block::BlockDevice;
use crate::crc::crc32c_raw;
use crate::ext4::error::{Error, Result};
use crate::ext4::inode::Inode;
use crate::ext4::Ext4;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// The read-only reason of a mount whose journal was replayed in memory.
pub(crate) const REPLAYED_IN_MEMORY: &str = "journal replayed in memory only";

pub(crate) const JBD2_MAGIC: u32 = 0xC03B_3998;
pub(crate) const DESCRIPTOR: u32 = 1;
pub(crate) const COMMIT: u32 = 2;
const SB_V1: u32 = 3;
pub(crate) const SB_V2: u32 = 4;
const REVOKE: u32 = 5;

pub(crate) const INCOMPAT_REVOKE: u32 = 0x1;
pub(crate) const INCOMPAT_64BIT: u32 = 0x2;
pub(crate) const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
pub(crate) const INCOMPAT_CSUM_V2: u32 = 0x8;
pub(crate) const INCOMPAT_CSUM_V3: u32 = 0x10;
pub(crate) const INCOMPAT_KNOWN: u32 =
    INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_ASYNC_COMMIT | INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3;

pub(crate) const TAG_ESCAPE: u32 = 1;
pub(crate) const TAG_SAME_UUID: u32 = 2;
pub(crate) const TAG_LAST: u32 = 8;

pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.wrapping_add(4)) {
        Some(&[a, c, d, e]) => u32::from_be_bytes([a, c, d, e]),
        _ => 0,
    }
}

fn be16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.wrapping_add(2)) {
        Some(&[a, c]) => u16::from_be_bytes([a, c]),
        _ => 0,
    }
}

fn fail<T>(what: &'static str) -> Result<T> {
    Err(Error::JournalRecovery { what })
}

struct Journal {
    inode: Inode,
    first: u32,
    maxlen: u32,
    incompat: u32,
    csum_seed: u32,
}

impl Journal {
    fn csum_v23(&self) -> bool {
        self.incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0
    }
    fn tag_bytes(&self) -> usize {
        if self.incompat & INCOMPAT_CSUM_V3 != 0 {
            return 16;
        }
        let mut sz = 12;
        if self.incompat & INCOMPAT_CSUM_V2 != 0 {
            sz += 2;
        }
        if self.incompat & INCOMPAT_64BIT == 0 {
            sz -= 4;
        }
        sz
    }
    fn next(&self, pos: u32) -> u32 {
        let n = pos.wrapping_add(1);
        if n >= self.maxlen {
            self.first
        } else {
            n
        }
    }
    /// Whole-block checksum with the 4-byte field at `csum_off` zeroed.
    fn block_csum_ok(&self, b: &[u8], csum_off: usize) -> bool {
        if !self.csum_v23() {
            return true;
        }
        let mut c = crc32c_raw(self.csum_seed, b.get(..csum_off).unwrap_or(&[]));
        c = crc32c_raw(c, &[0; 4]);
        c = crc32c_raw(c, b.get(csum_off + 4..).unwrap_or(&[]));
        c == be32(b, csum_off)
    }
}

/// A journalled block: file-system block, its position in the journal, escaped flag,
/// transaction.
struct Write {
    target: u64,
    jpos: u32,
    escaped: bool,
    seq: u32,
    /// The tag's checksum of the journalled copy (v3: 32 bits; v2: the low 16 bits).
    csum: u32,
}

fn jblock<D: BlockDevice>(fs: &mut Ext4<D>, j: &Journal, pos: u32) -> Result<Vec<u8>> {
    let run = fs.map(&j.inode, u64::from(pos))?;
    let phys = run.phys.ok_or(Error::JournalRecovery {
        what: "hole in the journal",
    })?;
    Ok(fs.block(phys)?.to_vec())
}

/// Read and check the journal superblock: the journal, the sequence number and the log
/// start it gives (0: the journal is clean).
fn open_journal<D: BlockDevice>(fs: &mut Ext4<D>) -> Result<(Journal, u32, u32)> {
    let inode = fs.load_inode(fs.sb.journal_inum)?;
    let bs = fs.ctx.bs;
    let mut j = Journal {
        inode,
        first: 0,
        maxlen: 0,
        incompat: 0,
        csum_seed: 0,
    };
    let sb = jblock(fs, &j, 0)?;
    let btype = be32(&sb, 4);
    if be32(&sb, 0) != JBD2_MAGIC || !(btype == SB_V1 || btype == SB_V2) {
        return fail("bad journal superblock");
    }
    if be32(&sb, 0xC) as usize != bs {
        return fail("journal block size differs from the file system's");
    }
    j.maxlen = be32(&sb, 0x10);
    j.first = be32(&sb, 0x14);
    let seq = be32(&sb, 0x18);
    let start = be32(&sb, 0x1C);
    let journal_blocks = j.inode.size / bs as u64;
    if j.first == 0 || j.first >= j.maxlen || u64::from(j.maxlen) > journal_blocks {
        return fail("journal geometry");
    }
    if btype == SB_V2 {
        j.incompat = be32(&sb, 0x28);
        if j.incompat & !INCOMPAT_KNOWN != 0 {
            return fail("unknown journal feature");
        }
        if j.incompat & INCOMPAT_CSUM_V2 != 0 && j.incompat & INCOMPAT_CSUM_V3 != 0 {
            return fail("both journal checksum versions set");
        }
        if j.csum_v23() {
            j.csum_seed = crc32c_raw(!0, sb.get(0x30..0x40).unwrap_or(&[]));
            // jbd2_superblock_csum: seeded with ~0 over the 1024-byte superblock.
            let raw = sb.get(..1024).unwrap_or(&[]);
            let mut c = crc32c_raw(!0, raw.get(..0xFC).unwrap_or(&[]));
            c = crc32c_raw(c, &[0; 4]);
            c = crc32c_raw(c, raw.get(0x100..).unwrap_or(&[]));
            if c != be32(&sb, 0xFC) {
                return fail("journal superblock checksum");
            }
        }
    }
    Ok((j, seq, start))
}

/// Pass 3 of the replay: the committed `writes` in order, later copies replacing earlier
/// ones, except those `revoked` by a later transaction; each copy's checksum verified.
fn replay_writes<D: BlockDevice>(
    fs: &mut Ext4<D>,
    j: &Journal,
    writes: Vec<Write>,
    revoked: &BTreeMap<u64, u32>,
) -> Result<BTreeMap<u64, Vec<u8>>> {
    let tag_bytes = j.tag_bytes();
    let mut overlay = BTreeMap::new();
    for w in writes {
        if let Some(&rseq) = revoked.get(&w.target) {
            if rseq.wrapping_sub(w.seq) as i32 >= 0 {
                continue;
            }
        }
        if w.target >= fs.ctx.blocks_count {
            return fail("journalled block outside the file system");
        }
        let mut data = jblock(fs, j, w.jpos)?;
        if j.csum_v23() {
            let mut c = crc32c_raw(j.csum_seed, &w.seq.to_be_bytes());
            c = crc32c_raw(c, &data);
            if tag_bytes != 16 {
                c &= 0xFFFF;
            }
            if c != w.csum {
                return fail("journal data block checksum");
            }
        }
        if w.escaped {
            if let Some(m) = data.get_mut(..4) {
                m.copy_from_slice(&JBD2_MAGIC.to_be_bytes());
            }
        }
        overlay.insert(w.target, data);
    }
    Ok(overlay)
}

/// Scan and replay the journal; see the module documentation. Returns the replayed blocks
/// and the first transaction sequence number that was not found committed (where the log
/// ends).
pub(crate) fn replay<D: BlockDevice>(fs: &mut Ext4<D>) -> Result<(BTreeMap<u64, Vec<u8>>, u32)> {
    let (j, mut seq, start) = open_journal(fs)?;
    let bs = fs.ctx.bs;
    if start == 0 {
        return Ok((BTreeMap::new(), seq)); // Clean journal.
    }
    if start < j.first || start >= j.maxlen {
        return fail("journal start");
    }
    let tag_bytes = j.tag_bytes();
    let is64 = j.incompat & INCOMPAT_64BIT != 0;
    let mut writes: Vec<Write> = Vec::new();
    let mut pending: Vec<Write> = Vec::new();
    // Revoked block → newest revoking transaction.
    let mut revoked: BTreeMap<u64, u32> = BTreeMap::new();
    let mut pending_revokes: Vec<u64> = Vec::new();
    let mut pos = start;
    let mut steps = 0u64;
    // Pass 1 and 2: walk complete transactions; a transaction counts once its commit is found.
    loop {
        steps += 1;
        if steps > u64::from(j.maxlen) * 2 {
            return fail("journal does not terminate");
        }
        let b = jblock(fs, &j, pos)?;
        if be32(&b, 0) != JBD2_MAGIC || be32(&b, 8) != seq {
            break;
        }
        match be32(&b, 4) {
            DESCRIPTOR => {
                if j.csum_v23() && !j.block_csum_ok(&b, bs - 4) {
                    break;
                }
                let end = if j.csum_v23() { bs - 4 } else { bs };
                let mut off = 12usize;
                pos = j.next(pos);
                loop {
                    if off + tag_bytes > end {
                        break;
                    }
                    let lo = u64::from(be32(&b, off));
                    let (flags, hi) = if tag_bytes == 16 {
                        (be32(&b, off + 4), be32(&b, off + 8))
                    } else {
                        (
                            u32::from(be16(&b, off + 6)),
                            if is64 { be32(&b, off + 8) } else { 0 },
                        )
                    };
                    let target = lo | if is64 { u64::from(hi) << 32 } else { 0 };
                    // Checked only if the transaction turns out committed (pass 3): the copies
                    // of a transaction cut short by a crash may never have been written.
                    let csum = if tag_bytes == 16 {
                        be32(&b, off + 12)
                    } else {
                        u32::from(be16(&b, off + 4))
                    };
                    pending.push(Write {
                        target,
                        jpos: pos,
                        escaped: flags & TAG_ESCAPE != 0,
                        seq,
                        csum,
                    });
                    pos = j.next(pos);
                    off += tag_bytes;
                    if flags & TAG_SAME_UUID == 0 {
                        off += 16;
                    }
                    if flags & TAG_LAST != 0 {
                        break;
                    }
                    if pending.len() > j.maxlen as usize {
                        return fail("journal descriptor");
                    }
                }
            }
            COMMIT => {
                if j.csum_v23() && j.incompat & INCOMPAT_ASYNC_COMMIT == 0 {
                    // struct commit_header: checksum type/size at 12/13, checksum at 16.
                    if !j.block_csum_ok(&b, 16) {
                        break;
                    }
                }
                writes.append(&mut pending);
                for r in pending_revokes.drain(..) {
                    let e = revoked.entry(r).or_insert(seq);
                    if seq.wrapping_sub(*e) as i32 > 0 {
                        *e = seq;
                    }
                }
                seq = seq.wrapping_add(1);
                pos = j.next(pos);
            }
            REVOKE => {
                if j.csum_v23() && !j.block_csum_ok(&b, bs - 4) {
                    break;
                }
                let count = (be32(&b, 12) as usize).min(bs);
                let rec = if is64 { 8 } else { 4 };
                let mut off = 16;
                while off + rec <= count {
                    let blk = if is64 {
                        (u64::from(be32(&b, off)) << 32) | u64::from(be32(&b, off + 4))
                    } else {
                        u64::from(be32(&b, off))
                    };
                    pending_revokes.push(blk);
                    off += rec;
                }
                pos = j.next(pos);
            }
            _ => break,
        }
    }
    let overlay = replay_writes(fs, &j, writes, &revoked)?;
    Ok((overlay, seq))
}
