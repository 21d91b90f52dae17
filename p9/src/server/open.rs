//! Opening files: Tlopen (with `O_TRUNC`) and Tlcreate, which creates a regular file and
//! opens it through the directory's fid. Every open fid counts against the open-file quota.

use super::attr::qid_of;
use super::connection::Connection;
use super::{check_name, reply, O_ACCMODE, O_RDWR, O_TRUNC, O_WRONLY};
use crate::fs::{mode, Errno, Filesystem, NewInode, SetAttr, TimeSet};
use crate::perm::{MAY_READ, MAY_WRITE};
use crate::wire::Rmsg;
use alloc::vec::Vec;

impl<F: Filesystem> Connection<F> {
    /// Tlopen.
    pub(super) fn lopen(&self, tag: u16, fid: u32, flags: u32) -> Result<Vec<u8>, Errno> {
        let fs = self.fs();
        let i = self.plain(fid)?;
        if i.open.is_some() {
            return Err(Errno::EBADF);
        }
        let a = fs.getattr(i.ino)?;
        let acc = flags & O_ACCMODE;
        let wants_write = acc == O_WRONLY || acc == O_RDWR || flags & O_TRUNC != 0;
        if a.is_dir() && wants_write {
            return Err(Errno::EISDIR);
        }
        if a.is_symlink() {
            return Err(Errno::ELOOP);
        }
        if wants_write {
            self.writable()?;
        }
        if self.checking() {
            let read = if acc == O_WRONLY { 0 } else { MAY_READ };
            let write = if wants_write { MAY_WRITE } else { 0 };
            self.need(i.uid, &a, read | write)?;
        }
        self.shared.quota.charge_open()?;
        let mut a = a;
        let owned = fs.owned_bytes(i.ino, &a);
        if flags & O_TRUNC != 0 && a.is_file() && a.size > 0 {
            match fs.setattr(
                i.ino,
                &SetAttr {
                    size: Some(0),
                    mtime: Some(TimeSet::Now),
                    ..Default::default()
                },
            ) {
                Ok(n) => {
                    self.shared.quota.refund_bytes(owned);
                    a = n;
                }
                Err(e) => {
                    self.shared.quota.refund_open();
                    return Err(e);
                }
            }
        }
        let mut st = self.state.lock();
        match st.fids.get_mut(&fid) {
            Some(f) if f.open.is_none() => f.open = Some(flags),
            _ => {
                self.shared.quota.refund_open();
                return Err(Errno::EBADF);
            }
        }
        Ok(reply(
            tag,
            &Rmsg::Lopen {
                qid: qid_of(&a),
                iounit: 0,
            },
        ))
    }

    /// Tlcreate: creates `name` in the directory of `fid`, which then holds the new file,
    /// open with `flags`.
    pub(super) fn lcreate(
        &self,
        tag: u16,
        fid: u32,
        name: &[u8],
        flags: u32,
        m: u32,
        gid: u32,
    ) -> Result<Vec<u8>, Errno> {
        let fs = self.fs();
        let i = self.dir_fid(fid)?;
        if i.open.is_some() {
            return Err(Errno::EBADF);
        }
        check_name(name)?;
        self.writable()?;
        self.need_create(i)?;
        self.shared.quota.charge_file()?;
        if let Err(e) = self.shared.quota.charge_open() {
            self.shared.quota.refund_file();
            return Err(e);
        }
        let pol = self.policy();
        let new = NewInode {
            mode: mode::S_IFREG | (m & 0o7777),
            uid: pol.host_uid(i.uid),
            gid: pol.gid_map.to_host(gid),
            rdev: 0,
        };
        let a = match fs.create(i.ino, name, &new) {
            Ok(a) => a,
            Err(e) => {
                self.shared.quota.refund_file();
                self.shared.quota.refund_open();
                return Err(e);
            }
        };
        fs.retain(a.ino);
        let old = {
            let mut st = self.state.lock();
            match st.fids.get_mut(&fid) {
                Some(f) => {
                    let old = f.ino;
                    f.ino = a.ino;
                    f.is_dir = false;
                    f.parent = Some((i.ino, name.to_vec()));
                    f.open = Some(flags);
                    Some(old)
                }
                None => None,
            }
        };
        match old {
            Some(o) => fs.release(o),
            None => {
                fs.release(a.ino);
                self.shared.quota.refund_open();
                return Err(Errno::EBADF);
            }
        }
        Ok(reply(
            tag,
            &Rmsg::Lcreate {
                qid: qid_of(&a),
                iounit: 0,
            },
        ))
    }
}
