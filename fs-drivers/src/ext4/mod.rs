//! The ext4 engine: an inode-based API over a [`BlockDevice`], shaped for a file server, that
//! reads and writes ext2/3/4 images.
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
//!
//! # Layout
//! The engine is one type, [`Ext4`], whose methods are spread over files by feature:
//! - `mount`: mount, read-write policy, clean state, sync; raw block access.
//! - `inode`: parsing and patching inodes; `namei` and `rename`: namespace operations;
//!   `orphan`: open-unlinked inodes.
//! - `read`, `readahead` and `write`: file data. `extent`: block maps (`extent::map` for
//!   reads, `extent::write` for the writer's extent trees, `extent::truncate`).
//! - `dir`: lookups, linear directories, the htree index and entry changes.
//! - `xattr`: extended attributes and ACLs. `allocate`: block and inode allocation.
//! - [`journal`]: replaying (`journal::replay`) and writing (`journal::commit`) the jbd2 log.
//! - [`sb`]: the superblock and group descriptors. `scan`: a whole-tree check.
//! - `grow`: growing the file system into a larger device ([`Ext4::grow`]).

mod allocate;
mod bytes;
mod dir;
mod error;
mod extent;
mod gdt;
mod grow;
mod inode;
pub mod journal;
mod mount;
mod namei;
mod orphan;
mod read;
mod readahead;
mod rename;
pub mod sb;
mod scan;
pub mod shared;
mod types;
mod write;
mod xattr;
mod zone;

use crate::block::BlockDevice;
use crate::cache::BlockCache;
use ::alloc::collections::BTreeMap;
use ::alloc::vec::Vec;
pub use error::{Error, Result};
use readahead::{Stream, RA_STREAMS};
pub use sb::{GroupDesc, Superblock};
pub use scan::ScanStats;
pub use types::{
    flags, mode, Attr, DirEntry, Fallocate, FileType, Options, OwnedDirEntry, RenameFlags, SetAttr,
    StatFs, Timestamp, XattrSet,
};

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

/// Constants derived from the superblock, copied so parsers can run while the cache is
/// borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
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
    /// The orphan file's blocks and where this mount's orphans are in it.
    orphans: orphan::Orphans,
    /// The journal being written (read-write mounts of journalled file systems).
    jnl: Option<journal::Jnl>,
    /// Sequential readers of a few files, to read ahead for them ([`Ext4::read`]).
    ra_last: [Stream; RA_STREAMS],
    ra_next: usize,
    /// The blocks of the file system's own metadata ([`zone::SystemZone`]).
    zone: zone::SystemZone,
    /// Bitmaps that failed their checksum this mount (by block-cache tag: group and kind);
    /// allocation looks elsewhere (`allocate/bitmaps.rs`).
    refused: alloc::collections::BTreeSet<u64>,
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
}
