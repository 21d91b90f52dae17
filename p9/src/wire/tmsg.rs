//! [`Tmsg`]: the requests (T-messages), decoded from and encoded to the wire.

use super::frame::{begin, finish};
use super::{
    fields::put_lock_body, lock_body, ty, Frame, LockRepr, Reader, SetattrReq, WireError, Writer,
    MAX_WELEM,
};
use alloc::vec::Vec;

/// A request (T-message) body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields are the protocol's own")]
pub enum Tmsg<'a> {
    Version {
        msize: u32,
        version: &'a [u8],
    },
    Auth {
        afid: u32,
        uname: &'a [u8],
        aname: &'a [u8],
        n_uname: u32,
    },
    Attach {
        fid: u32,
        afid: u32,
        uname: &'a [u8],
        aname: &'a [u8],
        n_uname: u32,
    },
    Flush {
        oldtag: u16,
    },
    Walk {
        fid: u32,
        newfid: u32,
        names: Vec<&'a [u8]>,
    },
    Read {
        fid: u32,
        offset: u64,
        count: u32,
    },
    Write {
        fid: u32,
        offset: u64,
        data: &'a [u8],
    },
    Clunk {
        fid: u32,
    },
    Remove {
        fid: u32,
    },
    Statfs {
        fid: u32,
    },
    Lopen {
        fid: u32,
        flags: u32,
    },
    Lcreate {
        fid: u32,
        name: &'a [u8],
        flags: u32,
        mode: u32,
        gid: u32,
    },
    Symlink {
        fid: u32,
        name: &'a [u8],
        target: &'a [u8],
        gid: u32,
    },
    Mknod {
        dfid: u32,
        name: &'a [u8],
        mode: u32,
        major: u32,
        minor: u32,
        gid: u32,
    },
    Rename {
        fid: u32,
        dfid: u32,
        name: &'a [u8],
    },
    Readlink {
        fid: u32,
    },
    Getattr {
        fid: u32,
        mask: u64,
    },
    Setattr {
        fid: u32,
        attr: SetattrReq,
    },
    Xattrwalk {
        fid: u32,
        newfid: u32,
        name: &'a [u8],
    },
    Xattrcreate {
        fid: u32,
        name: &'a [u8],
        size: u64,
        flags: u32,
    },
    Readdir {
        fid: u32,
        offset: u64,
        count: u32,
    },
    /// `datasync` is absent in older clients (then 0).
    Fsync {
        fid: u32,
        datasync: u32,
    },
    Lock {
        fid: u32,
        flags: u32,
        lock: LockRepr<'a>,
    },
    Getlock {
        fid: u32,
        lock: LockRepr<'a>,
    },
    Link {
        dfid: u32,
        fid: u32,
        name: &'a [u8],
    },
    Mkdir {
        dfid: u32,
        name: &'a [u8],
        mode: u32,
        gid: u32,
    },
    Renameat {
        olddirfid: u32,
        oldname: &'a [u8],
        newdirfid: u32,
        newname: &'a [u8],
    },
    Unlinkat {
        dirfid: u32,
        name: &'a [u8],
        flags: u32,
    },
}

impl<'a> Tmsg<'a> {
    /// Decodes a checked frame's body.
    pub fn parse(frame: &Frame<&'a [u8]>) -> Result<Self, WireError> {
        Self::parse_body(frame.msg_type(), frame.body_slice())
    }

    /// Decodes the body of a message of type `msg_type`.
    pub fn parse_body(msg_type: u8, body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let m = if msg_type >= ty::TVERSION {
            Self::parse_classic(msg_type, &mut r)?
        } else {
            Self::parse_linux(msg_type, &mut r)?
        };
        r.finish()?;
        Ok(m)
    }

    /// Decodes a message of the original 9P2000 that 9P2000.L keeps (type numbers from 100).
    fn parse_classic(msg_type: u8, r: &mut Reader<'a>) -> Result<Self, WireError> {
        use ty::*;
        Ok(match msg_type {
            TVERSION => Tmsg::Version {
                msize: r.u32()?,
                version: r.str()?,
            },
            TAUTH => Tmsg::Auth {
                afid: r.u32()?,
                uname: r.str()?,
                aname: r.str()?,
                n_uname: r.u32()?,
            },
            TATTACH => Tmsg::Attach {
                fid: r.u32()?,
                afid: r.u32()?,
                uname: r.str()?,
                aname: r.str()?,
                n_uname: r.u32()?,
            },
            TFLUSH => Tmsg::Flush { oldtag: r.u16()? },
            TWALK => {
                let fid = r.u32()?;
                let newfid = r.u32()?;
                let n = r.u16()?;
                if n as usize > MAX_WELEM {
                    return Err(WireError::TooManyWalkElems(n));
                }
                let mut names = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    names.push(r.str()?);
                }
                Tmsg::Walk { fid, newfid, names }
            }
            TREAD => Tmsg::Read {
                fid: r.u32()?,
                offset: r.u64()?,
                count: r.u32()?,
            },
            TWRITE => Tmsg::Write {
                fid: r.u32()?,
                offset: r.u64()?,
                data: r.data()?,
            },
            TCLUNK => Tmsg::Clunk { fid: r.u32()? },
            TREMOVE => Tmsg::Remove { fid: r.u32()? },
            other => return Err(WireError::UnknownType(other)),
        })
    }

    /// Decodes a message 9P2000.L adds (type numbers below 100).
    fn parse_linux(msg_type: u8, r: &mut Reader<'a>) -> Result<Self, WireError> {
        use ty::*;
        Ok(match msg_type {
            TSTATFS => Tmsg::Statfs { fid: r.u32()? },
            TLOPEN => Tmsg::Lopen {
                fid: r.u32()?,
                flags: r.u32()?,
            },
            TLCREATE => Tmsg::Lcreate {
                fid: r.u32()?,
                name: r.str()?,
                flags: r.u32()?,
                mode: r.u32()?,
                gid: r.u32()?,
            },
            TSYMLINK => Tmsg::Symlink {
                fid: r.u32()?,
                name: r.str()?,
                target: r.str()?,
                gid: r.u32()?,
            },
            TMKNOD => Tmsg::Mknod {
                dfid: r.u32()?,
                name: r.str()?,
                mode: r.u32()?,
                major: r.u32()?,
                minor: r.u32()?,
                gid: r.u32()?,
            },
            TRENAME => Tmsg::Rename {
                fid: r.u32()?,
                dfid: r.u32()?,
                name: r.str()?,
            },
            TREADLINK => Tmsg::Readlink { fid: r.u32()? },
            TGETATTR => Tmsg::Getattr {
                fid: r.u32()?,
                mask: r.u64()?,
            },
            TSETATTR => Tmsg::Setattr {
                fid: r.u32()?,
                attr: SetattrReq::read(r)?,
            },
            TXATTRWALK => Tmsg::Xattrwalk {
                fid: r.u32()?,
                newfid: r.u32()?,
                name: r.str()?,
            },
            TXATTRCREATE => Tmsg::Xattrcreate {
                fid: r.u32()?,
                name: r.str()?,
                size: r.u64()?,
                flags: r.u32()?,
            },
            TREADDIR => Tmsg::Readdir {
                fid: r.u32()?,
                offset: r.u64()?,
                count: r.u32()?,
            },
            TFSYNC => {
                let fid = r.u32()?;
                let datasync = if r.remaining() >= 4 { r.u32()? } else { 0 };
                Tmsg::Fsync { fid, datasync }
            }
            TLOCK => {
                let fid = r.u32()?;
                let (flags, lock) = lock_body(r, true)?;
                Tmsg::Lock { fid, flags, lock }
            }
            TGETLOCK => {
                let fid = r.u32()?;
                let (_, lock) = lock_body(r, false)?;
                Tmsg::Getlock { fid, lock }
            }
            TLINK => Tmsg::Link {
                dfid: r.u32()?,
                fid: r.u32()?,
                name: r.str()?,
            },
            TMKDIR => Tmsg::Mkdir {
                dfid: r.u32()?,
                name: r.str()?,
                mode: r.u32()?,
                gid: r.u32()?,
            },
            TRENAMEAT => Tmsg::Renameat {
                olddirfid: r.u32()?,
                oldname: r.str()?,
                newdirfid: r.u32()?,
                newname: r.str()?,
            },
            TUNLINKAT => Tmsg::Unlinkat {
                dirfid: r.u32()?,
                name: r.str()?,
                flags: r.u32()?,
            },
            other => return Err(WireError::UnknownType(other)),
        })
    }

    /// The message type number.
    pub fn msg_type(&self) -> u8 {
        use ty::*;
        match self {
            Tmsg::Version { .. } => TVERSION,
            Tmsg::Auth { .. } => TAUTH,
            Tmsg::Attach { .. } => TATTACH,
            Tmsg::Flush { .. } => TFLUSH,
            Tmsg::Walk { .. } => TWALK,
            Tmsg::Read { .. } => TREAD,
            Tmsg::Write { .. } => TWRITE,
            Tmsg::Clunk { .. } => TCLUNK,
            Tmsg::Remove { .. } => TREMOVE,
            Tmsg::Statfs { .. } => TSTATFS,
            Tmsg::Lopen { .. } => TLOPEN,
            Tmsg::Lcreate { .. } => TLCREATE,
            Tmsg::Symlink { .. } => TSYMLINK,
            Tmsg::Mknod { .. } => TMKNOD,
            Tmsg::Rename { .. } => TRENAME,
            Tmsg::Readlink { .. } => TREADLINK,
            Tmsg::Getattr { .. } => TGETATTR,
            Tmsg::Setattr { .. } => TSETATTR,
            Tmsg::Xattrwalk { .. } => TXATTRWALK,
            Tmsg::Xattrcreate { .. } => TXATTRCREATE,
            Tmsg::Readdir { .. } => TREADDIR,
            Tmsg::Fsync { .. } => TFSYNC,
            Tmsg::Lock { .. } => TLOCK,
            Tmsg::Getlock { .. } => TGETLOCK,
            Tmsg::Link { .. } => TLINK,
            Tmsg::Mkdir { .. } => TMKDIR,
            Tmsg::Renameat { .. } => TRENAMEAT,
            Tmsg::Unlinkat { .. } => TUNLINKAT,
        }
    }

    /// Appends the encoded message with `tag` to `out`.
    pub fn emit(&self, tag: u16, out: &mut Vec<u8>) -> Result<(), WireError> {
        let start = begin(out, self.msg_type(), tag);
        let mut w = Writer::new(out);
        self.emit_body(&mut w)?;
        finish(out, start)
    }

    /// Appends the body of a message of the original 9P2000; hands the 9P2000.L additions to
    /// [`emit_linux_body`](Self::emit_linux_body).
    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        // The variants' field lists stand again in `Connection::op` (server/dispatch.rs),
        // which hands them to the handlers; here they are encoded. Only the lists are alike.
        match self {
            Tmsg::Version { msize, version } => {
                w.u32(*msize);
                w.str(version)?;
            }
            Tmsg::Auth {
                afid,
                uname,
                aname,
                n_uname,
            } => {
                w.u32(*afid);
                w.str(uname)?;
                w.str(aname)?;
                w.u32(*n_uname);
            }
            Tmsg::Attach {
                fid,
                afid,
                uname,
                aname,
                n_uname,
            } => {
                w.u32(*fid);
                w.u32(*afid);
                w.str(uname)?;
                w.str(aname)?;
                w.u32(*n_uname);
            }
            Tmsg::Flush { oldtag } => w.u16(*oldtag),
            Tmsg::Walk { fid, newfid, names } => {
                w.u32(*fid);
                w.u32(*newfid);
                let n = u16::try_from(names.len())
                    .map_err(|_| WireError::TooManyWalkElems(u16::MAX))?;
                w.u16(n);
                for n in names {
                    w.str(n)?;
                }
            }
            Tmsg::Read { fid, offset, count } | Tmsg::Readdir { fid, offset, count } => {
                w.u32(*fid);
                w.u64(*offset);
                w.u32(*count);
            }
            Tmsg::Write { fid, offset, data } => {
                w.u32(*fid);
                w.u64(*offset);
                w.data(data)?;
            }
            Tmsg::Clunk { fid }
            | Tmsg::Remove { fid }
            | Tmsg::Statfs { fid }
            | Tmsg::Readlink { fid } => w.u32(*fid),
            _ => return self.emit_linux_body(w),
        }
        Ok(())
    }

    /// Appends the body of a message 9P2000.L adds (those [`emit_body`](Self::emit_body) does
    /// not encode itself).
    fn emit_linux_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        // As in `emit_body`: field lists alike with `Connection::op`'s, encoded here.
        match self {
            Tmsg::Lopen { fid, flags } => {
                w.u32(*fid);
                w.u32(*flags);
            }
            Tmsg::Lcreate {
                fid,
                name,
                flags,
                mode,
                gid,
            } => {
                w.u32(*fid);
                w.str(name)?;
                w.u32(*flags);
                w.u32(*mode);
                w.u32(*gid);
            }
            Tmsg::Symlink {
                fid,
                name,
                target,
                gid,
            } => {
                w.u32(*fid);
                w.str(name)?;
                w.str(target)?;
                w.u32(*gid);
            }
            Tmsg::Mknod {
                dfid,
                name,
                mode,
                major,
                minor,
                gid,
            } => {
                w.u32(*dfid);
                w.str(name)?;
                w.u32(*mode);
                w.u32(*major);
                w.u32(*minor);
                w.u32(*gid);
            }
            Tmsg::Rename { fid, dfid, name } => {
                w.u32(*fid);
                w.u32(*dfid);
                w.str(name)?;
            }
            Tmsg::Getattr { fid, mask } => {
                w.u32(*fid);
                w.u64(*mask);
            }
            Tmsg::Setattr { fid, attr } => {
                w.u32(*fid);
                attr.write(w);
            }
            Tmsg::Xattrwalk { fid, newfid, name } => {
                w.u32(*fid);
                w.u32(*newfid);
                w.str(name)?;
            }
            Tmsg::Xattrcreate {
                fid,
                name,
                size,
                flags,
            } => {
                w.u32(*fid);
                w.str(name)?;
                w.u64(*size);
                w.u32(*flags);
            }
            Tmsg::Fsync { fid, datasync } => {
                w.u32(*fid);
                w.u32(*datasync);
            }
            Tmsg::Lock { fid, flags, lock } => {
                w.u32(*fid);
                put_lock_body(w, lock, Some(*flags))?;
            }
            Tmsg::Getlock { fid, lock } => {
                w.u32(*fid);
                put_lock_body(w, lock, None)?;
            }
            Tmsg::Link { dfid, fid, name } => {
                w.u32(*dfid);
                w.u32(*fid);
                w.str(name)?;
            }
            Tmsg::Mkdir {
                dfid,
                name,
                mode,
                gid,
            } => {
                w.u32(*dfid);
                w.str(name)?;
                w.u32(*mode);
                w.u32(*gid);
            }
            Tmsg::Renameat {
                olddirfid,
                oldname,
                newdirfid,
                newname,
            } => {
                w.u32(*olddirfid);
                w.str(oldname)?;
                w.u32(*newdirfid);
                w.str(newname)?;
            }
            Tmsg::Unlinkat {
                dirfid,
                name,
                flags,
            } => {
                w.u32(*dirfid);
                w.str(name)?;
                w.u32(*flags);
            }
            // Encoded by `emit_body`, which never hands them here.
            Tmsg::Version { .. }
            | Tmsg::Auth { .. }
            | Tmsg::Attach { .. }
            | Tmsg::Flush { .. }
            | Tmsg::Walk { .. }
            | Tmsg::Read { .. }
            | Tmsg::Readdir { .. }
            | Tmsg::Write { .. }
            | Tmsg::Clunk { .. }
            | Tmsg::Remove { .. }
            | Tmsg::Statfs { .. }
            | Tmsg::Readlink { .. } => return Err(WireError::UnknownType(self.msg_type())),
        }
        Ok(())
    }
}
