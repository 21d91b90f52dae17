//! Truncate and fallocate on extent-mapped files: [`Ext4::truncate`] frees the blocks past a
//! new, smaller size (cutting an extent where needed) and zeroes the tail of the last partial
//! block; [`Ext4::fallocate`] allocates holes as unwritten extents (with or without growing the
//! size) or punches holes. Both change the extent list and store it with `Ext4::store_tree`.

use crate::block::BlockDevice;
use crate::ext4::error::{Error, Result};
use crate::ext4::extent::write::{find, remove_range, Tree, MAX_UNINIT};
use crate::ext4::inode::{
    raw_size, set_ctime, set_mtime_ctime, set_raw_size, set_time, Inode, I_MTIME, I_MTIME_EXTRA,
};
use crate::ext4::types::mode::{S_IFDIR, S_IFMT, S_IFREG};
use crate::ext4::types::{flags, Fallocate};
use crate::ext4::{Ext4, Ino};

impl<D: BlockDevice> Ext4<D> {
    /// Unmap logical blocks `[a, b)` of the file in `tree` and free them.
    fn punch_blocks(&mut self, ino: Ino, tree: &mut Tree, a: u64, b: u64) -> Result<()> {
        let before = tree.ext.clone();
        let freed = remove_range(&mut tree.ext, a, b);
        if freed.is_empty() {
            return Ok(());
        }
        let count: u64 = freed.iter().map(|f| f.1).sum();
        // Removing a range from the middle of an extent can add one extent (and so need a
        // tree block): store first, free after.
        if let Err(e) = self.store_tree(ino, tree, -(count as i64)) {
            tree.ext = before;
            return Err(e);
        }
        for (p, n) in freed {
            self.free_blocks(p, n)?;
        }
        Ok(())
    }

    /// Zero bytes `[from, to)` of logical block `lblk` if it holds written data.
    fn zero_in_block(&mut self, tree: &Tree, lblk: u64, from: usize, to: usize) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        if let Ok(i) = find(&tree.ext, lblk) {
            if let Some(e) = tree.ext.get(i).filter(|e| !e.u) {
                let pb = e.p + (lblk - u64::from(e.l));
                let b = self.block_mut(pb)?;
                if let Some(d) = b.get_mut(from..to) {
                    d.fill(0);
                }
                self.dirty_data.insert(pb);
            }
        }
        Ok(())
    }

    fn regular_extent_file(&mut self, ino: Ino) -> Result<Inode> {
        // Like `write_target` (write), but truncate and fallocate answer `Invalid` where a
        // write answers `Unsupported`: the errnos differ, so the checks stay apart.
        let inode = self.load_inode(ino)?;
        match inode.mode & S_IFMT {
            S_IFDIR => return Err(Error::IsDir { ino }),
            S_IFREG => {}
            _ => {
                return Err(Error::Invalid {
                    what: "not a regular file",
                })
            }
        }
        if inode.flags & flags::EXTENTS == 0
            || inode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0
        {
            return Err(Error::Unsupported {
                what: "changing a block-mapped, inline or encrypted file",
            });
        }
        Ok(inode)
    }

    /// Set the size of regular file `ino`. Shrinking frees the blocks past the new end (also
    /// blocks allocated past the old end by [`Fallocate::KeepSize`]) and zeroes the rest of
    /// the last partial block; growing leaves a hole.
    pub fn truncate(&mut self, ino: Ino, size: u64) -> Result<()> {
        self.ensure_rw()?;
        self.regular_extent_file(ino)?;
        let bs = self.ctx.bs as u64;
        if size.div_ceil(bs) > 1 << 32 {
            return Err(Error::FileTooBig);
        }
        // A stub gets its own copy first (none needed when nothing of it is kept).
        self.unshare(ino, size > 0)?;
        let inode = self.load_inode(ino)?;
        if size <= inode.size {
            let mut tree = self.load_tree(&inode)?;
            let keep = size.div_ceil(bs);
            self.punch_blocks(ino, &mut tree, keep, 1 << 32)?;
            if !size.is_multiple_of(bs) {
                self.zero_in_block(&tree, size / bs, (size % bs) as usize, bs as usize)?;
            }
        }
        let now = self.clock;
        self.patch_inode(ino, |raw| {
            set_raw_size(raw, size);
            set_mtime_ctime(raw, now);
        })?;
        self.maybe_sync()
    }

    /// Allocate (as unwritten extents, which read as zeros) the holes of bytes
    /// `[off, off + len)` of regular file `ino`, growing the size to cover them unless
    /// `KeepSize`; or with `PunchHole`, zero the partial blocks at the edges of the range
    /// (clipped to the size) and free the whole blocks in it. Blocks already allocated are
    /// kept. When the disk fills part-way, what was allocated stays and `NoSpace` is returned.
    pub fn fallocate(&mut self, ino: Ino, off: u64, len: u64, mode: Fallocate) -> Result<()> {
        self.ensure_rw()?;
        if len == 0 {
            return Err(Error::Invalid {
                what: "fallocate of zero length",
            });
        }
        self.regular_extent_file(ino)?;
        let bs = self.ctx.bs as u64;
        let end = off.checked_add(len).ok_or(Error::FileTooBig)?;
        if end.div_ceil(bs) > 1 << 32 {
            return Err(Error::FileTooBig);
        }
        // A stub gets its own copy first.
        self.unshare(ino, true)?;
        let inode = self.load_inode(ino)?;
        let mut tree = self.load_tree(&inode)?;
        let now = self.clock;
        if mode == Fallocate::PunchHole {
            if off >= inode.size {
                return Ok(());
            }
            let end = end.min(inode.size);
            let (a, b) = (off.div_ceil(bs), end / bs);
            if a > b {
                // Inside one block.
                let s = (off % bs) as usize;
                self.zero_in_block(&tree, off / bs, s, s + (end - off) as usize)?;
            } else {
                if !off.is_multiple_of(bs) {
                    self.zero_in_block(&tree, off / bs, (off % bs) as usize, bs as usize)?;
                }
                if !end.is_multiple_of(bs) {
                    self.zero_in_block(&tree, end / bs, 0, (end % bs) as usize)?;
                }
                self.punch_blocks(ino, &mut tree, a, b)?;
            }
            self.patch_inode(ino, |raw| set_mtime_ctime(raw, now))?;
            return self.maybe_sync();
        }
        let (first, last) = (off / bs, end.div_ceil(bs));
        let mut lblk = first;
        let mut fail = None;
        while lblk < last {
            let hole_end = match find(&tree.ext, lblk) {
                Ok(i) => {
                    lblk = tree.ext.get(i).map_or(last, |e| e.end());
                    continue;
                }
                Err(i) => tree.ext.get(i).map_or(1 << 32, |e| u64::from(e.l)),
            };
            let want = (last.min(hole_end) - lblk).min(u64::from(MAX_UNINIT)) as u32;
            let (_, n) = match self.map_new_run(ino, &mut tree, lblk, want, true) {
                Ok(x) => x,
                Err(e) => {
                    fail = Some(e);
                    break;
                }
            };
            lblk += u64::from(n);
            self.maybe_sync()?;
        }
        let grow = mode == Fallocate::Allocate;
        // After a failure part-way, the size covers what was allocated.
        let upto = if fail.is_some() {
            (lblk * bs).min(end)
        } else {
            end
        };
        self.patch_inode(ino, |raw| {
            let size = raw_size(raw);
            if grow && upto > size {
                set_raw_size(raw, upto);
                set_time(raw, I_MTIME, Some(I_MTIME_EXTRA), now);
            }
            set_ctime(raw, now);
        })?;
        self.maybe_sync()?;
        match fail {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
