//! The ext4 engine (read side): an inode-based API over a [`BlockDevice`], shaped for a file
//! server.
//!
//! # No-panic contract
//! Every byte that comes from the device is hostile. Parsers read fields through the bounds-
//! checked `le16`/`le32` helpers (out-of-range reads give 0 and are then rejected by a
//! validation step), use checked arithmetic for every on-disk offset or count, and bound every
//! loop by a size taken from already-validated metadata. Corruption is reported as
//! [`Error::Corrupt`] or [`Error::Checksum`] carrying what and where, never as a panic.
//!
//! # What is read
//! ext2, ext3 and ext4 as made by e2fsprogs 1.47: 32/64-bit group descriptors (also
//! `meta_bg`), flex_bg, bigalloc, 128..=block-size inodes with extra fields (ns timestamps, crtime),
//! extent trees of any depth (uninitialized extents read as zeros), legacy indirect block maps,
//! holes, linear and htree directories (all legacy/half-MD4/TEA hashes, signed and unsigned),
//! fast and slow symlinks, inline data, xattrs in the inode body and in an external block
//! (POSIX ACLs converted to the Linux xattr form), and
//! `metadata_csum` (crc32c) on the superblock, group descriptors, inodes, extent blocks,
//! directory leaves, dx nodes and xattr blocks (`uninit_bg` crc16 on descriptors). A journal that
//! needs recovery is replayed in memory at mount (see [`journal`]).
//!
//! # Readdir cookies
//! A cookie names a position in the directory file and is stable as long as the entries before
//! it are not moved: for block directories it is `(logical block << 32) | byte offset` of the
//! next entry; 0 is the start. For inline-data directories it is `INLINE_COOKIE_BASE + offset`
//! into the inline area (1 and 2 are the synthesized `.` and `..`). A resumed readdir re-scans
//! the block from its start and resumes at the first entry at or after the offset, so a cookie
//! that no longer falls on an entry boundary still works.

mod dx_write;
mod extent_write;
mod hash;
pub mod journal;
mod jwrite;
pub mod sb;
mod write;
mod xattr_write;

use crate::block::{BlockDevice, DevError};
use crate::cache::BlockCache;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
pub use sb::{GroupDesc, Superblock};

/// An inode number.
pub type Ino = u32;
/// The root directory's inode.
pub const ROOT_INO: Ino = 2;
/// The longest name a directory entry can hold.
pub const NAME_MAX: usize = 255;
/// Cookie base for inline-data directories (see the module documentation).
pub const INLINE_COOKIE_BASE: u64 = 0x1_0000;

/// File data runs at least this long are read around the block cache's LRU (see [`Ext4::read`]
/// and [`crate::cache::BlockCache::read_run`]).
pub const BYPASS_CACHE_BYTES: usize = 64 << 10;

/// Default cache size used by [`Ext4::open`].
pub const DEFAULT_CACHE_BYTES: usize = 4 << 20;

/// Errors from the ext4 engine. All carry enough data to say what went wrong where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The block device failed.
    Dev(DevError),
    /// The superblock magic is not 0xEF53.
    BadMagic {
        /// The value found.
        found: u16,
    },
    /// A superblock field is invalid.
    BadSuperblock {
        /// Which field.
        what: &'static str,
    },
    /// An INCOMPAT feature this engine cannot read.
    UnsupportedFeature {
        /// The feature's name (`"unknown"` if it has none).
        name: &'static str,
        /// Its bit in `s_feature_incompat`.
        bit: u32,
    },
    /// The journal needs recovery and could not be replayed.
    JournalRecovery {
        /// Why.
        what: &'static str,
    },
    /// A checksum did not match.
    Checksum {
        /// Which structure.
        what: &'static str,
        /// Block number, inode number or group number, depending on `what`.
        at: u64,
    },
    /// A structure is malformed.
    Corrupt {
        /// Which structure.
        what: &'static str,
        /// Block number, inode number or byte offset, depending on `what`.
        at: u64,
    },
    /// The inode number is out of range or the inode is not in use.
    BadInode {
        /// The inode number.
        ino: Ino,
    },
    /// No such directory entry.
    NotFound,
    /// The inode is not a directory.
    NotDir {
        /// The inode number.
        ino: Ino,
    },
    /// The inode is a directory (and a file was needed).
    IsDir {
        /// The inode number.
        ino: Ino,
    },
    /// The inode is not a symbolic link.
    NotSymlink {
        /// The inode number.
        ino: Ino,
    },
    /// A name is longer than 255 bytes or contains `/` or NUL.
    InvalidName,
    /// No such extended attribute.
    NoXattr,
    /// A file feature this engine does not read (e.g. encrypted or ea_inode values).
    Unsupported {
        /// What.
        what: &'static str,
    },
    /// The file system is mounted read-only (or was refused read-write); says why.
    ReadOnly {
        /// Why.
        reason: &'static str,
    },
    /// The name already exists in the directory.
    Exists,
    /// No free block or inode left.
    NoSpace,
    /// The directory is not empty.
    NotEmpty,
    /// An argument the operation cannot accept (`EINVAL`), e.g. renaming a directory into
    /// its own subtree.
    Invalid {
        /// What was wrong.
        what: &'static str,
    },
    /// The inode already has the maximum number of links (`EMLINK`).
    TooManyLinks,
    /// The offset or size is beyond what the file system can hold (`EFBIG`).
    FileTooBig,
}

impl From<DevError> for Error {
    fn from(e: DevError) -> Self {
        Error::Dev(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Dev(e) => write!(f, "device error: {e}"),
            Error::BadMagic { found } => write!(f, "not ext2/3/4: magic {found:#06x}"),
            Error::BadSuperblock { what } => write!(f, "invalid superblock: {what}"),
            Error::UnsupportedFeature { name, bit } => {
                write!(f, "unsupported incompatible feature {name} ({bit:#x})")
            }
            Error::JournalRecovery { what } => write!(f, "journal needs recovery: {what}"),
            Error::Checksum { what, at } => write!(f, "{what} checksum mismatch at {at}"),
            Error::Corrupt { what, at } => write!(f, "corrupt {what} at {at}"),
            Error::BadInode { ino } => write!(f, "inode {ino} is not in use or out of range"),
            Error::NotFound => write!(f, "no such file or directory"),
            Error::NotDir { ino } => write!(f, "inode {ino} is not a directory"),
            Error::IsDir { ino } => write!(f, "inode {ino} is a directory"),
            Error::NotSymlink { ino } => write!(f, "inode {ino} is not a symbolic link"),
            Error::InvalidName => write!(f, "invalid file name"),
            Error::NoXattr => write!(f, "no such extended attribute"),
            Error::Unsupported { what } => write!(f, "unsupported: {what}"),
            Error::ReadOnly { reason } => write!(f, "read-only: {reason}"),
            Error::Exists => write!(f, "file exists"),
            Error::NoSpace => write!(f, "no space left on device"),
            Error::NotEmpty => write!(f, "directory not empty"),
            Error::Invalid { what } => write!(f, "invalid argument: {what}"),
            Error::TooManyLinks => write!(f, "too many links"),
            Error::FileTooBig => write!(f, "file too large"),
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = core::result::Result<T, E>;

pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.wrapping_add(2)) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}
pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.wrapping_add(4)) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

pub(crate) use crate::crc::crc32c_raw;

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
        match mode & 0xF000 {
            0x8000 => FileType::Regular,
            0x4000 => FileType::Directory,
            0x2000 => FileType::CharDev,
            0x6000 => FileType::BlockDev,
            0x1000 => FileType::Fifo,
            0xC000 => FileType::Socket,
            0xA000 => FileType::Symlink,
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

const S_IFMT: u16 = 0xF000;
const S_IFDIR: u16 = 0x4000;
const S_IFLNK: u16 = 0xA000;
const S_IFREG: u16 = 0x8000;

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

/// A parsed inode.
#[derive(Debug, Clone)]
struct Inode {
    ino: Ino,
    mode: u16,
    uid: u32,
    gid: u32,
    size: u64,
    links: u16,
    blocks: u64,
    flags: u32,
    generation: u32,
    file_acl: u64,
    atime: Timestamp,
    mtime: Timestamp,
    ctime: Timestamp,
    crtime: Option<Timestamp>,
    iblock: [u8; 60],
    /// crc32c seed for this inode's blocks (extents, dirs).
    seed: u32,
}

/// A dx node: its (hash, block) entries (entry 0's hash is 0), hash version, indirect levels.
type DxNode = (Vec<(u32, u32)>, u8, u8);
/// An xattr: name index, name suffix, value.
type Xattr = (u8, Vec<u8>, Vec<u8>);

/// Constants derived from the superblock, copied so parsers can run while the cache is
/// borrowed.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    bs: usize,
    blocks_count: u64,
    inode_size: usize,
    inodes_per_group: u32,
    inodes_count: u32,
    csum: bool,
    seed: u32,
    huge_file: bool,
    filetype: bool,
    dir_index: bool,
    hash_unsigned: bool,
    hash_seed: [u32; 4],
    largedir: bool,
}

impl Ctx {
    fn new(sb: &Superblock) -> Self {
        Ctx {
            bs: sb.block_size() as usize,
            blocks_count: sb.blocks_count,
            inode_size: usize::from(sb.inode_size),
            inodes_per_group: sb.inodes_per_group,
            inodes_count: sb.inodes_count,
            csum: sb.has_metadata_csum(),
            seed: sb.csum_seed(),
            huge_file: sb.feature_ro_compat & sb::RO_COMPAT_HUGE_FILE != 0,
            filetype: sb.feature_incompat & sb::INCOMPAT_FILETYPE != 0,
            dir_index: sb.feature_compat & sb::COMPAT_DIR_INDEX != 0,
            hash_unsigned: sb.flags & 0x2 != 0,
            hash_seed: sb.hash_seed,
            largedir: sb.feature_incompat & sb::INCOMPAT_LARGEDIR != 0,
        }
    }
}

/// A run of logical blocks mapped the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// Blocks in the run (≥ 1).
    len: u64,
    /// First physical block, or `None` for a hole / uninitialized extent (reads as zeros).
    phys: Option<u64>,
}

/// The ext4 engine over a block device `D`. `Send` when `D` is.
pub struct Ext4<D: BlockDevice> {
    dev: D,
    cache: BlockCache,
    sb: Superblock,
    groups: Vec<GroupDesc>,
    ctx: Ctx,
    read_only_reason: Option<&'static str>,
    /// Blocks replaced by the journal replay (physical block → contents).
    overlay: BTreeMap<u64, Vec<u8>>,
    scratch: Vec<u8>,
    /// Mounted read-write ([`Ext4::open_rw`]).
    writable: bool,
    /// Time stamped on changed inodes ([`Ext4::set_clock`]).
    clock: Timestamp,
    /// Dirty cached blocks that hold file data (written back before metadata).
    dirty_data: alloc::collections::BTreeSet<u64>,
    /// Pinned (open) inodes and their pin counts ([`Ext4::pin`]).
    pins: BTreeMap<Ino, u32>,
    /// The journal being written (read-write mounts of journalled file systems).
    jnl: Option<jwrite::Jnl>,
    /// Sequential readers of a few files, to read ahead for them ([`Ext4::read`]).
    ra_last: [Stream; RA_STREAMS],
    ra_next: usize,
}

/// Files whose sequential reads are followed at once (see [`Ext4::read`]).
const RA_STREAMS: usize = 8;

/// A file being read, for readahead.
#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    ino: Ino,
    /// Where the last read ended (byte offset).
    end: u64,
    /// Up to where readahead has been started (byte offset, at least `end` while the reads
    /// are sequential): the blocks before it are cached or being read, so they are not looked
    /// at again for every read.
    ahead: u64,
}
/// Readahead window after a sequential read of `n` bytes: 4 n, within these bounds and half of
/// what the device can hold in flight.
const RA_MIN_BYTES: u64 = 256 << 10;
const RA_MAX_BYTES: u64 = 1 << 20;

fn corrupt<T>(what: &'static str, at: u64) -> Result<T> {
    Err(Error::Corrupt { what, at })
}

impl<D: BlockDevice> Ext4<D> {
    /// Mount with default options.
    pub fn open(dev: D) -> Result<Self> {
        Self::open_with(dev, &Options::default())
    }

    /// Mount: read and validate the superblock and all group descriptors, apply the feature
    /// policy, and replay the journal in memory if it needs recovery.
    pub fn open_with(mut dev: D, opts: &Options) -> Result<Self> {
        let ss = dev.sector_size().max(1);
        let mut raw = vec![0u8; 2048usize.max(ss as usize)];
        let lba = 1024 / u64::from(ss);
        let off = (1024 % ss) as usize;
        let need = (off + 1024).div_ceil(ss as usize) * ss as usize;
        let chunk = raw.get_mut(..need).ok_or(Error::BadSuperblock {
            what: "sector size",
        })?;
        dev.read(lba, chunk)?;
        let sb = Superblock::parse(chunk.get(off..off + 1024).unwrap_or(&[]))?;
        let read_only_reason = sb.check_features()?;
        let bs = sb.block_size() as usize;
        if bs < ss as usize {
            return Err(Error::BadSuperblock {
                what: "block size smaller than sector size",
            });
        }
        let dev_blocks = dev.sector_count() / (bs as u64 / u64::from(ss));
        if sb.blocks_count > dev_blocks {
            return Err(Error::BadSuperblock {
                what: "file system larger than the device",
            });
        }
        let ctx = Ctx::new(&sb);
        let cache = BlockCache::new(bs, opts.cache_bytes);
        let mut fs = Ext4 {
            dev,
            cache,
            sb,
            groups: Vec::new(),
            ctx,
            read_only_reason,
            overlay: BTreeMap::new(),
            scratch: Vec::new(),
            writable: false,
            clock: Timestamp::default(),
            dirty_data: alloc::collections::BTreeSet::new(),
            pins: BTreeMap::new(),
            jnl: None,
            ra_last: [Stream::default(); RA_STREAMS],
            ra_next: 0,
        };
        if fs.sb.feature_incompat & sb::INCOMPAT_RECOVER != 0 {
            if fs.sb.feature_compat & sb::COMPAT_HAS_JOURNAL == 0 || fs.sb.journal_inum == 0 {
                return Err(Error::JournalRecovery {
                    what: "external journal",
                });
            }
            // Group descriptors are needed to find the journal inode; a replay may rewrite
            // them, so they are loaded again afterwards.
            fs.load_groups()?;
            let (replayed, _) = journal::replay(&mut fs)?;
            fs.overlay = replayed;
            fs.cache = BlockCache::new(bs, opts.cache_bytes);
            // The journal may hold a newer superblock (byte 1024 of the device).
            let sb_blk = 1024 / bs as u64;
            let sb_off = 1024 % bs;
            if let Some(b) = fs.overlay.get(&sb_blk) {
                if let Some(raw) = b.get(sb_off..sb_off + 1024) {
                    let newer = Superblock::parse(raw)?;
                    if newer.block_size() != fs.sb.block_size()
                        || newer.blocks_count > fs.sb.blocks_count
                    {
                        return Err(Error::JournalRecovery {
                            what: "journalled superblock geometry",
                        });
                    }
                    newer.check_features()?;
                    fs.ctx = Ctx::new(&newer);
                    fs.sb = newer;
                }
            }
            fs.read_only_reason = Some(journal::REPLAYED_IN_MEMORY);
        }
        fs.load_groups()?;
        Ok(fs)
    }

    fn load_groups(&mut self) -> Result<()> {
        let n = self.sb.group_count();
        let ds = u64::from(self.sb.desc_size);
        let bs = self.ctx.bs as u64;
        let per_block = bs / ds;
        let first = u64::from(self.sb.first_data_block) + 1;
        let meta_bg = self.sb.feature_incompat & sb::INCOMPAT_META_BG != 0;
        let mut groups = Vec::with_capacity(n.min(1 << 20) as usize);
        let seed = self.ctx.seed;
        let sb = self.sb.clone();
        for g in 0..n {
            let blk_idx = g / per_block;
            let blk = if meta_bg && blk_idx >= u64::from(sb.first_meta_bg) {
                // meta_bg: the descriptors of meta group `blk_idx` sit in its first group,
                // right after that group's superblock backup (if it has one).
                let mg_first_group = blk_idx * per_block;
                let base = mg_first_group * u64::from(sb.blocks_per_group)
                    + u64::from(sb.first_data_block);
                base + u64::from(sb.group_has_super(mg_first_group))
            } else {
                first + blk_idx
            };
            let off = ((g % per_block) * ds) as usize;
            let b = self.block(blk)?;
            let d = b.get(off..).unwrap_or(&[]);
            let gd = GroupDesc::parse(d, g as u32, &sb, seed)?;
            if gd.inode_table == 0 || gd.inode_table >= sb.blocks_count {
                return corrupt("group descriptor inode table", g);
            }
            groups.push(gd);
        }
        self.groups = groups;
        Ok(())
    }

    /// A metadata block through the cache (and the journal overlay).
    fn block(&mut self, blk: u64) -> Result<&[u8]> {
        if blk >= self.ctx.blocks_count {
            return corrupt("block number", blk);
        }
        if let Some(b) = self.overlay.get(&blk) {
            return Ok(b);
        }
        Ok(self.cache.get(&mut self.dev, blk)?)
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Group descriptors.
    pub fn groups(&self) -> &[GroupDesc] {
        &self.groups
    }

    /// Why the file system must not be written, if it must not (unknown RO_COMPAT feature,
    /// journal replayed only in memory).
    pub fn read_only_reason(&self) -> Option<&'static str> {
        self.read_only_reason
    }

    /// The time stamped on inodes changed now (see [`Ext4::set_clock`]).
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// Whether the engine was mounted read-write ([`Ext4::open_rw`]).
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The block cache (for statistics).
    pub fn cache(&self) -> &BlockCache {
        &self.cache
    }

    /// The underlying device, e.g. for a driver to react to its backend going away. Reads
    /// and writes must go through the engine, not this reference.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Give the device back.
    pub fn into_device(self) -> D {
        self.dev
    }

    /// File-system statistics.
    pub fn statfs(&self) -> StatFs {
        let sb = &self.sb;
        let u = sb.uuid;
        let w = |i: usize| u64::from(le32(&u, i));
        StatFs {
            block_size: sb.block_size(),
            blocks: sb.blocks_count,
            free_blocks: sb.free_blocks_count,
            avail_blocks: sb.free_blocks_count.saturating_sub(sb.r_blocks_count),
            inodes: u64::from(sb.inodes_count),
            free_inodes: u64::from(sb.free_inodes_count),
            name_max: NAME_MAX as u32,
            fsid: (w(0) ^ w(8)) | ((w(4) ^ w(12)) << 32),
        }
    }

    fn load_inode(&mut self, ino: Ino) -> Result<Inode> {
        let ctx = self.ctx;
        if ino == 0 || ino > ctx.inodes_count {
            return Err(Error::BadInode { ino });
        }
        let idx = ino - 1;
        let g = (idx / ctx.inodes_per_group) as usize;
        let gd = *self.groups.get(g).ok_or(Error::BadInode { ino })?;
        let byte = u64::from(idx % ctx.inodes_per_group) * ctx.inode_size as u64;
        let blk = gd
            .inode_table
            .checked_add(byte / ctx.bs as u64)
            .ok_or(Error::Corrupt {
                what: "inode table",
                at: u64::from(ino),
            })?;
        let off = (byte % ctx.bs as u64) as usize;
        let b = self.block(blk)?;
        let raw = b.get(off..off + ctx.inode_size).ok_or(Error::Corrupt {
            what: "inode table",
            at: u64::from(ino),
        })?;
        parse_inode(raw, ino, &ctx)
    }

    /// Raw inode bytes (for the in-inode xattr area).
    fn inode_raw(&mut self, ino: Ino) -> Result<Vec<u8>> {
        let ctx = self.ctx;
        self.load_inode(ino)?;
        let idx = ino - 1;
        let g = (idx / ctx.inodes_per_group) as usize;
        let gd = *self.groups.get(g).ok_or(Error::BadInode { ino })?;
        let byte = u64::from(idx % ctx.inodes_per_group) * ctx.inode_size as u64;
        let blk = gd.inode_table + byte / ctx.bs as u64;
        let off = (byte % ctx.bs as u64) as usize;
        let b = self.block(blk)?;
        Ok(b.get(off..off + ctx.inode_size).unwrap_or(&[]).to_vec())
    }

    /// Attributes of `ino`.
    pub fn getattr(&mut self, ino: Ino) -> Result<Attr> {
        let i = self.load_inode(ino)?;
        let kind = FileType::from_mode(i.mode);
        let (mut rdev_major, mut rdev_minor) = (0, 0);
        if matches!(kind, FileType::CharDev | FileType::BlockDev) {
            let old = le32(&i.iblock, 0);
            let new = le32(&i.iblock, 4);
            if old != 0 {
                rdev_major = (old >> 8) & 0xff;
                rdev_minor = old & 0xff;
            } else {
                rdev_major = (new & 0xfff00) >> 8;
                rdev_minor = (new & 0xff) | ((new >> 12) & 0xfff00);
            }
        }
        Ok(Attr {
            ino,
            mode: i.mode,
            kind,
            uid: i.uid,
            gid: i.gid,
            size: i.size,
            nlink: u32::from(i.links),
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
            crtime: i.crtime,
            blocks: i.blocks,
            generation: i.generation,
            rdev_major,
            rdev_minor,
            flags: i.flags,
        })
    }

    // ---- block mapping ----

    /// Map logical block `lblk` of `inode` to a run.
    fn map(&mut self, inode: &Inode, lblk: u64) -> Result<Run> {
        if inode.flags & flags::EXTENTS != 0 {
            self.map_extent(inode, lblk)
        } else {
            self.map_legacy(inode, lblk)
        }
    }

    fn check_phys(&self, phys: u64, len: u64, ino: Ino) -> Result<()> {
        match phys.checked_add(len) {
            Some(end) if phys != 0 && end <= self.ctx.blocks_count => Ok(()),
            _ => corrupt("block pointer", u64::from(ino)),
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
            let magic = le16(&node, 0);
            let entries = usize::from(le16(&node, 2));
            let max = usize::from(le16(&node, 4));
            let depth = le16(&node, 6);
            if magic != 0xF30A
                || entries > max
                || 12 + max * 12 > node.len()
                || depth > 5
                || expect_depth.is_some_and(|d| d != depth)
            {
                return corrupt("extent header", if node_blk == 0 { ino } else { node_blk });
            }
            let ent = |i: usize| node.get(12 + i * 12..24 + i * 12).unwrap_or(&[]);
            // Last entry whose first block is <= target.
            let (mut lo, mut hi) = (0usize, entries);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if le32(ent(mid), 0) <= target {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let next_start = if lo < entries {
                u64::from(le32(ent(lo), 0)).min(upper)
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
                let start = u64::from(le32(e, 0));
                let raw_len = le16(e, 4);
                let (len, uninit) = if raw_len > 32768 {
                    (raw_len - 32768, true)
                } else {
                    (raw_len, false)
                };
                let len = u64::from(len);
                let pstart = (u64::from(le16(e, 6)) << 32) | u64::from(le32(e, 8));
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
            let child = (u64::from(le16(e, 8)) << 32) | u64::from(le32(e, 4));
            self.check_phys(child, 1, inode.ino)?;
            let ctx = self.ctx;
            let b = self.block(child)?;
            if ctx.csum {
                let max = usize::from(le16(b, 4));
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
    fn readahead_from(&mut self, ino: Ino, off: u64, len: u64) -> Result<bool> {
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
        let inode = self.load_inode(ino)?;
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

    fn read_now(&mut self, ino: Ino, off: u64, buf: &mut [u8]) -> Result<usize> {
        let inode = self.load_inode(ino)?;
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

    fn read_inode(&mut self, inode: &Inode, off: u64, buf: &mut [u8]) -> Result<usize> {
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
        let inode = self.load_inode(ino)?;
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
            let run = self.map(&inode, l)?;
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

    // ---- directories ----

    fn dir_inode(&mut self, ino: Ino) -> Result<Inode> {
        let inode = self.load_inode(ino)?;
        if inode.mode & S_IFMT != S_IFDIR {
            return Err(Error::NotDir { ino });
        }
        // A directory cannot have more blocks than the file system: this bounds every loop
        // over a directory's blocks.
        if inode.size / self.ctx.bs as u64 > self.ctx.blocks_count {
            return corrupt("directory size", u64::from(ino));
        }
        Ok(inode)
    }

    /// Verify a directory block's checksum (leaf tail or dx tail) according to its shape.
    fn verify_dir_block(ctx: &Ctx, inode: &Inode, lblk: u64, b: &[u8], at: u64) -> Result<bool> {
        // Returns Ok(true) for a leaf block, Ok(false) for an index block.
        let bs = ctx.bs;
        let indexed = inode.flags & flags::INDEX != 0 && ctx.dir_index;
        let is_dx_root = indexed && lblk == 0;
        let first_rec = usize::from(le16(b, 4));
        let is_dx_node =
            indexed && lblk != 0 && le32(b, 0) == 0 && (first_rec == bs || first_rec == 0);
        if !ctx.csum {
            return Ok(!(is_dx_root || is_dx_node));
        }
        if is_dx_root || is_dx_node {
            let count_off = if is_dx_root {
                0x18 + usize::from(b.get(0x1D).copied().unwrap_or(0))
            } else {
                8
            };
            return verify_dx_csum(b, count_off, inode.seed, at).map(|()| false);
        }
        let tail = bs - 12;
        if le32(b, tail) != 0 || le16(b, tail + 4) != 12 || b.get(tail + 7) != Some(&0xDE) {
            return Err(Error::Corrupt {
                what: "directory block tail",
                at,
            });
        }
        if crc32c_raw(inode.seed, b.get(..tail).unwrap_or(&[])) != le32(b, tail + 8) {
            return Err(Error::Checksum {
                what: "directory block",
                at,
            });
        }
        Ok(true)
    }

    /// Walk the entries of one directory block, calling `f(offset, ino, name, type, rec_len)`.
    /// Stops early when `f` returns false; returns whether it stopped early.
    fn walk_block<F>(ctx: &Ctx, b: &[u8], at: u64, start: usize, mut f: F) -> Result<bool>
    where
        F: FnMut(usize, u32, &[u8], u8, usize) -> bool,
    {
        let limit = if ctx.csum { ctx.bs - 12 } else { ctx.bs };
        let mut off = 0usize;
        while off < limit {
            let ino = le32(b, off);
            let mut rec = usize::from(le16(b, off + 4));
            if ctx.bs >= 65536 && (rec == 65535 || rec == 0) {
                rec = ctx.bs;
            }
            let name_len = usize::from(b.get(off + 6).copied().unwrap_or(0));
            let ftype = if ctx.filetype {
                b.get(off + 7).copied().unwrap_or(0)
            } else {
                0
            };
            let name_len = if ctx.filetype {
                name_len
            } else {
                name_len | (usize::from(ftype) << 8)
            };
            if rec < 8 || rec % 4 != 0 || off + rec > ctx.bs || 8 + name_len > rec {
                return Err(Error::Corrupt {
                    what: "directory entry",
                    at,
                });
            }
            if ino != 0 && off >= start {
                if ino > ctx.inodes_count {
                    return Err(Error::Corrupt {
                        what: "directory entry inode",
                        at,
                    });
                }
                let name = b.get(off + 8..off + 8 + name_len).unwrap_or(&[]);
                if !valid_name(name) {
                    return Err(Error::Corrupt {
                        what: "directory entry name",
                        at,
                    });
                }
                if !f(off, ino, name, ftype, rec) {
                    return Ok(true);
                }
            }
            off += rec;
        }
        Ok(false)
    }

    /// Call `f` for each entry of directory `dir`, starting at `cookie` (0 = start), until it
    /// returns false. Includes `.` and `..`. See the module docs for the cookie scheme.
    pub fn readdir<F>(&mut self, dir: Ino, cookie: u64, mut f: F) -> Result<()>
    where
        F: FnMut(&DirEntry<'_>) -> bool,
    {
        let inode = self.dir_inode(dir)?;
        let ctx = self.ctx;
        if inode.flags & flags::INLINE_DATA != 0 {
            return self.readdir_inline(&inode, cookie, f);
        }
        let bs = ctx.bs as u64;
        let nblocks = inode.size / bs;
        let mut lblk = cookie >> 32;
        let mut start = (cookie & 0xFFFF_FFFF) as usize;
        while lblk < nblocks {
            let run = self.map(&inode, lblk)?;
            let Some(phys) = run.phys else {
                lblk += run.len.max(1);
                start = 0;
                continue;
            };
            let b = self.block(phys)?;
            let leaf = Self::verify_dir_block(&ctx, &inode, lblk, b, phys)?;
            let cur = lblk;
            let stopped = if leaf || (inode.flags & flags::INDEX != 0 && cur == 0) {
                Self::walk_block(&ctx, b, phys, start, |off, ino, name, t, rec| {
                    let next = if off + rec >= ctx.bs {
                        (cur + 1) << 32
                    } else {
                        (cur << 32) | (off + rec) as u64
                    };
                    f(&DirEntry {
                        ino,
                        name,
                        kind: FileType::from_dirent(t),
                        next_cookie: next,
                    })
                })?
            } else {
                false
            };
            if stopped {
                return Ok(());
            }
            lblk += 1;
            start = 0;
        }
        Ok(())
    }

    fn readdir_inline<F>(&mut self, inode: &Inode, cookie: u64, mut f: F) -> Result<()>
    where
        F: FnMut(&DirEntry<'_>) -> bool,
    {
        let parent = le32(&inode.iblock, 0);
        if cookie == 0
            && !f(&DirEntry {
                ino: inode.ino,
                name: b".",
                kind: FileType::Directory,
                next_cookie: 1,
            })
        {
            return Ok(());
        }
        if cookie <= 1
            && !f(&DirEntry {
                ino: parent,
                name: b"..",
                kind: FileType::Directory,
                next_cookie: 2,
            })
        {
            return Ok(());
        }
        let data = self.inline_dir_bytes(inode)?;
        let start = cookie.saturating_sub(INLINE_COOKIE_BASE) as usize;
        let at = u64::from(inode.ino);
        let ctx = self.ctx;
        walk_inline(&ctx, &data, at, |off, ino, name, t, rec| {
            if off < start && cookie >= INLINE_COOKIE_BASE {
                return true;
            }
            let next = INLINE_COOKIE_BASE + (off + rec) as u64;
            f(&DirEntry {
                ino,
                name,
                kind: FileType::from_dirent(t),
                next_cookie: next,
            })
        })?;
        Ok(())
    }

    /// The dirent area of an inline directory: `i_block[4..]` followed by `system.data`.
    fn inline_dir_bytes(&mut self, inode: &Inode) -> Result<Vec<u8>> {
        let mut v = inode.iblock.get(4..).unwrap_or(&[]).to_vec();
        if let Ok(extra) = self.xattr_get_inode(inode, 7, b"data") {
            v.extend_from_slice(&extra);
        }
        Ok(v)
    }

    /// All entries of `dir` (including `.` and `..`).
    pub fn read_dir(&mut self, dir: Ino) -> Result<Vec<OwnedDirEntry>> {
        let mut v = Vec::new();
        self.readdir(dir, 0, |e| {
            v.push(OwnedDirEntry {
                ino: e.ino,
                name: e.name.to_vec(),
                kind: e.kind,
            });
            true
        })?;
        Ok(v)
    }

    /// Look `name` up in directory `dir` (through the htree index when there is one).
    pub fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Ino> {
        if name.is_empty() || name.len() > NAME_MAX || name.iter().any(|&c| c == b'/' || c == 0) {
            return Err(Error::InvalidName);
        }
        let inode = self.dir_inode(dir)?;
        if inode.flags & flags::INLINE_DATA != 0 {
            if name == b"." {
                return Ok(dir);
            }
            if name == b".." {
                return Ok(le32(&inode.iblock, 0));
            }
            let data = self.inline_dir_bytes(&inode)?;
            let mut found = None;
            let ctx = self.ctx;
            walk_inline(&ctx, &data, u64::from(dir), |_, ino, n, _, _| {
                if n == name {
                    found = Some(ino);
                    return false;
                }
                true
            })?;
            return found.ok_or(Error::NotFound);
        }
        if name == b"." || name == b".." {
            // Both live in the first block (ahead of the dx root in an indexed directory).
            return self.search_leaf(&inode, 0, name)?.ok_or(Error::NotFound);
        }
        if inode.flags & flags::INDEX != 0 && self.ctx.dir_index {
            if let Some(r) = self.dx_lookup(&inode, name)? {
                return r.ok_or(Error::NotFound);
            }
        }
        self.linear_lookup(&inode, name)
    }

    fn search_leaf(&mut self, inode: &Inode, lblk: u64, name: &[u8]) -> Result<Option<Ino>> {
        let ctx = self.ctx;
        let run = self.map(inode, lblk)?;
        let Some(phys) = run.phys else {
            return Ok(None);
        };
        let b = self.block(phys)?;
        let leaf = Self::verify_dir_block(&ctx, inode, lblk, b, phys)?;
        if !leaf && lblk != 0 {
            return Ok(None);
        }
        let mut found = None;
        Self::walk_block(&ctx, b, phys, 0, |_, ino, n, _, _| {
            if n == name {
                found = Some(ino);
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    fn linear_lookup(&mut self, inode: &Inode, name: &[u8]) -> Result<Ino> {
        let nblocks = inode.size / self.ctx.bs as u64;
        for lblk in 0..nblocks {
            if let Some(ino) = self.search_leaf(inode, lblk, name)? {
                return Ok(ino);
            }
        }
        Err(Error::NotFound)
    }

    /// Read a dx node: returns its (hash, block) entries, entry 0's hash being 0.
    fn dx_node(&mut self, inode: &Inode, lblk: u64, root: bool) -> Result<DxNode> {
        let ctx = self.ctx;
        let run = self.map(inode, lblk)?;
        let phys = run.phys.ok_or(Error::Corrupt {
            what: "dx node hole",
            at: u64::from(inode.ino),
        })?;
        let b = self.block(phys)?;
        let (count_off, hash_version, levels) = if root {
            let info_len = usize::from(b.get(0x1D).copied().unwrap_or(0));
            if le32(b, 0x18) != 0 || info_len != 8 {
                return corrupt("dx root", phys);
            }
            (
                0x18 + info_len,
                b.get(0x1C).copied().unwrap_or(0),
                b.get(0x1E).copied().unwrap_or(0),
            )
        } else {
            if le32(b, 0) != 0 || usize::from(le16(b, 4)) != ctx.bs {
                return corrupt("dx node", phys);
            }
            (8, 0, 0)
        };
        if ctx.csum {
            verify_dx_csum(b, count_off, inode.seed, phys)?;
        }
        let limit = usize::from(le16(b, count_off));
        let count = usize::from(le16(b, count_off + 2));
        if count == 0 || count > limit || count_off + limit * 8 > ctx.bs {
            return corrupt("dx count", phys);
        }
        let mut v = Vec::with_capacity(count);
        for i in 0..count {
            let o = count_off + i * 8;
            let h = if i == 0 { 0 } else { le32(b, o) };
            v.push((h, le32(b, o + 4)));
        }
        Ok((v, hash_version, levels))
    }

    /// htree lookup. `Ok(None)` means the index cannot be used (fall back to linear search);
    /// `Ok(Some(None))` means the name is not there.
    fn dx_lookup(&mut self, inode: &Inode, name: &[u8]) -> Result<Option<Option<Ino>>> {
        let (root, mut version, levels) = self.dx_node(inode, 0, true)?;
        let max_levels = if self.ctx.largedir { 3 } else { 2 };
        if levels >= max_levels {
            return corrupt("dx depth", u64::from(inode.ino));
        }
        if version <= hash::TEA && self.ctx.hash_unsigned {
            version += 3;
        }
        let Some(h) = hash::dirhash(name, version, self.ctx.hash_seed) else {
            return Ok(None);
        };
        let nblocks = inode.size / self.ctx.bs as u64;
        // Stack of (entries, chosen index).
        let mut frames: Vec<(Vec<(u32, u32)>, usize)> = Vec::new();
        let pick = |entries: &[(u32, u32)]| -> usize {
            let mut idx = 0;
            for (i, &(eh, _)) in entries.iter().enumerate().skip(1) {
                if eh <= h {
                    idx = i;
                } else {
                    break;
                }
            }
            idx
        };
        let i = pick(&root);
        frames.push((root, i));
        for _ in 0..levels {
            let Some((entries, i)) = frames.last() else {
                break;
            };
            let blk = u64::from(entries.get(*i).map_or(0, |e| e.1));
            if blk == 0 || blk >= nblocks {
                return corrupt("dx block pointer", u64::from(inode.ino));
            }
            let (node, _, _) = self.dx_node(inode, blk, false)?;
            let i = pick(&node);
            frames.push((node, i));
        }
        // Visit the leaf, then continuation leaves that share the hash.
        for _ in 0..nblocks {
            let Some((entries, i)) = frames.last() else {
                break;
            };
            let leaf = u64::from(entries.get(*i).map_or(0, |e| e.1));
            if leaf == 0 || leaf >= nblocks {
                return corrupt("dx leaf pointer", u64::from(inode.ino));
            }
            if let Some(ino) = self.search_leaf(inode, leaf, name)? {
                return Ok(Some(Some(ino)));
            }
            // Advance to the next leaf in hash order.
            let mut depth = frames.len();
            loop {
                let Some((entries, i)) = frames.get_mut(depth - 1) else {
                    return Ok(Some(None));
                };
                *i += 1;
                if *i < entries.len() {
                    break;
                }
                if depth == 1 {
                    return Ok(Some(None));
                }
                depth -= 1;
            }
            let next_hash = frames
                .get(depth - 1)
                .and_then(|(e, i)| e.get(*i))
                .map_or(0, |e| e.0);
            if next_hash & !1 != h {
                return Ok(Some(None));
            }
            frames.truncate(depth);
            while frames.len() < usize::from(levels) + 1 {
                let Some((entries, i)) = frames.last() else {
                    break;
                };
                let blk = u64::from(entries.get(*i).map_or(0, |e| e.1));
                if blk == 0 || blk >= nblocks {
                    return corrupt("dx block pointer", u64::from(inode.ino));
                }
                let (node, _, _) = self.dx_node(inode, blk, false)?;
                frames.push((node, 0));
            }
        }
        Ok(Some(None))
    }

    /// Resolve an absolute or root-relative path (`/`-separated, no symlink following).
    pub fn lookup_path(&mut self, path: &[u8]) -> Result<Ino> {
        let mut ino = ROOT_INO;
        for comp in path.split(|&c| c == b'/') {
            if comp.is_empty() || comp == b"." {
                continue;
            }
            ino = self.lookup(ino, comp)?;
        }
        Ok(ino)
    }

    // ---- xattrs ----

    fn xattr_entries(&mut self, inode: &Inode) -> Result<Vec<Xattr>> {
        let mut out = Vec::new();
        let ctx = self.ctx;
        // In-inode area.
        if ctx.inode_size > 128 {
            let raw = self.inode_raw(inode.ino)?;
            let extra = usize::from(le16(&raw, 0x80));
            let start = 128 + extra;
            if start + 4 <= raw.len() && le32(&raw, start) == 0xEA02_0000 {
                let area = raw.get(start + 4..).unwrap_or(&[]);
                parse_xattrs(area, 0, area, &mut out, u64::from(inode.ino))?;
            }
        }
        if inode.file_acl != 0 {
            let blk = inode.file_acl;
            self.check_phys(blk, 1, inode.ino)?;
            let b = self.block(blk)?.to_vec();
            if le32(&b, 0) != 0xEA02_0000 || le32(&b, 8) != 1 {
                return corrupt("xattr block header", blk);
            }
            if ctx.csum {
                let mut c = crc32c_raw(ctx.seed, &blk.to_le_bytes());
                c = crc32c_raw(c, b.get(..0x10).unwrap_or(&[]));
                c = crc32c_raw(c, &[0; 4]);
                c = crc32c_raw(c, b.get(0x14..).unwrap_or(&[]));
                if c != le32(&b, 0x10) {
                    return Err(Error::Checksum {
                        what: "xattr block",
                        at: blk,
                    });
                }
            }
            let entries = b.get(0x20..).unwrap_or(&[]);
            parse_xattrs(entries, 0x20, &b, &mut out, blk)?;
        }
        Ok(out)
    }

    fn xattr_get_inode(&mut self, inode: &Inode, index: u8, name: &[u8]) -> Result<Vec<u8>> {
        let all = self.xattr_entries(inode)?;
        all.into_iter()
            .find(|(i, n, _)| *i == index && n == name)
            .map(|(_, _, v)| v)
            .ok_or(Error::NoXattr)
    }

    /// Names of the extended attributes of `ino` (full names, e.g. `user.foo`).
    /// `system.data` (inline data) is not listed.
    pub fn listxattr(&mut self, ino: Ino) -> Result<Vec<Vec<u8>>> {
        let inode = self.load_inode(ino)?;
        let mut v = Vec::new();
        for (idx, name, _) in self.xattr_entries(&inode)? {
            if let Some(p) = xattr_prefix(idx) {
                let mut full = p.to_vec();
                full.extend_from_slice(&name);
                v.push(full);
            }
        }
        Ok(v)
    }

    /// Value of extended attribute `name` (full name) of `ino`. POSIX ACLs
    /// (`system.posix_acl_access`/`_default`) are converted from ext4's compact on-disk form to
    /// the Linux xattr form (version 2, 8-byte entries), as `getxattr(2)` returns them.
    pub fn getxattr(&mut self, ino: Ino, name: &[u8]) -> Result<Vec<u8>> {
        let inode = self.load_inode(ino)?;
        for (idx, n, val) in self.xattr_entries(&inode)? {
            if let Some(p) = xattr_prefix(idx) {
                if name.len() == p.len() + n.len() && name.starts_with(p) && name.ends_with(&n) {
                    if idx == 2 || idx == 3 {
                        return acl_to_xattr(&val, u64::from(ino));
                    }
                    return Ok(val);
                }
            }
        }
        Err(Error::NoXattr)
    }
}

/// Convert an ext4 on-disk POSIX ACL (version 1; 4-byte entries for the owner, group, mask and
/// other tags, 8-byte entries with an id for named users and groups) to the xattr form.
fn acl_to_xattr(disk: &[u8], at: u64) -> Result<Vec<u8>> {
    if disk.len() < 4 || le32(disk, 0) != 1 {
        return corrupt("posix acl", at);
    }
    let mut out = Vec::with_capacity(disk.len() * 2);
    out.extend_from_slice(&2u32.to_le_bytes());
    let mut off = 4;
    while off < disk.len() {
        let tag = le16(disk, off);
        let perm = le16(disk, off + 2);
        let (id, len) = match tag {
            // ACL_USER, ACL_GROUP
            2 | 8 => (le32(disk, off + 4), 8),
            // ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER
            1 | 4 | 0x10 | 0x20 => (u32::MAX, 4),
            _ => return corrupt("posix acl tag", at),
        };
        if off + len > disk.len() {
            return corrupt("posix acl", at);
        }
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        off += len;
    }
    Ok(out)
}

/// A directory entry name must be non-empty and hold no `/` or NUL (a hostile image could
/// otherwise smuggle a path into a client or a host-side copy).
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.iter().any(|&c| c == b'/' || c == 0)
}

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

fn xattr_prefix(idx: u8) -> Option<&'static [u8]> {
    Some(match idx {
        1 => b"user.",
        2 => b"system.posix_acl_access",
        3 => b"system.posix_acl_default",
        4 => b"trusted.",
        6 => b"security.",
        _ => return None,
    })
}

/// Parse xattr entries from `entries`; value offsets are relative to `values` (whose byte 0 is
/// `base` bytes before `entries`' byte 0 in the block case, or the entries start in the
/// in-inode case).
fn parse_xattrs(
    entries: &[u8],
    _base: usize,
    values: &[u8],
    out: &mut Vec<Xattr>,
    at: u64,
) -> Result<()> {
    let mut off = 0usize;
    for _ in 0..1024 {
        if off + 4 > entries.len() || le32(entries, off) == 0 {
            return Ok(());
        }
        let name_len = usize::from(entries.get(off).copied().unwrap_or(0));
        let index = entries.get(off + 1).copied().unwrap_or(0);
        let value_offs = usize::from(le16(entries, off + 2));
        let value_inum = le32(entries, off + 4);
        let value_size = le32(entries, off + 8) as usize;
        let name = entries
            .get(off + 16..off + 16 + name_len)
            .ok_or(Error::Corrupt {
                what: "xattr entry",
                at,
            })?;
        if value_inum != 0 {
            return Err(Error::Unsupported {
                what: "xattr value in an inode (ea_inode)",
            });
        }
        let value = values
            .get(value_offs..value_offs.saturating_add(value_size))
            .ok_or(Error::Corrupt {
                what: "xattr value",
                at,
            })?;
        out.push((index, name.to_vec(), value.to_vec()));
        off += (16 + name_len + 3) & !3;
    }
    corrupt("xattr entry count", at)
}

fn walk_inline<F>(ctx: &Ctx, data: &[u8], at: u64, mut f: F) -> Result<()>
where
    F: FnMut(usize, u32, &[u8], u8, usize) -> bool,
{
    let mut off = 0usize;
    while off + 8 <= data.len() {
        let ino = le32(data, off);
        let rec = usize::from(le16(data, off + 4));
        let name_len = usize::from(data.get(off + 6).copied().unwrap_or(0));
        let t = data.get(off + 7).copied().unwrap_or(0);
        if rec < 8 || off + rec > data.len() || 8 + name_len > rec {
            return corrupt("inline directory entry", at);
        }
        if ino != 0 {
            if ino > ctx.inodes_count {
                return corrupt("inline directory entry inode", at);
            }
            let name = data.get(off + 8..off + 8 + name_len).unwrap_or(&[]);
            if !valid_name(name) {
                return corrupt("inline directory entry name", at);
            }
            if !f(off, ino, name, t, rec) {
                return Ok(());
            }
        }
        off += rec;
    }
    Ok(())
}

fn verify_dx_csum(b: &[u8], count_off: usize, seed: u32, at: u64) -> Result<()> {
    let limit = usize::from(le16(b, count_off));
    let count = usize::from(le16(b, count_off + 2));
    let tail = count_off + limit * 8;
    if count > limit || tail + 8 > b.len() {
        return Err(Error::Corrupt {
            what: "dx node limit",
            at,
        });
    }
    // Linux `ext4_dx_csum`: the used entries, then the tail with its checksum field zeroed.
    let mut c = crc32c_raw(seed, b.get(..count_off + count * 8).unwrap_or(&[]));
    c = crc32c_raw(c, b.get(tail..tail + 4).unwrap_or(&[]));
    c = crc32c_raw(c, &[0; 4]);
    if c != le32(b, tail + 4) {
        return Err(Error::Checksum {
            what: "dx node",
            at,
        });
    }
    Ok(())
}

fn ts(sec: u32, extra: Option<u32>) -> Timestamp {
    let base = i64::from(sec as i32);
    match extra {
        Some(x) => Timestamp {
            sec: base + (i64::from(x & 3) << 32),
            nsec: (x >> 2).min(999_999_999),
        },
        None => Timestamp { sec: base, nsec: 0 },
    }
}

fn parse_inode(raw: &[u8], ino: Ino, ctx: &Ctx) -> Result<Inode> {
    let at = u64::from(ino);
    let isz = raw.len();
    let extra_isize = if isz > 128 {
        usize::from(le16(raw, 0x80))
    } else {
        0
    };
    if isz > 128 && (128 + extra_isize > isz || extra_isize % 4 != 0) {
        return corrupt("inode extra size", at);
    }
    let generation = le32(raw, 0x64);
    let mut seed = 0;
    if ctx.csum {
        seed = crc32c_raw(ctx.seed, &ino.to_le_bytes());
        seed = crc32c_raw(seed, &generation.to_le_bytes());
        let has_hi = extra_isize >= 4;
        let mut c = crc32c_raw(seed, raw.get(..0x7C).unwrap_or(&[]));
        c = crc32c_raw(c, &[0, 0]);
        c = crc32c_raw(c, raw.get(0x7E..0x80).unwrap_or(&[]));
        if isz > 128 {
            c = crc32c_raw(c, raw.get(0x80..0x82).unwrap_or(&[]));
            if has_hi {
                c = crc32c_raw(c, &[0, 0]);
                c = crc32c_raw(c, raw.get(0x84..).unwrap_or(&[]));
            } else {
                c = crc32c_raw(c, raw.get(0x82..).unwrap_or(&[]));
            }
        }
        let stored_lo = u32::from(le16(raw, 0x7C));
        let ok = if has_hi {
            c == stored_lo | (u32::from(le16(raw, 0x82)) << 16)
        } else {
            (c & 0xFFFF) == stored_lo
        };
        if !ok {
            return Err(Error::Checksum { what: "inode", at });
        }
    }
    let mode = le16(raw, 0);
    let links = le16(raw, 0x1A);
    if mode == 0 && links == 0 {
        return Err(Error::BadInode { ino });
    }
    let flags = le32(raw, 0x20);
    let extra_ok = |off: usize| {
        if 128 + extra_isize >= off + 4 {
            Some(le32(raw, off))
        } else {
            None
        }
    };
    let blocks_raw = u64::from(le32(raw, 0x1C))
        | if ctx.huge_file {
            u64::from(le16(raw, 0x74)) << 32
        } else {
            0
        };
    let blocks = if ctx.huge_file && flags & flags::HUGE_FILE != 0 {
        blocks_raw.saturating_mul(ctx.bs as u64 / 512)
    } else {
        blocks_raw
    };
    let mut iblock = [0u8; 60];
    iblock.copy_from_slice(raw.get(0x28..0x64).unwrap_or(&[0; 60]));
    let crtime = extra_ok(0x90).map(|s| ts(s, extra_ok(0x94)));
    Ok(Inode {
        ino,
        mode,
        uid: u32::from(le16(raw, 0x2)) | (u32::from(le16(raw, 0x78)) << 16),
        gid: u32::from(le16(raw, 0x18)) | (u32::from(le16(raw, 0x7A)) << 16),
        size: u64::from(le32(raw, 0x4)) | (u64::from(le32(raw, 0x6C)) << 32),
        links,
        blocks,
        flags,
        generation,
        file_acl: u64::from(le32(raw, 0x68)) | (u64::from(le16(raw, 0x76)) << 32),
        atime: ts(le32(raw, 0x8), extra_ok(0x8C)),
        ctime: ts(le32(raw, 0xC), extra_ok(0x84)),
        mtime: ts(le32(raw, 0x10), extra_ok(0x88)),
        crtime,
        iblock,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_is_send() {
        fn is_send<T: Send>() {}
        is_send::<Ext4<crate::block::MemDisk<'static>>>();
        is_send::<Ext4<&mut crate::block::MemDisk<'static>>>();
    }

    #[test]
    fn timestamps_decode_epoch_bits() {
        assert_eq!(ts(5, None), Timestamp { sec: 5, nsec: 0 });
        assert_eq!(ts(0xFFFF_FFFF, Some(0)), Timestamp { sec: -1, nsec: 0 });
        assert_eq!(
            ts(0, Some(1 | (7 << 2))),
            Timestamp {
                sec: 1 << 32,
                nsec: 7
            }
        );
    }

    #[test]
    fn crc_raw_matches_linux_convention() {
        // Linux: crc32c(~0, "123456789") without final xor = ~0xE3069283.
        assert_eq!(crc32c_raw(!0, b"123456789"), !0xE306_9283);
    }
}

/// What [`Ext4::scan`] visited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Inodes whose attributes were read.
    pub inodes: u64,
    /// Directories listed.
    pub dirs: u64,
    /// File bytes read.
    pub bytes: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<Error>,
}

impl<D: BlockDevice> Ext4<D> {
    /// Visit the tree from the root breadth-first: every entry's attributes, every directory
    /// listing, file contents (data ranges only, up to `max_file_bytes` per file), symlink
    /// targets and xattrs. Errors are counted, not returned, so that a damaged image is read as
    /// far as possible. At most `max_inodes` entries are visited; each directory once.
    pub fn scan(&mut self, max_inodes: u64, max_file_bytes: u64) -> ScanStats {
        let mut st = ScanStats::default();
        let note = |st: &mut ScanStats, e: Error| {
            st.errors += 1;
            if st.first_error.is_none() {
                st.first_error = Some(e);
            }
        };
        let mut seen_dirs = alloc::collections::BTreeSet::new();
        let mut queue = alloc::collections::VecDeque::new();
        queue.push_back(ROOT_INO);
        seen_dirs.insert(ROOT_INO);
        let mut buf = vec![0u8; 64 * 1024];
        while let Some(dir) = queue.pop_front() {
            st.dirs += 1;
            let entries = match self.read_dir(dir) {
                Ok(e) => e,
                Err(e) => {
                    note(&mut st, e);
                    continue;
                }
            };
            if let Err(e) = self.lookup(dir, b"..") {
                note(&mut st, e);
            }
            for ent in entries {
                if ent.name == b"." || ent.name == b".." {
                    continue;
                }
                if st.inodes >= max_inodes {
                    return st;
                }
                st.inodes += 1;
                if let Err(e) = self.lookup(dir, &ent.name) {
                    note(&mut st, e);
                }
                let attr = match self.getattr(ent.ino) {
                    Ok(a) => a,
                    Err(e) => {
                        note(&mut st, e);
                        continue;
                    }
                };
                match self.listxattr(ent.ino) {
                    Ok(names) => {
                        for n in names {
                            if let Err(e) = self.getxattr(ent.ino, &n) {
                                note(&mut st, e);
                            }
                        }
                    }
                    Err(e) => note(&mut st, e),
                }
                match attr.kind {
                    FileType::Directory if seen_dirs.insert(ent.ino) => queue.push_back(ent.ino),
                    FileType::Symlink => {
                        if let Err(e) = self.readlink(ent.ino) {
                            note(&mut st, e);
                        }
                    }
                    FileType::Regular => {
                        let ranges = match self.data_ranges(ent.ino) {
                            Ok(r) => r,
                            Err(e) => {
                                note(&mut st, e);
                                continue;
                            }
                        };
                        let mut budget = max_file_bytes;
                        'file: for (off, len) in ranges {
                            let mut pos = off;
                            while pos < off + len && budget > 0 {
                                let want = (off + len - pos).min(buf.len() as u64).min(budget);
                                let b = buf.get_mut(..want as usize).unwrap_or(&mut []);
                                match self.read(ent.ino, pos, b) {
                                    Ok(0) => break 'file,
                                    Ok(n) => {
                                        pos += n as u64;
                                        budget = budget.saturating_sub(n as u64);
                                        st.bytes += n as u64;
                                    }
                                    Err(e) => {
                                        note(&mut st, e);
                                        break 'file;
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        st
    }
}
