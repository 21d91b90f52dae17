//! The unsafe layer: `/dev/xen/gntalloc` (grant pages to another domain and map them here)
//! and `/dev/xen/evtchn` (an unbound event channel, notify). Everything else in `xfront` is
//! safe code over [`Granted`] and [`Evtchn`].
//!
//! Layouts and ioctl numbers from Linux's `include/uapi/xen/gntalloc.h` and `evtchn.h`:
//! `_IOC(_IOC_NONE, type, nr, size)` is `size << 16 | type << 8 | nr`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{fence, Ordering};

use pvfs_ring::shmem::{check_range, OutOfBounds, SharedMem};

const PAGE: usize = 4096;
/// `IOCTL_GNTALLOC_ALLOC_GREF`: 'G', 5, sizeof(struct ioctl_gntalloc_alloc_gref) = 24.
const GNTALLOC_ALLOC: u64 = 24 << 16 | (b'G' as u64) << 8 | 5;
/// `IOCTL_GNTALLOC_DEALLOC_GREF`: 'G', 6, sizeof(struct ioctl_gntalloc_dealloc_gref) = 16.
const GNTALLOC_DEALLOC: u64 = 16 << 16 | (b'G' as u64) << 8 | 6;
/// `GNTALLOC_FLAG_WRITABLE`.
const WRITABLE: u16 = 1;
/// `IOCTL_EVTCHN_BIND_UNBOUND_PORT`: 'E', 2, sizeof(unsigned int).
const EVTCHN_BIND_UNBOUND: u64 = 4 << 16 | (b'E' as u64) << 8 | 2;
/// `IOCTL_EVTCHN_NOTIFY`: 'E', 4, sizeof(unsigned int).
const EVTCHN_NOTIFY: u64 = 4 << 16 | (b'E' as u64) << 8 | 4;

fn open(path: &str) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// An open `/dev/xen/gntalloc`.
#[derive(Debug, Clone)]
pub struct Gntalloc(Rc<File>);

impl Gntalloc {
    /// Opens the device.
    pub fn open() -> io::Result<Self> {
        Ok(Gntalloc(Rc::new(open("/dev/xen/gntalloc")?)))
    }

    /// Allocates `count` pages granted writable to `domid`, mapped here as one region.
    pub fn alloc(&self, domid: u16, count: usize) -> io::Result<(Vec<u32>, Granted)> {
        // struct ioctl_gntalloc_alloc_gref { u16 domid; u16 flags; u32 count; u64 index;
        // u32 gref_ids[count]; } as u32 words, at least the struct's 24 bytes
        let mut buf = vec![0u32; 4 + count.max(2)];
        buf[0] = u32::from(domid) | u32::from(WRITABLE) << 16;
        buf[1] = u32::try_from(count).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: the buffer holds the header and `count` grant ids, as the ioctl writes.
        let rc = unsafe { libc::ioctl(self.0.as_raw_fd(), GNTALLOC_ALLOC as _, buf.as_mut_ptr()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let index = u64::from(buf[2]) | u64::from(buf[3]) << 32;
        let refs = buf[4..4 + count].to_vec();
        let len = count * PAGE;
        let off = libc::off_t::try_from(index).map_err(|_| io::ErrorKind::InvalidData)?;
        // SAFETY: a fresh shared mapping of the pages just allocated; nothing else in this
        // process refers to that address range.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.0.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            self.dealloc(index, count);
            return Err(e);
        }
        let g = Granted {
            dev: self.clone(),
            ptr: ptr.cast(),
            len,
            index,
        };
        Ok((refs, g))
    }

    fn dealloc(&self, index: u64, count: usize) {
        // struct ioctl_gntalloc_dealloc_gref { u64 index; u32 count; }
        let mut arg = [index, count as u64];
        // SAFETY: the argument is the 16-byte struct the ioctl reads.
        let _ = unsafe { libc::ioctl(self.0.as_raw_fd(), GNTALLOC_DEALLOC as _, arg.as_mut_ptr()) };
    }
}

/// Pages this process granted to another domain, mapped at `ptr`. The other domain may
/// change them at any time: they are reached by volatile copies only, never as Rust memory.
/// Dropping unmaps them and ends the grants (gntalloc frees a page once the other side has
/// unmapped it).
#[derive(Debug)]
pub struct Granted {
    dev: Gntalloc,
    ptr: *mut u8,
    len: usize,
    index: u64,
}

impl SharedMem for Granted {
    fn len(&self) -> usize {
        self.len
    }
    fn load_u32_acquire(&self, off: usize) -> Result<u32, OutOfBounds> {
        let mut b = [0u8; 4];
        self.read_bytes(off, &mut b)?;
        fence(Ordering::Acquire);
        Ok(u32::from_le_bytes(b))
    }
    fn store_u32_release(&self, off: usize, val: u32) -> Result<(), OutOfBounds> {
        fence(Ordering::Release);
        self.write_bytes(off, &val.to_le_bytes())
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        check_range(off, dst.len(), self.len)?;
        for (i, d) in dst.iter_mut().enumerate() {
            // SAFETY: off + i < len (checked above): inside the mapping, which lives as
            // long as self.
            *d = unsafe { self.ptr.wrapping_add(off + i).read_volatile() };
        }
        Ok(())
    }
    fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        check_range(off, src.len(), self.len)?;
        for (i, s) in src.iter().enumerate() {
            // SAFETY: off + i < len (checked above): inside the mapping, which lives as
            // long as self.
            unsafe { self.ptr.wrapping_add(off + i).write_volatile(*s) };
        }
        Ok(())
    }
    fn full_barrier(&self) {
        fence(Ordering::SeqCst);
    }
}

impl Drop for Granted {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `alloc`, unmapped once; no copy of `ptr` outlives self.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
        self.dev.dealloc(self.index, self.len / PAGE);
    }
}

/// An open `/dev/xen/evtchn`; closing it unbinds its ports.
#[derive(Debug)]
pub struct Evtchn(File);

impl Evtchn {
    /// Opens the device.
    pub fn open() -> io::Result<Self> {
        Ok(Evtchn(open("/dev/xen/evtchn")?))
    }

    /// A new port that domain `remote` may bind to.
    pub fn bind_unbound(&self, remote: u16) -> io::Result<u32> {
        let mut arg = u32::from(remote);
        // SAFETY: the argument is the `unsigned int` the ioctl reads.
        let rc = unsafe { libc::ioctl(self.0.as_raw_fd(), EVTCHN_BIND_UNBOUND as _, &mut arg) };
        u32::try_from(rc).map_err(|_| io::Error::last_os_error())
    }

    /// Signals `port`.
    pub fn notify(&self, port: u32) -> io::Result<()> {
        let mut arg = port;
        // SAFETY: the argument is the `unsigned int` the ioctl reads.
        let rc = unsafe { libc::ioctl(self.0.as_raw_fd(), EVTCHN_NOTIFY as _, &mut arg) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
