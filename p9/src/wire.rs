//! 9P2000.L wire codec.
//!
//! A message on the wire is `size[4] type[1] tag[2] body…`, little-endian, where `size` counts
//! the whole message including itself. [`Frame`] is a zero-copy view over such a message:
//! [`Frame::new_checked`] validates the header against the buffer, and [`Tmsg::parse`] /
//! [`Rmsg::parse`] decode the body into representations that borrow strings and data from the
//! buffer. [`Tmsg::emit`] / [`Rmsg::emit`] append an encoded message to a `Vec<u8>`.
//!
//! # No-panic contract
//! Every function in this module that takes bytes returns an error instead of panicking on
//! any input: every length and count read from the wire is checked against the remaining
//! buffer before it is used, and nothing is allocated from a declared size (parsing allocates
//! only the fixed-size `Vec` of walk names / qids, bounded by [`MAX_WELEM`]).

use alloc::vec::Vec;

/// Size of the message header: size[4] type[1] tag[2].
pub const HEADER_LEN: usize = 7;
/// Header of Rread / Rreaddir (size, type, tag, count): the `msize - IOHDR` payload bound.
pub const RREAD_HEADER_LEN: usize = 11;
/// Maximum names in one Twalk (and qids in one Rwalk).
pub const MAX_WELEM: usize = 16;
/// Tag used by Tversion.
pub const NOTAG: u16 = 0xffff;
/// "No fid" (Tattach afid when no authentication is used).
pub const NOFID: u32 = 0xffff_ffff;
/// "No uid" (Tattach n_uname when only the uname string is meaningful).
pub const NONUNAME: u32 = 0xffff_ffff;

/// Message type numbers.
#[allow(missing_docs, reason = "names are the protocol's own")]
pub mod ty {
    pub const TLERROR: u8 = 6;
    pub const RLERROR: u8 = 7;
    pub const TSTATFS: u8 = 8;
    pub const RSTATFS: u8 = 9;
    pub const TLOPEN: u8 = 12;
    pub const RLOPEN: u8 = 13;
    pub const TLCREATE: u8 = 14;
    pub const RLCREATE: u8 = 15;
    pub const TSYMLINK: u8 = 16;
    pub const RSYMLINK: u8 = 17;
    pub const TMKNOD: u8 = 18;
    pub const RMKNOD: u8 = 19;
    pub const TRENAME: u8 = 20;
    pub const RRENAME: u8 = 21;
    pub const TREADLINK: u8 = 22;
    pub const RREADLINK: u8 = 23;
    pub const TGETATTR: u8 = 24;
    pub const RGETATTR: u8 = 25;
    pub const TSETATTR: u8 = 26;
    pub const RSETATTR: u8 = 27;
    pub const TXATTRWALK: u8 = 30;
    pub const RXATTRWALK: u8 = 31;
    pub const TXATTRCREATE: u8 = 32;
    pub const RXATTRCREATE: u8 = 33;
    pub const TREADDIR: u8 = 40;
    pub const RREADDIR: u8 = 41;
    pub const TFSYNC: u8 = 50;
    pub const RFSYNC: u8 = 51;
    pub const TLOCK: u8 = 52;
    pub const RLOCK: u8 = 53;
    pub const TGETLOCK: u8 = 54;
    pub const RGETLOCK: u8 = 55;
    pub const TLINK: u8 = 70;
    pub const RLINK: u8 = 71;
    pub const TMKDIR: u8 = 72;
    pub const RMKDIR: u8 = 73;
    pub const TRENAMEAT: u8 = 74;
    pub const RRENAMEAT: u8 = 75;
    pub const TUNLINKAT: u8 = 76;
    pub const RUNLINKAT: u8 = 77;
    pub const TVERSION: u8 = 100;
    pub const RVERSION: u8 = 101;
    pub const TAUTH: u8 = 102;
    pub const RAUTH: u8 = 103;
    pub const TATTACH: u8 = 104;
    pub const RATTACH: u8 = 105;
    pub const TFLUSH: u8 = 108;
    pub const RFLUSH: u8 = 109;
    pub const TWALK: u8 = 110;
    pub const RWALK: u8 = 111;
    pub const TREAD: u8 = 116;
    pub const RREAD: u8 = 117;
    pub const TWRITE: u8 = 118;
    pub const RWRITE: u8 = 119;
    pub const TCLUNK: u8 = 120;
    pub const RCLUNK: u8 = 121;
    pub const TREMOVE: u8 = 122;
    pub const RREMOVE: u8 = 123;
}

/// Qid type bits.
pub mod qid_type {
    /// Directory.
    pub const DIR: u8 = 0x80;
    /// Symbolic link.
    pub const SYMLINK: u8 = 0x02;
    /// Regular file (and everything else).
    pub const FILE: u8 = 0x00;
}

/// Tgetattr request-mask / Rgetattr valid bits.
#[allow(missing_docs, reason = "names are the protocol's own")]
pub mod getattr {
    pub const MODE: u64 = 0x1;
    pub const NLINK: u64 = 0x2;
    pub const UID: u64 = 0x4;
    pub const GID: u64 = 0x8;
    pub const RDEV: u64 = 0x10;
    pub const ATIME: u64 = 0x20;
    pub const MTIME: u64 = 0x40;
    pub const CTIME: u64 = 0x80;
    pub const INO: u64 = 0x100;
    pub const SIZE: u64 = 0x200;
    pub const BLOCKS: u64 = 0x400;
    pub const BTIME: u64 = 0x800;
    pub const GEN: u64 = 0x1000;
    pub const DATA_VERSION: u64 = 0x2000;
    pub const BASIC: u64 = 0x7ff;
    pub const ALL: u64 = 0x3fff;
}

/// Tsetattr valid bits.
#[allow(missing_docs, reason = "names are the protocol's own")]
pub mod setattr {
    pub const MODE: u32 = 0x1;
    pub const UID: u32 = 0x2;
    pub const GID: u32 = 0x4;
    pub const SIZE: u32 = 0x8;
    pub const ATIME: u32 = 0x10;
    pub const MTIME: u32 = 0x20;
    pub const CTIME: u32 = 0x40;
    pub const ATIME_SET: u32 = 0x80;
    pub const MTIME_SET: u32 = 0x100;
}

/// Tlock / Tgetlock constants.
#[allow(missing_docs, reason = "names are the protocol's own")]
pub mod lock {
    pub const RDLCK: u8 = 0;
    pub const WRLCK: u8 = 1;
    pub const UNLCK: u8 = 2;
    pub const STATUS_SUCCESS: u8 = 0;
    pub const STATUS_BLOCKED: u8 = 1;
    pub const STATUS_ERROR: u8 = 2;
    pub const STATUS_GRACE: u8 = 3;
    pub const FLAG_BLOCK: u32 = 1;
    pub const FLAG_RECLAIM: u32 = 2;
}

/// Codec errors. They carry what was found so that a log line can say why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The buffer is shorter than the header or than a field needs.
    Truncated {
        /// Bytes needed at this point.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The size field disagrees with the buffer (smaller than a header, or larger than given).
    BadSize {
        /// The declared size.
        declared: u32,
        /// The buffer length.
        buffer: usize,
    },
    /// Unknown or unsupported message type.
    UnknownType(u8),
    /// Bytes left over after the body was parsed.
    TrailingBytes(usize),
    /// A walk with more than [`MAX_WELEM`] names or qids.
    TooManyWalkElems(u16),
    /// A string longer than 65535 bytes was given to `emit`.
    StringTooLong(usize),
    /// A data payload longer than `u32::MAX` was given to `emit`.
    DataTooLong(usize),
}

/// A qid: the server's unique identity of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Qid {
    /// [`qid_type`] bits.
    pub ty: u8,
    /// Changes on every modification of the file (0 = do not cache).
    pub version: u32,
    /// Stable unique number (inode number plus generation).
    pub path: u64,
}

/// Length of an encoded qid.
pub const QID_LEN: usize = 13;

/// A zero-copy view of one 9P message.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it. Accessors may then return short fields; use
    /// [`Frame::new_checked`] on untrusted input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps a buffer that must hold exactly one message: the header fits and the size field
    /// equals the buffer length.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Frame { buffer };
        f.check_len()?;
        Ok(f)
    }

    /// Validates the header against the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                need: HEADER_LEN,
                have: b.len(),
            });
        }
        let size = self.size();
        if size as usize != b.len() {
            return Err(WireError::BadSize {
                declared: size,
                buffer: b.len(),
            });
        }
        Ok(())
    }

    /// Declared size (0 if the buffer is too short).
    pub fn size(&self) -> u32 {
        let b = self.buffer.as_ref();
        match b.get(0..4) {
            Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
            None => 0,
        }
    }

    /// Message type (0 if the buffer is too short).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref().get(4).copied().unwrap_or(0)
    }

    /// Tag (NOTAG if the buffer is too short).
    pub fn tag(&self) -> u16 {
        match self.buffer.as_ref().get(5..7) {
            Some(s) => u16::from_le_bytes([s[0], s[1]]),
            None => NOTAG,
        }
    }

    /// The body after the header (empty if the buffer is too short).
    pub fn body(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Consumes the view.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<'a> Frame<&'a [u8]> {
    /// The body after the header, with the buffer's lifetime.
    pub fn body_slice(&self) -> &'a [u8] {
        self.buffer.get(HEADER_LEN..).unwrap_or(&[])
    }
}

/// Reads the declared size of a message from the first four bytes of a stream, if present.
pub fn peek_size(buf: &[u8]) -> Option<u32> {
    let s = buf.get(0..4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// A bounds-checked little-endian reader.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let have = self.buf.len().saturating_sub(self.pos);
        if n > have {
            return Err(WireError::Truncated { need: n, have });
        }
        let end = self.pos + n;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(WireError::Truncated { need: n, have })?;
        self.pos = end;
        Ok(s)
    }

    /// u8.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    /// u16.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    /// u32.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// u64.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    /// A string: len[2] bytes. Not required to be UTF-8.
    pub fn str(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    /// count[4] data.
    pub fn data(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A qid.
    pub fn qid(&mut self) -> Result<Qid, WireError> {
        Ok(Qid {
            ty: self.u8()?,
            version: self.u32()?,
            path: self.u64()?,
        })
    }
    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    /// Fails if bytes are left.
    pub fn finish(&self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(WireError::TrailingBytes(n)),
        }
    }
}

/// A little-endian writer appending to a `Vec`.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// Appends to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out }
    }
    /// u8.
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    /// u16.
    pub fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// u32.
    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// u64.
    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// len[2] bytes.
    pub fn str(&mut self, s: &[u8]) -> Result<(), WireError> {
        let n = u16::try_from(s.len()).map_err(|_| WireError::StringTooLong(s.len()))?;
        self.u16(n);
        self.out.extend_from_slice(s);
        Ok(())
    }
    /// count[4] data.
    pub fn data(&mut self, d: &[u8]) -> Result<(), WireError> {
        let n = u32::try_from(d.len()).map_err(|_| WireError::DataTooLong(d.len()))?;
        self.u32(n);
        self.out.extend_from_slice(d);
        Ok(())
    }
    /// A qid.
    pub fn qid(&mut self, q: &Qid) {
        self.u8(q.ty);
        self.u32(q.version);
        self.u64(q.path);
    }
}

fn begin(out: &mut Vec<u8>, ty: u8, tag: u16) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, ty]);
    out.extend_from_slice(&tag.to_le_bytes());
    start
}

fn finish(out: &mut [u8], start: usize) -> Result<(), WireError> {
    let len = out.len() - start;
    let n = u32::try_from(len).map_err(|_| WireError::DataTooLong(len))?;
    if let Some(s) = out.get_mut(start..start + 4) {
        s.copy_from_slice(&n.to_le_bytes());
    }
    Ok(())
}

/// Tsetattr body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs, reason = "fields are the protocol's own")]
pub struct SetattrReq {
    pub valid: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime_sec: u64,
    pub atime_nsec: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
}

/// Rgetattr body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs, reason = "fields are the protocol's own")]
pub struct Getattr {
    pub valid: u64,
    pub qid: Qid,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime_sec: u64,
    pub atime_nsec: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
    pub ctime_sec: u64,
    pub ctime_nsec: u64,
    pub btime_sec: u64,
    pub btime_nsec: u64,
    pub gen: u64,
    pub data_version: u64,
}

/// Rstatfs body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs, reason = "fields are the protocol's own")]
pub struct StatfsRepr {
    pub ty: u32,
    pub bsize: u32,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: u64,
    pub namelen: u32,
}

/// Tlock / Tgetlock / Rgetlock lock description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields are the protocol's own")]
pub struct LockRepr<'a> {
    pub ty: u8,
    pub start: u64,
    pub length: u64,
    pub proc_id: u32,
    pub client_id: &'a [u8],
}

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

fn lock_body<'a>(r: &mut Reader<'a>, with_flags: bool) -> Result<(u32, LockRepr<'a>), WireError> {
    let ty = r.u8()?;
    let flags = if with_flags { r.u32()? } else { 0 };
    let start = r.u64()?;
    let length = r.u64()?;
    let proc_id = r.u32()?;
    let client_id = r.str()?;
    Ok((
        flags,
        LockRepr {
            ty,
            start,
            length,
            proc_id,
            client_id,
        },
    ))
}

impl<'a> Tmsg<'a> {
    /// Decodes a checked frame's body.
    pub fn parse(frame: &Frame<&'a [u8]>) -> Result<Self, WireError> {
        Self::parse_body(frame.msg_type(), frame.body_slice())
    }

    /// Decodes the body of a message of type `msg_type`.
    pub fn parse_body(msg_type: u8, body: &'a [u8]) -> Result<Self, WireError> {
        use ty::*;
        let mut r = Reader::new(body);
        let m = match msg_type {
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
                attr: SetattrReq {
                    valid: r.u32()?,
                    mode: r.u32()?,
                    uid: r.u32()?,
                    gid: r.u32()?,
                    size: r.u64()?,
                    atime_sec: r.u64()?,
                    atime_nsec: r.u64()?,
                    mtime_sec: r.u64()?,
                    mtime_nsec: r.u64()?,
                },
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
                let (flags, lock) = lock_body(&mut r, true)?;
                Tmsg::Lock { fid, flags, lock }
            }
            TGETLOCK => {
                let fid = r.u32()?;
                let (_, lock) = lock_body(&mut r, false)?;
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
        };
        r.finish()?;
        Ok(m)
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
                w.u32(attr.valid);
                w.u32(attr.mode);
                w.u32(attr.uid);
                w.u32(attr.gid);
                w.u64(attr.size);
                w.u64(attr.atime_sec);
                w.u64(attr.atime_nsec);
                w.u64(attr.mtime_sec);
                w.u64(attr.mtime_nsec);
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
                w.u8(lock.ty);
                w.u32(*flags);
                w.u64(lock.start);
                w.u64(lock.length);
                w.u32(lock.proc_id);
                w.str(lock.client_id)?;
            }
            Tmsg::Getlock { fid, lock } => {
                w.u32(*fid);
                w.u8(lock.ty);
                w.u64(lock.start);
                w.u64(lock.length);
                w.u32(lock.proc_id);
                w.str(lock.client_id)?;
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
        }
        finish(out, start)
    }
}

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
    /// `data` is a packed sequence of directory entries; see [`DirEntries`].
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
            RSTATFS => Rmsg::Statfs(StatfsRepr {
                ty: r.u32()?,
                bsize: r.u32()?,
                blocks: r.u64()?,
                bfree: r.u64()?,
                bavail: r.u64()?,
                files: r.u64()?,
                ffree: r.u64()?,
                fsid: r.u64()?,
                namelen: r.u32()?,
            }),
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
            RGETATTR => Rmsg::Getattr(Getattr {
                valid: r.u64()?,
                qid: r.qid()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                nlink: r.u64()?,
                rdev: r.u64()?,
                size: r.u64()?,
                blksize: r.u64()?,
                blocks: r.u64()?,
                atime_sec: r.u64()?,
                atime_nsec: r.u64()?,
                mtime_sec: r.u64()?,
                mtime_nsec: r.u64()?,
                ctime_sec: r.u64()?,
                ctime_nsec: r.u64()?,
                btime_sec: r.u64()?,
                btime_nsec: r.u64()?,
                gen: r.u64()?,
                data_version: r.u64()?,
            }),
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
            Rmsg::Statfs(s) => {
                w.u32(s.ty);
                w.u32(s.bsize);
                w.u64(s.blocks);
                w.u64(s.bfree);
                w.u64(s.bavail);
                w.u64(s.files);
                w.u64(s.ffree);
                w.u64(s.fsid);
                w.u32(s.namelen);
            }
            Rmsg::Lopen { qid, iounit } | Rmsg::Lcreate { qid, iounit } => {
                w.qid(qid);
                w.u32(*iounit);
            }
            Rmsg::Readlink { target } => w.str(target)?,
            Rmsg::Getattr(g) => {
                w.u64(g.valid);
                w.qid(&g.qid);
                w.u32(g.mode);
                w.u32(g.uid);
                w.u32(g.gid);
                for v in [
                    g.nlink,
                    g.rdev,
                    g.size,
                    g.blksize,
                    g.blocks,
                    g.atime_sec,
                    g.atime_nsec,
                    g.mtime_sec,
                    g.mtime_nsec,
                    g.ctime_sec,
                    g.ctime_nsec,
                    g.btime_sec,
                    g.btime_nsec,
                    g.gen,
                    g.data_version,
                ] {
                    w.u64(v);
                }
            }
            Rmsg::Xattrwalk { size } => w.u64(*size),
            Rmsg::Lock { status } => w.u8(*status),
            Rmsg::Getlock { lock } => {
                w.u8(lock.ty);
                w.u64(lock.start);
                w.u64(lock.length);
                w.u32(lock.proc_id);
                w.str(lock.client_id)?;
            }
        }
        finish(out, start)
    }
}

/// One directory entry inside an Rreaddir payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntryRepr<'a> {
    /// The entry's qid.
    pub qid: Qid,
    /// Cookie to pass as the next Treaddir offset to continue after this entry.
    pub offset: u64,
    /// `DT_*` type.
    pub ty: u8,
    /// Name bytes.
    pub name: &'a [u8],
}

impl DirEntryRepr<'_> {
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        QID_LEN + 8 + 1 + 2 + self.name.len()
    }

    /// Appends the encoded entry.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let mut w = Writer::new(out);
        w.qid(&self.qid);
        w.u64(self.offset);
        w.u8(self.ty);
        w.str(self.name)
    }
}

/// Iterator over the entries of an Rreaddir payload. Stops (yielding an error once) on a
/// malformed entry.
#[derive(Debug, Clone)]
pub struct DirEntries<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> DirEntries<'a> {
    /// Iterates over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        DirEntries {
            r: Reader::new(data),
            failed: false,
        }
    }
}

impl<'a> Iterator for DirEntries<'a> {
    type Item = Result<DirEntryRepr<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.remaining() == 0 {
            return None;
        }
        let mut one = || -> Result<DirEntryRepr<'a>, WireError> {
            Ok(DirEntryRepr {
                qid: self.r.qid()?,
                offset: self.r.u64()?,
                ty: self.r.u8()?,
                name: self.r.str()?,
            })
        };
        let e = one();
        if e.is_err() {
            self.failed = true;
        }
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_t(m: Tmsg<'_>) {
        let mut out = Vec::new();
        m.emit(7, &mut out).unwrap();
        let f = Frame::new_checked(&out[..]).unwrap();
        assert_eq!(f.tag(), 7);
        assert_eq!(Tmsg::parse_body(f.msg_type(), f.body()).unwrap(), m);
        // Every truncation fails cleanly.
        for cut in HEADER_LEN..out.len() {
            let body = &out[HEADER_LEN..cut];
            let fsync_v1 = matches!(m, Tmsg::Fsync { .. }) && cut == out.len() - 4;
            assert!(
                Tmsg::parse_body(m.msg_type(), body).is_err() || fsync_v1,
                "{m:?} cut {cut}"
            );
        }
    }

    fn roundtrip_r(m: Rmsg<'_>) {
        let mut out = Vec::new();
        m.emit(9, &mut out).unwrap();
        let f = Frame::new_checked(&out[..]).unwrap();
        assert_eq!(Rmsg::parse_body(f.msg_type(), f.body()).unwrap(), m);
    }

    #[test]
    fn all_tmsgs_roundtrip() {
        let l = LockRepr {
            ty: lock::WRLCK,
            start: 1,
            length: 2,
            proc_id: 3,
            client_id: b"host",
        };
        for m in [
            Tmsg::Version {
                msize: 8192,
                version: b"9P2000.L",
            },
            Tmsg::Auth {
                afid: 1,
                uname: b"u",
                aname: b"a",
                n_uname: 5,
            },
            Tmsg::Attach {
                fid: 1,
                afid: NOFID,
                uname: b"u",
                aname: b"/",
                n_uname: 0,
            },
            Tmsg::Flush { oldtag: 3 },
            Tmsg::Walk {
                fid: 1,
                newfid: 2,
                names: alloc::vec![&b"a"[..], b"bc"],
            },
            Tmsg::Read {
                fid: 1,
                offset: 99,
                count: 4096,
            },
            Tmsg::Write {
                fid: 1,
                offset: 5,
                data: b"hello",
            },
            Tmsg::Clunk { fid: 1 },
            Tmsg::Remove { fid: 1 },
            Tmsg::Statfs { fid: 1 },
            Tmsg::Lopen { fid: 1, flags: 2 },
            Tmsg::Lcreate {
                fid: 1,
                name: b"f",
                flags: 1,
                mode: 0o644,
                gid: 3,
            },
            Tmsg::Symlink {
                fid: 1,
                name: b"l",
                target: b"t",
                gid: 0,
            },
            Tmsg::Mknod {
                dfid: 1,
                name: b"n",
                mode: 0o20644,
                major: 1,
                minor: 3,
                gid: 0,
            },
            Tmsg::Rename {
                fid: 1,
                dfid: 2,
                name: b"x",
            },
            Tmsg::Readlink { fid: 1 },
            Tmsg::Getattr {
                fid: 1,
                mask: getattr::ALL,
            },
            Tmsg::Setattr {
                fid: 1,
                attr: SetattrReq {
                    valid: 1,
                    mode: 2,
                    size: 3,
                    ..Default::default()
                },
            },
            Tmsg::Xattrwalk {
                fid: 1,
                newfid: 2,
                name: b"user.x",
            },
            Tmsg::Xattrcreate {
                fid: 1,
                name: b"user.x",
                size: 4,
                flags: 0,
            },
            Tmsg::Readdir {
                fid: 1,
                offset: 0,
                count: 100,
            },
            Tmsg::Fsync {
                fid: 1,
                datasync: 1,
            },
            Tmsg::Lock {
                fid: 1,
                flags: 1,
                lock: l,
            },
            Tmsg::Getlock { fid: 1, lock: l },
            Tmsg::Link {
                dfid: 1,
                fid: 2,
                name: b"h",
            },
            Tmsg::Mkdir {
                dfid: 1,
                name: b"d",
                mode: 0o755,
                gid: 0,
            },
            Tmsg::Renameat {
                olddirfid: 1,
                oldname: b"a",
                newdirfid: 2,
                newname: b"b",
            },
            Tmsg::Unlinkat {
                dirfid: 1,
                name: b"a",
                flags: 0x200,
            },
        ] {
            roundtrip_t(m);
        }
    }

    #[test]
    fn all_rmsgs_roundtrip() {
        let q = Qid {
            ty: qid_type::DIR,
            version: 3,
            path: 77,
        };
        for m in [
            Rmsg::Lerror { ecode: 2 },
            Rmsg::Version {
                msize: 8192,
                version: b"9P2000.L",
            },
            Rmsg::Auth { aqid: q },
            Rmsg::Attach { qid: q },
            Rmsg::Flush,
            Rmsg::Walk {
                qids: alloc::vec![q, q],
            },
            Rmsg::Read { data: b"abc" },
            Rmsg::Write { count: 3 },
            Rmsg::Clunk,
            Rmsg::Remove,
            Rmsg::Statfs(StatfsRepr {
                ty: 1,
                bsize: 4096,
                namelen: 255,
                ..Default::default()
            }),
            Rmsg::Lopen { qid: q, iounit: 0 },
            Rmsg::Lcreate { qid: q, iounit: 0 },
            Rmsg::Symlink { qid: q },
            Rmsg::Mknod { qid: q },
            Rmsg::Rename,
            Rmsg::Readlink { target: b"x/y" },
            Rmsg::Getattr(Getattr {
                valid: getattr::ALL,
                qid: q,
                size: 5,
                ..Default::default()
            }),
            Rmsg::Setattr,
            Rmsg::Xattrwalk { size: 4 },
            Rmsg::Xattrcreate,
            Rmsg::Readdir { data: b"" },
            Rmsg::Fsync,
            Rmsg::Lock {
                status: lock::STATUS_BLOCKED,
            },
            Rmsg::Getlock {
                lock: LockRepr {
                    ty: lock::UNLCK,
                    start: 0,
                    length: 0,
                    proc_id: 0,
                    client_id: b"",
                },
            },
            Rmsg::Link,
            Rmsg::Mkdir { qid: q },
            Rmsg::Renameat,
            Rmsg::Unlinkat,
        ] {
            roundtrip_r(m);
        }
    }

    #[test]
    fn hostile_inputs() {
        assert!(matches!(
            Frame::new_checked(&[1u8, 0, 0][..]),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Frame::new_checked(&[100u8, 0, 0, 0, 100, 0, 0][..]),
            Err(WireError::BadSize {
                declared: 100,
                buffer: 7
            })
        ));
        // Write claiming 4 GiB of data in a short body.
        let body = [
            1u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 2,
        ];
        assert!(matches!(
            Tmsg::parse_body(ty::TWRITE, &body),
            Err(WireError::Truncated { .. })
        ));
        // Walk with 17 names.
        let body = [1u8, 0, 0, 0, 2, 0, 0, 0, 17, 0];
        assert_eq!(
            Tmsg::parse_body(ty::TWALK, &body),
            Err(WireError::TooManyWalkElems(17))
        );
        assert_eq!(
            Tmsg::parse_body(ty::TCLUNK, &[1, 0, 0, 0, 9]),
            Err(WireError::TrailingBytes(1))
        );
        assert_eq!(Tmsg::parse_body(200, &[]), Err(WireError::UnknownType(200)));
    }

    #[test]
    fn dir_entries() {
        let mut d = Vec::new();
        let e = DirEntryRepr {
            qid: Qid::default(),
            offset: 5,
            ty: 4,
            name: b"sub",
        };
        e.emit(&mut d).unwrap();
        assert_eq!(d.len(), e.buffer_len());
        e.emit(&mut d).unwrap();
        d.push(1);
        let v: Vec<_> = DirEntries::new(&d).collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], Ok(e));
        assert!(v[2].is_err());
    }
}
