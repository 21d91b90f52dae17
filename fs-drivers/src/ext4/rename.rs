//! `rename`: POSIX replace rules, `noreplace`, `exchange`, and directories moving across
//! parents (their `..` and link counts follow).

use crate::block::BlockDevice;
use crate::ext4::dir::valid_name;
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::set_ctime;
use crate::ext4::namei::EXT4_LINK_MAX;
use crate::ext4::types::mode::{S_IFDIR, S_IFMT};
use crate::ext4::types::{FileType, RenameFlags};
use crate::ext4::{Ext4, Ino, NAME_MAX, ROOT_INO};

impl<D: BlockDevice> Ext4<D> {
    /// `Invalid` when directory `anc` is `dir` or one of its ancestors (walking `..` up to
    /// the root, bounded by the inode count).
    fn check_not_ancestor(&mut self, anc: Ino, dir: Ino) -> Result<()> {
        let mut cur = dir;
        for _ in 0..=self.ctx.inodes_count {
            if cur == anc {
                return Err(Error::Invalid {
                    what: "moving a directory into its own subtree",
                });
            }
            if cur == ROOT_INO {
                return Ok(());
            }
            let up = self.lookup(cur, b"..")?;
            if up == cur {
                return corrupt("directory parent loop", u64::from(cur));
            }
            cur = up;
        }
        corrupt("directory parent loop", u64::from(dir))
    }

    /// Rename `olddir/oldname` to `newdir/newname` with POSIX semantics: an existing target
    /// is replaced (file over file, directory over an empty directory; file over directory
    /// is [`Error::IsDir`], directory over file [`Error::NotDir`], over a non-empty directory
    /// [`Error::NotEmpty`]); the same inode on both sides is a no-op; a directory moved to
    /// another parent gets its `..` rewritten and both parents' link counts fixed; moving a
    /// directory into its own subtree is [`Error::Invalid`]. `noreplace` refuses an existing
    /// target ([`Error::Exists`]); `exchange` swaps two existing entries. The replaced inode
    /// loses a link (and is freed with its last one). The moved inodes' ctime and both
    /// parents' mtime/ctime are stamped. Every refusal leaves the file system unchanged.
    pub fn rename(
        &mut self,
        olddir: Ino,
        oldname: &[u8],
        newdir: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        self.ensure_rw()?;
        if flags.noreplace && flags.exchange {
            return Err(Error::Invalid {
                what: "rename with both noreplace and exchange",
            });
        }
        for n in [oldname, newname] {
            if n.len() > NAME_MAX || !valid_name(n) || n == b"." || n == b".." {
                return Err(Error::InvalidName);
            }
        }
        self.writable_dir(olddir)?;
        let newdir_inode = self.writable_dir(newdir)?;
        let src = self.lookup(olddir, oldname)?;
        let dst = match self.lookup(newdir, newname) {
            Ok(i) => Some(i),
            Err(Error::NotFound) => None,
            Err(e) => return Err(e),
        };
        if flags.exchange && dst.is_none() {
            return Err(Error::NotFound);
        }
        if flags.noreplace && dst.is_some() {
            return Err(Error::Exists);
        }
        if dst == Some(src) {
            return Ok(());
        }
        let sinode = self.load_inode(src)?;
        let s_dir = sinode.mode & S_IFMT == S_IFDIR;
        let dinode = match dst {
            Some(d) => Some(self.load_inode(d)?),
            None => None,
        };
        let d_dir = dinode.as_ref().is_some_and(|i| i.mode & S_IFMT == S_IFDIR);
        let cross = olddir != newdir;
        if s_dir {
            self.writable_dir(src)?;
            if cross {
                self.check_not_ancestor(src, newdir)?;
            }
        }
        if flags.exchange && d_dir {
            if let Some(d) = dst {
                self.writable_dir(d)?;
                if cross {
                    self.check_not_ancestor(d, olddir)?;
                }
            }
        }
        // What the replaced inode would free, checked before anything changes.
        if let (Some(d), Some(di), false) = (dst, dinode.as_ref(), flags.exchange) {
            match (s_dir, d_dir) {
                (true, false) => return Err(Error::NotDir { ino: d }),
                (false, true) => return Err(Error::IsDir { ino: d }),
                _ => {}
            }
            if d_dir && !self.dir_is_empty(d)? {
                return Err(Error::NotEmpty);
            }
            if d_dir || di.links <= 1 {
                self.check_releasable(di)?;
            }
        }
        // Subdirectory count changes of the parents.
        let (s, d) = (i32::from(s_dir), i32::from(d_dir));
        let (old_delta, new_delta) = match (flags.exchange, cross) {
            (true, true) => (d - s, s - d),
            (true, false) => (0, 0),
            (false, true) => (-s, s - d),
            (false, false) => (0, -d),
        };
        let no_dir_nlink = self.sb.feature_ro_compat & 0x20 == 0;
        if no_dir_nlink && new_delta > 0 && newdir_inode.links >= EXT4_LINK_MAX - 1 {
            return Err(Error::TooManyLinks);
        }
        if no_dir_nlink && old_delta > 0 && self.load_inode(olddir)?.links >= EXT4_LINK_MAX - 1 {
            return Err(Error::TooManyLinks);
        }
        let skind = FileType::from_mode(sinode.mode);
        let now = self.clock;
        match (dst, dinode.as_ref()) {
            (Some(d), Some(di)) if flags.exchange => {
                let dkind = FileType::from_mode(di.mode);
                self.set_entry(olddir, oldname, src, d, dkind)?;
                self.set_entry(newdir, newname, d, src, skind)?;
                if cross && d_dir {
                    self.set_dotdot(d, olddir)?;
                }
                self.patch_inode(d, |raw| set_ctime(raw, now))?;
            }
            (Some(d), Some(_)) => {
                self.set_entry(newdir, newname, d, src, skind)?;
                self.remove_entry(olddir, oldname, src)?;
                self.drop_link(d)?;
            }
            _ => {
                self.dir_add(newdir, newname, src, skind)?;
                self.remove_entry(olddir, oldname, src)?;
            }
        }
        if cross && s_dir {
            self.set_dotdot(src, newdir)?;
        }
        self.dir_links_add(olddir, old_delta)?;
        self.dir_links_add(newdir, new_delta)?;
        self.patch_inode(src, |raw| set_ctime(raw, now))?;
        self.maybe_sync()
    }
}
