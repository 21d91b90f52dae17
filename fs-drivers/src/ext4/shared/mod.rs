//! Shared files: file-level deduplication on ext4, which has no reflink.
//!
//! # On-disk form
//! - **Store files.** Each distinct shared content is one regular file in the hidden
//!   directory `/.pvfs/shared/` (mode 0700, owner 0:0), named by its own inode number in
//!   decimal. It owns the data blocks and carries `trusted.pvfs.refs` (u32, little-endian):
//!   the number of stubs that name it (an inode with several hard links counts once).
//! - **Stubs.** A deduplicated file keeps its own inode: inode number, links, mode, owner,
//!   times, size and its other xattrs. It has no data blocks (an empty extent tree: a sparse
//!   file to e2fsck) and carries `trusted.pvfs.shared` = the store's inode number and
//!   generation (two u32, little-endian). A stub's size equals its store's.
//!
//! Nothing on disk is claimed by two inodes, so e2fsck sees an ordinary file system.
//!
//! # Engine behaviour
//! - Reads of a stub are served from its store ([`Ext4::read`], readahead, `data_ranges`);
//!   `getattr` adds the store's `i_blocks` to the stub's own, so the name looks as it did.
//! - Writing, truncating or fallocating a stub first breaks the share for that inode only
//!   ([`Ext4::unshare`]): the content is copied into a new inode kept on the orphan list,
//!   then one transaction moves its extents into the stub, drops the stub's xattr and the
//!   store's reference (the store goes with its last reference). A crash during the copy
//!   leaves the stub shared and the copy an orphan the next mount frees.
//! - Releasing a stub's inode (its last link and last pin gone) drops its reference.
//! - Merging ([`Ext4::share_new`], [`Ext4::share_add`]) is one transaction per file: a crash
//!   leaves each file either private with its data or a stub with the reference counted.
//!
//! A stub with blocks of its own (written through a Linux mount of the image, which sees a
//! stub as a sparse file of zeros) is not a stub to the engine any more: its own blocks are
//! read. Guests never see the xattrs or the store directory (`pvfs_9p::ext4` hides them).

mod merge;
mod unshare;

use crate::block::BlockDevice;
use crate::ext4::bytes::le16;
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::extent::eh;
use crate::ext4::inode::Inode;
use crate::ext4::types::flags;
use crate::ext4::types::mode::{S_IFMT, S_IFREG};
use crate::ext4::{Ext4, Ino, ROOT_INO};
use alloc::vec::Vec;

/// The hidden directory at the root of the volume that holds the store directory.
pub const HIDDEN_DIR: &[u8] = b".pvfs";
/// The directory under [`HIDDEN_DIR`] holding one store file per shared content.
pub const STORE_DIR: &[u8] = b"shared";
/// Prefix of the xattrs that describe sharing (never shown to or set by guests).
pub const XATTR_PREFIX: &[u8] = b"trusted.pvfs.";
/// xattr name index of `trusted.`.
const TRUSTED: u8 = 4;
/// A stub's xattr naming its store (suffix after `trusted.`).
const X_SHARED: &[u8] = b"pvfs.shared";
/// A store's reference count (suffix after `trusted.`).
const X_REFS: &[u8] = b"pvfs.refs";

/// Whether `inode` could be a stub: a non-empty regular extent file with an empty tree.
/// (Only those are checked for the xattr, so other files pay nothing.)
fn may_be_stub(inode: &Inode) -> bool {
    inode.mode & S_IFMT == S_IFREG
        && inode.flags & flags::EXTENTS != 0
        && inode.flags & (flags::INLINE_DATA | flags::ENCRYPT) == 0
        && inode.size > 0
        && le16(&inode.iblock, eh::ENTRIES) == 0
        && le16(&inode.iblock, eh::DEPTH) == 0
}

/// The value of a stub's `trusted.pvfs.shared`.
fn ref_value(store: Ino, generation: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(8);
    v.extend_from_slice(&store.to_le_bytes());
    v.extend_from_slice(&generation.to_le_bytes());
    v
}

fn u32_at(v: &[u8], at: usize) -> Option<u32> {
    let b = v.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decimal name of a store file.
fn store_name(ino: Ino) -> Vec<u8> {
    let mut digits = Vec::new();
    let mut n = ino;
    loop {
        digits.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    digits
}

impl<D: BlockDevice> Ext4<D> {
    /// The store inode `inode` shares its content with, `None` if it is not a stub. The
    /// store is checked (a live regular extent file of the stub's size, with the generation
    /// the stub names and at least one reference); anything else is corruption.
    pub(crate) fn share_of(&mut self, inode: &Inode) -> Result<Option<Inode>> {
        if !may_be_stub(inode) {
            return Ok(None);
        }
        let v = match self.xattr_get_inode(inode, TRUSTED, X_SHARED) {
            Ok(v) => v,
            Err(Error::NoXattr) => return Ok(None),
            Err(e) => return Err(e),
        };
        let at = u64::from(inode.ino);
        let (Some(sino), Some(generation), 8) = (u32_at(&v, 0), u32_at(&v, 4), v.len()) else {
            return corrupt("shared-file reference", at);
        };
        if sino == inode.ino {
            return corrupt("shared-file reference", at);
        }
        let store = match self.load_inode(sino) {
            Ok(s) => s,
            Err(Error::BadInode { .. }) => return corrupt("shared-file store", at),
            Err(e) => return Err(e),
        };
        if store.mode & S_IFMT != S_IFREG
            || store.links == 0
            || store.generation != generation
            || store.size != inode.size
            || store.flags & flags::EXTENTS == 0
            || store.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0
            || self.store_refs(&store)? == 0
        {
            return corrupt("shared-file store", at);
        }
        Ok(Some(store))
    }

    /// A store's reference count (0 when it has none).
    fn store_refs(&mut self, store: &Inode) -> Result<u32> {
        match self.xattr_get_inode(store, TRUSTED, X_REFS) {
            Ok(v) if v.len() == 4 => Ok(u32_at(&v, 0).unwrap_or(0)),
            Ok(_) => corrupt("shared-file reference count", u64::from(store.ino)),
            Err(Error::NoXattr) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The inode whose blocks hold `ino`'s data: its store for a stub, else itself.
    pub(crate) fn data_inode(&mut self, ino: Ino) -> Result<Inode> {
        let inode = self.load_inode(ino)?;
        Ok(self.share_of(&inode)?.unwrap_or(inode))
    }

    /// The store file `ino` shares its content with (`None` if it is not a stub).
    pub fn shared_store(&mut self, ino: Ino) -> Result<Option<Ino>> {
        let inode = self.load_inode(ino)?;
        Ok(self.share_of(&inode)?.map(|s| s.ino))
    }

    /// The store directory `/.pvfs/shared`, `None` when it does not exist.
    fn store_dir(&mut self) -> Result<Option<Ino>> {
        let hidden = match self.lookup(ROOT_INO, HIDDEN_DIR) {
            Ok(i) => i,
            Err(Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        match self.lookup(hidden, STORE_DIR) {
            Ok(i) => Ok(Some(i)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Set xattr `trusted.<suffix>` of `ino` (or remove it with `None`) without changing
    /// the inode's ctime: sharing is not a change a guest can see.
    fn set_hidden_xattr(&mut self, ino: Ino, suffix: &[u8], value: Option<Vec<u8>>) -> Result<()> {
        let inode = self.load_inode(ino)?;
        let how = if value.is_some() {
            crate::ext4::XattrSet::Any
        } else {
            crate::ext4::XattrSet::Replace
        };
        self.xattr_change(ino, TRUSTED, suffix, value, how)?;
        self.restore_ctime(ino, &inode)
    }

    /// Put `before`'s ctime and change counter back into inode `ino`.
    fn restore_ctime(&mut self, ino: Ino, before: &Inode) -> Result<()> {
        let (t, change) = (before.ctime, before.change);
        self.patch_inode(ino, |raw| {
            crate::ext4::inode::restore_ctime_change(raw, t, change)
        })
    }
}
