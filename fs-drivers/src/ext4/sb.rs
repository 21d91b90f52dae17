//! The ext4 superblock and group descriptors: parsing, validation and the feature policy.

use crate::crc::{crc16, crc32c_raw};
use crate::ext4::bytes::{le16, le32};
use crate::ext4::error::{Error, Result};
use alloc::vec::Vec;

/// Byte offset of the primary superblock on the device.
pub const SUPERBLOCK_OFFSET: u64 = 1024;

/// Whether the superblock's raw 1,024 bytes match their `s_checksum` (crc32c of the bytes
/// before it); a mismatch is reported at the superblock's byte offset.
pub(crate) fn verify_sb_csum(raw: &[u8]) -> Result<(), Error> {
    if crc32c_raw(!0, raw.get(..s::CHECKSUM).unwrap_or(&[])) == le32(raw, s::CHECKSUM) {
        Ok(())
    } else {
        Err(Error::Checksum {
            what: "superblock",
            at: SUPERBLOCK_OFFSET,
        })
    }
}
/// Superblock magic.
pub const MAGIC: u16 = 0xEF53;

/// Superblock field offsets (`struct ext4_super_block`); the accessor in `bytes.rs` gives the
/// width. Every read and write of a raw superblock field names it here.
pub(crate) mod s {
    /// `s_inodes_count`.
    pub(crate) const INODES_COUNT: usize = 0x0;
    /// `s_blocks_count_lo`.
    pub(crate) const BLOCKS_COUNT: usize = 0x4;
    /// `s_r_blocks_count_lo`.
    pub(crate) const R_BLOCKS_COUNT: usize = 0x8;
    /// `s_free_blocks_count_lo`.
    pub(crate) const FREE_BLOCKS: usize = 0xC;
    /// `s_free_inodes_count`.
    pub(crate) const FREE_INODES: usize = 0x10;
    /// `s_first_data_block`.
    pub(crate) const FIRST_DATA_BLOCK: usize = 0x14;
    /// `s_log_block_size`.
    pub(crate) const LOG_BLOCK_SIZE: usize = 0x18;
    /// `s_log_cluster_size`.
    pub(crate) const LOG_CLUSTER_SIZE: usize = 0x1C;
    /// `s_blocks_per_group`.
    pub(crate) const BLOCKS_PER_GROUP: usize = 0x20;
    /// `s_clusters_per_group`.
    pub(crate) const CLUSTERS_PER_GROUP: usize = 0x24;
    /// `s_inodes_per_group`.
    pub(crate) const INODES_PER_GROUP: usize = 0x28;
    /// `s_mtime`.
    pub(crate) const MTIME: usize = 0x2C;
    /// `s_wtime`.
    pub(crate) const WTIME: usize = 0x30;
    /// `s_mnt_count` (u16).
    pub(crate) const MNT_COUNT: usize = 0x34;
    /// `s_magic` (u16).
    pub(crate) const MAGIC: usize = 0x38;
    /// `s_state` (u16).
    pub(crate) const STATE: usize = 0x3A;
    /// `s_errors` (u16).
    pub(crate) const ERRORS: usize = 0x3C;
    /// `s_rev_level`.
    pub(crate) const REV_LEVEL: usize = 0x4C;
    /// `s_first_ino`.
    pub(crate) const FIRST_INO: usize = 0x54;
    /// `s_inode_size` (u16).
    pub(crate) const INODE_SIZE: usize = 0x58;
    /// `s_block_group_nr` (u16): the group a superblock copy is in.
    pub(crate) const BLOCK_GROUP_NR: usize = 0x5A;
    /// `s_feature_compat`.
    pub(crate) const FEATURE_COMPAT: usize = 0x5C;
    /// `s_feature_incompat`.
    pub(crate) const FEATURE_INCOMPAT: usize = 0x60;
    /// `s_feature_ro_compat`.
    pub(crate) const FEATURE_RO_COMPAT: usize = 0x64;
    /// `s_uuid[16]`.
    pub(crate) const UUID: core::ops::Range<usize> = 0x68..0x78;
    /// `s_volume_name[16]`.
    pub(crate) const VOLUME_NAME: core::ops::Range<usize> = 0x78..0x88;
    /// `s_last_mounted[64]`.
    pub(crate) const LAST_MOUNTED: core::ops::Range<usize> = 0x88..0xC8;
    /// `s_reserved_gdt_blocks` (u16).
    pub(crate) const RESERVED_GDT_BLOCKS: usize = 0xCE;
    /// `s_journal_inum`.
    pub(crate) const JOURNAL_INUM: usize = 0xE0;
    /// `s_last_orphan`: head of the orphan list.
    pub(crate) const LAST_ORPHAN: usize = 0xE8;
    /// `s_hash_seed[4]` (four u32).
    pub(crate) const HASH_SEED: usize = 0xEC;
    /// `s_def_hash_version` (u8).
    pub(crate) const DEF_HASH_VERSION: usize = 0xFC;
    /// `s_desc_size` (u16).
    pub(crate) const DESC_SIZE: usize = 0xFE;
    /// `s_first_meta_bg`.
    pub(crate) const FIRST_META_BG: usize = 0x104;
    /// `s_mkfs_time`.
    pub(crate) const MKFS_TIME: usize = 0x108;
    /// `s_blocks_count_hi`.
    pub(crate) const BLOCKS_COUNT_HI: usize = 0x150;
    /// `s_r_blocks_count_hi`.
    pub(crate) const R_BLOCKS_COUNT_HI: usize = 0x154;
    /// `s_free_blocks_count_hi`.
    pub(crate) const FREE_BLOCKS_HI: usize = 0x158;
    /// `s_min_extra_isize` (u16).
    pub(crate) const MIN_EXTRA_ISIZE: usize = 0x15C;
    /// `s_flags`.
    pub(crate) const FLAGS: usize = 0x160;
    /// `s_log_groups_per_flex` (u8).
    pub(crate) const LOG_GROUPS_PER_FLEX: usize = 0x174;
    /// `s_checksum_type` (u8).
    pub(crate) const CHECKSUM_TYPE: usize = 0x175;
    /// `s_overhead_clusters`.
    pub(crate) const OVERHEAD_CLUSTERS: usize = 0x248;
    /// `s_checksum_seed`.
    pub(crate) const CHECKSUM_SEED: usize = 0x270;
    /// `s_orphan_file_inum`.
    pub(crate) const ORPHAN_FILE_INUM: usize = 0x280;
    /// `s_checksum`: crc32c of the bytes before it.
    pub(crate) const CHECKSUM: usize = 0x3FC;
}

/// Group descriptor field offsets (`struct ext4_group_desc`); the `_HI` halves exist only in
/// 64-byte descriptors.
pub(crate) mod bg {
    /// `bg_block_bitmap_lo`.
    pub(crate) const BLOCK_BITMAP: usize = 0x0;
    /// `bg_inode_bitmap_lo`.
    pub(crate) const INODE_BITMAP: usize = 0x4;
    /// `bg_inode_table_lo`.
    pub(crate) const INODE_TABLE: usize = 0x8;
    /// `bg_free_blocks_count_lo` (u16).
    pub(crate) const FREE_BLOCKS: usize = 0xC;
    /// `bg_free_inodes_count_lo` (u16).
    pub(crate) const FREE_INODES: usize = 0xE;
    /// `bg_used_dirs_count_lo` (u16).
    pub(crate) const USED_DIRS: usize = 0x10;
    /// `bg_flags` (u16).
    pub(crate) const FLAGS: usize = 0x12;
    /// `bg_block_bitmap_csum_lo` (u16).
    pub(crate) const BLOCK_BITMAP_CSUM: usize = 0x18;
    /// `bg_inode_bitmap_csum_lo` (u16).
    pub(crate) const INODE_BITMAP_CSUM: usize = 0x1A;
    /// `bg_itable_unused_lo` (u16).
    pub(crate) const ITABLE_UNUSED: usize = 0x1C;
    /// `bg_checksum` (u16).
    pub(crate) const CHECKSUM: usize = 0x1E;
    /// `bg_block_bitmap_hi`.
    pub(crate) const BLOCK_BITMAP_HI: usize = 0x20;
    /// `bg_inode_bitmap_hi`.
    pub(crate) const INODE_BITMAP_HI: usize = 0x24;
    /// `bg_inode_table_hi`.
    pub(crate) const INODE_TABLE_HI: usize = 0x28;
    /// `bg_free_blocks_count_hi` (u16).
    pub(crate) const FREE_BLOCKS_HI: usize = 0x2C;
    /// `bg_free_inodes_count_hi` (u16).
    pub(crate) const FREE_INODES_HI: usize = 0x2E;
    /// `bg_used_dirs_count_hi` (u16).
    pub(crate) const USED_DIRS_HI: usize = 0x30;
    /// `bg_itable_unused_hi` (u16).
    pub(crate) const ITABLE_UNUSED_HI: usize = 0x32;
    /// `bg_block_bitmap_csum_hi` (u16).
    pub(crate) const BLOCK_BITMAP_CSUM_HI: usize = 0x38;
    /// `bg_inode_bitmap_csum_hi` (u16).
    pub(crate) const INODE_BITMAP_CSUM_HI: usize = 0x3A;
}

/// COMPAT feature names (bit, name).
pub const COMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "dir_prealloc"),
    (0x2, "imagic_inodes"),
    (0x4, "has_journal"),
    (0x8, "ext_attr"),
    (0x10, "resize_inode"),
    (0x20, "dir_index"),
    (0x40, "lazy_bg"),
    (0x100, "exclude_bitmap"),
    (0x200, "sparse_super2"),
    (0x400, "fast_commit"),
    (0x800, "stable_inodes"),
    (0x1000, "orphan_file"),
];
/// INCOMPAT feature names (bit, name).
pub const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "compression"),
    (0x2, "filetype"),
    (0x4, "needs_recovery"),
    (0x8, "journal_dev"),
    (0x10, "meta_bg"),
    (0x40, "extent"),
    (0x80, "64bit"),
    (0x100, "mmp"),
    (0x200, "flex_bg"),
    (0x400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];
/// RO_COMPAT feature names (bit, name).
pub const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "sparse_super"),
    (0x2, "large_file"),
    (0x4, "btree_dir"),
    (0x8, "huge_file"),
    (0x10, "uninit_bg"),
    (0x20, "dir_nlink"),
    (0x40, "extra_isize"),
    (0x80, "snapshot"),
    (0x100, "quota"),
    (0x200, "bigalloc"),
    (0x400, "metadata_csum"),
    (0x800, "replica"),
    (0x1000, "read-only"),
    (0x2000, "project"),
    (0x4000, "shared_blocks"),
    (0x8000, "verity"),
    (0x10000, "orphan_present"),
];

pub(crate) const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub(crate) const COMPAT_RESIZE_INODE: u32 = 0x10;
pub(crate) const COMPAT_DIR_INDEX: u32 = 0x20;
pub(crate) const INCOMPAT_FILETYPE: u32 = 0x2;
pub(crate) const INCOMPAT_RECOVER: u32 = 0x4;
pub(crate) const INCOMPAT_META_BG: u32 = 0x10;
pub(crate) const INCOMPAT_64BIT: u32 = 0x80;
pub(crate) const INCOMPAT_FLEX_BG: u32 = 0x200;
pub(crate) const INCOMPAT_CSUM_SEED: u32 = 0x2000;
pub(crate) const INCOMPAT_LARGEDIR: u32 = 0x4000;
pub(crate) const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub(crate) const RO_COMPAT_HUGE_FILE: u32 = 0x8;
pub(crate) const RO_COMPAT_GDT_CSUM: u32 = 0x10;
pub(crate) const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
pub(crate) const RO_COMPAT_BIGALLOC: u32 = 0x200;

/// INCOMPAT bits this engine reads correctly (`needs_recovery` is handled separately).
const INCOMPAT_SUPPORTED: u32 =
    0x2 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x2000 | 0x4000 | 0x8000;
/// RO_COMPAT bits this engine knows (all of them are harmless for reading).
const RO_COMPAT_KNOWN: u32 = 0x1ffff & !0x80 & !0x800 & !0x4000;

/// Name of a feature bit, or `"unknown"`.
pub fn feature_name(table: &[(u32, &'static str)], bit: u32) -> &'static str {
    table
        .iter()
        .find(|(b, _)| *b == bit)
        .map_or("unknown", |(_, n)| n)
}

/// The superblock fields the engine uses.
#[derive(Debug, Clone)]
#[allow(
    missing_docs,
    reason = "fields mirror the on-disk struct ext4_super_block"
)]
pub struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u64,
    pub r_blocks_count: u64,
    pub free_blocks_count: u64,
    pub free_inodes_count: u32,
    pub first_data_block: u32,
    pub log_block_size: u32,
    pub log_cluster_size: u32,
    pub clusters_per_group: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub mtime: u32,
    pub wtime: u32,
    pub mnt_count: u16,
    pub state: u16,
    pub errors: u16,
    pub rev_level: u32,
    pub first_ino: u32,
    pub inode_size: u16,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    pub uuid: [u8; 16],
    pub volume_name: [u8; 16],
    pub last_mounted: [u8; 64],
    pub journal_inum: u32,
    pub hash_seed: [u32; 4],
    pub def_hash_version: u8,
    pub desc_size: u16,
    pub mkfs_time: u32,
    pub first_meta_bg: u32,
    pub min_extra_isize: u16,
    pub flags: u32,
    pub log_groups_per_flex: u8,
    pub checksum_type: u8,
    pub checksum_seed: u32,
    pub checksum: u32,
}

impl Superblock {
    /// Parse and validate the 1024 bytes of a superblock.
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        if b.len() < 1024 {
            return Err(Error::Corrupt {
                what: "superblock",
                at: SUPERBLOCK_OFFSET,
            });
        }
        let magic = le16(b, s::MAGIC);
        if magic != MAGIC {
            return Err(Error::BadMagic { found: magic });
        }
        let incompat = le32(b, s::FEATURE_INCOMPAT);
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let hi = |off: usize| {
            if is64 {
                u64::from(le32(b, off)) << 32
            } else {
                0
            }
        };
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(b.get(s::UUID).unwrap_or(&[0; 16]));
        let mut volume_name = [0u8; 16];
        volume_name.copy_from_slice(b.get(s::VOLUME_NAME).unwrap_or(&[0; 16]));
        let mut last_mounted = [0u8; 64];
        last_mounted.copy_from_slice(b.get(s::LAST_MOUNTED).unwrap_or(&[0; 64]));
        let rev_level = le32(b, s::REV_LEVEL);
        let sb = Superblock {
            inodes_count: le32(b, s::INODES_COUNT),
            blocks_count: u64::from(le32(b, s::BLOCKS_COUNT)) | hi(s::BLOCKS_COUNT_HI),
            r_blocks_count: u64::from(le32(b, s::R_BLOCKS_COUNT)) | hi(s::R_BLOCKS_COUNT_HI),
            free_blocks_count: u64::from(le32(b, s::FREE_BLOCKS)) | hi(s::FREE_BLOCKS_HI),
            free_inodes_count: le32(b, s::FREE_INODES),
            first_data_block: le32(b, s::FIRST_DATA_BLOCK),
            log_block_size: le32(b, s::LOG_BLOCK_SIZE),
            log_cluster_size: le32(b, s::LOG_CLUSTER_SIZE),
            clusters_per_group: le32(b, s::CLUSTERS_PER_GROUP),
            blocks_per_group: le32(b, s::BLOCKS_PER_GROUP),
            inodes_per_group: le32(b, s::INODES_PER_GROUP),
            mtime: le32(b, s::MTIME),
            wtime: le32(b, s::WTIME),
            mnt_count: le16(b, s::MNT_COUNT),
            state: le16(b, s::STATE),
            errors: le16(b, s::ERRORS),
            rev_level,
            first_ino: if rev_level == 0 {
                11
            } else {
                le32(b, s::FIRST_INO)
            },
            inode_size: if rev_level == 0 {
                128
            } else {
                le16(b, s::INODE_SIZE)
            },
            feature_compat: le32(b, s::FEATURE_COMPAT),
            feature_incompat: incompat,
            feature_ro_compat: le32(b, s::FEATURE_RO_COMPAT),
            uuid,
            volume_name,
            last_mounted,
            journal_inum: le32(b, s::JOURNAL_INUM),
            hash_seed: core::array::from_fn(|i| le32(b, s::HASH_SEED + 4 * i)),
            def_hash_version: b.get(s::DEF_HASH_VERSION).copied().unwrap_or(0),
            desc_size: if is64 { le16(b, s::DESC_SIZE) } else { 32 },
            mkfs_time: le32(b, s::MKFS_TIME),
            first_meta_bg: le32(b, s::FIRST_META_BG),
            min_extra_isize: le16(b, s::MIN_EXTRA_ISIZE),
            flags: le32(b, s::FLAGS),
            log_groups_per_flex: b.get(s::LOG_GROUPS_PER_FLEX).copied().unwrap_or(0),
            checksum_type: b.get(s::CHECKSUM_TYPE).copied().unwrap_or(0),
            checksum_seed: le32(b, s::CHECKSUM_SEED),
            checksum: le32(b, s::CHECKSUM),
        };
        sb.validate(b)?;
        Ok(sb)
    }

    fn validate(&self, raw: &[u8]) -> Result<(), Error> {
        let bad = |what: &'static str| Err(Error::BadSuperblock { what });
        if self.log_block_size > 6 {
            return bad("block size larger than 64 KiB");
        }
        let bs = self.block_size();
        // Each group's block (or, with bigalloc, cluster) bitmap is one block.
        let per_bitmap_bit = if self.feature_ro_compat & RO_COMPAT_BIGALLOC != 0 {
            if self.log_cluster_size < self.log_block_size || self.log_cluster_size > 16 {
                return bad("cluster size");
            }
            if self.clusters_per_group == 0 || self.clusters_per_group > bs * 8 {
                return bad("clusters per group");
            }
            1u64 << (self.log_cluster_size - self.log_block_size)
        } else {
            1
        };
        if self.blocks_per_group == 0
            || u64::from(self.blocks_per_group) > u64::from(bs) * 8 * per_bitmap_bit
        {
            return bad("blocks per group");
        }
        if self.inodes_per_group == 0 || self.inodes_per_group > bs * 8 {
            return bad("inodes per group");
        }
        let is = u32::from(self.inode_size);
        if is < 128 || !is.is_power_of_two() || is > bs {
            return bad("inode size");
        }
        if self.blocks_count == 0 || u64::from(self.first_data_block) >= self.blocks_count {
            return bad("block count");
        }
        if self.first_data_block != u32::from(bs == 1024) {
            return bad("first data block");
        }
        let groups = self.group_count();
        let inode_capacity = u64::from(self.inodes_per_group).checked_mul(groups);
        if inode_capacity.is_none_or(|c| c < u64::from(self.inodes_count))
            || groups > u64::from(u32::MAX)
        {
            return bad("inode count");
        }
        if self.feature_incompat & INCOMPAT_64BIT != 0
            && (self.desc_size < 64 || self.desc_size > 1024 || !self.desc_size.is_power_of_two())
        {
            return bad("group descriptor size");
        }
        if self.has_metadata_csum() {
            if self.checksum_type != 1 {
                return bad("checksum type is not crc32c");
            }
            verify_sb_csum(raw)?;
        }
        Ok(())
    }

    /// Check the feature policy: `Err` for an INCOMPAT feature we cannot read (named in the
    /// error); `Ok(Some(name))` for an unknown RO_COMPAT feature (mount read-only).
    pub fn check_features(&self) -> Result<Option<&'static str>, Error> {
        let unsupported = self.feature_incompat & !INCOMPAT_SUPPORTED;
        if unsupported != 0 {
            let bit = 1u32 << unsupported.trailing_zeros();
            return Err(Error::UnsupportedFeature {
                name: feature_name(INCOMPAT_NAMES, bit),
                bit,
            });
        }
        let unknown = self.feature_ro_compat & !RO_COMPAT_KNOWN;
        if unknown != 0 {
            let bit = 1u32 << unknown.trailing_zeros();
            return Ok(Some(feature_name(RO_COMPAT_NAMES, bit)));
        }
        Ok(None)
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        1024u32 << self.log_block_size.min(6)
    }

    /// Number of block groups.
    pub fn group_count(&self) -> u64 {
        let data = self.blocks_count - u64::from(self.first_data_block);
        data.div_ceil(u64::from(self.blocks_per_group.max(1)))
    }

    /// Whether `metadata_csum` is on.
    pub fn has_metadata_csum(&self) -> bool {
        self.feature_ro_compat & RO_COMPAT_METADATA_CSUM != 0
    }

    /// The crc32c seed for metadata checksums.
    pub fn csum_seed(&self) -> u32 {
        if self.feature_incompat & INCOMPAT_CSUM_SEED != 0 {
            self.checksum_seed
        } else {
            crc32c_raw(!0, &self.uuid)
        }
    }

    /// Names of the features that are set, in COMPAT, INCOMPAT, RO_COMPAT order.
    pub fn feature_names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (bits, table) in [
            (self.feature_compat, COMPAT_NAMES),
            (self.feature_incompat, INCOMPAT_NAMES),
            (self.feature_ro_compat, RO_COMPAT_NAMES),
        ] {
            for i in 0..32 {
                let bit = 1u32 << i;
                if bits & bit != 0 {
                    v.push(feature_name(table, bit));
                }
            }
        }
        v
    }

    /// Whether group `g` holds a superblock backup (sparse_super rule).
    pub fn group_has_super(&self, g: u64) -> bool {
        sparse_group_has_super(self.feature_ro_compat & RO_COMPAT_SPARSE_SUPER != 0, g)
    }
}

/// Whether group `g` holds a superblock copy: every group without `sparse_super`, else groups
/// 0, 1 and the powers of 3, 5 and 7.
pub(crate) fn sparse_group_has_super(sparse: bool, g: u64) -> bool {
    if !sparse || g <= 1 {
        return true;
    }
    let is_pow = |mut n: u64, b: u64| {
        while n.is_multiple_of(b) {
            n /= b;
        }
        n == 1
    };
    g % 2 == 1 && (is_pow(g, 3) || is_pow(g, 5) || is_pow(g, 7))
}

/// A block group descriptor.
#[derive(Debug, Clone, Copy)]
#[allow(
    missing_docs,
    reason = "fields mirror the on-disk struct ext4_group_desc"
)]
pub struct GroupDesc {
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    pub inode_table: u64,
    pub free_blocks: u32,
    pub free_inodes: u32,
    pub used_dirs: u32,
    pub flags: u16,
    pub itable_unused: u32,
}

impl GroupDesc {
    /// Parse descriptor `g` from its raw bytes, verifying its checksum.
    pub fn parse(b: &[u8], g: u32, sb: &Superblock, seed: u32) -> Result<Self, Error> {
        let ds = usize::from(sb.desc_size);
        let b = b.get(..ds).ok_or(Error::Corrupt {
            what: "group descriptor",
            at: u64::from(g),
        })?;
        let is64 = ds >= 64;
        let hi32 = |off: usize| {
            if is64 {
                u64::from(le32(b, off)) << 32
            } else {
                0
            }
        };
        let hi16 = |off: usize| {
            if is64 {
                u32::from(le16(b, off)) << 16
            } else {
                0
            }
        };
        let stored = le16(b, bg::CHECKSUM);
        if DescCsum::new(sb, seed)
            .of(g, b)
            .is_some_and(|c| c != stored)
        {
            return Err(Error::Checksum {
                what: "group descriptor",
                at: u64::from(g),
            });
        }
        Ok(GroupDesc {
            block_bitmap: u64::from(le32(b, bg::BLOCK_BITMAP)) | hi32(bg::BLOCK_BITMAP_HI),
            inode_bitmap: u64::from(le32(b, bg::INODE_BITMAP)) | hi32(bg::INODE_BITMAP_HI),
            inode_table: u64::from(le32(b, bg::INODE_TABLE)) | hi32(bg::INODE_TABLE_HI),
            free_blocks: u32::from(le16(b, bg::FREE_BLOCKS)) | hi16(bg::FREE_BLOCKS_HI),
            free_inodes: u32::from(le16(b, bg::FREE_INODES)) | hi16(bg::FREE_INODES_HI),
            used_dirs: u32::from(le16(b, bg::USED_DIRS)) | hi16(bg::USED_DIRS_HI),
            flags: le16(b, bg::FLAGS),
            itable_unused: u32::from(le16(b, bg::ITABLE_UNUSED)) | hi16(bg::ITABLE_UNUSED_HI),
        })
    }
}

/// How group descriptors are checksummed: crc32c with `metadata_csum`, else crc16 with
/// `uninit_bg` (`gdt_csum`), else not at all. The reader verifies and the writer stores
/// through here.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DescCsum {
    /// No descriptor checksums.
    None,
    /// crc32c (low 16 bits) seeded with the file system's checksum seed.
    Crc32c(u32),
    /// crc16 over the file system's UUID first.
    Crc16([u8; 16]),
}

impl DescCsum {
    /// The kind `sb` uses (`seed`: its crc32c checksum seed).
    pub(crate) fn new(sb: &Superblock, seed: u32) -> Self {
        if sb.has_metadata_csum() {
            DescCsum::Crc32c(seed)
        } else if sb.feature_ro_compat & RO_COMPAT_GDT_CSUM != 0 {
            DescCsum::Crc16(sb.uuid)
        } else {
            DescCsum::None
        }
    }

    /// The checksum of descriptor `g` with raw bytes `d` (`desc_size` of them; the checksum
    /// field counts as zero), or `None` when descriptors have none.
    pub(crate) fn of(&self, g: u32, d: &[u8]) -> Option<u16> {
        let head = d.get(..bg::CHECKSUM).unwrap_or(&[]);
        let tail = d.get(bg::CHECKSUM + 2..).unwrap_or(&[]);
        match self {
            DescCsum::None => None,
            DescCsum::Crc32c(seed) => {
                let mut c = crc32c_raw(*seed, &g.to_le_bytes());
                c = crc32c_raw(c, head);
                c = crc32c_raw(c, &[0, 0]);
                Some(crc32c_raw(c, tail) as u16)
            }
            DescCsum::Crc16(uuid) => {
                let mut c = crc16(!0, uuid);
                c = crc16(c, &g.to_le_bytes());
                c = crc16(c, head);
                // 32-byte descriptors end at the checksum (Linux checksums what follows it
                // only in 64-byte ones).
                if d.len() >= 64 {
                    c = crc16(c, tail);
                }
                Some(c)
            }
        }
    }
}
