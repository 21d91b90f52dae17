//! Breaking a share: [`Ext4::unshare`] gives a stub its own copy of the data, and dropping a
//! stub's reference when its inode is released (the store goes with its last reference).

use super::{store_name, X_REFS, X_SHARED};
use crate::block::BlockDevice;
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::Inode;
use crate::ext4::types::mode::S_IFREG;
use crate::ext4::{Ext4, Ino};
use alloc::vec;

/// Bytes copied per step when a share is broken.
const COPY_CHUNK: usize = 256 << 10;

impl<D: BlockDevice> Ext4<D> {
    /// Give stub `ino` its own data (nothing to do for other files). With `copy` false the
    /// content is dropped instead (a truncate to size 0 follows). The copy goes into a new
    /// inode kept on the orphan list (a crash during it leaves the stub shared and the copy
    /// for the next mount to free); then one transaction moves the copy's extents into
    /// `ino`, removes its `trusted.pvfs.shared` and drops the store's reference. `ino` keeps
    /// its inode number, attributes and times. Other names of other stubs see nothing.
    pub fn unshare(&mut self, ino: Ino, copy: bool) -> Result<()> {
        let inode = self.load_inode(ino)?;
        let Some(store) = self.share_of(&inode)? else {
            return Ok(());
        };
        self.ensure_rw()?;
        self.maybe_sync()?;
        let tmp = if copy {
            Some(self.copy_of(&store, ino)?)
        } else {
            None
        };
        // The switch: one transaction (nothing below commits).
        if let Some(tmp) = tmp {
            if let Err(e) = self.move_extents(tmp, ino) {
                self.drop_copy(tmp)?;
                return Err(e);
            }
        }
        self.set_hidden_xattr(ino, X_SHARED, None)?;
        self.drop_ref(&store)?;
        if let Some(tmp) = tmp {
            self.drop_copy(tmp)?;
        }
        self.restore_ctime(ino, &inode)?;
        Ok(())
    }

    /// Copy the data of `store` into a new orphan inode (near `near`) and return it.
    fn copy_of(&mut self, store: &Inode, near: Ino) -> Result<Ino> {
        let tmp = self.alloc_inode(false, near)?;
        self.new_inode(tmp, S_IFREG | 0o600, 0, 0, 0)?;
        if let Err(e) = self.orphan_add(tmp) {
            self.abandon_inode(tmp, false)?;
            return Err(e);
        }
        if let Err(e) = self.copy_data(store, tmp) {
            self.drop_copy(tmp)?;
            return Err(e);
        }
        Ok(tmp)
    }

    /// Copy the data ranges of `store` (holes stay holes) into `tmp`.
    fn copy_data(&mut self, store: &Inode, tmp: Ino) -> Result<()> {
        let ranges = self.data_ranges_of(store)?;
        let mut buf = vec![0u8; COPY_CHUNK];
        for (start, len) in ranges {
            let end = start.checked_add(len).ok_or(Error::FileTooBig)?;
            let mut off = start;
            while off < end {
                let want = usize::try_from(end - off)
                    .unwrap_or(COPY_CHUNK)
                    .min(COPY_CHUNK);
                let b = buf.get_mut(..want).unwrap_or(&mut []);
                let n = self.read_inode(store, off, b)?;
                if n == 0 {
                    return corrupt("shared-file store size", u64::from(store.ino));
                }
                let mut done = 0;
                while done < n {
                    let part = b.get(done..n).unwrap_or(&[]);
                    let w = self.write(tmp, off + done as u64, part)?;
                    if w == 0 {
                        return Err(Error::NoSpace);
                    }
                    done += w;
                }
                off += n as u64;
            }
        }
        Ok(())
    }

    /// Free the orphan copy `tmp` and take it off the orphan records.
    fn drop_copy(&mut self, tmp: Ino) -> Result<()> {
        self.orphan_del(tmp)?;
        self.release_inode_plain(tmp, false)
    }

    /// Drop one reference to `store`: at the last, its entry in `/.pvfs/shared` and the
    /// store itself go.
    pub(crate) fn drop_ref(&mut self, store: &Inode) -> Result<()> {
        let refs = self.store_refs(store)?;
        if refs > 1 {
            let v = (refs - 1).to_le_bytes().to_vec();
            return self.set_hidden_xattr(store.ino, X_REFS, Some(v));
        }
        let Some(dir) = self.store_dir()? else {
            return corrupt("shared-file store directory", u64::from(store.ino));
        };
        self.remove_entry(dir, &store_name(store.ino), store.ino)?;
        self.release_inode_plain(store.ino, false)
    }
}
