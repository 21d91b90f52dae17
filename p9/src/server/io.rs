//! File data and directory listings: Tread, Twrite, Treaddir and Tfsync.

use super::attr::qid_of;
use super::connection::Connection;
use super::fids::FidInfo;
use super::{reply, O_ACCMODE, O_APPEND, O_RDWR, O_WRONLY};
use crate::fs::{Errno, Filesystem, Ino, SetAttr};
use crate::wire::{finish_io_reply, qid_type, ty, DirEntryRepr, Qid, Rmsg, RREAD_HEADER_LEN};
use alloc::vec::Vec;

impl<F: Filesystem> Connection<F> {
    /// Tread: at most `count` bytes, and no more than `iomax` (what fits in an msize reply).
    // Treaddir carries the same arguments (see `readdir`); the bodies share nothing.
    pub(super) fn read(
        &self,
        tag: u16,
        iomax: usize,
        fid: u32,
        offset: u64,
        count: u32,
    ) -> Result<Vec<u8>, Errno> {
        let i = self.info(fid)?;
        let n = (count as usize).min(iomax);
        if i.xattr {
            return self.read_xattr(tag, fid, offset, n);
        }
        match i.open {
            Some(fl) if fl & O_ACCMODE != O_WRONLY => {}
            _ => return Err(Errno::EBADF),
        }
        // `read` writes every byte it reports, and the reply is cut to those: nothing
        // a recycled buffer held before goes out.
        let mut out = self.buffer(RREAD_HEADER_LEN + n);
        let got = self
            .fs()
            .read(
                i.ino,
                offset,
                out.get_mut(RREAD_HEADER_LEN..).unwrap_or(&mut []),
            )?
            .min(n);
        out.truncate(RREAD_HEADER_LEN + got);
        finish_io_reply(&mut out, ty::RREAD, tag).map_err(|_| Errno::EIO)?;
        Ok(out)
    }

    /// Twrite.
    // `write_xattr` (xattr.rs) takes the same arguments: an xattr fid's Twrite is handed to it.
    pub(super) fn write(
        &self,
        tag: u16,
        fid: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        let i = self.info(fid)?;
        if i.xattr {
            return self.write_xattr(tag, fid, offset, data);
        }
        let (off, grow) = self.write_start(i, offset, data.len())?;
        let n = self
            .fs()
            .write(i.ino, off, data)
            .inspect_err(|_| self.shared.quota.refund_bytes(grow))?;
        Ok(reply(
            tag,
            &Rmsg::Write {
                count: n.min(data.len()) as u32,
            },
        ))
    }

    /// Checks a write of `len` bytes at `offset` through a fid of `i` and charges its growth of
    /// the file to the quota: returns the offset to write at (the end of the file for
    /// `O_APPEND`) and the bytes charged.
    pub(super) fn write_start(
        &self,
        i: FidInfo,
        offset: u64,
        len: usize,
    ) -> Result<(u64, u64), Errno> {
        let fl = match i.open {
            Some(fl) if fl & O_ACCMODE == O_WRONLY || fl & O_ACCMODE == O_RDWR => fl,
            _ => return Err(Errno::EBADF),
        };
        self.writable()?;
        let cur = self.shared.fs.getattr(i.ino)?;
        let off = if fl & O_APPEND != 0 { cur.size } else { offset };
        let end = off.checked_add(len as u64).ok_or(Errno::EFBIG)?;
        // The file's new size less what the export owned of it (all of its size, except for
        // a template share's file not yet copied: its copy is charged whole).
        let grow = end
            .max(cur.size)
            .saturating_sub(self.shared.fs.owned_bytes(i.ino, &cur));
        self.shared.quota.charge_bytes(grow)?;
        if let Some(m) = crate::privs::after_change(&cur, self.keeps_privs(i.uid, &cur)) {
            let clear = SetAttr {
                mode: Some(m),
                ..SetAttr::default()
            };
            if let Err(e) = self.shared.fs.setattr(i.ino, &clear) {
                self.shared.quota.refund_bytes(grow);
                return Err(e);
            }
        }
        Ok((off, grow))
    }

    /// Treaddir: the entries from cookie `offset` that fit in `count` bytes (and `iomax`).
    // Tread's arguments, as `read` takes them: both messages carry a fid, an offset and a
    // count; the bodies share nothing.
    pub(super) fn readdir(
        &self,
        tag: u16,
        iomax: usize,
        fid: u32,
        offset: u64,
        count: u32,
    ) -> Result<Vec<u8>, Errno> {
        let fs = self.fs();
        let root = self.shared.root;
        let i = self.plain(fid)?;
        if i.open.is_none() {
            return Err(Errno::EBADF);
        }
        if !i.is_dir {
            return Err(Errno::ENOTDIR);
        }
        let limit = (count as usize).min(iomax);
        let mut ents: Vec<(Ino, u8, Vec<u8>, u64)> = Vec::new();
        let mut used = 0usize;
        let mut any = false;
        fs.readdir(i.ino, offset, &mut |e| {
            any = true;
            let len = DirEntryRepr {
                qid: Qid::default(),
                offset: 0,
                ty: 0,
                name: e.name,
            }
            .buffer_len();
            if used + len > limit || e.name.len() > 255 {
                return false;
            }
            used += len;
            ents.push((e.ino, e.kind, e.name.to_vec(), e.next_cookie));
            true
        })?;
        if ents.is_empty() && any {
            return Err(Errno::EINVAL);
        }
        let mut out = Vec::with_capacity(RREAD_HEADER_LEN + used);
        out.extend_from_slice(&[0; RREAD_HEADER_LEN]);
        for (ino, kind, name, cookie) in &ents {
            // At the export root, ".." is the root itself (confinement).
            let ino = if i.ino == root && name == b".." {
                root
            } else {
                *ino
            };
            let qid = match fs.getattr(ino) {
                Ok(a) => qid_of(&a),
                Err(_) => Qid {
                    ty: if *kind == crate::fs::dt::DIR {
                        qid_type::DIR
                    } else {
                        0
                    },
                    version: 0,
                    path: ino,
                },
            };
            DirEntryRepr {
                qid,
                offset: *cookie,
                ty: *kind,
                name,
            }
            .emit(&mut out)
            .map_err(|_| Errno::EIO)?;
        }
        finish_io_reply(&mut out, ty::RREADDIR, tag).map_err(|_| Errno::EIO)?;
        Ok(out)
    }

    /// Tfsync; also returns the error of a write answered early that failed since
    /// ([`Connection::finish_write`]).
    pub(super) fn fsync(&self, tag: u16, fid: u32, datasync: u32) -> Result<Vec<u8>, Errno> {
        let i = self.plain(fid)?;
        let late = self.shared.late_errors.lock().remove(&i.ino);
        self.fs().fsync(i.ino, datasync != 0)?;
        match late {
            Some(e) => Err(e),
            None => Ok(reply(tag, &Rmsg::Fsync)),
        }
    }
}
