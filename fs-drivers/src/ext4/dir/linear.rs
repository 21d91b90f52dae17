//! Reading linear directories: checking a leaf block (entries, checksum tail), walking its
//! entries, readdir with cookies (block and inline directories) and linear lookup.

use crate::block::BlockDevice;
use crate::crc::crc32c_raw;
use crate::ext4::bytes::{le16, le32};
use crate::ext4::dir::htree::{root_count_off, verify_dx_csum};
use crate::ext4::dir::{de, dx, valid_name};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::Inode;
use crate::ext4::types::{flags, DirEntry, FileType, OwnedDirEntry};
use crate::ext4::{Ctx, Ext4, Ino, INLINE_COOKIE_BASE};
use alloc::vec::Vec;

pub(crate) fn walk_inline<F>(ctx: &Ctx, data: &[u8], at: u64, mut f: F) -> Result<()>
where
    F: FnMut(usize, u32, &[u8], u8, usize) -> bool,
{
    let mut off = 0usize;
    while off + 8 <= data.len() {
        let ino = le32(data, off + de::INODE);
        let rec = usize::from(le16(data, off + de::REC_LEN));
        let name_len = usize::from(data.get(off + de::NAME_LEN).copied().unwrap_or(0));
        let t = data.get(off + de::FILE_TYPE).copied().unwrap_or(0);
        if rec < 8 || off + rec > data.len() || 8 + name_len > rec {
            return corrupt("inline directory entry", at);
        }
        if ino != 0 {
            if ino > ctx.inodes_count {
                return corrupt("inline directory entry inode", at);
            }
            let name = data
                .get(off + de::NAME..off + de::NAME + name_len)
                .unwrap_or(&[]);
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

/// The tag under which a directory block's checksum is recorded as verified (see
/// [`Ext4::check_dir_block`]): the directory's checksum seed and the block's shape (0 a
/// leaf, 1 a dx root, 2 a dx node).
pub(crate) fn dir_tag(seed: u32, shape: u64) -> u64 {
    (u64::from(seed) << 2) | shape
}

/// The shape checks of [`Ext4::check_dir_block`] on the block's bytes `b` (at `at`): whether
/// it is a leaf, and the tag its verified checksum is recorded under (`None` without
/// checksums). The checksum is skipped when `known` is that tag already.
fn dir_block_shape(
    ctx: &Ctx,
    inode: &Inode,
    lblk: u64,
    b: &[u8],
    at: u64,
    known: Option<u64>,
) -> Result<(bool, Option<u64>)> {
    let bs = ctx.bs;
    let indexed = inode.flags & flags::INDEX != 0 && ctx.dir_index;
    let is_dx_root = indexed && lblk == 0;
    let first_rec = usize::from(le16(b, de::REC_LEN));
    let is_dx_node =
        indexed && lblk != 0 && le32(b, de::INODE) == 0 && (first_rec == bs || first_rec == 0);
    if !ctx.csum {
        return Ok((!(is_dx_root || is_dx_node), None));
    }
    if is_dx_root || is_dx_node {
        let (count_off, shape) = if is_dx_root {
            (root_count_off(b), 1)
        } else {
            (dx::NODE_COUNT_OFF, 2)
        };
        let tag = dir_tag(inode.seed, shape);
        if known != Some(tag) {
            verify_dx_csum(b, count_off, inode.seed, at)?;
        }
        return Ok((false, Some(tag)));
    }
    let tail = bs - de::TAIL_LEN;
    if le32(b, tail + de::INODE) != 0
        || usize::from(le16(b, tail + de::REC_LEN)) != de::TAIL_LEN
        || b.get(tail + de::FILE_TYPE) != Some(&de::TAIL_FT)
    {
        return Err(Error::Corrupt {
            what: "directory block tail",
            at,
        });
    }
    let tag = dir_tag(inode.seed, 0);
    if known != Some(tag)
        && crc32c_raw(inode.seed, b.get(..tail).unwrap_or(&[])) != le32(b, tail + de::TAIL_CSUM)
    {
        return Err(Error::Checksum {
            what: "directory block",
            at,
        });
    }
    Ok((true, Some(tag)))
}

impl<D: BlockDevice> Ext4<D> {
    /// Records that leaf block `phys` of a directory with checksum seed `seed` was just given
    /// its checksum tail ([`dir_tail`](crate::ext4::dir::entries::dir_tail)): its next
    /// [`check_dir_block`](Self::check_dir_block) need not compute the checksum again.
    pub(crate) fn sealed_dir_leaf(&mut self, phys: u64, seed: u32) {
        if self.ctx.csum {
            self.set_block_checked(phys, dir_tag(seed, 0));
        }
    }

    /// Checks directory block `lblk` of `inode` (physical block `phys`) by its shape: its
    /// checksum (leaf tail or dx tail) and its tail's form. Returns true for a leaf block,
    /// false for an index block. A block whose checksum was verified for this directory and
    /// shape since the cache read or last changed it is not checksummed again: lookups read
    /// the same few blocks over and over, and a checksum is the largest part of their cost.
    pub(crate) fn check_dir_block(&mut self, inode: &Inode, lblk: u64, phys: u64) -> Result<bool> {
        let ctx = self.ctx;
        let known = self.block_checked(phys);
        let b = self.block(phys)?;
        let (leaf, tag) = dir_block_shape(&ctx, inode, lblk, b, phys, known)?;
        if let Some(tag) = tag.filter(|&t| Some(t) != known) {
            self.set_block_checked(phys, tag);
        }
        Ok(leaf)
    }

    /// Walk the entries of one directory block, calling `f(offset, ino, name, type, rec_len)`.
    /// Stops early when `f` returns false; returns whether it stopped early.
    pub(crate) fn walk_block<F>(
        ctx: &Ctx,
        b: &[u8],
        at: u64,
        start: usize,
        mut f: F,
    ) -> Result<bool>
    where
        F: FnMut(usize, u32, &[u8], u8, usize) -> bool,
    {
        let limit = if ctx.csum {
            ctx.bs - de::TAIL_LEN
        } else {
            ctx.bs
        };
        let mut off = 0usize;
        while off < limit {
            let ino = le32(b, off + de::INODE);
            let mut rec = usize::from(le16(b, off + de::REC_LEN));
            if ctx.bs >= 65536 && (rec == 65535 || rec == 0) {
                rec = ctx.bs;
            }
            let name_len = usize::from(b.get(off + de::NAME_LEN).copied().unwrap_or(0));
            let ftype = if ctx.filetype {
                b.get(off + de::FILE_TYPE).copied().unwrap_or(0)
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
                let name = b
                    .get(off + de::NAME..off + de::NAME + name_len)
                    .unwrap_or(&[]);
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
            let leaf = self.check_dir_block(&inode, lblk, phys)?;
            let b = self.block(phys)?;
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
        let parent = le32(&inode.iblock, de::INODE);
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
    pub(crate) fn inline_dir_bytes(&mut self, inode: &Inode) -> Result<Vec<u8>> {
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

    pub(crate) fn search_leaf(
        &mut self,
        inode: &Inode,
        lblk: u64,
        name: &[u8],
    ) -> Result<Option<Ino>> {
        let ctx = self.ctx;
        let run = self.map(inode, lblk)?;
        let Some(phys) = run.phys else {
            return Ok(None);
        };
        let leaf = self.check_dir_block(inode, lblk, phys)?;
        let b = self.block(phys)?;
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

    pub(crate) fn linear_lookup(&mut self, inode: &Inode, name: &[u8]) -> Result<Ino> {
        let nblocks = inode.size / self.ctx.bs as u64;
        for lblk in 0..nblocks {
            if let Some(ino) = self.search_leaf(inode, lblk, name)? {
                return Ok(ino);
            }
        }
        Err(Error::NotFound)
    }
}
