//! [`Rmsg`]: the replies (R-messages), decoded from and encoded to the wire.

use super::frame::{begin, finish};
use super::{
    fields::put_lock_body, lock_body, ty, Frame, Getattr, LockRepr, Qid, Reader, StatfsRepr,
    WireError, Writer, MAX_WELEM,
};
use alloc::vec::Vec;

/// A reply (R-message) body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields are the protocol's own")]
pub enum Rmsg<'a> {
    Lerror {
        ecode: u32,
    },
    Version {
        msize: u32,
        version: &'a [u8],
    },
    Auth {
        aqid: Qid,
    },
    Attach {
        qid: Qid,
    },
    Flush,
    Walk {
        qids: Vec<Qid>,
    },
    Read {
        data: &'a [u8],
    },
    Write {
        count: u32,
    },
    Clunk,
    Remove,
    Statfs(StatfsRepr),
    Lopen {
        qid: Qid,
        iounit: u32,
    },
    Lcreate {
        qid: Qid,
        iounit: u32,
    },
    Symlink {
        qid: Qid,
    },
    Mknod {
        qid: Qid,
    },
    Rename,
    Readlink {
        target: &'a [u8],
    },
    Getattr(Getattr),
    Setattr,
    Xattrwalk {
        size: u64,
    },
    Xattrcreate,
    /// `data` is a packed sequence of directory entries; see [`DirEntries`](super::DirEntries).
    Readdir {
        data: &'a [u8],
    },
    Fsync,
    Lock {
        status: u8,
    },
    Getlock {
        lock: LockRepr<'a>,
    },
    Link,
    Mkdir {
        qid: Qid,
    },
    Renameat,
    Unlinkat,
}

impl<'a> Rmsg<'a> {
    /// Decodes a checked frame's body.
    pub fn parse(frame: &Frame<&'a [u8]>) -> Result<Self, WireError> {
        Self::parse_body(frame.msg_type(), frame.body_slice())
    }

    /// Decodes the body of a message of type `msg_type`.
    pub fn parse_body(msg_type: u8, body: &'a [u8]) -> Result<Self, WireError> {
        use ty::*;
        let mut r = Reader::new(body);
        let m = match msg_type {
            RLERROR => Rmsg::Lerror { ecode: r.u32()? },
            RVERSION => Rmsg::Version {
                msize: r.u32()?,
                version: r.str()?,
            },
            RAUTH => Rmsg::Auth { aqid: r.qid()? },
            RATTACH => Rmsg::Attach { qid: r.qid()? },
            RFLUSH => Rmsg::Flush,
            RWALK => {
                let n = r.u16()?;
                if n as usize > MAX_WELEM {
                    return Err(WireError::TooManyWalkElems(n));
                }
                let mut qids = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    qids.push(r.qid()?);
                }
                Rmsg::Walk { qids }
            }
            RREAD => Rmsg::Read { data: r.data()? },
            RWRITE => Rmsg::Write { count: r.u32()? },
            RCLUNK => Rmsg::Clunk,
            RREMOVE => Rmsg::Remove,
            RSTATFS => Rmsg::Statfs(StatfsRepr::read(&mut r)?),
            RLOPEN => Rmsg::Lopen {
                qid: r.qid()?,
                iounit: r.u32()?,
            },
            RLCREATE => Rmsg::Lcreate {
                qid: r.qid()?,
                iounit: r.u32()?,
            },
            RSYMLINK => Rmsg::Symlink { qid: r.qid()? },
            RMKNOD => Rmsg::Mknod { qid: r.qid()? },
            RRENAME => Rmsg::Rename,
            RREADLINK => Rmsg::Readlink { target: r.str()? },
            RGETATTR => Rmsg::Getattr(Getattr::read(&mut r)?),
            RSETATTR => Rmsg::Setattr,
            RXATTRWALK => Rmsg::Xattrwalk { size: r.u64()? },
            RXATTRCREATE => Rmsg::Xattrcreate,
            RREADDIR => Rmsg::Readdir { data: r.data()? },
            RFSYNC => Rmsg::Fsync,
            RLOCK => Rmsg::Lock { status: r.u8()? },
            RGETLOCK => {
                let (_, lock) = lock_body(&mut r, false)?;
                Rmsg::Getlock { lock }
            }
            RLINK => Rmsg::Link,
            RMKDIR => Rmsg::Mkdir { qid: r.qid()? },
            RRENAMEAT => Rmsg::Renameat,
            RUNLINKAT => Rmsg::Unlinkat,
            other => return Err(WireError::UnknownType(other)),
        };
        r.finish()?;
        Ok(m)
    }

    /// The message type number.
    pub fn msg_type(&self) -> u8 {
        use ty::*;
        match self {
            Rmsg::Lerror { .. } => RLERROR,
            Rmsg::Version { .. } => RVERSION,
            Rmsg::Auth { .. } => RAUTH,
            Rmsg::Attach { .. } => RATTACH,
            Rmsg::Flush => RFLUSH,
            Rmsg::Walk { .. } => RWALK,
            Rmsg::Read { .. } => RREAD,
            Rmsg::Write { .. } => RWRITE,
            Rmsg::Clunk => RCLUNK,
            Rmsg::Remove => RREMOVE,
            Rmsg::Statfs(_) => RSTATFS,
            Rmsg::Lopen { .. } => RLOPEN,
            Rmsg::Lcreate { .. } => RLCREATE,
            Rmsg::Symlink { .. } => RSYMLINK,
            Rmsg::Mknod { .. } => RMKNOD,
            Rmsg::Rename => RRENAME,
            Rmsg::Readlink { .. } => RREADLINK,
            Rmsg::Getattr(_) => RGETATTR,
            Rmsg::Setattr => RSETATTR,
            Rmsg::Xattrwalk { .. } => RXATTRWALK,
            Rmsg::Xattrcreate => RXATTRCREATE,
            Rmsg::Readdir { .. } => RREADDIR,
            Rmsg::Fsync => RFSYNC,
            Rmsg::Lock { .. } => RLOCK,
            Rmsg::Getlock { .. } => RGETLOCK,
            Rmsg::Link => RLINK,
            Rmsg::Mkdir { .. } => RMKDIR,
            Rmsg::Renameat => RRENAMEAT,
            Rmsg::Unlinkat => RUNLINKAT,
        }
    }

    /// Appends the encoded message with `tag` to `out`.
    pub fn emit(&self, tag: u16, out: &mut Vec<u8>) -> Result<(), WireError> {
        let start = begin(out, self.msg_type(), tag);
        let mut w = Writer::new(out);
        match self {
            Rmsg::Lerror { ecode } => w.u32(*ecode),
            Rmsg::Version { msize, version } => {
                w.u32(*msize);
                w.str(version)?;
            }
            Rmsg::Auth { aqid: qid }
            | Rmsg::Attach { qid }
            | Rmsg::Symlink { qid }
            | Rmsg::Mknod { qid }
            | Rmsg::Mkdir { qid } => w.qid(qid),
            Rmsg::Flush
            | Rmsg::Clunk
            | Rmsg::Remove
            | Rmsg::Rename
            | Rmsg::Setattr
            | Rmsg::Xattrcreate
            | Rmsg::Fsync
            | Rmsg::Link
            | Rmsg::Renameat
            | Rmsg::Unlinkat => {}
            Rmsg::Walk { qids } => {
                let n =
                    u16::try_from(qids.len()).map_err(|_| WireError::TooManyWalkElems(u16::MAX))?;
                w.u16(n);
                for q in qids {
                    w.qid(q);
                }
            }
            Rmsg::Read { data } | Rmsg::Readdir { data } => w.data(data)?,
            Rmsg::Write { count } => w.u32(*count),
            Rmsg::Statfs(s) => s.write(&mut w),
            Rmsg::Lopen { qid, iounit } | Rmsg::Lcreate { qid, iounit } => {
                w.qid(qid);
                w.u32(*iounit);
            }
            Rmsg::Readlink { target } => w.str(target)?,
            Rmsg::Getattr(g) => g.write(&mut w),
            Rmsg::Xattrwalk { size } => w.u64(*size),
            Rmsg::Lock { status } => w.u8(*status),
            Rmsg::Getlock { lock } => put_lock_body(&mut w, lock, None)?,
        }
        finish(out, start)
    }
}
