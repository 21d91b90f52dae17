//! Reading file data, inline data and symlink targets.

use crate::block::BlockDevice;
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::Inode;
use crate::ext4::readahead::{Stream, RA_MAX_BYTES, RA_MIN_BYTES, RA_STREAMS};
use crate::ext4::types::flags;
use crate::ext4::types::mode::{S_IFDIR, S_IFLNK, S_IFMT};
use crate::ext4::{Ext4, Ino, BYPASS_CACHE_BYTES};
use alloc::vec;
use alloc::vec::Vec;

/// Copy between two ranges that must exist and have the same length.
fn copy_exact(dst: Option<&mut [u8]>, src: Option<&[u8]>, blk: u64) -> Result<()> {
    match (dst, src) {
        (Some(d), Some(s)) if d.len() == s.len() => {
            d.copy_from_slice(s);
            Ok(())
        }
        _ => corrupt("data block range", blk),
    }
}

impl<D: BlockDevice> Ext4<D> {
    /// Read the data of logical blocks into `buf`: `pos` is the byte position in the file.
    fn read_data(&mut self, inode: &Inode, pos: u64, buf: &mut [u8]) -> Result<()> {
        let bs = self.ctx.bs as u64;
        let mut done = 0usize;
        while done < buf.len() {
            let p = pos + done as u64;
            let lblk = p / bs;
            let in_blk = (p % bs) as usize;
            let run = self.map(inode, lblk)?;
            let run_bytes = run.len.saturating_mul(bs).saturating_sub(in_blk as u64);
            let n = (buf.len() - done).min(usize::try_from(run_bytes).unwrap_or(usize::MAX));
            let dst = buf.get_mut(done..done + n).unwrap_or(&mut []);
            match run.phys {
                None => dst.fill(0),
                Some(phys) => {
                    let mut o = 0usize;
                    let mut blk = phys;
                    if in_blk != 0 || dst.len() < bs as usize {
                        let take = (bs as usize - in_blk).min(dst.len());
                        let b = self.block(blk)?;
                        copy_exact(dst.get_mut(..take), b.get(in_blk..in_blk + take), blk)?;
                        o = take;
                        blk += 1;
                    }
                    let full = (dst.len() - o) / bs as usize * bs as usize;
                    if full > 0 {
                        let chunk = dst.get_mut(o..o + full).unwrap_or(&mut []);
                        // Large runs take what the cache holds and read the rest straight
                        // from the device into the caller's buffer (one request per gap, no
                        // eviction); small ones go through the cache so that small files
                        // read again and again stay in memory.
                        if self.overlay.is_empty() && full >= BYPASS_CACHE_BYTES {
                            let count = (full as u64) / bs;
                            // Readahead of this run may be on its way: wait for it rather
                            // than read the same blocks twice.
                            if self.dev.posted() > 0 && !self.cache.holds_all(blk, count) {
                                self.dev.wait_posted()?;
                                self.cache.absorb(&mut self.dev);
                            }
                            self.cache.read_run(&mut self.dev, blk, chunk)?;
                        } else {
                            for (i, c) in chunk.chunks_mut(bs as usize).enumerate() {
                                let b = self.block(blk + i as u64)?;
                                copy_exact(Some(c), Some(b), blk)?;
                            }
                        }
                        o += full;
                        blk += (full as u64) / bs;
                    }
                    if o < dst.len() {
                        let b = self.block(blk)?;
                        let rest = dst.len() - o;
                        copy_exact(dst.get_mut(o..), b.get(..rest), blk)?;
                    }
                }
            }
            done += n;
        }
        Ok(())
    }

    fn inline_data(&mut self, inode: &Inode) -> Result<Vec<u8>> {
        let mut v = inode.iblock.to_vec();
        if let Ok(extra) = self.xattr_get_inode(inode, 7, b"data") {
            v.extend_from_slice(&extra);
        }
        Ok(v)
    }

    /// Read up to `buf.len()` bytes of `ino` at `off`; returns the count (0 at end of file).
    /// Holes and uninitialized extents read as zeros. Contiguous runs of at least
    /// [`BYPASS_CACHE_BYTES`] are read from the device straight into `buf`; shorter pieces go
    /// through the block cache.
    ///
    /// On a device with a queue ([`BlockDevice::posted_capacity`]), a read that continues where
    /// the previous read of the same file ended (or starts it) also starts reading the next
    /// few hundred KiB of the file in the background ([`Ext4::readahead`]), so a sequential
    /// reader's next request finds its data in memory.
    pub fn read(&mut self, ino: Ino, off: u64, buf: &mut [u8]) -> Result<usize> {
        if self.overlay.is_empty() && self.dev.posted_capacity() > 0 {
            self.cache.absorb(&mut self.dev);
        }
        let n = self.read_now(ino, off, buf)?;
        if n > 0 && self.overlay.is_empty() && self.dev.posted_capacity() > 0 {
            let end = off.saturating_add(n as u64);
            let (k, seq) = match self.ra_last.iter().position(|s| s.ino == ino) {
                Some(k) => (k, self.ra_last.get(k).is_some_and(|s| s.end == off)),
                None => {
                    let k = self.ra_next;
                    self.ra_next = (self.ra_next + 1) % RA_STREAMS;
                    (k, off == 0)
                }
            };
            let Some(st) = self.ra_last.get_mut(k) else {
                return Ok(n);
            };
            let ahead = if seq { st.ahead.max(end) } else { end };
            *st = Stream { ino, end, ahead };
            if seq {
                let cap = (self.dev.posted_capacity() / 2) as u64;
                let window = (4 * n as u64).clamp(RA_MIN_BYTES, RA_MAX_BYTES).min(cap);
                let target = end.saturating_add(window);
                // More is started once less than half a window is left ahead of the reader,
                // from where the last readahead ended: each block is looked at once.
                if ahead < end.saturating_add(window / 2) {
                    // Readahead is an optimisation: a failure here shows up in the read that
                    // needs the data.
                    let complete = self.readahead_from(ino, ahead, target - ahead);
                    if let (Ok(true), Some(st)) = (complete, self.ra_last.get_mut(k)) {
                        st.ahead = target;
                    }
                }
            }
        }
        Ok(n)
    }

    fn read_now(&mut self, ino: Ino, off: u64, buf: &mut [u8]) -> Result<usize> {
        // A stub's data is its store's (same size).
        let inode = self.data_inode(ino)?;
        match inode.mode & S_IFMT {
            S_IFDIR => Err(Error::IsDir { ino }),
            // A fast symlink's i_block holds text, not block pointers: read its target.
            S_IFLNK => {
                let target = self.readlink(ino)?;
                let start = usize::try_from(off).unwrap_or(usize::MAX).min(target.len());
                let src = target.get(start..).unwrap_or(&[]);
                let n = src.len().min(buf.len());
                copy_exact(buf.get_mut(..n), src.get(..n), u64::from(ino))?;
                Ok(n)
            }
            _ => self.read_inode(&inode, off, buf),
        }
    }

    pub(crate) fn read_inode(&mut self, inode: &Inode, off: u64, buf: &mut [u8]) -> Result<usize> {
        if off >= inode.size {
            return Ok(0);
        }
        let n = usize::try_from(inode.size - off)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let dst = buf.get_mut(..n).unwrap_or(&mut []);
        if inode.flags & flags::INLINE_DATA != 0 {
            let data = self.inline_data(inode)?;
            let o = usize::try_from(off).unwrap_or(usize::MAX);
            for (i, d) in dst.iter_mut().enumerate() {
                *d = data.get(o.saturating_add(i)).copied().unwrap_or(0);
            }
            return Ok(n);
        }
        if inode.flags & flags::ENCRYPT != 0 {
            return Err(Error::Unsupported {
                what: "encrypted file",
            });
        }
        self.read_data(inode, off, dst)?;
        Ok(n)
    }

    /// Byte ranges `(offset, len)` of `ino` that hold data (not holes or uninitialized
    /// extents), clipped to the file size. Used to copy sparse files.
    pub fn data_ranges(&mut self, ino: Ino) -> Result<Vec<(u64, u64)>> {
        let inode = self.data_inode(ino)?;
        self.data_ranges_of(&inode)
    }

    /// [`Ext4::data_ranges`] of a loaded inode (its own blocks).
    pub(crate) fn data_ranges_of(&mut self, inode: &Inode) -> Result<Vec<(u64, u64)>> {
        let ino = inode.ino;
        let mut out: Vec<(u64, u64)> = Vec::new();
        match inode.mode & S_IFMT {
            S_IFDIR => return Err(Error::IsDir { ino }),
            S_IFLNK => {
                if inode.size > 0 {
                    out.push((0, inode.size));
                }
                return Ok(out);
            }
            _ => {}
        }
        if inode.flags & flags::INLINE_DATA != 0 {
            if inode.size > 0 {
                out.push((0, inode.size));
            }
            return Ok(out);
        }
        let bs = self.ctx.bs as u64;
        let nblocks = inode.size.div_ceil(bs);
        let mut l = 0u64;
        let mut mapped = 0u64;
        while l < nblocks {
            let run = self.map(inode, l)?;
            if run.phys.is_some() {
                mapped = mapped.saturating_add(run.len);
                if mapped > self.ctx.blocks_count.saturating_mul(2) {
                    return corrupt(
                        "block map (more blocks than the file system)",
                        u64::from(ino),
                    );
                }
            }
            let len = run.len.max(1).min(nblocks - l);
            if run.phys.is_some() {
                let start = l * bs;
                let end = (l + len).saturating_mul(bs).min(inode.size);
                match out.last_mut() {
                    Some(last) if last.0 + last.1 == start => last.1 = end - last.0,
                    _ => out.push((start, end - start)),
                }
            }
            l += len;
        }
        Ok(out)
    }

    /// Target of symlink `ino`.
    pub fn readlink(&mut self, ino: Ino) -> Result<Vec<u8>> {
        let inode = self.load_inode(ino)?;
        if inode.mode & S_IFMT != S_IFLNK {
            return Err(Error::NotSymlink { ino });
        }
        if inode.size > 65536 {
            return corrupt("symlink size", u64::from(ino));
        }
        let size = inode.size as usize;
        let ea_blocks = if inode.file_acl != 0 {
            self.ctx.bs as u64 / 512
        } else {
            0
        };
        let fast = inode.flags & flags::INLINE_DATA == 0
            && size < 60
            && inode.blocks.saturating_sub(ea_blocks) == 0;
        if fast {
            return Ok(inode.iblock.get(..size).unwrap_or(&[]).to_vec());
        }
        let mut v = vec![0u8; size];
        let n = self.read_inode(&inode, 0, &mut v)?;
        v.truncate(n);
        Ok(v)
    }
}
