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
