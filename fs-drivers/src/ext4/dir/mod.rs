//! Directories: name checks, lookups by name and path. Linear (block) and inline directories
//! are in [`linear`], the htree index in [`htree`] (reads) and [`htree_write`] (growth), and
//! changing entries in [`entries`].

pub(crate) mod entries;
pub(crate) mod hash;
pub(crate) mod htree;
pub(crate) mod htree_write;
pub(crate) mod linear;

use crate::block::BlockDevice;
use crate::ext4::bytes::le32;
use crate::ext4::dir::linear::walk_inline;
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::Inode;
use crate::ext4::types::flags;
use crate::ext4::types::mode::{S_IFDIR, S_IFMT};
use crate::ext4::{Ext4, Ino, NAME_MAX, ROOT_INO};

/// `struct ext4_dir_entry_2` field offsets (from an entry's start). The checksum tail of a
/// leaf block (`struct ext4_dir_entry_tail`, its last [`de::TAIL_LEN`] bytes with
/// `metadata_csum`) is shaped as an empty entry with the checksum where the name would be.
pub(crate) mod de {
    /// `inode`.
    pub(crate) const INODE: usize = 0;
    /// `rec_len` (u16).
    pub(crate) const REC_LEN: usize = 4;
    /// `name_len` (u8).
    pub(crate) const NAME_LEN: usize = 6;
    /// `file_type` (u8).
    pub(crate) const FILE_TYPE: usize = 7;
    /// `name`.
    pub(crate) const NAME: usize = 8;
    /// `det_checksum` in the tail.
    pub(crate) const TAIL_CSUM: usize = 8;
    /// Size of the tail.
    pub(crate) const TAIL_LEN: usize = 12;
    /// `det_reserved_ft`: the tail's file type byte.
    pub(crate) const TAIL_FT: u8 = 0xDE;
}

/// The htree (dx) layout: the root block (`.` and `..` entries, then `dx_root_info`), the
/// count/limit header and 8-byte entries, and the checksum tail after the last entry slot.
pub(crate) mod dx {
    /// The `..` entry in the root block (after `.`'s 12 bytes).
    pub(crate) const DOTDOT: usize = 12;
    /// `dx_root_info.reserved_zero`.
    pub(crate) const ROOT_INFO: usize = 0x18;
    /// `dx_root_info.hash_version` (u8).
    pub(crate) const HASH_VERSION: usize = 0x1C;
    /// `dx_root_info.info_length` (u8).
    pub(crate) const INFO_LENGTH: usize = 0x1D;
    /// `dx_root_info.indirect_levels` (u8).
    pub(crate) const INDIRECT_LEVELS: usize = 0x1E;
    /// The count/limit header in the root (after an 8-byte `dx_root_info`).
    pub(crate) const ROOT_COUNT_OFF: usize = 0x20;
    /// The count/limit header in other nodes (after the fake empty entry).
    pub(crate) const NODE_COUNT_OFF: usize = 8;
    /// `dx_countlimit.limit` (u16), from the header.
    pub(crate) const LIMIT: usize = 0;
    /// `dx_countlimit.count` (u16), from the header.
    pub(crate) const COUNT: usize = 2;
    /// Size of a `dx_entry` (the header takes entry 0's hash).
    pub(crate) const ENTRY_LEN: usize = 8;
    /// `dx_entry.hash`.
    pub(crate) const HASH: usize = 0;
    /// `dx_entry.block`.
    pub(crate) const BLOCK: usize = 4;
    /// `dx_tail.dt_checksum`, from the tail.
    pub(crate) const TAIL_CSUM: usize = 4;
    /// Size of `dx_tail`.
    pub(crate) const TAIL_LEN: usize = 8;
}

/// A directory entry name must be non-empty and hold no `/` or NUL (a hostile image could
/// otherwise smuggle a path into a client or a host-side copy).
pub(crate) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.iter().any(|&c| c == b'/' || c == 0)
}

impl<D: BlockDevice> Ext4<D> {
    pub(crate) fn dir_inode(&mut self, ino: Ino) -> Result<Inode> {
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
                return Ok(le32(&inode.iblock, de::INODE));
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
}
