//! Mapping a file's logical blocks to physical ones for reads: extent trees (walked from the
//! root for each lookup, checksums verified) and legacy indirect block maps.

use crate::block::BlockDevice;
use crate::crc::crc32c_raw;
use crate::ext4::bytes::{le16, le32};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::extent::{ee, eh, index_child, leaf_start, EXTENT_MAGIC, MAX_DEPTH};
use crate::ext4::inode::Inode;
use crate::ext4::types::flags;
use crate::ext4::{Ext4, Ino};
use alloc::vec::Vec;

/// A run of logical blocks mapped the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// Blocks in the run (≥ 1).
    pub(crate) len: u64,
    /// First physical block, or `None` for a hole / uninitialized extent (reads as zeros).
    pub(crate) phys: Option<u64>,
}

impl<D: BlockDevice> Ext4<D> {
    /// Map logical block `lblk` of `inode` to a run.
    pub(crate) fn map(&mut self, inode: &Inode, lblk: u64) -> Result<Run> {
        if inode.flags & flags::EXTENTS != 0 {
            self.map_extent(inode, lblk)
        } else {
            self.map_legacy(inode, lblk)
        }
    }

    /// `len` blocks from `phys` are inside the file system and outside its metadata (the
    /// system zone), so inode `ino` may map them.
    pub(crate) fn check_phys(&self, phys: u64, len: u64, ino: Ino) -> Result<()> {
        match phys.checked_add(len) {
            Some(end) if phys != 0 && end <= self.ctx.blocks_count => {}
            _ => return corrupt("block pointer", u64::from(ino)),
        }
        match self.zone_conflict(phys, len, ino) {
            None => Ok(()),
            Some(_) => corrupt(
                "block pointer into the file system's metadata",
                u64::from(ino),
            ),
        }
    }

    fn map_extent(&mut self, inode: &Inode, lblk: u64) -> Result<Run> {
        let ino = u64::from(inode.ino);
        if lblk > u64::from(u32::MAX) {
            return Ok(Run {
                len: u64::MAX - lblk,
                phys: None,
            });
        }
        let target = lblk as u32;
        let mut node: Vec<u8> = inode.iblock.to_vec();
        let mut node_blk = 0u64;
        // First logical block past the current subtree.
        let mut upper: u64 = 1 << 32;
        let mut expect_depth: Option<u16> = None;
        for _level in 0..8 {
            let magic = le16(&node, eh::MAGIC);
            let entries = usize::from(le16(&node, eh::ENTRIES));
            let max = usize::from(le16(&node, eh::MAX));
            let depth = le16(&node, eh::DEPTH);
            if magic != EXTENT_MAGIC
                || entries > max
                || 12 + max * 12 > node.len()
                || depth > MAX_DEPTH
                || expect_depth.is_some_and(|d| d != depth)
            {
                return corrupt("extent header", if node_blk == 0 { ino } else { node_blk });
            }
            let ent = |i: usize| node.get(12 + i * 12..24 + i * 12).unwrap_or(&[]);
            // Last entry whose first block is <= target.
            let (mut lo, mut hi) = (0usize, entries);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if le32(ent(mid), ee::BLOCK) <= target {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let next_start = if lo < entries {
                u64::from(le32(ent(lo), ee::BLOCK)).min(upper)
            } else {
                upper
            };
            if lo == 0 {
                return Ok(Run {
                    len: next_start.saturating_sub(lblk).max(1),
                    phys: None,
                });
            }
            let e = ent(lo - 1);
            if depth == 0 {
                let start = u64::from(le32(e, ee::BLOCK));
                let raw_len = le16(e, ee::LEN);
                let (len, uninit) = if raw_len > 32768 {
                    (raw_len - 32768, true)
                } else {
                    (raw_len, false)
                };
                let len = u64::from(len);
                let pstart = leaf_start(e);
                if lblk < start + len {
                    let delta = lblk - start;
                    let run_len = len - delta;
                    if uninit {
                        return Ok(Run {
                            len: run_len,
                            phys: None,
                        });
                    }
                    self.check_phys(pstart, len, inode.ino)?;
                    return Ok(Run {
                        len: run_len,
                        phys: Some(pstart + delta),
                    });
                }
                return Ok(Run {
                    len: next_start.saturating_sub(lblk).max(1),
                    phys: None,
                });
            }
            upper = next_start;
            let child = index_child(e);
            self.check_phys(child, 1, inode.ino)?;
            let ctx = self.ctx;
            let b = self.block(child)?;
            if ctx.csum {
                let max = usize::from(le16(b, eh::MAX));
                let tail = 12 + max * 12;
                let want = le32(b, tail);
                let data = b.get(..tail).ok_or(Error::Corrupt {
                    what: "extent block",
                    at: child,
                })?;
                if crc32c_raw(inode.seed, data) != want {
                    return Err(Error::Checksum {
                        what: "extent block",
                        at: child,
                    });
                }
            }
            node.clear();
            node.extend_from_slice(b);
            node_blk = child;
            expect_depth = Some(depth - 1);
        }
        corrupt("extent tree depth", ino)
    }

    fn map_legacy(&mut self, inode: &Inode, lblk: u64) -> Result<Run> {
        let apb = (self.ctx.bs / 4) as u64;
        let words = |b: &[u8], i: u64| le32(b, (i * 4) as usize);
        let run_in = |b: &[u8], idx: u64, n: u64| -> Run {
            let first = words(b, idx);
            let mut len = 1;
            while idx + len < n {
                let w = words(b, idx + len);
                let contiguous = if first == 0 {
                    w == 0
                } else {
                    w == first.wrapping_add(len as u32)
                };
                if !contiguous {
                    break;
                }
                len += 1;
            }
            Run {
                len,
                phys: if first == 0 {
                    None
                } else {
                    Some(u64::from(first))
                },
            }
        };
        let result = if lblk < 12 {
            run_in(&inode.iblock, lblk, 12)
        } else {
            let mut rel = lblk - 12;
            let mut level = 1u32;
            let mut span = apb;
            while rel >= span {
                rel -= span;
                level += 1;
                span = span.saturating_mul(apb);
                if level > 3 {
                    return Ok(Run {
                        len: u64::MAX / 2,
                        phys: None,
                    });
                }
            }
            let mut ptr = u64::from(le32(&inode.iblock, (11 + level as usize) * 4));
            let mut sub_span = span;
            let mut scratch = core::mem::take(&mut self.scratch);
            let r = loop {
                if ptr == 0 {
                    break Run {
                        len: sub_span - rel,
                        phys: None,
                    };
                }
                self.check_phys(ptr, 1, inode.ino)?;
                let b = self.block(ptr)?;
                scratch.clear();
                scratch.extend_from_slice(b);
                let child_span = sub_span / apb;
                let idx = rel / child_span;
                rel %= child_span;
                if child_span == 1 {
                    break run_in(&scratch, idx, apb);
                }
                ptr = u64::from(words(&scratch, idx));
                sub_span = child_span;
            };
            self.scratch = scratch;
            r
        };
        if let Some(p) = result.phys {
            self.check_phys(p, result.len, inode.ino)?;
        }
        Ok(result)
    }
}
