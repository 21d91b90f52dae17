//! The structured fields messages carry: [`Qid`], the Tsetattr / Rgetattr / Rstatfs bodies and
//! the lock description of Tlock / Tgetlock / Rgetlock, each with its own encoding.

use super::{Reader, WireError, Writer};

/// A qid: the server's unique identity of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Qid {
    /// [`qid_type`](super::qid_type) bits.
    pub ty: u8,
    /// Changes on every modification of the file (0 = do not cache).
    pub version: u32,
    /// Stable unique number (inode number plus generation).
    pub path: u64,
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

/// Rgetattr body. It repeats most fields of `fs::Attr` on purpose: this one carries the
/// guest's view (mapped ids, a qid, a `valid` mask, split timestamps); `server/attr.rs`
/// (`guest_attr`) is the one place that converts.
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

/// Rstatfs body, and what [`crate::fs::Filesystem::statfs`] returns (as `fs::FsStat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(
    missing_docs,
    reason = "statfs(2) fields, as the protocol carries them"
)]
pub struct StatfsRepr {
    /// The file system's magic (`f_type`).
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

/// Reads a lock description, with Tlock's `flags` after its type when `with_flags` (else 0).
pub(super) fn lock_body<'a>(
    r: &mut Reader<'a>,
    with_flags: bool,
) -> Result<(u32, LockRepr<'a>), WireError> {
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

/// Appends a lock description, with Tlock's `flags` after its type when given.
pub(super) fn put_lock_body(
    w: &mut Writer<'_>,
    lock: &LockRepr<'_>,
    flags: Option<u32>,
) -> Result<(), WireError> {
    w.u8(lock.ty);
    if let Some(flags) = flags {
        w.u32(flags);
    }
    w.u64(lock.start);
    w.u64(lock.length);
    w.u32(lock.proc_id);
    w.str(lock.client_id)
}

impl SetattrReq {
    /// Reads a Tsetattr body after its fid.
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(SetattrReq {
            valid: r.u32()?,
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
            size: r.u64()?,
            atime_sec: r.u64()?,
            atime_nsec: r.u64()?,
            mtime_sec: r.u64()?,
            mtime_nsec: r.u64()?,
        })
    }

    /// Appends a Tsetattr body after its fid.
    pub(super) fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.valid);
        w.u32(self.mode);
        w.u32(self.uid);
        w.u32(self.gid);
        w.u64(self.size);
        w.u64(self.atime_sec);
        w.u64(self.atime_nsec);
        w.u64(self.mtime_sec);
        w.u64(self.mtime_nsec);
    }
}

impl Getattr {
    /// Reads an Rgetattr body.
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Getattr {
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
        })
    }

    /// Appends an Rgetattr body.
    pub(super) fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.valid);
        w.qid(&self.qid);
        w.u32(self.mode);
        w.u32(self.uid);
        w.u32(self.gid);
        for v in [
            self.nlink,
            self.rdev,
            self.size,
            self.blksize,
            self.blocks,
            self.atime_sec,
            self.atime_nsec,
            self.mtime_sec,
            self.mtime_nsec,
            self.ctime_sec,
            self.ctime_nsec,
            self.btime_sec,
            self.btime_nsec,
            self.gen,
            self.data_version,
        ] {
            w.u64(v);
        }
    }
}

impl StatfsRepr {
    /// Reads an Rstatfs body.
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(StatfsRepr {
            ty: r.u32()?,
            bsize: r.u32()?,
            blocks: r.u64()?,
            bfree: r.u64()?,
            bavail: r.u64()?,
            files: r.u64()?,
            ffree: r.u64()?,
            fsid: r.u64()?,
            namelen: r.u32()?,
        })
    }

    /// Appends an Rstatfs body.
    pub(super) fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.ty);
        w.u32(self.bsize);
        w.u64(self.blocks);
        w.u64(self.bfree);
        w.u64(self.bavail);
        w.u64(self.files);
        w.u64(self.ffree);
        w.u64(self.fsid);
        w.u32(self.namelen);
    }
}
