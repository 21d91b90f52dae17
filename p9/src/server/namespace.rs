//! The namespace: creating (Tmkdir, Tmknod, Tsymlink, Tlink), renaming (Trename, Trenameat),
//! removing (Tunlinkat, Tremove) and reading symlinks (Treadlink). Created inodes count
//! against the file quota; removed ones are refunded.

use super::attr::qid_of;
use super::connection::Connection;
use super::fids::FidInfo;
use super::{check_name, reply};
use crate::fs::{mode, Attr, Errno, Filesystem, Ino, NewInode};
use crate::perm::{MAY_EXEC, MAY_WRITE};
use crate::wire::Rmsg;
use alloc::vec::Vec;

/// Tunlinkat flag: remove a directory.
const AT_REMOVEDIR: u32 = 0x200;

/// A Linux device number from its major and minor numbers (glibc's `makedev`).
pub(super) fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & !0xff) << 12) | ((ma & !0xfff) << 32)
}

impl<F: Filesystem> Connection<F> {
    /// Tsymlink: `name` in the directory of `fid`, pointing at `target`.
    pub(super) fn symlink(
        &self,
        tag: u16,
        fid: u32,
        name: &[u8],
        target: &[u8],
        gid: u32,
    ) -> Result<Vec<u8>, Errno> {
        let i = self.dir_fid(fid)?;
        check_name(name)?;
        self.writable()?;
        self.need_create(i)?;
        self.shared.quota.charge_file()?;
        let pol = self.policy();
        let (uid, gid) = (pol.host_uid(i.uid), pol.gid_map.to_host(gid));
        let a = self
            .fs()
            .symlink(i.ino, name, target, uid, gid)
            .inspect_err(|_| {
                self.shared.quota.refund_file();
            })?;
        Ok(reply(tag, &Rmsg::Symlink { qid: qid_of(&a) }))
    }

    /// Tmknod: a device, fifo, socket or regular file `name` in the directory of `dfid`.
    pub(super) fn mknod(
        &self,
        tag: u16,
        dfid: u32,
        name: &[u8],
        m: u32,
        rdev: u64,
        gid: u32,
    ) -> Result<Vec<u8>, Errno> {
        let i = self.dir_fid(dfid)?;
        check_name(name)?;
        self.writable()?;
        let t = m & mode::S_IFMT;
        if !matches!(
            t,
            mode::S_IFCHR | mode::S_IFBLK | mode::S_IFIFO | mode::S_IFSOCK | mode::S_IFREG
        ) {
            return Err(Errno::EINVAL);
        }
        if matches!(t, mode::S_IFCHR | mode::S_IFBLK) && self.checking() {
            // CAP_MKNOD is not the guest's on a mapped share (as in a user namespace).
            return Err(Errno::EPERM);
        }
        let a = self.create_node(i, name, t, m, rdev, gid)?;
        Ok(reply(tag, &Rmsg::Mknod { qid: qid_of(&a) }))
    }

    /// Tmkdir.
    pub(super) fn mkdir(
        &self,
        tag: u16,
        dfid: u32,
        name: &[u8],
        m: u32,
        gid: u32,
    ) -> Result<Vec<u8>, Errno> {
        let i = self.dir_fid(dfid)?;
        check_name(name)?;
        self.writable()?;
        let a = self.create_node(i, name, mode::S_IFDIR, m, 0, gid)?;
        Ok(reply(tag, &Rmsg::Mkdir { qid: qid_of(&a) }))
    }

    /// Creates `name` in the directory of `i`, of type `ty` with the permission bits of `m`,
    /// owned by the fid's user and the guest group `gid`; it counts against the file quota.
    fn create_node(
        &self,
        i: FidInfo,
        name: &[u8],
        ty: u32,
        m: u32,
        rdev: u64,
        gid: u32,
    ) -> Result<Attr, Errno> {
        self.need_create(i)?;
        self.shared.quota.charge_file()?;
        let pol = self.policy();
        let new = NewInode {
            mode: ty | (m & 0o7777),
            uid: pol.host_uid(i.uid),
            gid: pol.gid_map.to_host(gid),
            rdev,
        };
        self.fs()
            .create(i.ino, name, &new)
            .inspect_err(|_| self.shared.quota.refund_file())
    }

    /// Fails unless the user of `dir` may add names to its directory (write and search).
    pub(super) fn need_create(&self, dir: FidInfo) -> Result<(), Errno> {
        if self.checking() {
            self.need_ino(dir.uid, dir.ino, MAY_WRITE | MAY_EXEC)?;
        }
        Ok(())
    }

    /// Fails unless the user of `by` may move `name` of directory `from` to `to_name` in `to`
    /// (Linux's `may_delete` on both sides, and write permission on a directory that changes
    /// parent, for its `..`).
    fn need_rename(
        &self,
        by: FidInfo,
        from: Ino,
        name: &[u8],
        to: Ino,
        to_name: &[u8],
    ) -> Result<(), Errno> {
        if !self.checking() {
            return Ok(());
        }
        self.need_delete(by.uid, from, name)?;
        self.need_ino(by.uid, to, MAY_WRITE | MAY_EXEC)?;
        self.need_delete(by.uid, to, to_name)?;
        let moved = self.fs().lookup(from, name)?;
        if moved.is_dir() && from != to {
            self.need(by.uid, &moved, MAY_WRITE)?;
        }
        Ok(())
    }

    /// Tlink: a new name `name` in the directory of `dfid` for the file of `fid`.
    pub(super) fn link(
        &self,
        tag: u16,
        dfid: u32,
        fid: u32,
        name: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        let d = self.dir_fid(dfid)?;
        let i = self.plain(fid)?;
        check_name(name)?;
        self.writable()?;
        if i.is_dir {
            return Err(Errno::EPERM);
        }
        self.need_create(d)?;
        self.fs().link(i.ino, d.ino, name)?;
        Ok(reply(tag, &Rmsg::Link))
    }

    /// Trename: moves the file of `fid` (by the name it was reached by) to `name` in the
    /// directory of `dfid`.
    pub(super) fn rename(
        &self,
        tag: u16,
        fid: u32,
        dfid: u32,
        name: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        let i = self.plain(fid)?;
        let d = self.dir_fid(dfid)?;
        check_name(name)?;
        self.writable()?;
        let (p, old) = {
            let st = self.state.lock();
            st.fids
                .get(&fid)
                .and_then(|f| f.parent.clone())
                .ok_or(Errno::EBUSY)?
        };
        self.need_rename(i, p, &old, d.ino, name)?;
        self.fs().rename(p, &old, d.ino, name)?;
        if let Some(f) = self.state.lock().fids.get_mut(&fid) {
            f.parent = Some((d.ino, name.to_vec()));
        }
        Ok(reply(tag, &Rmsg::Rename))
    }

    /// Trenameat.
    pub(super) fn renameat(
        &self,
        tag: u16,
        olddirfid: u32,
        oldname: &[u8],
        newdirfid: u32,
        newname: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        let o = self.dir_fid(olddirfid)?;
        let n = self.dir_fid(newdirfid)?;
        check_name(oldname)?;
        check_name(newname)?;
        self.writable()?;
        self.need_rename(o, o.ino, oldname, n.ino, newname)?;
        self.fs().rename(o.ino, oldname, n.ino, newname)?;
        Ok(reply(tag, &Rmsg::Renameat))
    }

    /// Tunlinkat.
    pub(super) fn unlinkat(
        &self,
        tag: u16,
        dirfid: u32,
        name: &[u8],
        flags: u32,
    ) -> Result<Vec<u8>, Errno> {
        let d = self.dir_fid(dirfid)?;
        check_name(name)?;
        self.writable()?;
        if self.checking() {
            self.need_delete(d.uid, d.ino, name)?;
        }
        self.unlink(d.ino, name, flags & AT_REMOVEDIR != 0, None)?;
        Ok(reply(tag, &Rmsg::Unlinkat))
    }

    /// Tremove: unlinks the file of `fid` by the name it was reached by, and clunks the fid
    /// (whether or not the unlink succeeded).
    pub(super) fn remove(&self, tag: u16, fid: u32) -> Result<Vec<u8>, Errno> {
        let f = self.state.lock().fids.remove(&fid).ok_or(Errno::EBADF)?;
        let parent = f.parent.clone();
        let is_dir = f.is_dir;
        let ino = f.ino;
        let uid = f.uid;
        let r = (|| {
            self.writable()?;
            let (p, name) = parent.ok_or(Errno::EBUSY)?;
            if self.checking() {
                self.need_delete(uid, p, &name)?;
            }
            self.unlink(p, &name, is_dir, Some(ino))
        })();
        let c = self.release_fid(f);
        r?;
        c?;
        Ok(reply(tag, &Rmsg::Remove))
    }

    /// Treadlink.
    pub(super) fn readlink(&self, tag: u16, fid: u32) -> Result<Vec<u8>, Errno> {
        let i = self.plain(fid)?;
        let t = self.fs().readlink(i.ino)?;
        Ok(reply(tag, &Rmsg::Readlink { target: &t }))
    }

    /// Unlinks `dir/name`; with `expect`, only if that name still refers to that inode (a
    /// Tremove through a fid whose file was renamed away must not remove a newcomer).
    pub(super) fn unlink(
        &self,
        dir: Ino,
        name: &[u8],
        rmdir: bool,
        expect: Option<Ino>,
    ) -> Result<(), Errno> {
        let fs = self.fs();
        let target = fs.lookup(dir, name)?;
        if expect.is_some_and(|i| i != target.ino) {
            return Err(Errno::ENOENT);
        }
        let owned = fs.owned_bytes(target.ino, &target);
        fs.unlink(dir, name, rmdir)?;
        if target.is_dir() || target.nlink <= 1 {
            self.shared.quota.refund_file();
            if target.is_file() {
                self.shared.quota.refund_bytes(owned);
            }
        }
        Ok(())
    }
}
