//! Decoding a request and calling the method of its message, one per 9P message, in the
//! files named after what they do (see the module docs).

use super::connection::Connection;
use super::namespace::makedev;
use super::session::Request;
use super::{err_reply, wire_errno, EMSGSIZE};
use crate::fs::{Errno, Filesystem};
use crate::wire::{Frame, Tmsg, RREAD_HEADER_LEN};
use alloc::vec::Vec;

impl<F: Filesystem> Connection<F> {
    /// Runs one request: its reply, an Rlerror if it failed or its reply would not fit in
    /// the msize.
    pub(super) fn dispatch(&self, req: &Request) -> Vec<u8> {
        let f = Frame::new_unchecked(&req.msg[..]);
        let tag = req.tag;
        let msg = match Tmsg::parse(&f) {
            Ok(m) => m,
            Err(e) => return err_reply(tag, wire_errno(e)),
        };
        let msize = self.state.lock().msize as usize;
        let r = match self.op(tag, msize, msg) {
            Ok(r) => r,
            Err(e) => err_reply(tag, e),
        };
        if r.len() > msize {
            return err_reply(tag, EMSGSIZE);
        }
        r
    }

    /// The method of each message.
    fn op(&self, tag: u16, msize: usize, msg: Tmsg<'_>) -> Result<Vec<u8>, Errno> {
        // Payload room of an Rread / Rreaddir.
        let iomax = msize.saturating_sub(RREAD_HEADER_LEN);
        // The variants' field lists stand again in `Tmsg::emit_body` (wire/tmsg.rs), which
        // encodes them; here they become a handler's arguments. Only the lists are alike.
        match msg {
            // Answered by `submit`.
            Tmsg::Version { .. } | Tmsg::Flush { .. } => Err(Errno::EPROTO),
            // No authentication: ENOENT is the conventional "not required" answer.
            Tmsg::Auth { .. } => Err(Errno::ENOENT),
            Tmsg::Attach {
                fid,
                afid,
                aname,
                n_uname,
                ..
            } => self.attach(tag, fid, afid, aname, n_uname),
            Tmsg::Walk { fid, newfid, names } => self.walk(tag, fid, newfid, &names),
            Tmsg::Clunk { fid } => self.clunk(tag, fid),
            Tmsg::Remove { fid } => self.remove(tag, fid),
            Tmsg::Statfs { fid } => self.statfs(tag, fid),
            Tmsg::Lopen { fid, flags } => self.lopen(tag, fid, flags),
            Tmsg::Lcreate {
                fid,
                name,
                flags,
                mode,
                gid,
            } => self.lcreate(tag, fid, name, flags, mode, gid),
            Tmsg::Symlink {
                fid,
                name,
                target,
                gid,
            } => self.symlink(tag, fid, name, target, gid),
            Tmsg::Mknod {
                dfid,
                name,
                mode,
                major,
                minor,
                gid,
            } => self.mknod(tag, dfid, name, mode, makedev(major, minor), gid),
            Tmsg::Mkdir {
                dfid,
                name,
                mode,
                gid,
            } => self.mkdir(tag, dfid, name, mode, gid),
            Tmsg::Rename { fid, dfid, name } => self.rename(tag, fid, dfid, name),
            Tmsg::Renameat {
                olddirfid,
                oldname,
                newdirfid,
                newname,
            } => self.renameat(tag, olddirfid, oldname, newdirfid, newname),
            Tmsg::Unlinkat {
                dirfid,
                name,
                flags,
            } => self.unlinkat(tag, dirfid, name, flags),
            Tmsg::Link { dfid, fid, name } => self.link(tag, dfid, fid, name),
            Tmsg::Readlink { fid } => self.readlink(tag, fid),
            Tmsg::Getattr { fid, .. } => self.getattr(tag, fid),
            Tmsg::Setattr { fid, attr } => self.setattr(tag, fid, &attr),
            Tmsg::Read { fid, offset, count } => self.read(tag, iomax, fid, offset, count),
            Tmsg::Write { fid, offset, data } => self.write(tag, fid, offset, data),
            Tmsg::Readdir { fid, offset, count } => self.readdir(tag, iomax, fid, offset, count),
            Tmsg::Fsync { fid, datasync } => self.fsync(tag, fid, datasync),
            Tmsg::Lock { fid, lock, .. } => self.lock(tag, fid, &lock),
            Tmsg::Getlock { fid, lock } => self.getlock(tag, fid, &lock),
            Tmsg::Xattrwalk { fid, newfid, name } => self.xattrwalk(tag, fid, newfid, name),
            Tmsg::Xattrcreate {
                fid,
                name,
                size,
                flags,
            } => self.xattrcreate(tag, fid, name, size, flags),
        }
    }
}
