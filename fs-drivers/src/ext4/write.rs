//! Writing file data: [`Ext4::write`] overwrites mapped blocks, converts unwritten ones and
//! fills holes with new blocks (extent trees grow as needed, see `extent::write`), and
//! [`Ext4::write_would_fit`] answers whether a write can only fail on the device. Changes live
//! in the block cache until [`Ext4::sync`] commits them (see `journal::commit`).

use crate::block::BlockDevice;
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::extent::write::{find, set_written, MAX_INIT};
use crate::ext4::inode::{raw_size, set_mtime_ctime, set_raw_size, Inode};
use crate::ext4::types::flags;
use crate::ext4::types::mode::{S_IFDIR, S_IFMT, S_IFREG};
use crate::ext4::{Ext4, Ino};

/// Free blocks [`Ext4::write_would_fit`] keeps beyond the worst case of a write's data and
/// leaf blocks: extent index levels and anything else a write may allocate.
const WRITE_FIT_MARGIN: u64 = 64;

impl<D: BlockDevice> Ext4<D> {
    /// The inode a write of `len` bytes at `off` goes to, and the end of the range: `ino` must
    /// be a regular file with extents (not inline or encrypted) and the range within the
    /// largest file.
    fn write_target(&mut self, ino: Ino, off: u64, len: u64) -> Result<(Inode, u64)> {
        // Like `regular_extent_file` (truncate), but a write answers `Unsupported` where
        // truncate answers `Invalid`: the errnos differ, so the checks stay apart.
        let inode = self.load_inode(ino)?;
        match inode.mode & S_IFMT {
            S_IFDIR => return Err(Error::IsDir { ino }),
            S_IFREG => {}
            _ => {
                return Err(Error::Unsupported {
                    what: "writing to a non-regular file",
                })
            }
        }
        if inode.flags & flags::EXTENTS == 0
            || inode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0
        {
            return Err(Error::Unsupported {
                what: "writing a block-mapped, inline or encrypted file",
            });
        }
        let end = off.checked_add(len).ok_or(Error::FileTooBig)?;
        if end.div_ceil(self.ctx.bs as u64) > u64::from(u32::MAX) {
            return Err(Error::FileTooBig);
        }
        Ok((inode, end))
    }

    /// Whether [`write`](Self::write) of `len` bytes at `off` into `ino` can only fail with a
    /// device error (or corruption found on the way): the volume is writable, `ino` is a
    /// regular file with extents (not inline or encrypted), the range is within the largest
    /// file, and the free blocks cover every block of the range plus the extent-tree blocks
    /// it could need, with a margin of 64 blocks (index levels, group bitmaps). Answers no when in doubt;
    /// reads only the inode.
    pub fn write_would_fit(&mut self, ino: Ino, off: u64, len: u64) -> bool {
        if self.ensure_rw().is_err() || len == 0 {
            return false;
        }
        let Ok((inode, end)) = self.write_target(ino, off, len) else {
            return false;
        };
        // A stub's first write copies the whole file first: not a quick answer.
        if !matches!(self.share_of(&inode), Ok(None)) {
            return false;
        }
        let bs = self.ctx.bs as u64;
        // Every block of the range may be new, each may start an extent of its own, and a
        // leaf block holds at least (bs - 12) / 12 extents.
        let blocks = (end - 1) / bs - off / bs + 1;
        let per_leaf = ((bs - 12) / 12).max(1);
        let need = blocks
            .saturating_add(blocks / per_leaf)
            .saturating_add(WRITE_FIT_MARGIN);
        self.sb.free_blocks_count >= need
    }

    /// Write `data` at `off` into regular file `ino`; returns the count written. Blocks
    /// already mapped are overwritten; unwritten (fallocated) blocks are written and become
    /// initialized (their extents split as needed); holes get new blocks, allocated right
    /// after the physical end of the extent before them when free, merged into neighbouring
    /// extents when contiguous. The extent tree grows to any depth as needed. When the disk
    /// fills part-way, the write is short: the bytes before it are written and counted; if
    /// none were, the error is returned.
    pub fn write(&mut self, ino: Ino, off: u64, data: &[u8]) -> Result<usize> {
        self.ensure_rw()?;
        // Blocks freed since the last commit and reused here are journalled: commit first if
        // there are many (an operation boundary), so the transaction stays within the journal.
        self.maybe_sync()?;
        if data.is_empty() {
            return Ok(0);
        }
        // A write through a stub gives it its own copy first.
        self.unshare(ino, true)?;
        let (inode, end) = self.write_target(ino, off, data.len() as u64)?;
        let bs = self.ctx.bs as u64;
        let mut tree = self.load_tree(&inode)?;
        let mut lblk = off / bs;
        let last = (end - 1) / bs;
        let mut fail = None;
        while lblk <= last {
            // Bounded by the cache budget so that a large write is written back piecewise
            // instead of growing the cache without limit.
            let budget = (self.cache.capacity() / 2).max(1) as u64;
            let (phys, run, fresh, changed) = match find(&tree.ext, lblk) {
                Ok(i) => {
                    let e = *tree.ext.get(i).ok_or(Error::NoSpace)?;
                    let d = lblk - u64::from(e.l);
                    let run = (u64::from(e.n) - d).min(last - lblk + 1).min(budget);
                    if e.u {
                        // Unwritten blocks: they become written (zero-filled around the data).
                        let before = tree.ext.clone();
                        set_written(&mut tree.ext, lblk, lblk + run);
                        if let Err(err) = self.store_tree(ino, &mut tree, 0) {
                            tree.ext = before;
                            fail = Some(err);
                            break;
                        }
                    }
                    (e.p + d, run, e.u, e.u)
                }
                Err(i) => {
                    // The hole runs to the next extent (or the end of the file's range).
                    let next_start = tree.ext.get(i).map_or(1 << 32, |e| u64::from(e.l));
                    let want = (last - lblk + 1)
                        .min(next_start - lblk)
                        .min(u64::from(MAX_INIT))
                        .min(budget) as u32;
                    let (p, n) = match self.map_new_run(ino, &mut tree, lblk, want, false) {
                        Ok(x) => x,
                        Err(e) => {
                            fail = Some(e);
                            break;
                        }
                    };
                    (p, u64::from(n), true, true)
                }
            };
            for i in 0..run {
                let lb = lblk + i;
                let pb = phys + i;
                let bstart = lb * bs;
                let from = off.max(bstart);
                let to = end.min(bstart + bs);
                let src = data
                    .get((from - off) as usize..(to - off) as usize)
                    .unwrap_or(&[]);
                let whole = from == bstart && to == bstart + bs;
                if whole {
                    // The whole block is replaced: no zero fill, no read.
                    if pb >= self.ctx.blocks_count {
                        return corrupt("block number", pb);
                    }
                    self.cache.put(&mut self.dev, pb, src)?;
                } else {
                    let b = if fresh {
                        self.block_new(pb)?
                    } else {
                        self.block_mut(pb)?
                    };
                    let o = (from - bstart) as usize;
                    if let Some(d) = b.get_mut(o..o + src.len()) {
                        d.copy_from_slice(src);
                    }
                }
                self.dirty_data.insert(pb);
            }
            lblk += run;
            if changed {
                // The size covers what is written so far, so that a write-back part-way
                // leaves no initialized blocks past the end of the file.
                let upto = end.min(lblk * bs);
                self.patch_inode(ino, |raw| {
                    let size = raw_size(raw);
                    if upto > size {
                        set_raw_size(raw, upto);
                    }
                })?;
            }
            self.maybe_sync()?;
        }
        // A failure part-way is a short write: what was written so far stays, and counts.
        let end = match fail {
            Some(e) if lblk * bs <= off => return Err(e),
            Some(_) => lblk * bs,
            None => end,
        };
        let now = self.clock;
        self.patch_inode(ino, |raw| {
            let size = raw_size(raw);
            if end > size {
                set_raw_size(raw, end);
            }
            set_mtime_ctime(raw, now);
        })?;
        self.maybe_sync()?;
        Ok((end - off) as usize)
    }
}
