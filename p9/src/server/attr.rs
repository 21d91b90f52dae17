//! Attributes: Tgetattr (and the qid of an inode), Tsetattr and Tstatfs, with uids and gids
//! mapped between guest and host.

use super::connection::Connection;
use super::fids::FidInfo;
use super::reply;
use crate::fs::{Attr, Errno, Filesystem, SetAttr, TimeSet, Timespec};
use crate::perm::MAY_WRITE;
use crate::wire::{getattr as ga, qid_type, setattr as sa, Getattr, Qid, Rmsg, SetattrReq};
use alloc::vec::Vec;

/// Qid of an inode: `path` combines inode number and generation, `version` folds the
/// change counter.
pub fn qid_of(a: &Attr) -> Qid {
    let ty = if a.is_dir() {
        qid_type::DIR
    } else if a.is_symlink() {
        qid_type::SYMLINK
    } else {
        qid_type::FILE
    };
    Qid {
        ty,
        version: (a.version ^ (a.version >> 32)) as u32,
        path: a.ino ^ (u64::from(a.generation) << 32),
    }
}

/// A time from the wire, its nanoseconds capped below a second.
fn ts(sec: u64, nsec: u64) -> Timespec {
    Timespec {
        sec,
        nsec: nsec.min(999_999_999) as u32,
    }
}

impl<F: Filesystem> Connection<F> {
    /// Tgetattr (every field, whatever the request mask).
    pub(super) fn getattr(&self, tag: u16, fid: u32) -> Result<Vec<u8>, Errno> {
        let i = self.plain(fid)?;
        let a = self.fs().getattr(i.ino)?;
        Ok(reply(tag, &Rmsg::Getattr(self.guest_attr(&a))))
    }

    /// Tsetattr; a change of size is charged to (or refunded from) the quota.
    pub(super) fn setattr(&self, tag: u16, fid: u32, attr: &SetattrReq) -> Result<Vec<u8>, Errno> {
        let fs = self.fs();
        let pol = self.policy();
        let i = self.plain(fid)?;
        self.writable()?;
        let v = attr.valid;
        let time = |set: u32, sec, nsec| {
            if v & set != 0 {
                TimeSet::At(ts(sec, nsec))
            } else {
                TimeSet::Now
            }
        };
        let mut set = SetAttr {
            mode: (v & sa::MODE != 0).then_some(attr.mode & 0o7777),
            uid: (v & sa::UID != 0).then(|| pol.uid_map.to_host(attr.uid)),
            gid: (v & sa::GID != 0).then(|| pol.gid_map.to_host(attr.gid)),
            size: (v & sa::SIZE != 0).then_some(attr.size),
            atime: (v & sa::ATIME != 0)
                .then(|| time(sa::ATIME_SET, attr.atime_sec, attr.atime_nsec)),
            mtime: (v & sa::MTIME != 0)
                .then(|| time(sa::MTIME_SET, attr.mtime_sec, attr.mtime_nsec)),
            ctime: v & sa::CTIME != 0,
        };
        if self.checking() {
            self.check_setattr(i, &set, v)?;
        }
        if set.mode.is_none() && v & (sa::SIZE | sa::UID | sa::GID) != 0 {
            // A truncate or a change of owner by a caller without CAP_FSETID.
            let cur = fs.getattr(i.ino)?;
            set.mode = crate::privs::after_change(&cur, self.keeps_privs(i.uid, &cur));
        }
        let mut charged = 0;
        if let Some(size) = set.size {
            let cur = fs.getattr(i.ino)?;
            if cur.is_dir() {
                return Err(Errno::EISDIR);
            }
            let owned = fs.owned_bytes(i.ino, &cur);
            if size > owned {
                charged = size - owned;
                self.shared.quota.charge_bytes(charged)?;
            } else {
                self.shared.quota.refund_bytes(owned - size);
            }
        }
        fs.setattr(i.ino, &set)
            .inspect_err(|_| self.shared.quota.refund_bytes(charged))?;
        Ok(reply(tag, &Rmsg::Setattr))
    }

    /// Linux's rules for a Tsetattr of guest user `i.uid` on a mapped share: the owner (or a
    /// privileged caller) changes mode, group and explicit times; only a privileged caller
    /// gives a file away; a truncate needs write permission (or a fid open for writing);
    /// times set to now need ownership or write permission.
    fn check_setattr(&self, i: FidInfo, set: &SetAttr, v: u32) -> Result<(), Errno> {
        let a = self.fs().getattr(i.ino)?;
        if set.mode.is_some() || set.gid.is_some() {
            self.need_owner(i.uid, &a)?;
        }
        match set.uid {
            Some(u) if u != a.uid => self.need_capable(i.uid, &a)?,
            Some(_) => self.need_owner(i.uid, &a)?,
            None => {}
        }
        if v & (sa::ATIME_SET | sa::MTIME_SET) != 0 {
            self.need_owner(i.uid, &a)?;
        } else if v & (sa::ATIME | sa::MTIME) != 0 && self.need_owner(i.uid, &a).is_err() {
            self.need(i.uid, &a, MAY_WRITE)?;
        }
        let open_for_write = i.open.is_some_and(|f| {
            f & super::O_ACCMODE == super::O_WRONLY || f & super::O_ACCMODE == super::O_RDWR
        });
        if set.size.is_some() && !open_for_write {
            self.need(i.uid, &a, MAY_WRITE)?;
        }
        Ok(())
    }

    /// Tstatfs, within the quota's limits.
    pub(super) fn statfs(&self, tag: u16, fid: u32) -> Result<Vec<u8>, Errno> {
        self.plain(fid)?;
        let s = self.shared.quota.clamp_statfs(self.fs().statfs()?);
        Ok(reply(tag, &Rmsg::Statfs(s)))
    }

    /// An inode's attributes as the guest sees them (its uid and gid mapped).
    fn guest_attr(&self, a: &Attr) -> Getattr {
        let c = self.policy();
        Getattr {
            valid: ga::ALL,
            qid: qid_of(a),
            mode: a.mode,
            uid: c.uid_map.to_guest(a.uid),
            gid: c.gid_map.to_guest(a.gid),
            nlink: a.nlink,
            rdev: a.rdev,
            size: a.size,
            blksize: a.blksize,
            blocks: a.blocks,
            atime_sec: a.atime.sec,
            atime_nsec: a.atime.nsec.into(),
            mtime_sec: a.mtime.sec,
            mtime_nsec: a.mtime.nsec.into(),
            ctime_sec: a.ctime.sec,
            ctime_nsec: a.ctime.nsec.into(),
            btime_sec: a.btime.sec,
            btime_nsec: a.btime.nsec.into(),
            gen: a.generation.into(),
            data_version: a.version,
        }
    }
}
