//! Readahead: following sequential readers and starting posted reads of the blocks they will
//! want next, and the non-blocking read probe [`Ext4::start_read`].

use crate::block::BlockDevice;
use crate::ext4::error::Result;
use crate::ext4::types::flags;
use crate::ext4::types::mode::{S_IFMT, S_IFREG};
use crate::ext4::{Ext4, Ino, BYPASS_CACHE_BYTES};
use alloc::vec::Vec;

/// Files whose sequential reads are followed at once (see [`Ext4::read`]).
pub(crate) const RA_STREAMS: usize = 8;

/// A file being read, for readahead.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stream {
    pub(crate) ino: Ino,
    /// Where the last read ended (byte offset).
    pub(crate) end: u64,
    /// Up to where readahead has been started (byte offset, at least `end` while the reads
    /// are sequential): the blocks before it are cached or being read, so they are not looked
    /// at again for every read.
    pub(crate) ahead: u64,
}

/// Readahead window after a sequential read of `n` bytes: 4 n, within these bounds and half of
/// what the device can hold in flight.
pub(crate) const RA_MIN_BYTES: u64 = 256 << 10;
pub(crate) const RA_MAX_BYTES: u64 = 1 << 20;

impl<D: BlockDevice> Ext4<D> {
    /// Start reading `len` bytes of `ino` from `off` (clipped to the file) into the block
    /// cache in the background, as posted reads of the blocks not cached yet; a later
    /// [`Ext4::read`] takes them. Only the block map is read now (metadata, through the
    /// cache). Returns the blocks started; 0 on a device without a queue.
    pub fn readahead(&mut self, ino: Ino, off: u64, len: u64) -> Result<u64> {
        let Some(runs) = self.data_runs(ino, off, len)? else {
            return Ok(0);
        };
        Ok(self
            .cache
            .readahead(&mut self.dev, &runs, BYPASS_CACHE_BYTES * 4)?)
    }

    /// [`Ext4::readahead`], saying whether every block of the range is now cached or being
    /// read (false when the device's queue took only some of the reads).
    pub(crate) fn readahead_from(&mut self, ino: Ino, off: u64, len: u64) -> Result<bool> {
        let Some(runs) = self.data_runs(ino, off, len)? else {
            return Ok(true);
        };
        Ok(self
            .cache
            .readahead_all(&mut self.dev, &runs, BYPASS_CACHE_BYTES * 4)?
            .1)
    }

    /// For a caller with other work to do: whether [`Ext4::read`] of `len` bytes of `ino` at
    /// `off` would wait for the disk. If some of the data blocks are not in memory, their
    /// reads are started as posted reads (as for [`Ext4::readahead`]) and the answer is true
    /// while the device has them (or other posted requests) in flight: a read after they
    /// complete finds the data in memory. False when everything is cached, on a device without
    /// a queue, and for anything but a regular file's data (the block map is read now, through
    /// the cache). A true answer is a hint: a read made at once is still correct.
    pub fn start_read(&mut self, ino: Ino, off: u64, len: u64) -> Result<bool> {
        if !self.overlay.is_empty() || self.dev.posted_capacity() == 0 {
            return Ok(false);
        }
        self.cache.absorb(&mut self.dev);
        let Some(runs) = self.data_runs(ino, off, len)? else {
            return Ok(false);
        };
        if runs.iter().all(|&(p, n)| self.cache.holds_all(p, n)) {
            return Ok(false);
        }
        self.cache
            .readahead(&mut self.dev, &runs, BYPASS_CACHE_BYTES * 4)?;
        Ok(self.dev.posted() > 0)
    }

    /// The mapped data blocks (`(first physical block, count)`) of `len` bytes of regular file
    /// `ino` from `off`, clipped to the file; `None` when readahead does not apply (a device
    /// without a queue, pending overlay changes, not a regular file with block data, nothing
    /// in range).
    fn data_runs(&mut self, ino: Ino, off: u64, len: u64) -> Result<Option<Vec<(u64, u64)>>> {
        if !self.overlay.is_empty() || self.dev.posted_capacity() == 0 {
            return Ok(None);
        }
        // A stub's data is its store's.
        let inode = self.data_inode(ino)?;
        if inode.mode & S_IFMT != S_IFREG
            || inode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0
        {
            return Ok(None);
        }
        let end = off.saturating_add(len).min(inode.size);
        if off >= end {
            return Ok(None);
        }
        let bs = self.ctx.bs as u64;
        let (mut lblk, last) = (off / bs, (end - 1) / bs);
        let mut runs: Vec<(u64, u64)> = Vec::new();
        while lblk <= last {
            let run = self.map(&inode, lblk)?;
            let n = run.len.min(last - lblk + 1);
            if n == 0 {
                break;
            }
            if let Some(p) = run.phys {
                runs.push((p, n));
            }
            lblk += n;
        }
        Ok(Some(runs))
    }
}
