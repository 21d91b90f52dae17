//! Merging files into a store: [`Ext4::share_new`] turns a file into the first stub of a new
//! store (its extents move, no data is copied), [`Ext4::share_add`] turns a file with the
//! same content into another stub of it (its blocks are freed). Each is one transaction.

use super::{ref_value, store_name, HIDDEN_DIR, STORE_DIR, TRUSTED, X_REFS, X_SHARED};
use crate::block::BlockDevice;
use crate::ext4::error::{Error, Result};
use crate::ext4::inode::{set_raw_size, Inode};
use crate::ext4::types::mode::{S_IFMT, S_IFREG};
use crate::ext4::types::{flags, FileType};
use crate::ext4::{Ext4, Ino, ROOT_INO};

impl<D: BlockDevice> Ext4<D> {
    /// Check that `ino` can become a stub: a non-empty regular extent file (not inline or
    /// encrypted) with data blocks, not a stub already, not a store.
    fn shareable(&mut self, ino: Ino) -> Result<Inode> {
        let inode = self.load_inode(ino)?;
        let ea = if inode.file_acl != 0 {
            self.ctx.bs as u64 / 512
        } else {
            0
        };
        if inode.mode & S_IFMT != S_IFREG
            || inode.flags & flags::EXTENTS == 0
            || inode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0
            || inode.size == 0
            || inode.blocks <= ea
        {
            return Err(Error::Invalid {
                what: "sharing a file that is not a regular file with data blocks",
            });
        }
        if self.share_of(&inode)?.is_some() || self.store_refs(&inode)? != 0 {
            return Err(Error::Invalid {
                what: "sharing a file that is shared already",
            });
        }
        Ok(inode)
    }

    /// `/.pvfs/shared`, made (mode 0700, owner 0:0) when missing.
    fn ensure_store_dir(&mut self) -> Result<Ino> {
        if let Some(d) = self.store_dir()? {
            return Ok(d);
        }
        let hidden = match self.lookup(ROOT_INO, HIDDEN_DIR) {
            Ok(i) => i,
            Err(Error::NotFound) => self.mkdir(ROOT_INO, HIDDEN_DIR, 0o700, 0, 0)?,
            Err(e) => return Err(e),
        };
        self.mkdir(hidden, STORE_DIR, 0o700, 0, 0)
    }

    /// Make `ino`'s content shared: a new store file in `/.pvfs/shared/` takes its extents
    /// (the data stays in place) with one reference, and `ino` becomes its stub, keeping its
    /// inode, attributes and times. Returns the store's inode. One transaction: on an error
    /// nothing has changed.
    pub fn share_new(&mut self, ino: Ino) -> Result<Ino> {
        self.ensure_rw()?;
        self.shareable(ino)?;
        let dir = self.ensure_store_dir()?;
        // A transaction boundary: the merge below commits (or not) as a whole.
        self.maybe_sync()?;
        let inode = self.shareable(ino)?;
        let store = self.alloc_inode(false, dir)?;
        let generation = self.new_inode(store, S_IFREG | 0o400, 0, 0, 1)?;
        let size = inode.size;
        self.patch_inode(store, |raw| set_raw_size(raw, size))?;
        if let Err(e) = self.xattr_change(
            store,
            TRUSTED,
            X_REFS,
            Some(1u32.to_le_bytes().to_vec()),
            crate::ext4::XattrSet::Create,
        ) {
            self.xattr_release(store)?;
            self.abandon_inode(store, false)?;
            return Err(e);
        }
        if let Err(e) = self.dir_add(dir, &store_name(store), store, FileType::Regular) {
            self.xattr_release(store)?;
            self.abandon_inode(store, false)?;
            return Err(e);
        }
        let undo_store = |fs: &mut Self| -> Result<()> {
            fs.remove_entry(dir, &store_name(store), store)?;
            fs.release_inode_plain(store, false)
        };
        if let Err(e) = self.set_hidden_xattr(ino, X_SHARED, Some(ref_value(store, generation))) {
            undo_store(self)?;
            return Err(e);
        }
        if let Err(e) = self.move_extents(ino, store) {
            self.set_hidden_xattr(ino, X_SHARED, None)?;
            undo_store(self)?;
            return Err(e);
        }
        self.restore_ctime(ino, &inode)?;
        Ok(store)
    }

    /// Make `ino` another stub of `store`: the caller has checked that their contents are
    /// equal. `ino`'s data and tree blocks are freed and the store gains a reference; `ino`
    /// keeps its inode, attributes and times. One transaction: on an error nothing has
    /// changed.
    pub fn share_add(&mut self, ino: Ino, store: Ino) -> Result<()> {
        self.ensure_rw()?;
        self.maybe_sync()?;
        let inode = self.shareable(ino)?;
        let s = self.load_inode(store)?;
        let refs = self.store_refs(&s)?;
        if s.mode & S_IFMT != S_IFREG || refs == 0 || s.size != inode.size {
            return Err(Error::Invalid {
                what: "sharing with a file that is not a store of the same size",
            });
        }
        let refs = refs.checked_add(1).ok_or(Error::TooManyLinks)?;
        self.set_hidden_xattr(ino, X_SHARED, Some(ref_value(store, s.generation)))?;
        let mut tree = self.load_tree(&inode)?;
        let data: u64 = tree.ext.iter().map(|e| u64::from(e.n)).sum();
        let extents: alloc::vec::Vec<(u64, u64)> =
            tree.ext.iter().map(|e| (e.p, u64::from(e.n))).collect();
        tree.ext.clear();
        let delta = -i64::try_from(data).map_err(|_| Error::FileTooBig)?;
        if let Err(e) = self.store_tree(ino, &mut tree, delta) {
            self.set_hidden_xattr(ino, X_SHARED, None)?;
            return Err(e);
        }
        for (p, n) in extents {
            self.free_blocks(p, n)?;
        }
        self.set_hidden_xattr(store, X_REFS, Some(refs.to_le_bytes().to_vec()))?;
        self.restore_ctime(ino, &inode)
    }
}
