//! The types of the engine's API: file types, timestamps, attributes, directory entries,
//! options, and the on-disk mode and flag bits.

use crate::ext4::{Ino, DEFAULT_CACHE_BYTES};
use alloc::vec::Vec;

/// A file's type, from the mode bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// Regular file.
    Regular,
    /// Directory.
    Directory,
    /// Character device.
    CharDev,
    /// Block device.
    BlockDev,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Symbolic link.
    Symlink,
    /// Anything else.
    Unknown,
}

impl FileType {
    /// From the `S_IFMT` bits of a mode.
    pub fn from_mode(mode: u16) -> Self {
        match mode & mode::S_IFMT {
            mode::S_IFREG => FileType::Regular,
            mode::S_IFDIR => FileType::Directory,
            mode::S_IFCHR => FileType::CharDev,
            mode::S_IFBLK => FileType::BlockDev,
            mode::S_IFIFO => FileType::Fifo,
            mode::S_IFSOCK => FileType::Socket,
            mode::S_IFLNK => FileType::Symlink,
            _ => FileType::Unknown,
        }
    }
    /// From a directory entry's `file_type` byte.
    pub fn from_dirent(t: u8) -> Self {
        match t {
            1 => FileType::Regular,
            2 => FileType::Directory,
            3 => FileType::CharDev,
            4 => FileType::BlockDev,
            5 => FileType::Fifo,
            6 => FileType::Socket,
            7 => FileType::Symlink,
            _ => FileType::Unknown,
        }
    }
}

/// Seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Timestamp {
    /// Seconds (may be negative).
    pub sec: i64,
    /// Nanoseconds, `< 1_000_000_000`.
    pub nsec: u32,
}

/// Flags of [`Ext4::rename`] (Linux `renameat2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenameFlags {
    /// `RENAME_NOREPLACE`: fail with [`Error::Exists`] if the target exists.
    pub noreplace: bool,
    /// `RENAME_EXCHANGE`: swap the two entries atomically; both must exist.
    pub exchange: bool,
}

/// Attribute changes for [`Ext4::setattr`]; `None` leaves a field alone. Size changes go
/// through [`Ext4::truncate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttr {
    /// Permission bits (`0o7777`); the file type never changes.
    pub mode: Option<u16>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New access time.
    pub atime: Option<Timestamp>,
    /// New modification time.
    pub mtime: Option<Timestamp>,
    /// New change time (set to the engine clock when `None` and anything changed).
    pub ctime: Option<Timestamp>,
}

/// Mode of [`Ext4::fallocate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallocate {
    /// Allocate the range (reads as zeros); the size grows to cover it.
    Allocate,
    /// Allocate the range without changing the size (`FALLOC_FL_KEEP_SIZE`).
    KeepSize,
    /// Deallocate the range, which then reads as zeros; the size is kept
    /// (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`).
    PunchHole,
}

/// How [`Ext4::set_xattr`] treats an existing attribute (Linux `XATTR_CREATE`/`XATTR_REPLACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XattrSet {
    /// Create or replace.
    #[default]
    Any,
    /// Fail with [`Error::Exists`] if it exists.
    Create,
    /// Fail with [`Error::NoXattr`] if it does not exist.
    Replace,
}

/// Inode attributes, as `getattr` returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// Full mode: type and permission bits.
    pub mode: u16,
    /// File type (from `mode`).
    pub kind: FileType,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Link count (a directory with `dir_nlink` overflow reports 1).
    pub nlink: u32,
    /// Last access.
    pub atime: Timestamp,
    /// Last modification.
    pub mtime: Timestamp,
    /// Last status change.
    pub ctime: Timestamp,
    /// Creation, when the inode has room for it.
    pub crtime: Option<Timestamp>,
    /// The change counter (`i_version`): the engine adds one at every change that stamps
    /// ctime, so two states of the inode never share a value (until it wraps: 64 bits, or 32
    /// in 128-byte inodes).
    pub change: u64,
    /// Space used, in 512-byte units.
    pub blocks: u64,
    /// Generation number (NFS-style handle salt).
    pub generation: u32,
    /// Device major number (character and block devices).
    pub rdev_major: u32,
    /// Device minor number.
    pub rdev_minor: u32,
    /// `i_flags` (EXT4_*_FL).
    pub flags: u32,
}

/// One directory entry handed to a [`Ext4::readdir`] callback.
#[derive(Debug, Clone, Copy)]
pub struct DirEntry<'a> {
    /// Inode number.
    pub ino: Ino,
    /// Name bytes (not NUL-terminated, not necessarily UTF-8).
    pub name: &'a [u8],
    /// Type from the entry (`Unknown` without the filetype feature).
    pub kind: FileType,
    /// Cookie that resumes right after this entry.
    pub next_cookie: u64,
}

/// An owned directory entry ([`Ext4::read_dir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedDirEntry {
    /// Inode number.
    pub ino: Ino,
    /// Name bytes.
    pub name: Vec<u8>,
    /// Type from the entry.
    pub kind: FileType,
}

/// File-system statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFs {
    /// Block size.
    pub block_size: u32,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks (including reserved).
    pub free_blocks: u64,
    /// Free blocks available to unprivileged users.
    pub avail_blocks: u64,
    /// Total inodes.
    pub inodes: u64,
    /// Free inodes.
    pub free_inodes: u64,
    /// Longest name.
    pub name_max: u32,
    /// File-system id (from the UUID).
    pub fsid: u64,
}

/// Mount options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Block cache size in bytes.
    pub cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// `i_flags` bits.
pub mod flags {
    /// Directory has an htree index.
    pub const INDEX: u32 = 0x1000;
    /// `i_blocks` is in file-system blocks.
    pub const HUGE_FILE: u32 = 0x4_0000;
    /// Inode uses extents.
    pub const EXTENTS: u32 = 0x8_0000;
    /// Inode stores a large xattr value.
    pub const EA_INODE: u32 = 0x20_0000;
    /// Data is inline in the inode.
    pub const INLINE_DATA: u32 = 0x1000_0000;
    /// Encrypted.
    pub const ENCRYPT: u32 = 0x800;
}

/// The file type bits of `i_mode` (Linux `S_IF*`), defined once for the workspace: the 9P
/// server widens them to 32 bits (`pvfs_9p::fs::mode`).
pub mod mode {
    /// Mask of the file type bits.
    pub const S_IFMT: u16 = 0xF000;
    /// Named pipe.
    pub const S_IFIFO: u16 = 0x1000;
    /// Character device.
    pub const S_IFCHR: u16 = 0x2000;
    /// Directory.
    pub const S_IFDIR: u16 = 0x4000;
    /// Block device.
    pub const S_IFBLK: u16 = 0x6000;
    /// Regular file.
    pub const S_IFREG: u16 = 0x8000;
    /// Symbolic link.
    pub const S_IFLNK: u16 = 0xA000;
    /// Socket.
    pub const S_IFSOCK: u16 = 0xC000;
}
