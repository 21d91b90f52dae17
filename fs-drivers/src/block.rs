//! Block devices: the [`BlockDevice`] trait and in-tree implementations.
//!
//! A device is addressed in *sectors* of [`BlockDevice::sector_size`] bytes (512 for most
//! disks). Requests are submitted in batches through [`BlockDevice::submit`] so that a device
//! with a queue (the Xen block front-end) can keep many requests in flight; a synchronous device
//! only implements the three single-request methods and inherits `submit`, which runs the
//! batch in order.
//!
//! Ordering contract of a batch: requests between two [`Request::Flush`] entries may complete in
//! any order; a `Flush` completes only after every request before it has reached stable
//! storage, and no request after it starts before it completes. A write with `fua: true` is on
//! stable storage when it completes. The journal (write path) builds its commit ordering from
//! these two primitives.
//!
//! Posted writes ([`BlockDevice::post_writes`]) let a device with a queue start write-back
//! without the caller waiting for it: the caller goes on serving requests while the device
//! works. They are ordered before everything submitted later (a later `submit` first waits for
//! them), an error of a posted write is returned by the next `Flush` or `fua` write (so a
//! commit that depends on the data fails instead of claiming it durable), and a device never
//! starts a posted write that overlaps one still in flight (it stops early instead). A device
//! without a queue inherits the default, which simply writes at once.
//!
//! Posted reads ([`BlockDevice::post_reads`], readahead) are the other half: the device reads
//! while the caller goes on, and [`BlockDevice::take_reads`] hands the data over later. Data
//! that a write started after the read could have changed is never handed over: every write
//! (in a batch or posted) discards the completed reads not yet taken that it overlaps. A device
//! without a queue takes no posted reads.

use alloc::vec::Vec;

/// Errors a block device reports. They carry the request that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevError {
    /// The request touches sectors past the end of the device.
    OutOfRange {
        /// First sector of the request.
        lba: u64,
        /// Number of sectors requested.
        sectors: u64,
        /// Sectors the device has.
        capacity: u64,
    },
    /// The buffer length is not a multiple of the sector size.
    Misaligned {
        /// Buffer length in bytes.
        len: usize,
        /// The device's sector size.
        sector_size: u32,
    },
    /// The device is read-only.
    ReadOnly,
    /// The device reported an I/O error (`code` is device-specific: errno, blkif status…).
    Io {
        /// First sector of the failed request.
        lba: u64,
        /// Device-specific status code.
        code: i32,
    },
}

impl core::fmt::Display for DevError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DevError::OutOfRange {
                lba,
                sectors,
                capacity,
            } => write!(
                f,
                "request for {sectors} sectors at {lba} beyond device end ({capacity} sectors)"
            ),
            DevError::Misaligned { len, sector_size } => {
                write!(
                    f,
                    "buffer of {len} bytes is not a multiple of sector size {sector_size}"
                )
            }
            DevError::ReadOnly => write!(f, "device is read-only"),
            DevError::Io { lba, code } => write!(f, "I/O error {code} at sector {lba}"),
        }
    }
}

/// One request of a batch handed to [`BlockDevice::submit`].
#[derive(Debug)]
pub enum Request<'a> {
    /// Read `buf.len()` bytes starting at sector `lba`.
    Read {
        /// First sector.
        lba: u64,
        /// Destination; its length is a multiple of the sector size.
        buf: &'a mut [u8],
    },
    /// Write `buf` starting at sector `lba`; with `fua`, the data is durable on completion.
    Write {
        /// First sector.
        lba: u64,
        /// Source; its length is a multiple of the sector size.
        buf: &'a [u8],
        /// Force unit access.
        fua: bool,
    },
    /// Barrier + cache flush: see the module documentation.
    Flush,
}

/// A sector-addressed block device.
pub trait BlockDevice {
    /// Bytes per sector (a power of two, at least 512).
    fn sector_size(&self) -> u32;
    /// Number of sectors.
    fn sector_count(&self) -> u64;
    /// Whether writes are refused.
    fn read_only(&self) -> bool {
        false
    }
    /// Read sectors starting at `lba` into `buf` (length a multiple of the sector size).
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError>;
    /// Write `buf` at `lba`. With `fua`, the data is durable when this returns.
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), DevError>;
    /// Make every completed write durable.
    fn flush(&mut self) -> Result<(), DevError>;
    /// Start plain (non-`fua`) writes of `(lba, data)` without waiting for them; returns how
    /// many of `writes`, from the front, were started (fewer when the device's queue is full or
    /// a write overlaps one still in flight). See the module documentation for ordering and
    /// errors. The default writes them at once, in order.
    fn post_writes(&mut self, writes: &[(u64, &[u8])]) -> Result<usize, DevError> {
        for &(lba, buf) in writes {
            self.write(lba, buf, false)?;
        }
        Ok(writes.len())
    }
    /// Collect the completions of posted writes without waiting; true if any completed.
    fn reap(&mut self) -> bool {
        false
    }
    /// Posted requests (writes and reads) still in flight.
    fn posted(&self) -> usize {
        0
    }
    /// Bytes of posted requests the device can hold in flight at once (0: it has no queue and
    /// takes no posted reads).
    fn posted_capacity(&self) -> usize {
        0
    }
    /// Start reads of `(lba, bytes)` without waiting (readahead); returns how many of `reads`,
    /// from the front, were taken. A read that overlaps a posted request still in flight, or
    /// completed data not yet taken, counts as taken without a new request. See the module
    /// documentation. The default takes none.
    fn post_reads(&mut self, reads: &[(u64, usize)]) -> Result<usize, DevError> {
        let _ = reads;
        Ok(0)
    }
    /// Hand the data of completed posted reads to `f(lba, data)`, each once (failed ones are
    /// dropped: a later read reports the error); true if any was handed over.
    fn take_reads(&mut self, f: &mut dyn FnMut(u64, &[u8])) -> bool {
        let _ = f;
        false
    }
    /// Wait until no posted request is in flight (completed reads stay for `take_reads`).
    fn wait_posted(&mut self) -> Result<(), DevError> {
        Ok(())
    }
    /// Run a batch of requests (see the module documentation for ordering). The default runs
    /// them one by one, in order, and stops at the first error.
    fn submit(&mut self, reqs: &mut [Request<'_>]) -> Result<(), DevError> {
        for r in reqs.iter_mut() {
            match r {
                Request::Read { lba, buf } => self.read(*lba, buf)?,
                Request::Write { lba, buf, fua } => self.write(*lba, buf, *fua)?,
                Request::Flush => self.flush()?,
            }
        }
        Ok(())
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn sector_size(&self) -> u32 {
        (**self).sector_size()
    }
    fn sector_count(&self) -> u64 {
        (**self).sector_count()
    }
    fn read_only(&self) -> bool {
        (**self).read_only()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError> {
        (**self).read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), DevError> {
        (**self).write(lba, buf, fua)
    }
    fn flush(&mut self) -> Result<(), DevError> {
        (**self).flush()
    }
    fn submit(&mut self, reqs: &mut [Request<'_>]) -> Result<(), DevError> {
        (**self).submit(reqs)
    }
    fn post_writes(&mut self, writes: &[(u64, &[u8])]) -> Result<usize, DevError> {
        (**self).post_writes(writes)
    }
    fn reap(&mut self) -> bool {
        (**self).reap()
    }
    fn posted(&self) -> usize {
        (**self).posted()
    }
    fn posted_capacity(&self) -> usize {
        (**self).posted_capacity()
    }
    fn post_reads(&mut self, reads: &[(u64, usize)]) -> Result<usize, DevError> {
        (**self).post_reads(reads)
    }
    fn take_reads(&mut self, f: &mut dyn FnMut(u64, &[u8])) -> bool {
        (**self).take_reads(f)
    }
    fn wait_posted(&mut self) -> Result<(), DevError> {
        (**self).wait_posted()
    }
}

/// Byte range of a request on a device of `len` bytes, checked.
fn span(lba: u64, len: usize, sector: u32, dev_len: u64) -> Result<(usize, usize), DevError> {
    let ss = u64::from(sector);
    let capacity = dev_len / ss;
    if !len.is_multiple_of(sector as usize) {
        return Err(DevError::Misaligned {
            len,
            sector_size: sector,
        });
    }
    let sectors = len as u64 / ss;
    let oor = DevError::OutOfRange {
        lba,
        sectors,
        capacity,
    };
    let end_sector = lba.checked_add(sectors).ok_or(oor.clone())?;
    if end_sector > capacity {
        return Err(oor);
    }
    let start = usize::try_from(lba * ss).map_err(|_| oor.clone())?;
    let end = start.checked_add(len).ok_or(oor)?;
    Ok((start, end))
}

/// A disk held in memory: either an owned, writable `Vec<u8>` or a borrowed read-only slice
/// (an image the boot loader left in memory). A trailing partial sector is ignored.
pub struct MemDisk<'a> {
    data: MemData<'a>,
    sector: u32,
}

enum MemData<'a> {
    Owned(Vec<u8>),
    Borrowed(&'a [u8]),
}

impl MemDisk<'static> {
    /// A writable disk owning `data`, with 512-byte sectors.
    pub fn new(data: Vec<u8>) -> Self {
        MemDisk {
            data: MemData::Owned(data),
            sector: 512,
        }
    }
}

impl<'a> MemDisk<'a> {
    /// A read-only disk over `data`, with 512-byte sectors.
    pub fn borrowed(data: &'a [u8]) -> Self {
        MemDisk {
            data: MemData::Borrowed(data),
            sector: 512,
        }
    }
    /// Change the sector size (a power of two ≥ 512). Returns `None` otherwise.
    pub fn with_sector_size(mut self, sector: u32) -> Option<Self> {
        if sector < 512 || !sector.is_power_of_two() {
            return None;
        }
        self.sector = sector;
        Some(self)
    }
    /// The bytes of the disk.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            MemData::Owned(v) => v,
            MemData::Borrowed(s) => s,
        }
    }
    /// Give back the owned bytes (`None` for a borrowed disk).
    pub fn into_vec(self) -> Option<Vec<u8>> {
        match self.data {
            MemData::Owned(v) => Some(v),
            MemData::Borrowed(_) => None,
        }
    }
}

impl BlockDevice for MemDisk<'_> {
    fn sector_size(&self) -> u32 {
        self.sector
    }
    fn sector_count(&self) -> u64 {
        self.bytes().len() as u64 / u64::from(self.sector)
    }
    fn read_only(&self) -> bool {
        matches!(self.data, MemData::Borrowed(_))
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError> {
        let bytes = self.bytes();
        let (s, e) = span(lba, buf.len(), self.sector, bytes.len() as u64)?;
        let src = bytes.get(s..e).ok_or(DevError::Io { lba, code: -1 })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, lba: u64, buf: &[u8], _fua: bool) -> Result<(), DevError> {
        let sector = self.sector;
        match &mut self.data {
            MemData::Borrowed(_) => Err(DevError::ReadOnly),
            MemData::Owned(v) => {
                let (s, e) = span(lba, buf.len(), sector, v.len() as u64)?;
                let dst = v.get_mut(s..e).ok_or(DevError::Io { lba, code: -1 })?;
                dst.copy_from_slice(buf);
                Ok(())
            }
        }
    }
    fn flush(&mut self) -> Result<(), DevError> {
        Ok(())
    }
}

/// A device wrapper that injects failures, for tests of error paths: reads touching chosen
/// sectors fail, and (for the write path) writes can be cut off after a number of them, as a
/// power loss would.
pub struct FaultyDisk<D> {
    inner: D,
    bad_sectors: alloc::collections::BTreeSet<u64>,
    writes_left: Option<u64>,
    /// Reads that failed so far.
    pub failed_reads: u64,
}

impl<D: BlockDevice> FaultyDisk<D> {
    /// Wrap `inner` with no faults.
    pub fn new(inner: D) -> Self {
        FaultyDisk {
            inner,
            bad_sectors: alloc::collections::BTreeSet::new(),
            writes_left: None,
            failed_reads: 0,
        }
    }
    /// Make every read that touches sector `lba` fail with `DevError::Io { code: -5 }`.
    pub fn fail_sector(&mut self, lba: u64) {
        self.bad_sectors.insert(lba);
    }
    /// Let `n` more writes succeed; later writes (and flushes) fail, and are not applied.
    pub fn cut_power_after_writes(&mut self, n: u64) {
        self.writes_left = Some(n);
    }
    /// The wrapped device.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

// Forwarding like `ReorderDisk`'s is deliberate: each test wrapper changes a different part.
impl<D: BlockDevice> BlockDevice for FaultyDisk<D> {
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError> {
        let n = (buf.len() / self.inner.sector_size().max(1) as usize) as u64;
        if let Some(&bad) = self.bad_sectors.range(lba..lba.saturating_add(n)).next() {
            self.failed_reads += 1;
            return Err(DevError::Io { lba: bad, code: -5 });
        }
        self.inner.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), DevError> {
        match &mut self.writes_left {
            Some(0) => return Err(DevError::Io { lba, code: -5 }),
            Some(n) => *n -= 1,
            None => {}
        }
        self.inner.write(lba, buf, fua)
    }
    fn flush(&mut self) -> Result<(), DevError> {
        if self.writes_left == Some(0) {
            return Err(DevError::Io { lba: 0, code: -5 });
        }
        self.inner.flush()
    }
}

/// A device wrapper that models a volatile write cache, for crash tests: the writes issued
/// since the last flush are pending (reads see them); when the power is cut, an arbitrary
/// subset of them, applied in an arbitrary order, is what reached the medium. Writes before
/// the last completed flush, and FUA writes, are durable.
pub struct ReorderDisk<D> {
    inner: D,
    /// Writes since the last flush: first sector, previous contents, new contents, FUA.
    pending: Vec<(u64, Vec<u8>, Vec<u8>, bool)>,
    writes: u64,
    cut_after: Option<u64>,
}

impl<D: BlockDevice> ReorderDisk<D> {
    /// Wrap `inner`; nothing is cut.
    pub fn new(inner: D) -> Self {
        ReorderDisk {
            inner,
            pending: Vec::new(),
            writes: 0,
            cut_after: None,
        }
    }
    /// Let `n` more writes succeed; later writes and flushes fail (the power is off).
    pub fn cut_power_after_writes(&mut self, n: u64) {
        self.cut_after = Some(self.writes.saturating_add(n));
    }
    /// Writes accepted so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }
    /// Writes not yet made durable by a flush (FUA ones included).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
    fn dead(&self) -> bool {
        self.cut_after.is_some_and(|c| self.writes >= c)
    }
    /// The medium as the power cut left it: every pending write is undone, then the FUA ones
    /// and a subset of the others chosen by `seed` are applied again, in an order chosen by
    /// `seed`. Returns the wrapped device.
    pub fn crash(mut self, seed: u64) -> Result<D, DevError> {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for (lba, old, _, _) in self.pending.iter().rev() {
            self.inner.write(*lba, old, false)?;
        }
        let mut chosen: Vec<usize> = (0..self.pending.len())
            .filter(|&i| self.pending.get(i).is_some_and(|p| p.3) || next() & 1 == 1)
            .collect();
        for i in (1..chosen.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            chosen.swap(i, j);
        }
        for i in chosen {
            if let Some((lba, _, new, _)) = self.pending.get(i) {
                self.inner.write(*lba, new, false)?;
            }
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

// Forwarding like `FaultyDisk`'s is deliberate: each test wrapper changes a different part.
impl<D: BlockDevice> BlockDevice for ReorderDisk<D> {
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError> {
        self.inner.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), DevError> {
        if self.dead() {
            return Err(DevError::Io { lba, code: -5 });
        }
        let mut old = alloc::vec![0u8; buf.len()];
        self.inner.read(lba, &mut old)?;
        self.inner.write(lba, buf, fua)?;
        self.pending.push((lba, old, buf.to_vec(), fua));
        self.writes += 1;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DevError> {
        if self.dead() {
            return Err(DevError::Io { lba: 0, code: -5 });
        }
        self.inner.flush()?;
        self.pending.clear();
        Ok(())
    }
}

/// A device wrapper with a queue, for tests of posted requests: [`BlockDevice::post_writes`]
/// and [`BlockDevice::post_reads`] hold up to `depth` requests without running them (refusing a
/// write that overlaps a held request); [`BlockDevice::reap`] completes the held requests, and
/// every other operation completes them first, as the Xen block front-end does. Completed reads
/// wait for [`BlockDevice::take_reads`]; writes discard them as the module documentation says.
/// A held write that touches the sectors chosen with [`QueueDisk::fail_posted`] fails on
/// completion; the error is returned by the next flush or `fua` write.
pub struct QueueDisk<D> {
    inner: D,
    depth: usize,
    /// Held requests: first sector, and the data of a write (`None` for a read of `len`).
    held: Vec<(u64, usize, Option<Vec<u8>>)>,
    ready: Vec<(u64, Vec<u8>)>,
    fail: core::ops::Range<u64>,
    error: Option<DevError>,
    /// Posted writes started so far.
    pub started: u64,
    /// Posted reads started so far.
    pub reads_started: u64,
}

impl<D: BlockDevice> QueueDisk<D> {
    /// Wrap `inner` with room for `depth` posted requests.
    pub fn new(inner: D, depth: usize) -> Self {
        QueueDisk {
            inner,
            depth,
            held: Vec::new(),
            ready: Vec::new(),
            fail: 0..0,
            error: None,
            started: 0,
            reads_started: 0,
        }
    }
    /// Make the completion of a posted write that touches a sector in `sectors` fail.
    pub fn fail_posted(&mut self, sectors: core::ops::Range<u64>) {
        self.fail = sectors;
    }
    /// The wrapped device, after completing what is held.
    pub fn into_inner(mut self) -> D {
        self.complete();
        self.inner
    }
    fn sectors(&self, len: usize) -> u64 {
        (len / self.inner.sector_size().max(1) as usize) as u64
    }
    fn overlaps(&self, a: u64, alen: usize, b: u64, blen: usize) -> bool {
        a < b.saturating_add(self.sectors(blen)) && b < a.saturating_add(self.sectors(alen))
    }
    fn complete(&mut self) -> bool {
        let held = core::mem::take(&mut self.held);
        let any = !held.is_empty();
        for (lba, len, data) in held {
            let end = lba.saturating_add(self.sectors(len));
            match data {
                Some(buf) => {
                    let r = if lba < self.fail.end && self.fail.start < end {
                        Err(DevError::Io { lba, code: -5 })
                    } else {
                        self.inner.write(lba, &buf, false)
                    };
                    if let Err(e) = r {
                        self.error.get_or_insert(e);
                    }
                }
                None => {
                    let mut buf = alloc::vec![0u8; len];
                    if self.inner.read(lba, &mut buf).is_ok() {
                        self.ready.push((lba, buf));
                    }
                }
            }
        }
        any
    }
    fn take_error(&mut self) -> Result<(), DevError> {
        self.error.take().map_or(Ok(()), Err)
    }
    /// Discards the completed reads a write of `len` bytes at `lba` overlaps.
    fn drop_ready(&mut self, lba: u64, len: usize) {
        let ready = core::mem::take(&mut self.ready);
        self.ready = ready
            .into_iter()
            .filter(|(l, d)| !self.overlaps(lba, len, *l, d.len()))
            .collect();
    }
}

impl<D: BlockDevice> BlockDevice for QueueDisk<D> {
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError> {
        self.complete();
        self.inner.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), DevError> {
        self.complete();
        self.drop_ready(lba, buf.len());
        if fua {
            self.take_error()?;
        }
        self.inner.write(lba, buf, fua)
    }
    fn flush(&mut self) -> Result<(), DevError> {
        self.complete();
        self.take_error()?;
        self.inner.flush()
    }
    fn post_writes(&mut self, writes: &[(u64, &[u8])]) -> Result<usize, DevError> {
        if self.inner.read_only() {
            return Err(DevError::ReadOnly);
        }
        let mut n = 0;
        for &(lba, buf) in writes {
            let overlaps = self
                .held
                .iter()
                .any(|(l, len, _)| self.overlaps(lba, buf.len(), *l, *len));
            if self.held.len() >= self.depth || overlaps {
                break;
            }
            let ss = self.inner.sector_size();
            let bytes = self.inner.sector_count().saturating_mul(u64::from(ss));
            span(lba, buf.len(), ss, bytes)?;
            self.drop_ready(lba, buf.len());
            self.held.push((lba, buf.len(), Some(buf.to_vec())));
            self.started += 1;
            n += 1;
        }
        Ok(n)
    }
    fn reap(&mut self) -> bool {
        self.complete()
    }
    fn posted(&self) -> usize {
        self.held.len()
    }
    fn posted_capacity(&self) -> usize {
        self.depth.saturating_mul(64 * 1024)
    }
    fn post_reads(&mut self, reads: &[(u64, usize)]) -> Result<usize, DevError> {
        let mut n = 0;
        for &(lba, len) in reads {
            let ss = self.inner.sector_size();
            let bytes = self.inner.sector_count().saturating_mul(u64::from(ss));
            span(lba, len, ss, bytes)?;
            let coming = self
                .held
                .iter()
                .map(|(l, n, _)| (*l, *n))
                .chain(self.ready.iter().map(|(l, d)| (*l, d.len())))
                .any(|(l, n)| self.overlaps(lba, len, l, n));
            if !coming {
                if self.held.len() >= self.depth {
                    break;
                }
                self.held.push((lba, len, None));
                self.reads_started += 1;
            }
            n += 1;
        }
        Ok(n)
    }
    fn take_reads(&mut self, f: &mut dyn FnMut(u64, &[u8])) -> bool {
        let ready = core::mem::take(&mut self.ready);
        for (lba, data) in &ready {
            f(*lba, data);
        }
        !ready.is_empty()
    }
    fn wait_posted(&mut self) -> Result<(), DevError> {
        self.complete();
        Ok(())
    }
}

#[cfg(feature = "std")]
pub use file::FileDisk;

#[cfg(feature = "std")]
mod file {
    use super::{span, BlockDevice, DevError};
    use std::fs::File;
    use std::os::unix::fs::FileExt;

    /// A disk backed by a host file (an image), with 512-byte sectors.
    pub struct FileDisk {
        file: File,
        len: u64,
        writable: bool,
    }

    fn io(lba: u64, e: &std::io::Error) -> DevError {
        DevError::Io {
            lba,
            code: e.raw_os_error().unwrap_or(-1),
        }
    }

    /// The size of an image file or a block device (whose metadata says 0: an LV, a loop
    /// device, a RAM disk): where its end is.
    fn size_of(file: &mut File) -> std::io::Result<u64> {
        use std::io::{Seek, SeekFrom};
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(0))?;
        Ok(len)
    }

    impl FileDisk {
        /// Open `path` (an image file or a block device) read-only.
        pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
            let mut file = File::open(path)?;
            let len = size_of(&mut file)?;
            Ok(FileDisk {
                file,
                len,
                writable: false,
            })
        }
        /// Open `path` (an image file or a block device) for reading and writing.
        pub fn open_rw(path: &std::path::Path) -> std::io::Result<Self> {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)?;
            let len = size_of(&mut file)?;
            Ok(FileDisk {
                file,
                len,
                writable: true,
            })
        }
    }

    impl BlockDevice for FileDisk {
        fn sector_size(&self) -> u32 {
            512
        }
        fn sector_count(&self) -> u64 {
            self.len / 512
        }
        fn read_only(&self) -> bool {
            !self.writable
        }
        fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError> {
            let (s, _) = span(lba, buf.len(), 512, self.len)?;
            self.file
                .read_exact_at(buf, s as u64)
                .map_err(|e| io(lba, &e))
        }
        fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), DevError> {
            if !self.writable {
                return Err(DevError::ReadOnly);
            }
            let (s, _) = span(lba, buf.len(), 512, self.len)?;
            self.file
                .write_all_at(buf, s as u64)
                .map_err(|e| io(lba, &e))?;
            if fua {
                self.file.sync_data().map_err(|e| io(lba, &e))?;
            }
            Ok(())
        }
        fn flush(&mut self) -> Result<(), DevError> {
            if self.writable {
                self.file.sync_data().map_err(|e| io(0, &e))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_disk_bounds_and_batch() {
        let mut d = MemDisk::new(alloc::vec![0u8; 4096]);
        assert_eq!(d.sector_count(), 8);
        let w = [7u8; 512];
        let mut r = [0u8; 512];
        let mut r2 = [0u8; 1024];
        d.submit(&mut [
            Request::Write {
                lba: 3,
                buf: &w,
                fua: false,
            },
            Request::Flush,
            Request::Read {
                lba: 3,
                buf: &mut r,
            },
            Request::Read {
                lba: 2,
                buf: &mut r2,
            },
        ])
        .unwrap();
        assert_eq!(r, w);
        assert_eq!(&r2[512..], &w[..]);
        assert_eq!(r2[0], 0);
        assert!(matches!(
            d.read(8, &mut r),
            Err(DevError::OutOfRange { lba: 8, .. })
        ));
        assert!(matches!(
            d.read(u64::MAX, &mut r),
            Err(DevError::OutOfRange { .. })
        ));
        assert!(matches!(
            d.read(0, &mut r[..100]),
            Err(DevError::Misaligned { len: 100, .. })
        ));
        let mut f = FaultyDisk::new(MemDisk::new(alloc::vec![0u8; 4096]));
        f.fail_sector(5);
        assert!(f.read(4, &mut r).is_ok());
        assert_eq!(
            f.read(4, &mut [0u8; 1024]),
            Err(DevError::Io { lba: 5, code: -5 })
        );
        f.cut_power_after_writes(1);
        assert!(f.write(0, &w, false).is_ok());
        assert!(f.write(1, &w, false).is_err());
        assert!(f.flush().is_err());
        assert_eq!(f.failed_reads, 1);
        let d = f.into_inner();
        assert_eq!(d.bytes()[0], 7);
        assert_eq!(d.bytes()[512], 0);
        let ro = [0u8; 1024];
        let mut b = MemDisk::borrowed(&ro);
        assert_eq!(b.write(0, &w, false), Err(DevError::ReadOnly));
    }
}
