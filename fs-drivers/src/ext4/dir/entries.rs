//! Changing directory entries: adding a name (in a leaf with room, a new block, or through the
//! htree), removing one, pointing one at another inode, and the `..` entry.

use crate::block::BlockDevice;
use crate::crc::{crc32c_raw, crc32c_raw_change};
use crate::ext4::bytes::{le16, le32, put16, put32};
use crate::ext4::dir::htree::{dx_csum, root_count_off};
use crate::ext4::dir::linear::dir_tag;
use crate::ext4::dir::{de, dx, valid_name};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::{raw_size, set_mtime_ctime, set_raw_size, Inode};
use crate::ext4::types::{flags, FileType};
use crate::ext4::{Ctx, Ext4, Ino, NAME_MAX};

/// With `metadata_csum`, writes leaf block `b`'s checksum tail (see [`put_dir_tail`]).
pub(crate) fn dir_tail(ctx: &Ctx, b: &mut [u8], seed: u32) {
    if ctx.csum {
        put_dir_tail(b, ctx.bs, seed);
    }
}

/// Writes the checksum tail at the end of the `bs`-byte leaf block `b`: an empty entry of
/// [`de::TAIL_LEN`] bytes holding the crc32c of everything before it.
pub(crate) fn put_dir_tail(b: &mut [u8], bs: usize, seed: u32) {
    let t = bs - de::TAIL_LEN;
    put32(b, t + de::INODE, 0);
    put16(b, t + de::REC_LEN, de::TAIL_LEN as u16);
    if let Some(x) = b.get_mut(t + de::NAME_LEN..t + de::NAME) {
        x.copy_from_slice(&[0, de::TAIL_FT]);
    }
    let c = crc32c_raw(seed, b.get(..t).unwrap_or(&[]));
    put32(b, t + de::TAIL_CSUM, c);
}

/// Writes leaf `b`'s checksum tail after a change confined to `b[at..at + before.len()]`
/// (`before`: those bytes before it; `None`: not known). When `sealed` (the block's bytes before the change
/// matched its tail's checksum: verified, or written, since the cache read the block), the
/// stored checksum is carried over the change ([`crc32c_raw_change`]: the change's bytes
/// instead of the block's); otherwise it is computed over the whole block.
pub(crate) fn dir_tail_after(
    ctx: &Ctx,
    b: &mut [u8],
    seed: u32,
    at: usize,
    before: Option<&[u8]>,
    sealed: bool,
) {
    if !ctx.csum {
        return;
    }
    let t = ctx.bs - de::TAIL_LEN;
    if let Some(before) = before.filter(|_| sealed) {
        let stored = le32(b, t + de::TAIL_CSUM);
        let changed = b
            .get(at..at + before.len())
            .and_then(|now| crc32c_raw_change(stored, t, at, before, now));
        if let Some(c) = changed {
            debug_assert_eq!(
                c,
                crc32c_raw(seed, b.get(..t).unwrap_or(&[])),
                "directory block checksum carried over"
            );
            put32(b, t + de::TAIL_CSUM, c);
            return;
        }
    }
    put_dir_tail(b, ctx.bs, seed);
}

pub(crate) fn dirent(b: &mut [u8], off: usize, ino: Ino, rec: usize, name: &[u8], t: u8) {
    put32(b, off + de::INODE, ino);
    put16(b, off + de::REC_LEN, rec as u16);
    if let Some(x) = b.get_mut(off + de::NAME_LEN..off + de::NAME) {
        x.copy_from_slice(&[name.len() as u8, t]);
    }
    if let Some(x) = b.get_mut(off + de::NAME..off + de::NAME + name.len()) {
        x.copy_from_slice(name);
    }
}

/// The directory entry `file_type` byte for `kind`.
fn dirent_type(kind: FileType) -> u8 {
    match kind {
        FileType::Regular | FileType::Unknown => 1,
        FileType::Directory => 2,
        FileType::CharDev => 3,
        FileType::BlockDev => 4,
        FileType::Fifo => 5,
        FileType::Socket => 6,
        FileType::Symlink => 7,
    }
}

pub(crate) fn rec_need(name_len: usize) -> usize {
    (8 + name_len + 3) & !3
}

/// Why a directory cannot take a new entry (see [`Ext4::writable_dir`]).
const ADDING: [&str; 2] = [
    "adding an entry to an htree directory without dir_index",
    "adding an entry to an inline, encrypted or block-mapped directory",
];
/// Why a directory's entries cannot be changed.
const CHANGING: [&str; 2] = [
    "changing an htree directory without dir_index",
    "changing an inline, encrypted or block-mapped directory",
];

/// Where a directory entry sits in its leaf block.
#[derive(Debug, Clone, Copy)]
struct EntryAt {
    /// Byte offset of the entry.
    off: usize,
    /// Its record length.
    rec: usize,
    /// Offset of the entry before it in the block, if any.
    prev: Option<usize>,
}

impl<D: BlockDevice> Ext4<D> {
    /// Check that `name` can be added to `dir` (a linear, block-based directory).
    pub(crate) fn check_new_entry(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        self.ensure_rw()?;
        if name.len() > NAME_MAX || !valid_name(name) || name == b"." || name == b".." {
            return Err(Error::InvalidName);
        }
        self.changeable_dir(dir, ADDING)?;
        match self.lookup(dir, name) {
            Ok(_) => Err(Error::Exists),
            Err(Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Add `name → ino` to `dir`: in the leaf it belongs to (the last block, or the htree
    /// leaf) if it has room, else through an htree split or in a new block.
    pub(crate) fn dir_add(
        &mut self,
        dir: Ino,
        name: &[u8],
        ino: Ino,
        kind: FileType,
    ) -> Result<()> {
        let inode = self.dir_inode(dir)?;
        let ctx = self.ctx;
        let bs = ctx.bs as u64;
        let t = if ctx.filetype { dirent_type(kind) } else { 0 };
        let need = rec_need(name.len());
        let limit = if ctx.csum {
            ctx.bs - de::TAIL_LEN
        } else {
            ctx.bs
        };
        let nblocks = inode.size / bs;
        let htree = inode.flags & flags::INDEX != 0;
        let target = if htree {
            Some(self.dx_leaf(&inode, name)?)
        } else {
            nblocks.checked_sub(1)
        };
        if let Some(last) = target {
            let run = self.map(&inode, last)?;
            if let Some(phys) = run.phys {
                // (Without checksums an emptied htree leaf looks like an index node.)
                if !self.check_dir_block(&inode, last, phys)? && (ctx.csum || !htree) {
                    return corrupt("directory leaf", phys);
                }
                let b = self.block(phys)?;
                // Find an entry with enough slack.
                let mut off = 0usize;
                let mut slot = None;
                while off + 8 <= limit {
                    let e_ino = le32(b, off + de::INODE);
                    let rec = usize::from(le16(b, off + de::REC_LEN));
                    let nl = usize::from(b.get(off + de::NAME_LEN).copied().unwrap_or(0));
                    if rec < 8 || off + rec > limit {
                        return corrupt("directory entry", phys);
                    }
                    let used = if e_ino == 0 { 0 } else { rec_need(nl) };
                    if used > rec {
                        return corrupt("directory entry", phys);
                    }
                    if rec - used >= need {
                        slot = Some((off, used, rec));
                        break;
                    }
                    off += rec;
                }
                if let Some((off, used, rec)) = slot {
                    // what changes: the entry's rec_len and the new entry after it
                    let len = used + 8 + name.len();
                    self.change_dir_leaf(phys, inode.seed, off, len, |b| {
                        if used == 0 {
                            dirent(b, off, ino, rec, name, t);
                        } else {
                            put16(b, off + de::REC_LEN, used as u16);
                            dirent(b, off + used, ino, rec - used, name, t);
                        }
                    })?;
                    let now = self.clock;
                    return self.patch_inode(dir, |raw| set_mtime_ctime(raw, now));
                }
            }
        }
        if htree {
            return self.dx_add(&inode, name, ino, t);
        }
        // A full single-block directory becomes an indexed one.
        if nblocks == 1 && ctx.dir_index && self.make_indexed_dir(&inode, name, ino, t)? {
            return Ok(());
        }
        // A new block at the end.
        let goal = self.append_goal(&inode)?.unwrap_or(0);
        let lblk = u32::try_from(nblocks).map_err(|_| Error::NoSpace)?;
        let (phys, _) = self.alloc_blocks(goal, 1)?;
        if let Err(e) = self.map_new_blocks(dir, lblk, 1, phys) {
            self.free_blocks(phys, 1)?;
            return Err(e);
        }
        let b = self.block_new(phys)?;
        dirent(b, 0, ino, limit, name, t);
        dir_tail(&ctx, b, inode.seed);
        self.sealed_dir_leaf(phys, inode.seed);
        let now = self.clock;
        self.patch_inode(dir, |raw| {
            let size = raw_size(raw) + bs;
            set_raw_size(raw, size);
            set_mtime_ctime(raw, now);
        })
    }

    /// Changes leaf block `phys` of a directory with checksum seed `seed` by `f`, which
    /// changes at most bytes `at..at + len`, then writes the block's checksum tail (carried
    /// over the change when the block's bytes were verified before it: [`dir_tail_after`]) and
    /// records the block as verified.
    fn change_dir_leaf(
        &mut self,
        phys: u64,
        seed: u32,
        at: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]),
    ) -> Result<()> {
        let ctx = self.ctx;
        let sealed = self.block_checked(phys) == Some(dir_tag(seed, 0));
        let before = self.block(phys)?.get(at..at + len).map(<[u8]>::to_vec);
        let b = self.block_mut(phys)?;
        f(b);
        dir_tail_after(&ctx, b, seed, at, before.as_deref(), sealed);
        self.sealed_dir_leaf(phys, seed);
        Ok(())
    }

    /// Remove the entry `name → target` from `dir` (merged into the entry before it, or
    /// cleared when first in its block) and stamp the directory's mtime/ctime.
    pub(crate) fn remove_entry(&mut self, dir: Ino, name: &[u8], target: Ino) -> Result<()> {
        let dinode = self.dir_inode(dir)?;
        if dinode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0 {
            return Err(Error::Unsupported {
                what: "removing from an inline or encrypted directory",
            });
        }
        let ctx = self.ctx;
        // In an htree directory the index says which leaf holds the name: look there
        // first, then (hash collisions spread over leaves) everywhere else.
        let hint = if dinode.flags & flags::INDEX != 0 && ctx.dir_index {
            self.dx_leaf(&dinode, name).ok()
        } else {
            None
        };
        let (phys, hit) = self
            .find_entry(&dinode, name, target, hint)?
            .ok_or(Error::NotFound)?;
        // Merge the entry into the one before it, or clear it if it is the first: what
        // changes is in the first 8 bytes (the header) of one entry.
        let at = hit.prev.unwrap_or(hit.off);
        self.change_dir_leaf(phys, dinode.seed, at, 8, |b| match hit.prev {
            Some(pv) => {
                let prec = usize::from(le16(b, pv + de::REC_LEN));
                put16(b, pv + de::REC_LEN, (prec + hit.rec) as u16);
            }
            None => put32(b, hit.off + de::INODE, 0),
        })?;
        let now = self.clock;
        self.patch_inode(dir, |raw| set_mtime_ctime(raw, now))?;
        Ok(())
    }

    /// The leaf block (physical) of directory `dinode` that holds the entry `name → ino`,
    /// and where in it; logical block `first`, when given, is searched before the others.
    /// Blocks that are not leaves (dx nodes) and holes are skipped.
    fn find_entry(
        &mut self,
        dinode: &Inode,
        name: &[u8],
        ino: Ino,
        first: Option<u64>,
    ) -> Result<Option<(u64, EntryAt)>> {
        let ctx = self.ctx;
        let bs = ctx.bs as u64;
        let limit = if ctx.csum {
            ctx.bs - de::TAIL_LEN
        } else {
            ctx.bs
        };
        let rest = (0..dinode.size / bs).filter(move |&l| Some(l) != first);
        for lblk in first.into_iter().chain(rest) {
            let Some(phys) = self.map(dinode, lblk)?.phys else {
                continue;
            };
            if !self.check_dir_block(dinode, lblk, phys)? {
                continue;
            }
            let b = self.block(phys)?;
            let mut off = 0usize;
            let mut prev = None;
            while off + 8 <= limit {
                let rec = usize::from(le16(b, off + de::REC_LEN));
                let nl = usize::from(b.get(off + de::NAME_LEN).copied().unwrap_or(0));
                if rec < 8 || off + rec > limit {
                    return corrupt("directory entry", phys);
                }
                if le32(b, off + de::INODE) == ino
                    && b.get(off + de::NAME..off + de::NAME + nl) == Some(name)
                {
                    return Ok(Some((phys, EntryAt { off, rec, prev })));
                }
                prev = Some(off);
                off += rec;
            }
        }
        Ok(None)
    }

    /// `dir` as a directory the writer can change entries of (extent-mapped, not inline or
    /// encrypted, htree only with `dir_index`).
    pub(crate) fn writable_dir(&mut self, dir: Ino) -> Result<Inode> {
        self.changeable_dir(dir, CHANGING)
    }

    /// [`Ext4::writable_dir`], refusing with the reasons `why` (htree without `dir_index`;
    /// inline, encrypted or block-mapped) so that each caller names its operation.
    fn changeable_dir(&mut self, dir: Ino, why: [&'static str; 2]) -> Result<Inode> {
        let [no_dx, layout] = why;
        let inode = self.dir_inode(dir)?;
        if inode.flags & flags::INDEX != 0 && !self.ctx.dir_index {
            return Err(Error::Unsupported { what: no_dx });
        }
        if inode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0
            || inode.flags & flags::EXTENTS == 0
        {
            return Err(Error::Unsupported { what: layout });
        }
        self.load_tree(&inode)?;
        Ok(inode)
    }

    /// Whether directory `dir` holds only `.` and `..`.
    pub(crate) fn dir_is_empty(&mut self, dir: Ino) -> Result<bool> {
        let mut entries = 0usize;
        self.readdir(dir, 0, |e| {
            entries += 1;
            e.name == b"." || e.name == b".."
        })?;
        Ok(entries <= 2)
    }

    /// Point the entry `name → old` of `dir` at `new` (of type `kind`) in place, and stamp
    /// the directory's mtime/ctime.
    pub(crate) fn set_entry(
        &mut self,
        dir: Ino,
        name: &[u8],
        old: Ino,
        new: Ino,
        kind: FileType,
    ) -> Result<()> {
        let dinode = self.writable_dir(dir)?;
        let ctx = self.ctx;
        let t = if ctx.filetype { dirent_type(kind) } else { 0 };
        let (phys, hit) = self
            .find_entry(&dinode, name, old, None)?
            .ok_or(Error::NotFound)?;
        self.change_dir_leaf(phys, dinode.seed, hit.off, 8, |b| {
            put32(b, hit.off + de::INODE, new);
            if let Some(x) = b.get_mut(hit.off + de::FILE_TYPE) {
                *x = t;
            }
        })?;
        let now = self.clock;
        self.patch_inode(dir, |raw| set_mtime_ctime(raw, now))?;
        Ok(())
    }

    /// Point the `..` entry of directory `dir` at `parent` (block 0, second entry; the dx
    /// root checksum or the leaf tail is updated).
    pub(crate) fn set_dotdot(&mut self, dir: Ino, parent: Ino) -> Result<()> {
        let dinode = self.writable_dir(dir)?;
        let ctx = self.ctx;
        let at = u64::from(dir);
        let phys = self.map(&dinode, 0)?.phys.ok_or(Error::Corrupt {
            what: "directory block 0",
            at,
        })?;
        let leaf = self.check_dir_block(&dinode, 0, phys)?;
        let b = self.block(phys)?;
        let first = usize::from(le16(b, de::REC_LEN));
        let dotdot = dx::DOTDOT;
        if first != dotdot
            || b.get(dotdot + de::NAME_LEN) != Some(&2)
            || b.get(dotdot + de::NAME..dotdot + de::NAME + 2) != Some(b"..")
        {
            return corrupt("directory .. entry", at);
        }
        let b = self.block_mut(phys)?;
        put32(b, dx::DOTDOT + de::INODE, parent);
        if leaf {
            dir_tail(&ctx, b, dinode.seed);
            self.sealed_dir_leaf(phys, dinode.seed);
        } else if ctx.csum {
            let count_off = root_count_off(b);
            let Some((c, at_csum)) = dx_csum(b, count_off, dinode.seed) else {
                return corrupt("dx root limit", at);
            };
            put32(b, at_csum, c);
        }
        Ok(())
    }
}
