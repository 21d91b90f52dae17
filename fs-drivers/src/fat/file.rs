//! File data and attributes: stat, read, write, truncate, timestamps and attribute bits.

use super::entry::{attr, Short};
use super::node::Stat;
use super::{time, Error, Fat, Ino, MAX_FILE, ROOT_INO};
use crate::block::BlockDevice;
use alloc::vec;
use alloc::vec::Vec;

/// Bytes zero-filled per step when a file grows past its end.
const ZERO_STEP: usize = 64 << 10;

impl<D: BlockDevice> Fat<D> {
    fn node_entry(&self, ino: Ino) -> Result<Short, Error> {
        Ok(self.nodes.get(ino).ok_or(Error::NotFound)?.entry)
    }

    /// The clusters of `ino`'s chain needed for its size (a file) or all of them (a
    /// directory); a chain shorter than a file's size is corruption.
    fn file_chain(&self, e: &Short) -> Result<Vec<u32>, Error> {
        let cb = u64::from(self.geo.cluster_bytes());
        if e.is_dir() {
            return self.table.chain(e.cluster, self.geo.clusters as usize + 1);
        }
        let want = u64::from(e.size).div_ceil(cb) as usize;
        if want == 0 {
            return Ok(Vec::new());
        }
        let chain = self.table.chain(e.cluster, want)?;
        if chain.len() < want {
            return Err(Error::Corrupt {
                what: "cluster chain shorter than the file",
                at: u64::from(e.cluster),
            });
        }
        Ok(chain)
    }

    /// Attributes of `ino`.
    pub fn stat(&mut self, ino: Ino) -> Result<Stat, Error> {
        let e = self.node_entry(ino)?;
        let cb = u64::from(self.geo.cluster_bytes());
        let (size, clusters) = if ino == ROOT_INO && self.geo.root_cluster == 0 {
            (
                u64::from(self.geo.root_sectors) * u64::from(self.geo.sector_size),
                0,
            )
        } else if e.is_dir() {
            let n = self.file_chain(&e)?.len() as u64;
            (n * cb, n)
        } else {
            (u64::from(e.size), u64::from(e.size).div_ceil(cb))
        };
        let root = ino == ROOT_INO;
        let t = |d: u16, tm: u16, c: u8| {
            if root {
                (0, 0)
            } else {
                time::to_unix(d, tm, c)
            }
        };
        Ok(Stat {
            ino,
            dir: e.is_dir(),
            size,
            attr: e.attr,
            mtime: t(e.mdate, e.mtime, 0),
            atime: t(e.adate, 0, 0),
            crtime: t(e.cdate, e.ctime, e.ctime_cs),
            clusters,
            first_cluster: e.cluster,
        })
    }

    /// Reads from `off` into `buf`; returns the bytes read (0 at the end).
    pub fn read(&mut self, ino: Ino, off: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let e = self.node_entry(ino)?;
        if e.is_dir() {
            return Err(Error::IsDir);
        }
        let size = u64::from(e.size);
        if off >= size || buf.is_empty() {
            return Ok(0);
        }
        let len = (size - off).min(buf.len() as u64) as usize;
        let chain = self.file_chain(&e)?;
        let cb = u64::from(self.geo.cluster_bytes());
        let ss = u64::from(self.geo.sector_size);
        let mut done = 0usize;
        let mut tmp = Vec::new();
        while done < len {
            let pos = off + done as u64;
            let ci = (pos / cb) as usize;
            let within = pos % cb;
            let c = *chain.get(ci).ok_or(Error::Corrupt {
                what: "cluster chain shorter than the file",
                at: ino,
            })?;
            // Contiguous clusters are read together.
            let mut run = 1;
            while chain.get(ci + run) == Some(&(c + run as u32))
                && (run as u64) * cb < within + (len - done) as u64
            {
                run += 1;
            }
            let span = ((run as u64) * cb - within).min((len - done) as u64) as usize;
            let first_sector = within / ss;
            let last_sector = (within + span as u64 - 1) / ss;
            let nbytes = ((last_sector - first_sector + 1) * ss) as usize;
            let at = self.geo.cluster_sector(c) + first_sector;
            let skip = (within % ss) as usize;
            if skip == 0 && span == nbytes {
                self.read_sectors(at, &mut buf[done..done + span])?;
            } else {
                tmp.resize(nbytes, 0);
                self.read_sectors(at, &mut tmp)?;
                buf[done..done + span].copy_from_slice(&tmp[skip..skip + span]);
            }
            done += span;
        }
        Ok(len)
    }

    /// Writes `data` into the clusters of `chain` at byte `off` (within the chain).
    fn write_into(&mut self, chain: &[u32], off: u64, data: &[u8]) -> Result<(), Error> {
        let cb = u64::from(self.geo.cluster_bytes());
        let ss = u64::from(self.geo.sector_size);
        let mut done = 0usize;
        while done < data.len() {
            let pos = off + done as u64;
            let c = *chain.get((pos / cb) as usize).ok_or(Error::Corrupt {
                what: "write beyond the chain",
                at: pos,
            })?;
            let within = pos % cb;
            let span = ((cb - within) as usize).min(data.len() - done);
            let first_sector = within / ss;
            let last_sector = (within + span as u64 - 1) / ss;
            let nbytes = ((last_sector - first_sector + 1) * ss) as usize;
            let at = self.geo.cluster_sector(c) + first_sector;
            let skip = (within % ss) as usize;
            if skip == 0 && span == nbytes {
                self.write_sectors(at, &data[done..done + span])?;
            } else {
                let mut tmp = vec![0u8; nbytes];
                self.read_sectors(at, &mut tmp)?;
                tmp[skip..skip + span].copy_from_slice(&data[done..done + span]);
                self.write_sectors(at, &tmp)?;
            }
            done += span;
        }
        Ok(())
    }

    /// Writes `data` at `off`; returns the bytes written (all of them). Bytes between the old
    /// end and `off` read as zeros.
    pub fn write(&mut self, ino: Ino, off: u64, data: &[u8]) -> Result<usize, Error> {
        self.check_writable()?;
        let e = self.node_entry(ino)?;
        if e.is_dir() {
            return Err(Error::IsDir);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let end = off
            .checked_add(data.len() as u64)
            .filter(|&n| n <= MAX_FILE)
            .ok_or(Error::FileTooBig)?;
        let size = u64::from(e.size);
        if off > size {
            self.zero_fill(ino, size, off)?;
        }
        self.write_at(ino, off, data, end)?;
        Ok(data.len())
    }

    /// Grows `ino` from `from` to `to` with zeros.
    fn zero_fill(&mut self, ino: Ino, from: u64, to: u64) -> Result<(), Error> {
        let zeros = vec![0u8; ZERO_STEP];
        let mut at = from;
        while at < to {
            let n = (to - at).min(ZERO_STEP as u64) as usize;
            self.write_at(ino, at, &zeros[..n], at + n as u64)?;
            at += n as u64;
        }
        Ok(())
    }

    /// One write within the file or extending it to `end` (`off <= size`).
    fn write_at(&mut self, ino: Ino, off: u64, data: &[u8], end: u64) -> Result<(), Error> {
        let mut e = self.node_entry(ino)?;
        let cb = u64::from(self.geo.cluster_bytes());
        let mut chain = self.file_chain(&e)?;
        let need = end.div_ceil(cb) as usize;
        let mut new = Vec::new();
        if need > chain.len() {
            // 1. New clusters, a chain of their own in every FAT copy (lost if cut here).
            new = self.table.allocate(need - chain.len())?;
            self.flush_table()?;
        }
        let old_len = chain.len();
        chain.extend_from_slice(&new);
        // 2. The data.
        self.write_into(&chain, off, data)?;
        if end > u64::from(e.size) {
            self.barrier()?;
        }
        // 3. Link the new clusters to the file's chain.
        if !new.is_empty() && old_len > 0 {
            self.table.set(chain[old_len - 1], new[0]);
            self.flush_table()?;
            self.barrier()?;
        }
        // 4. The entry: first cluster, size, time, archive bit.
        if old_len == 0 {
            e.cluster = chain.first().copied().unwrap_or(0);
        }
        e.size = e.size.max(end as u32);
        self.stamp_modified(&mut e);
        self.store_entry(ino, e)
    }

    /// Sets mtime to now and the archive bit.
    fn stamp_modified(&self, e: &mut Short) {
        let (d, t, _) = self.now_dos();
        e.mdate = d;
        e.mtime = t;
        e.adate = d;
        e.attr |= attr::ARCHIVE;
    }

    /// Writes `e` as `ino`'s entry (in memory too; only in memory for an unlinked node).
    pub(super) fn store_entry(&mut self, ino: Ino, e: Short) -> Result<(), Error> {
        let n = self.nodes.get_mut(ino).ok_or(Error::NotFound)?;
        n.entry = e;
        if ino == ROOT_INO || n.unlinked {
            return Ok(());
        }
        let (parent, slot) = (n.parent, n.slot);
        self.write_entry(parent, slot, &e)
    }

    /// Changes the size of file `ino`: growing fills with zeros; shrinking writes the new
    /// size first, then ends the chain, then frees the clusters past it.
    pub fn truncate(&mut self, ino: Ino, size: u64) -> Result<(), Error> {
        self.check_writable()?;
        let mut e = self.node_entry(ino)?;
        if e.is_dir() {
            return Err(Error::IsDir);
        }
        if size > MAX_FILE {
            return Err(Error::FileTooBig);
        }
        let old = u64::from(e.size);
        if size > old {
            return self.zero_fill(ino, old, size);
        }
        let chain = self.file_chain(&e)?;
        let keep = size.div_ceil(u64::from(self.geo.cluster_bytes())) as usize;
        e.size = size as u32;
        if keep == 0 {
            e.cluster = 0;
        }
        self.stamp_modified(&mut e);
        self.store_entry(ino, e)?;
        if keep < chain.len() {
            self.barrier()?;
            if keep > 0 {
                let eoc = self.table.eoc();
                self.table.set(chain[keep - 1], eoc);
                self.flush_table()?;
                self.barrier()?;
            }
            self.table.release(&chain[keep..]);
            self.flush_table()?;
        }
        Ok(())
    }

    /// Sets the modification and access times (Unix seconds, nanoseconds); `None` leaves one
    /// alone. FAT keeps mtime to 2 s and the access date only.
    pub fn set_times(
        &mut self,
        ino: Ino,
        mtime: Option<(i64, u32)>,
        atime: Option<(i64, u32)>,
    ) -> Result<(), Error> {
        self.check_writable()?;
        if ino == ROOT_INO {
            return Ok(()); // the root has no entry to hold times
        }
        let mut e = self.node_entry(ino)?;
        if let Some((s, ns)) = mtime {
            let (d, t, _) = time::from_unix(s, ns);
            e.mdate = d;
            e.mtime = t;
        }
        if let Some((s, ns)) = atime {
            e.adate = time::from_unix(s, ns).0;
        }
        self.store_entry(ino, e)
    }

    /// Sets the read-only, hidden, system and archive bits (others are kept).
    pub fn set_attributes(&mut self, ino: Ino, bits: u8) -> Result<(), Error> {
        self.check_writable()?;
        if ino == ROOT_INO {
            return Err(Error::Invalid {
                what: "the root has no attributes",
            });
        }
        let mut e = self.node_entry(ino)?;
        let user = attr::READ_ONLY | attr::HIDDEN | attr::SYSTEM | attr::ARCHIVE;
        e.attr = (e.attr & !user) | (bits & user);
        self.store_entry(ino, e)
    }
}
