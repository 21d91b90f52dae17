//! Extended attribute writing: [`Ext4::set_xattr`] and [`Ext4::remove_xattr`].
//!
//! Attributes live in the in-inode area (after `i_extra_isize` in inodes larger than 128
//! bytes, behind the `0xEA020000` magic) and in one external block (`i_file_acl`: a 32-byte
//! header with refcount, block hash and checksum, then the entries; values packed from the
//! end of the block). A new or changed attribute goes into the inode when it fits there, else
//! into the block; attributes already stored elsewhere stay where they are. Entries are kept
//! sorted by (name index, name length, name) with their entry hashes, and the block hash and
//! checksum are recomputed on every change. A block shared by several inodes (refcount > 1) is
//! never changed in place: the inode gets a private copy and the shared block's refcount drops
//! (copy-on-write). A block left empty is released (freed at refcount 1). Values are limited
//! to what one block holds (no `ea_inode`); larger ones fail with [`Error::NoSpace`].
//!
//! POSIX ACLs (`system.posix_acl_access`/`_default`) are given in the Linux xattr form
//! (version 2, 8-byte entries) and stored in ext4's compact form, the inverse of what
//! [`Ext4::getxattr`] does.

use crate::block::BlockDevice;
use crate::ext4::bytes::{le16, le32, put16, put32};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::{
    set_ctime, Inode, I_BLOCKS, I_BLOCKS_HIGH, I_EXTRA_ISIZE, I_FILE_ACL, I_FILE_ACL_HIGH,
};
use crate::ext4::types::{flags, XattrSet};
use crate::ext4::xattr::read::parse_xattrs;
use crate::ext4::xattr::{block_csum_of, check_block, e, h, Xattr, XATTR_MAGIC};
use crate::ext4::{Ext4, Ino};
use alloc::vec;
use alloc::vec::Vec;

/// Size of the external block's header.
const BLOCK_HEADER: usize = 0x20;

/// Map a full attribute name to (name index, stored suffix).
fn split_name(name: &[u8]) -> Result<(u8, &[u8])> {
    const EXACT: [(&[u8], u8); 2] = [
        (b"system.posix_acl_access", 2),
        (b"system.posix_acl_default", 3),
    ];
    const PREFIX: [(&[u8], u8); 3] = [(b"user.", 1), (b"trusted.", 4), (b"security.", 6)];
    for (n, idx) in EXACT {
        if name == n {
            return Ok((idx, b""));
        }
    }
    for (p, idx) in PREFIX {
        if let Some(suffix) = name.strip_prefix(p) {
            if suffix.is_empty() || suffix.len() > 255 || suffix.contains(&0) {
                return Err(Error::Invalid {
                    what: "xattr name (empty, longer than 255 bytes, or with a NUL)",
                });
            }
            return Ok((idx, suffix));
        }
    }
    Err(Error::Unsupported {
        what: "xattr namespace",
    })
}

/// Convert a POSIX ACL from the Linux xattr form (version 2, 8-byte entries) to ext4's
/// on-disk form (version 1; 4-byte entries except for named users and groups).
fn acl_from_xattr(v: &[u8]) -> Result<Vec<u8>> {
    let bad = Error::Invalid {
        what: "posix acl value",
    };
    if v.len() < 4 || le32(v, 0) != 2 || !(v.len() - 4).is_multiple_of(8) {
        return Err(bad);
    }
    let mut out = Vec::with_capacity(v.len());
    out.extend_from_slice(&1u32.to_le_bytes());
    for e in v.get(4..).unwrap_or(&[]).chunks_exact(8) {
        let tag = le16(e, 0);
        out.extend_from_slice(e.get(..4).unwrap_or(&[]));
        match tag {
            2 | 8 => out.extend_from_slice(e.get(4..8).unwrap_or(&[])),
            1 | 4 | 0x10 | 0x20 => {}
            _ => return Err(bad),
        }
    }
    Ok(out)
}

/// Bytes an entry with a `name_len`-byte name takes in the entry table.
fn entry_size(name_len: usize) -> usize {
    (e::NAME + name_len + 3) & !3
}

/// Bytes a value takes (padded to 4).
fn value_size(len: usize) -> usize {
    (len + 3) & !3
}

/// Bytes a set of entries needs: table, 4-byte terminator, values.
fn space_needed(ents: &[Xattr]) -> usize {
    ents.iter()
        .map(|(_, n, v)| entry_size(n.len()) + value_size(v.len()))
        .sum::<usize>()
        + 4
}

/// Entry hash (as e2fsprogs `ext2fs_ext_attr_hash_entry`, unsigned name bytes).
fn entry_hash(name: &[u8], value: &[u8]) -> u32 {
    let mut h = 0u32;
    for &c in name {
        h = (h << 5) ^ (h >> 27) ^ u32::from(c);
    }
    for w in value.chunks(4) {
        let mut word = [0u8; 4];
        word.get_mut(..w.len())
            .unwrap_or(&mut [])
            .copy_from_slice(w);
        h = (h << 16) ^ (h >> 16) ^ le32(&word, 0);
    }
    h
}

/// Sort order of entries in a block (Linux and e2fsprogs: index, name length, name).
fn sort_entries(ents: &mut [Xattr]) {
    ents.sort_by(|a, b| (a.0, a.1.len(), &a.1).cmp(&(b.0, b.1.len(), &b.1)));
}

/// Write `ents` into `buf`: the table from `first`, values packed down from the end of
/// `buf`, value offsets relative to `value_base`. Returns the block hash of the entries.
/// The caller has checked that they fit (`space_needed`).
fn lay_out(ents: &[Xattr], buf: &mut [u8], first: usize, value_base: usize) -> u32 {
    if let Some(area) = buf.get_mut(first..) {
        area.fill(0);
    }
    let mut at = first;
    let mut vend = buf.len();
    let mut block_hash = 0u32;
    let mut unshared = false;
    for (idx, name, value) in ents {
        let offs = if value.is_empty() {
            0
        } else {
            // (Callers check the fit; saturating keeps a mistake from wrapping around.)
            vend = vend.saturating_sub(value_size(value.len()));
            if let Some(d) = buf.get_mut(vend..vend + value.len()) {
                d.copy_from_slice(value);
            }
            vend.saturating_sub(value_base)
        };
        let h = entry_hash(name, value);
        if let Some(ent) = buf.get_mut(at..at + entry_size(name.len())) {
            if let Some(x) = ent.get_mut(e::NAME_LEN) {
                *x = name.len() as u8;
            }
            if let Some(x) = ent.get_mut(e::NAME_INDEX) {
                *x = *idx;
            }
            put16(ent, e::VALUE_OFFS, offs as u16);
            put32(ent, e::VALUE_INUM, 0);
            put32(ent, e::VALUE_SIZE, value.len() as u32);
            put32(ent, e::HASH, h);
            if let Some(x) = ent.get_mut(e::NAME..e::NAME + name.len()) {
                x.copy_from_slice(name);
            }
        }
        // A zero entry hash marks the block as not shareable (block hash 0), as in Linux.
        unshared |= h == 0;
        block_hash = (block_hash << 16) ^ (block_hash >> 16) ^ h;
        at += entry_size(name.len());
    }
    if unshared {
        0
    } else {
        block_hash
    }
}

/// Set the checksum of xattr block `blk` (metadata_csum).
fn block_csum(seed: u32, blk: u64, b: &mut [u8]) {
    let c = block_csum_of(seed, blk, b);
    put32(b, h::CHECKSUM, c);
}

/// Where an inode's in-inode attribute area is: (offset of the magic, capacity after it).
fn ibody_area(raw: &[u8]) -> Option<(usize, usize)> {
    if raw.len() <= 128 {
        return None;
    }
    let start = 128 + usize::from(le16(raw, I_EXTRA_ISIZE));
    let cap = raw.len().checked_sub(start + 4)?;
    (start.is_multiple_of(4) && cap >= e::NAME + 4 + 4).then_some((start, cap))
}

impl<D: BlockDevice> Ext4<D> {
    /// Set extended attribute `name` (full name: `user.*`, `trusted.*`, `security.*`,
    /// `system.posix_acl_access`, `system.posix_acl_default`) of `ino` to `value`.
    /// [`XattrSet::Create`] fails with [`Error::Exists`] when it exists,
    /// [`XattrSet::Replace`] with [`Error::NoXattr`] when it does not. A value that fits
    /// neither in the inode nor in the attribute block fails with [`Error::NoSpace`]; other
    /// namespaces are [`Error::Unsupported`]. Stamps the inode's ctime.
    pub fn set_xattr(&mut self, ino: Ino, name: &[u8], value: &[u8], how: XattrSet) -> Result<()> {
        self.ensure_rw()?;
        let (index, suffix) = split_name(name)?;
        let value = if index == 2 || index == 3 {
            acl_from_xattr(value)?
        } else {
            value.to_vec()
        };
        if value.len() > self.ctx.bs {
            return Err(Error::NoSpace);
        }
        self.xattr_change(ino, index, suffix, Some(value), how)?;
        self.maybe_sync()
    }

    /// Remove extended attribute `name` (full name) of `ino`; [`Error::NoXattr`] when it does
    /// not exist. An attribute block left empty is released. Stamps the inode's ctime.
    pub fn remove_xattr(&mut self, ino: Ino, name: &[u8]) -> Result<()> {
        self.ensure_rw()?;
        let (index, suffix) = split_name(name)?;
        self.xattr_change(ino, index, suffix, None, XattrSet::Replace)?;
        self.maybe_sync()
    }

    /// Read and check xattr block `blk`: (entries, refcount).
    fn xattr_block_read(&mut self, blk: u64, ino: Ino) -> Result<(Vec<Xattr>, u32)> {
        let ctx = self.ctx;
        self.check_phys(blk, 1, ino)?;
        let b = self.block(blk)?.to_vec();
        check_block(&ctx, blk, &b, true)?;
        let mut out = Vec::new();
        parse_xattrs(b.get(BLOCK_HEADER..).unwrap_or(&[]), 0, &b, &mut out, blk)?;
        if space_needed(&out) > ctx.bs - BLOCK_HEADER {
            return corrupt("xattr block entries", blk);
        }
        Ok((out, le32(&b, h::REFCOUNT)))
    }

    /// Write a fresh xattr block `blk` holding `ents` with refcount `refs`.
    fn xattr_block_write(&mut self, blk: u64, ents: &[Xattr], refs: u32) -> Result<()> {
        let ctx = self.ctx;
        let mut b = vec![0u8; ctx.bs];
        let hash = lay_out(ents, &mut b, BLOCK_HEADER, 0);
        put32(&mut b, h::MAGIC, XATTR_MAGIC);
        put32(&mut b, h::REFCOUNT, refs);
        put32(&mut b, h::BLOCKS, 1);
        put32(&mut b, h::HASH, hash);
        if ctx.csum {
            block_csum(ctx.seed, blk, &mut b);
        }
        self.block_new(blk)?.copy_from_slice(&b);
        Ok(())
    }

    /// Drop one reference to xattr block `blk` (which had `refs`): freed at the last one.
    fn xattr_block_unref(&mut self, blk: u64, refs: u32) -> Result<()> {
        if refs <= 1 {
            return self.free_blocks(blk, 1);
        }
        let ctx = self.ctx;
        let b = self.block_mut(blk)?;
        put32(b, h::REFCOUNT, refs - 1);
        if ctx.csum {
            block_csum(ctx.seed, blk, b);
        }
        Ok(())
    }

    /// Check the xattr block of `inode` (header, checksum, entries), so that releasing it
    /// later cannot fail half-way.
    pub(crate) fn xattr_block_check(&mut self, inode: &Inode) -> Result<()> {
        if inode.file_acl != 0 {
            self.xattr_block_read(inode.file_acl, inode.ino)?;
        }
        Ok(())
    }

    /// Drop `ino`'s reference to its xattr block (freed with the last one), clear
    /// `i_file_acl` and take the block out of `i_blocks` (the inode is being released).
    pub(crate) fn xattr_release(&mut self, ino: Ino) -> Result<()> {
        let inode = self.load_inode(ino)?;
        let blk = inode.file_acl;
        if blk == 0 {
            return Ok(());
        }
        let (_, refs) = self.xattr_block_read(blk, ino)?;
        self.xattr_block_unref(blk, refs)?;
        let unit = self.iblocks_unit(&inode);
        self.patch_inode(ino, |raw| {
            put32(raw, I_FILE_ACL, 0);
            put16(raw, I_FILE_ACL_HIGH, 0);
            let cur = u64::from(le32(raw, I_BLOCKS)) | u64::from(le16(raw, I_BLOCKS_HIGH)) << 32;
            let n = cur.saturating_sub(unit);
            put32(raw, I_BLOCKS, n as u32);
            put16(raw, I_BLOCKS_HIGH, (n >> 32) as u16);
        })
    }

    /// What one block counts in `i_blocks` of `inode` (fs blocks with `HUGE_FILE_FL`).
    fn iblocks_unit(&self, inode: &Inode) -> u64 {
        if self.ctx.huge_file && inode.flags & flags::HUGE_FILE != 0 {
            1
        } else {
            (self.ctx.bs / 512) as u64
        }
    }

    /// Apply one change (set `value`, or remove when `None`) to attribute (index, suffix).
    pub(crate) fn xattr_change(
        &mut self,
        ino: Ino,
        index: u8,
        suffix: &[u8],
        value: Option<Vec<u8>>,
        how: XattrSet,
    ) -> Result<()> {
        let ctx = self.ctx;
        let inode = self.load_inode(ino)?;
        if inode.flags & flags::EA_INODE != 0 {
            return Err(Error::Unsupported {
                what: "xattrs of an ea_inode",
            });
        }
        let raw = self.inode_raw(ino)?;
        let area = ibody_area(&raw);
        let mut iset = Vec::new();
        if let Some((start, cap)) = area {
            if le32(&raw, start) == XATTR_MAGIC {
                let a = raw.get(start + 4..).unwrap_or(&[]);
                parse_xattrs(a, 0, a, &mut iset, u64::from(ino))?;
                if space_needed(&iset) > cap {
                    return corrupt("in-inode xattr entries", u64::from(ino));
                }
            }
        }
        let blk = inode.file_acl;
        let (mut bset, refs) = if blk != 0 {
            self.xattr_block_read(blk, ino)?
        } else {
            (Vec::new(), 0)
        };
        let is_it = |e: &Xattr| e.0 == index && e.1 == suffix;
        let exists = iset.iter().chain(bset.iter()).any(is_it);
        match how {
            XattrSet::Create if exists => return Err(Error::Exists),
            XattrSet::Replace if !exists => return Err(Error::NoXattr),
            _ => {}
        }
        let (old_i, old_b) = (iset.len(), bset.len());
        iset.retain(|e| !is_it(e));
        bset.retain(|e| !is_it(e));
        let mut i_changed = iset.len() != old_i;
        let mut b_changed = bset.len() != old_b;
        if let Some(v) = value {
            let e = (index, suffix.to_vec(), v);
            let in_inode = area.is_some_and(|(_, cap)| {
                space_needed(&iset) + entry_size(e.1.len()) + value_size(e.2.len()) <= cap
            });
            if in_inode {
                iset.push(e);
                i_changed = true;
            } else if space_needed(&bset) + entry_size(e.1.len()) + value_size(e.2.len())
                <= ctx.bs - BLOCK_HEADER
            {
                bset.push(e);
                b_changed = true;
            } else {
                return Err(Error::NoSpace);
            }
        }
        sort_entries(&mut iset);
        sort_entries(&mut bset);
        // The block first: allocating may fail, and then nothing has changed.
        let mut new_acl = blk;
        let mut dblocks = 0i64;
        if b_changed {
            if bset.is_empty() {
                self.xattr_block_unref(blk, refs)?;
                new_acl = 0;
                dblocks = -1;
            } else if blk != 0 && refs == 1 {
                self.xattr_block_write(blk, &bset, 1)?;
            } else {
                // A new block, or a private copy of a shared one.
                let goal = if blk != 0 {
                    blk
                } else {
                    let g = ((ino - 1) / ctx.inodes_per_group) as usize;
                    self.groups.get(g).map_or(0, |d| d.inode_table)
                };
                let (nb, _) = self.alloc_blocks(goal, 1)?;
                self.xattr_block_write(nb, &bset, 1)?;
                if blk != 0 {
                    self.xattr_block_unref(blk, refs)?;
                } else {
                    dblocks = 1;
                }
                new_acl = nb;
            }
        }
        let now = self.clock;
        let unit = self.iblocks_unit(&inode);
        self.patch_inode(ino, |raw| {
            if i_changed {
                if let Some((start, _)) = ibody_area(raw) {
                    if iset.is_empty() {
                        if let Some(a) = raw.get_mut(start..) {
                            a.fill(0);
                        }
                    } else {
                        put32(raw, start, XATTR_MAGIC);
                        lay_out(&iset, raw, start + 4, start + 4);
                    }
                }
            }
            if new_acl != blk {
                put32(raw, I_FILE_ACL, new_acl as u32);
                put16(raw, I_FILE_ACL_HIGH, (new_acl >> 32) as u16);
            }
            if dblocks != 0 {
                let cur =
                    u64::from(le32(raw, I_BLOCKS)) | u64::from(le16(raw, I_BLOCKS_HIGH)) << 32;
                let n = if dblocks > 0 {
                    cur.saturating_add(unit)
                } else {
                    cur.saturating_sub(unit)
                };
                put32(raw, I_BLOCKS, n as u32);
                put16(raw, I_BLOCKS_HIGH, (n >> 32) as u16);
            }
            set_ctime(raw, now);
        })
    }
}
