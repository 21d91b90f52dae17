//! The volume the domain serves, whichever file system it holds: [`VolumeFs`] is ext4
//! ([`Ext4Fs`]) or FAT ([`FatFs`]) behind one [`Filesystem`], plus the few volume operations
//! an embedder needs besides 9P (its device, write-back, cache figures, closing).
//!
//! [`detect`] tells the two apart from the disk's first 2 KiB: the ext4 superblock magic at
//! byte 1024 + 0x38, else a FAT boot sector ([`pvfs_fs::fat::probe`]). FAT writes through
//! (every change reaches the device before its reply), so it has no dirty data, no block
//! cache and no background write-back; it cannot grow while served (`grow` is refused with
//! `EOPNOTSUPP`).

use crate::ext4::Ext4Fs;
use crate::fat::FatFs;
use crate::fs::{Attr, DirVisitor, Filesystem, FsResult, FsStat, Ino, NewInode, SetAttr};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use pvfs_fs::block::BlockDevice;

/// Bytes of the disk's start [`detect`] looks at.
pub const DETECT_BYTES: usize = 2048;

/// Offset of the ext4 superblock's magic (`s_magic`, 0xEF53 little-endian).
const EXT4_MAGIC_AT: usize = 1024 + 0x38;

/// A file system [`detect`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ext2/3/4 (the ext4 engine opens all three).
    Ext4,
    /// FAT12, FAT16 or FAT32.
    Fat,
}

/// The file system whose first bytes are `head` (at least the first sector; ext4 needs
/// [`DETECT_BYTES`]), or `None`.
pub fn detect(head: &[u8]) -> Option<Kind> {
    if head.get(EXT4_MAGIC_AT..EXT4_MAGIC_AT + 2) == Some(&[0x53, 0xEF][..]) {
        return Some(Kind::Ext4);
    }
    if pvfs_fs::fat::probe(head) {
        return Some(Kind::Fat);
    }
    None
}

/// The served volume: ext4 or FAT.
#[allow(
    clippy::large_enum_variant,
    reason = "one per domain, held behind an Arc"
)]
pub enum VolumeFs<D: BlockDevice> {
    /// An ext4 volume.
    Ext4(Ext4Fs<D>),
    /// A FAT volume.
    Fat(FatFs<D>),
}

macro_rules! each {
    ($s:expr, $f:ident => $e:expr) => {
        match $s {
            VolumeFs::Ext4($f) => $e,
            VolumeFs::Fat($f) => $e,
        }
    };
}

impl<D: BlockDevice + Send> VolumeFs<D> {
    /// The file system's name: `ext4`, or `fat12`, `fat16`, `fat32`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            VolumeFs::Ext4(_) => "ext4",
            VolumeFs::Fat(fs) => fs.with_engine(|e| fat_name(e.geometry().kind)),
        }
    }

    /// Runs `f` on the device under the volume (`None` once an ext4 volume is closed).
    pub fn with_device<R>(&self, f: impl FnOnce(&mut D) -> R) -> Option<R> {
        match self {
            VolumeFs::Ext4(fs) => fs.with_engine(|e| f(e.device_mut())),
            VolumeFs::Fat(fs) => Some(fs.with_engine(|e| f(e.device_mut()))),
        }
    }

    /// Whether the volume accepts changes.
    pub fn is_writable(&self) -> bool {
        match self {
            VolumeFs::Ext4(fs) => fs.with_engine(|e| e.is_writable()).unwrap_or(false),
            VolumeFs::Fat(fs) => fs.with_engine(|e| e.writable()),
        }
    }

    /// Whether changes wait in memory to be written back (never on FAT, which writes
    /// through).
    pub fn is_dirty(&self) -> bool {
        match self {
            VolumeFs::Ext4(fs) => fs
                .with_engine(|e| e.is_writable() && e.cache().dirty_count() > 0)
                .unwrap_or(false),
            VolumeFs::Fat(_) => false,
        }
    }

    /// The block cache's memory (buffers and bookkeeping) and its buffers' capacity, in
    /// bytes (0 and 0 for FAT, which has no block cache).
    pub fn cache_bytes(&self) -> (usize, usize) {
        match self {
            VolumeFs::Ext4(fs) => fs
                .with_engine(|e| {
                    let c = e.cache();
                    (
                        c.memory_bytes(),
                        c.capacity().saturating_mul(c.block_size()),
                    )
                })
                .unwrap_or((0, 0)),
            VolumeFs::Fat(_) => (0, 0),
        }
    }

    /// Starts background write-back once at least `min_kib` KiB of file data is dirty
    /// (examining at most `max_blocks` blocks); returns the blocks started. Always 0 on FAT.
    pub fn start_write_back(&self, min_kib: u32, max_blocks: usize) -> Result<usize, String> {
        match self {
            VolumeFs::Ext4(fs) => fs
                .with_engine(|e| {
                    let bs = e.cache().block_size().max(1) as u64;
                    let min = (u64::from(min_kib) * 1024).div_ceil(bs) as usize;
                    e.start_write_back(min, min.max(max_blocks))
                        .map_err(|err| err.to_string())
                })
                .unwrap_or(Ok(0)),
            VolumeFs::Fat(_) => Ok(0),
        }
    }

    /// Writes everything back (ext4 is also marked clean and refuses every later request
    /// with `EIO`) and gives the device back. `None` if an ext4 volume was closed already;
    /// an error if writing back failed, or if a FAT volume is still shared (its changes are
    /// written, but the device cannot be taken from under the other holders).
    pub fn close(this: Arc<Self>) -> Option<Result<D, String>> {
        if let VolumeFs::Ext4(fs) = &*this {
            return fs.close().map(|r| r.map_err(|e| e.to_string()));
        }
        if let Err(e) = Filesystem::sync(&*this) {
            return Some(Err(alloc::format!("write-back failed: errno {}", e.0)));
        }
        match Arc::try_unwrap(this) {
            Ok(VolumeFs::Fat(fs)) => Some(Ok(fs.into_inner().into_device())),
            Ok(VolumeFs::Ext4(_)) => None,
            Err(_) => Some(Err(String::from(
                "written back, but the volume is still in use",
            ))),
        }
    }
}

/// `fat12`, `fat16` or `fat32`.
pub fn fat_name(kind: pvfs_fs::fat::bpb::FatType) -> &'static str {
    match kind {
        pvfs_fs::fat::bpb::FatType::Fat12 => "fat12",
        pvfs_fs::fat::bpb::FatType::Fat16 => "fat16",
        pvfs_fs::fat::bpb::FatType::Fat32 => "fat32",
    }
}

impl<D: BlockDevice + Send> Filesystem for VolumeFs<D> {
    fn root(&self) -> Ino {
        each!(self, fs => fs.root())
    }
    fn lookup(&self, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        each!(self, fs => fs.lookup(dir, name))
    }
    fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        each!(self, fs => fs.getattr(ino))
    }
    fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> FsResult<usize> {
        each!(self, fs => fs.read(ino, off, buf))
    }
    fn read_would_wait(&self, ino: Ino, off: u64, len: u32) -> bool {
        each!(self, fs => fs.read_would_wait(ino, off, len))
    }
    fn write_would_fit(&self, ino: Ino, off: u64, len: u64) -> bool {
        each!(self, fs => fs.write_would_fit(ino, off, len))
    }
    fn readdir(&self, dir: Ino, cookie: u64, f: DirVisitor<'_>) -> FsResult<()> {
        each!(self, fs => fs.readdir(dir, cookie, f))
    }
    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        each!(self, fs => fs.readlink(ino))
    }
    fn statfs(&self) -> FsResult<FsStat> {
        each!(self, fs => fs.statfs())
    }
    fn retain(&self, ino: Ino) {
        each!(self, fs => fs.retain(ino))
    }
    fn release(&self, ino: Ino) {
        each!(self, fs => fs.release(ino))
    }
    fn listxattr(&self, ino: Ino) -> FsResult<Vec<u8>> {
        each!(self, fs => fs.listxattr(ino))
    }
    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        each!(self, fs => fs.getxattr(ino, name))
    }
    fn setxattr(&self, ino: Ino, name: &[u8], value: &[u8], flags: u32) -> FsResult<()> {
        each!(self, fs => fs.setxattr(ino, name, value, flags))
    }
    fn removexattr(&self, ino: Ino, name: &[u8]) -> FsResult<()> {
        each!(self, fs => fs.removexattr(ino, name))
    }
    fn getxattr_private(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        each!(self, fs => fs.getxattr_private(ino, name))
    }
    fn setxattr_private(&self, ino: Ino, name: &[u8], value: &[u8]) -> FsResult<()> {
        each!(self, fs => fs.setxattr_private(ino, name, value))
    }
    fn write(&self, ino: Ino, off: u64, data: &[u8]) -> FsResult<usize> {
        each!(self, fs => fs.write(ino, off, data))
    }
    fn owned_bytes(&self, ino: Ino, a: &Attr) -> u64 {
        each!(self, fs => fs.owned_bytes(ino, a))
    }
    fn setattr(&self, ino: Ino, set: &SetAttr) -> FsResult<Attr> {
        each!(self, fs => fs.setattr(ino, set))
    }
    fn create(&self, dir: Ino, name: &[u8], new: &NewInode) -> FsResult<Attr> {
        each!(self, fs => fs.create(dir, name, new))
    }
    fn symlink(&self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> FsResult<Attr> {
        each!(self, fs => fs.symlink(dir, name, target, uid, gid))
    }
    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        each!(self, fs => fs.link(ino, dir, name))
    }
    fn unlink(&self, dir: Ino, name: &[u8], rmdir: bool) -> FsResult<()> {
        each!(self, fs => fs.unlink(dir, name, rmdir))
    }
    fn rename(&self, olddir: Ino, oldname: &[u8], newdir: Ino, newname: &[u8]) -> FsResult<()> {
        each!(self, fs => fs.rename(olddir, oldname, newdir, newname))
    }
    fn fsync(&self, ino: Ino, datasync: bool) -> FsResult<()> {
        each!(self, fs => fs.fsync(ino, datasync))
    }
    fn sync(&self) -> FsResult<()> {
        each!(self, fs => fs.sync())
    }
    fn grow(&self, device_bytes: u64) -> FsResult<u64> {
        each!(self, fs => fs.grow(device_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::{detect, Kind, DETECT_BYTES};

    #[test]
    fn ext4_magic_is_found_at_its_offset_only() {
        let mut b = [0u8; DETECT_BYTES];
        assert_eq!(detect(&b), None);
        b[0x438] = 0x53;
        b[0x439] = 0xEF;
        assert_eq!(detect(&b), Some(Kind::Ext4));
        assert_eq!(detect(&b[..0x439]), None, "cut inside the magic");
        let mut shifted = [0u8; DETECT_BYTES];
        shifted[0x439] = 0x53;
        shifted[0x43A] = 0xEF;
        assert_eq!(detect(&shifted), None);
    }
}
