//! The 9P2000.L server: sessions, fids, flush, and the operations, over a [`Filesystem`].
//!
//! A [`Server`] is one export: a filesystem, its policy ([`ExportConfig`]), its quota and its
//! lock table. Each transport connection gets a [`Connection`]. Requests are handled in two
//! steps so that a transport can run many at once and complete them out of order:
//!
//! 1. [`Connection::submit`] takes one complete message, validates its header, answers the
//!    requests that need no filesystem work (Tversion, Tflush, protocol errors) and otherwise
//!    registers the tag as in flight and returns a [`Request`].
//! 2. [`Connection::execute`] runs a request (on any thread) and returns the replies to send:
//!    its own reply, unless it was flushed meanwhile, followed by the Rflush of every Tflush
//!    that waited for it.
//!
//! [`Connection::handle`] does both for transports that work one request at a time.
//! [`Connection::execute_or_defer`] is `execute` for transports that overlap the client's
//! work with the server's: it may answer a `Twrite` before running it ([`WriteBehind`]),
//! which the transport then runs with [`Connection::finish_write`] before anything else.

use crate::fs::{mode, Attr, Errno, Filesystem, Ino, NewInode, SetAttr, TimeSet, Timespec};
use crate::policy::{
    lock_range, IdMap, LockKind, LockOwner, LockTable, Quota, QuotaLimits, QuotaUsage,
};
use crate::wire::{
    finish_io_reply, getattr as ga, lock as lk, qid_type, setattr as sa, DirEntryRepr, Frame,
    Getattr, LockRepr, Qid, Rmsg, StatfsRepr, Tmsg, WireError, HEADER_LEN, MAX_WELEM, NOFID,
    NONUNAME, NOTAG, RREAD_HEADER_LEN,
};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

/// Smallest msize the server accepts.
pub const MIN_MSIZE: u32 = 4096;
/// The protocol version string.
pub const VERSION: &[u8] = b"9P2000.L";
const EMSGSIZE: Errno = Errno(90);
const AT_REMOVEDIR: u32 = 0x200;
const O_ACCMODE: u32 = 3;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
const XATTR_SIZE_MAX: u64 = 65536;
const MAX_LOCK_OWNERS_PER_FID: usize = 64;

/// Policy of one export.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// Refuse every modification with `EROFS`.
    pub read_only: bool,
    /// Guest/host uid translation.
    pub uid_map: IdMap,
    /// Guest/host gid translation.
    pub gid_map: IdMap,
    /// Maximum fids per connection.
    pub max_fids: usize,
    /// Maximum msize (the transport's limit).
    pub max_msize: u32,
    /// Maximum requests in flight per connection.
    pub max_in_flight: usize,
    /// Export root inode (`None` = the filesystem root). Walks never go above it.
    pub root: Option<Ino>,
    /// Quota limits.
    pub quota: QuotaLimits,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            read_only: false,
            uid_map: IdMap::identity(),
            gid_map: IdMap::identity(),
            max_fids: 4096,
            max_msize: 1 << 20,
            max_in_flight: 64,
            root: None,
            quota: QuotaLimits::default(),
        }
    }
}

struct Shared<F> {
    fs: F,
    cfg: ExportConfig,
    root: Ino,
    quota: Quota,
    locks: LockTable,
    next_conn: AtomicU64,
    /// Errors of writes that failed after their Twrite was answered
    /// ([`Connection::finish_write`]), by inode: the next Tfsync of the file returns it.
    late_errors: Mutex<BTreeMap<Ino, Errno>>,
}

/// Files with an unreported late write error kept at most (more are logged by the transport
/// only; the filesystem's own state is what it is either way).
const MAX_LATE_ERRORS: usize = 1024;

/// A 9P2000.L export: cheap to clone, shared by its connections.
pub struct Server<F: Filesystem> {
    shared: Arc<Shared<F>>,
}

impl<F: Filesystem> Clone for Server<F> {
    fn clone(&self) -> Self {
        Server {
            shared: self.shared.clone(),
        }
    }
}

impl<F: Filesystem> Server<F> {
    /// Exports `fs` with `cfg`.
    pub fn new(fs: F, cfg: ExportConfig) -> Self {
        let root = cfg.root.unwrap_or_else(|| fs.root());
        let quota = Quota::new(cfg.quota);
        Server {
            shared: Arc::new(Shared {
                fs,
                cfg,
                root,
                quota,
                locks: LockTable::default(),
                next_conn: AtomicU64::new(1),
                late_errors: Mutex::new(BTreeMap::new()),
            }),
        }
    }
    /// Starts a connection (one per transport channel).
    pub fn connect(&self) -> Connection<F> {
        let id = self.shared.next_conn.fetch_add(1, Ordering::Relaxed);
        Connection {
            shared: self.shared.clone(),
            id,
            state: Mutex::new(ConnState {
                msize: 0,
                fids: BTreeMap::new(),
                inflight: BTreeMap::new(),
                spare: Vec::new(),
            }),
        }
    }
    /// The filesystem.
    pub fn fs(&self) -> &F {
        &self.shared.fs
    }
    /// Measures what the export holds and makes it the quota's usage ([`Quota::seed`]), so
    /// that files already there count against `max-space` and `max-files` as files the
    /// guests create do: the bytes of its regular files (a file with several links once) and
    /// its inodes, the export's root not counted. Walks at most `max_entries` directory
    /// entries; a larger tree leaves the usage alone and returns
    /// [`SeedError::TooLarge`]. The walk holds the caller for its length: call it once, when a
    /// byte or file limit is first set ([`Quota::seeded`]).
    pub fn seed_quota(&self, max_entries: u64) -> Result<QuotaUsage, SeedError> {
        seed_quota(&self.shared, max_entries)
    }

    /// The export's quota accounting.
    pub fn quota(&self) -> &Quota {
        &self.shared.quota
    }
    /// The export's lock table.
    pub fn locks(&self) -> &LockTable {
        &self.shared.locks
    }
    /// The export's policy.
    pub fn config(&self) -> &ExportConfig {
        &self.shared.cfg
    }
}

/// Resolves a `/`-separated path below `start` without following symlinks; `..` never goes
/// above `root`. Empty components and `.` are skipped.
pub fn resolve_path<F: Filesystem + ?Sized>(
    fs: &F,
    root: Ino,
    start: Ino,
    path: &[u8],
) -> Result<Attr, Errno> {
    let mut cur = fs.getattr(start)?;
    for comp in path.split(|&b| b == b'/') {
        if comp.is_empty() || comp == b"." {
            continue;
        }
        if !cur.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if comp == b".." && cur.ino == root {
            continue;
        }
        cur = fs.lookup(cur.ino, comp)?;
    }
    Ok(cur)
}

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

#[derive(Debug, Clone)]
enum XattrFid {
    Read(Arc<Vec<u8>>),
    Write {
        name: Vec<u8>,
        size: u64,
        flags: u32,
        buf: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
struct Fid {
    ino: Ino,
    is_dir: bool,
    /// Host uid used as owner of files created through this fid.
    uid: u32,
    /// Directory and name this fid was reached by (for Trename / Tremove).
    parent: Option<(Ino, Vec<u8>)>,
    open: Option<u32>,
    xattr: Option<XattrFid>,
    lock_owners: Vec<LockOwner>,
}

#[derive(Debug, Clone, Copy)]
struct FidInfo {
    ino: Ino,
    is_dir: bool,
    uid: u32,
    open: Option<u32>,
    xattr: bool,
}

#[derive(Debug, Default)]
struct InFlight {
    flushed: bool,
    flushes: Vec<u16>,
}

#[derive(Debug)]
struct ConnState {
    /// 0 until Tversion.
    msize: u32,
    fids: BTreeMap<u32, Fid>,
    inflight: BTreeMap<u16, InFlight>,
    /// Sent replies handed back for reuse ([`Connection::recycle`]).
    spare: Vec<Vec<u8>>,
}

/// Sent reply buffers a connection keeps for reuse, at most.
const SPARE_BUFFERS: usize = 4;
/// Smaller buffers are not kept: allocating and zero-filling them costs little.
const SPARE_MIN_BYTES: usize = 16 << 10;

/// One client connection.
pub struct Connection<F: Filesystem> {
    shared: Arc<Shared<F>>,
    id: u64,
    state: Mutex<ConnState>,
}

/// A request accepted by [`Connection::submit`], to be run by [`Connection::execute`].
#[derive(Debug)]
pub struct Request {
    tag: u16,
    msg: Vec<u8>,
}

impl Request {
    /// The request's tag.
    pub fn tag(&self) -> u16 {
        self.tag
    }
    /// The message type.
    pub fn msg_type(&self) -> u8 {
        Frame::new_unchecked(&self.msg[..]).msg_type()
    }
    /// Size of the message in bytes.
    pub fn size(&self) -> usize {
        self.msg.len()
    }
    /// Whether the request does no bulk I/O (metadata only), so a transport may run it inline
    /// instead of handing it to a worker.
    pub fn is_cheap(&self) -> bool {
        use crate::wire::ty::*;
        matches!(
            self.msg_type(),
            TWALK | TGETATTR | TCLUNK | TSTATFS | TREADLINK | TATTACH | TGETLOCK | TLOCK | TLOPEN
        )
    }
}

/// Result of [`Connection::submit`].
#[derive(Debug)]
pub enum Submitted {
    /// Send this reply now; nothing else to do.
    Reply(Vec<u8>),
    /// Run this with [`Connection::execute`] (on any thread).
    Run(Request),
    /// Nothing to send now (a Tflush waiting for its request to complete).
    Pending,
}

/// A `Twrite` answered before the filesystem ran it ([`Connection::execute_or_defer`]): the
/// transport sends the replies first and then runs it with [`Connection::finish_write`],
/// before any other request of the filesystem runs, so that no request (of any guest) sees
/// the file without it. Only writes the filesystem says cannot fail short of a device error
/// ([`Filesystem::write_would_fit`]) are answered early; if one fails all the same, the error
/// is returned by the next `Tfsync` of the file, as a local filesystem reports a failed
/// write-back.
#[derive(Debug)]
#[must_use = "an answered write must be run with Connection::finish_write"]
pub struct WriteBehind {
    msg: Vec<u8>,
    /// Where the data starts in `msg` (it runs to the end of the message).
    start: usize,
    ino: Ino,
    off: u64,
    grow: u64,
}

impl WriteBehind {
    /// The bytes to write.
    pub fn len(&self) -> usize {
        self.data().len()
    }

    /// Whether there is nothing to write (never, for a write answered early).
    pub fn is_empty(&self) -> bool {
        self.data().is_empty()
    }

    fn data(&self) -> &[u8] {
        self.msg.get(self.start..).unwrap_or(&[])
    }
}

/// Result of [`Connection::execute_or_defer`] for a request that ran.
#[derive(Debug)]
pub enum Executed {
    /// The request ran: send these replies.
    Done(Vec<Vec<u8>>),
    /// A write was answered before it ran: send these replies, then run the write with
    /// [`Connection::finish_write`] before anything else.
    Answered(Vec<Vec<u8>>, WriteBehind),
}

fn err_reply(tag: u16, e: Errno) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 4);
    let _ = Rmsg::Lerror { ecode: e.0 }.emit(tag, &mut out);
    out
}

fn reply(tag: u16, m: &Rmsg<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match m.emit(tag, &mut out) {
        Ok(()) => out,
        Err(_) => err_reply(tag, Errno::ENAMETOOLONG),
    }
}

fn wire_errno(e: WireError) -> Errno {
    match e {
        WireError::TooManyWalkElems(_) => Errno::E2BIG,
        WireError::UnknownType(_) => Errno::EOPNOTSUPP,
        _ => Errno::EBADMSG,
    }
}

fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Errno::EINVAL);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & !0xff) << 12) | ((ma & !0xfff) << 32)
}

fn ts(sec: u64, nsec: u64) -> Timespec {
    Timespec {
        sec,
        nsec: nsec.min(999_999_999) as u32,
    }
}

impl<F: Filesystem> Connection<F> {
    /// This connection's id (unique within its server).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The quota of this connection's export (shared with the export's other connections).
    pub fn quota(&self) -> &Quota {
        &self.shared.quota
    }

    /// [`Server::seed_quota`] for this connection's export.
    pub fn seed_quota(&self, max_entries: u64) -> Result<QuotaUsage, SeedError> {
        seed_quota(&self.shared, max_entries)
    }

    /// The negotiated msize (0 before Tversion).
    pub fn msize(&self) -> u32 {
        self.state.lock().msize
    }

    /// The largest message the transport should accept next: the negotiated msize, or the
    /// export maximum before Tversion.
    pub fn max_message(&self) -> u32 {
        match self.msize() {
            0 => self.shared.cfg.max_msize.max(MIN_MSIZE),
            m => m,
        }
    }

    /// Hands back a reply the transport has sent, so that its buffer carries a later large
    /// reply (an Rread) of this connection instead of a new buffer being allocated and
    /// zero-filled for it. Buffers are kept per connection (at most [`SPARE_BUFFERS`], none
    /// under [`SPARE_MIN_BYTES`]), so a reused buffer only ever held this client's own replies;
    /// and a reply built in one is cut to the bytes written for it.
    pub fn recycle(&self, buf: Vec<u8>) {
        if buf.capacity() < SPARE_MIN_BYTES {
            return;
        }
        let mut st = self.state.lock();
        if st.spare.len() < SPARE_BUFFERS {
            st.spare.push(buf);
        }
    }

    /// A buffer of `len` bytes for a message of this connection (a request the transport
    /// copies in, or a reply): a recycled one when one is large enough (its old contents are
    /// left in place, to be overwritten; only growth is zero-filled), else a new zero-filled
    /// one. Executed requests' buffers are recycled too. Messages under [`SPARE_MIN_BYTES`]
    /// always get a new buffer, so that they do not take (and shorten) a large one.
    pub fn buffer(&self, len: usize) -> Vec<u8> {
        // Small messages get small new buffers: the spares are for the large ones.
        if len < SPARE_MIN_BYTES {
            return vec![0u8; len];
        }
        let spare = {
            let mut st = self.state.lock();
            match st.spare.iter().position(|b| b.capacity() >= len) {
                Some(i) => Some(st.spare.swap_remove(i)),
                None => None,
            }
        };
        match spare {
            Some(mut b) => {
                b.resize(len, 0);
                b
            }
            None => vec![0u8; len],
        }
    }

    /// Accepts one complete message (see the module docs).
    pub fn submit(&self, msg: Vec<u8>) -> Submitted {
        let f = Frame::new_unchecked(&msg[..]);
        let tag = f.tag();
        if let Err(e) = f.check_len() {
            return Submitted::Reply(err_reply(tag, wire_errno(e)));
        }
        let ty = f.msg_type();
        if msg.len() as u64 > u64::from(self.max_message()) {
            return Submitted::Reply(err_reply(tag, EMSGSIZE));
        }
        match ty {
            crate::wire::ty::TVERSION => return Submitted::Reply(self.version(tag, f.body())),
            crate::wire::ty::TFLUSH => {
                let oldtag = match Tmsg::parse_body(ty, f.body()) {
                    Ok(Tmsg::Flush { oldtag }) => oldtag,
                    Ok(_) => return Submitted::Reply(err_reply(tag, Errno::EBADMSG)),
                    Err(e) => return Submitted::Reply(err_reply(tag, wire_errno(e))),
                };
                let mut st = self.state.lock();
                if oldtag != tag {
                    if let Some(inf) = st.inflight.get_mut(&oldtag) {
                        inf.flushed = true;
                        if inf.flushes.len() < 16 {
                            inf.flushes.push(tag);
                            return Submitted::Pending;
                        }
                    }
                }
                return Submitted::Reply(reply(tag, &Rmsg::Flush));
            }
            _ => {}
        }
        let mut st = self.state.lock();
        if st.msize == 0 {
            return Submitted::Reply(err_reply(tag, Errno::EPROTO));
        }
        if tag == NOTAG || st.inflight.contains_key(&tag) {
            return Submitted::Reply(err_reply(tag, Errno::EBADMSG));
        }
        if st.inflight.len() >= self.shared.cfg.max_in_flight {
            return Submitted::Reply(err_reply(tag, Errno::EAGAIN));
        }
        st.inflight.insert(tag, InFlight::default());
        Submitted::Run(Request { tag, msg })
    }

    /// Runs a request; returns the replies to send, in order (possibly none).
    pub fn execute(&self, req: Request) -> Vec<Vec<u8>> {
        let flushed_early = self
            .state
            .lock()
            .inflight
            .get(&req.tag)
            .is_none_or(|i| i.flushed);
        let out = if flushed_early {
            None
        } else {
            Some(self.dispatch(&req))
        };
        let mut replies = Vec::new();
        let mut st = self.state.lock();
        let inf = st.inflight.remove(&req.tag).unwrap_or_default();
        if !inf.flushed {
            if let Some(r) = out {
                replies.push(r);
            }
        }
        for t in inf.flushes {
            replies.push(reply(t, &Rmsg::Flush));
        }
        if req.msg.capacity() >= SPARE_MIN_BYTES && st.spare.len() < SPARE_BUFFERS {
            st.spare.push(req.msg);
        }
        replies
    }

    /// Like [`execute`](Self::execute), but a `Tread` whose data the filesystem does not hold
    /// in memory ([`Filesystem::read_would_wait`], which starts fetching it) is handed back
    /// unrun as `Err`, so the transport can run other requests first and `execute` it later;
    /// and with `early_writes`, a `Twrite` the filesystem says will fit
    /// ([`Filesystem::write_would_fit`]) is answered before it runs ([`Executed::Answered`],
    /// see [`WriteBehind`]), so the client can prepare its next request while the server
    /// writes. Everything else runs at once.
    pub fn execute_or_defer(&self, req: Request, early_writes: bool) -> Result<Executed, Request> {
        if self.read_would_wait(&req) {
            return Err(req);
        }
        if !early_writes {
            return Ok(Executed::Done(self.execute(req)));
        }
        match self.answer_early(req) {
            Ok(answered) => Ok(answered),
            Err(req) => Ok(Executed::Done(self.execute(req))),
        }
    }

    /// Answers a `Twrite` before running it, when it can only fail with a device error: its
    /// fid is open for writing, the export is writable, the quota has room (charged now) and
    /// the filesystem has room for it. Hands the request back otherwise.
    fn answer_early(&self, req: Request) -> Result<Executed, Request> {
        let f = Frame::new_unchecked(&req.msg[..]);
        if f.msg_type() != crate::wire::ty::TWRITE {
            return Err(req);
        }
        let Ok(Tmsg::Write { fid, offset, data }) =
            Tmsg::parse_body(crate::wire::ty::TWRITE, f.body())
        else {
            return Err(req);
        };
        let len = data.len();
        // The data is the message's last field: it runs from `start` to the end.
        let start = (data.as_ptr() as usize).wrapping_sub(req.msg.as_ptr() as usize);
        if len == 0 || start.checked_add(len) != Some(req.msg.len()) {
            return Err(req);
        }
        {
            let st = self.state.lock();
            if st.inflight.get(&req.tag).is_none_or(|i| i.flushed) {
                return Err(req);
            }
        }
        let Ok(i) = self.plain(fid) else {
            return Err(req);
        };
        let Ok((off, grow)) = self.write_start(i, offset, len) else {
            return Err(req);
        };
        if !self.shared.fs.write_would_fit(i.ino, off, len as u64) {
            self.shared.quota.refund_bytes(grow);
            return Err(req);
        }
        let mut replies = vec![reply(req.tag, &Rmsg::Write { count: len as u32 })];
        let inf = self
            .state
            .lock()
            .inflight
            .remove(&req.tag)
            .unwrap_or_default();
        // Not flushed (checked above, and nothing ran in between); a Tflush that came anyway
        // is answered after the reply, as `execute` does.
        for t in inf.flushes {
            replies.push(reply(t, &Rmsg::Flush));
        }
        Ok(Executed::Answered(
            replies,
            WriteBehind {
                msg: req.msg,
                start,
                ino: i.ino,
                off,
                grow,
            },
        ))
    }

    /// Runs a write answered early (see [`WriteBehind`]); returns the bytes written, or the
    /// error, which the next `Tfsync` of the file also returns (and the quota charge is
    /// refunded). A short write counts as `ENOSPC`.
    pub fn finish_write(&self, w: WriteBehind) -> Result<usize, Errno> {
        let want = w.len();
        let res = match self.shared.fs.write(w.ino, w.off, w.data()) {
            Ok(n) if n >= want => Ok(n),
            Ok(_) => Err(Errno::ENOSPC),
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            self.shared.quota.refund_bytes(w.grow);
            let mut late = self.shared.late_errors.lock();
            if late.len() < MAX_LATE_ERRORS || late.contains_key(&w.ino) {
                late.entry(w.ino).or_insert(e);
            }
        }
        self.recycle(w.msg);
        res
    }

    fn read_would_wait(&self, req: &Request) -> bool {
        let f = Frame::new_unchecked(&req.msg[..]);
        if f.msg_type() != crate::wire::ty::TREAD {
            return false;
        }
        let Ok(Tmsg::Read { fid, offset, count }) =
            Tmsg::parse_body(crate::wire::ty::TREAD, f.body())
        else {
            return false;
        };
        let ino = {
            let st = self.state.lock();
            if st.inflight.get(&req.tag).is_none_or(|i| i.flushed) {
                return false;
            }
            match st.fids.get(&fid) {
                Some(fd)
                    if fd.xattr.is_none()
                        && fd.open.is_some_and(|fl| fl & O_ACCMODE != O_WRONLY) =>
                {
                    fd.ino
                }
                _ => return false,
            }
        };
        let max = self.msize().saturating_sub(RREAD_HEADER_LEN as u32);
        self.fs().read_would_wait(ino, offset, count.min(max))
    }

    /// `submit` then `execute`: the replies to one message, in order.
    pub fn handle(&self, msg: Vec<u8>) -> Vec<Vec<u8>> {
        match self.submit(msg) {
            Submitted::Reply(r) => vec![r],
            Submitted::Run(req) => self.execute(req),
            Submitted::Pending => Vec::new(),
        }
    }

    /// Number of fids in use.
    pub fn fid_count(&self) -> usize {
        self.state.lock().fids.len()
    }

    fn version(&self, tag: u16, body: &[u8]) -> Vec<u8> {
        let (msize, version) = match Tmsg::parse_body(crate::wire::ty::TVERSION, body) {
            Ok(Tmsg::Version { msize, version }) => (msize, version),
            Ok(_) => return err_reply(tag, Errno::EBADMSG),
            Err(e) => return err_reply(tag, wire_errno(e)),
        };
        if msize < MIN_MSIZE {
            return err_reply(tag, Errno::EINVAL);
        }
        // A new session: every fid of the old one is clunked.
        self.clunk_all();
        if !version.starts_with(VERSION) {
            self.state.lock().msize = 0;
            return reply(
                tag,
                &Rmsg::Version {
                    msize,
                    version: b"unknown",
                },
            );
        }
        let m = msize.min(self.shared.cfg.max_msize.max(MIN_MSIZE));
        self.state.lock().msize = m;
        reply(
            tag,
            &Rmsg::Version {
                msize: m,
                version: VERSION,
            },
        )
    }

    fn clunk_all(&self) {
        let fids = core::mem::take(&mut self.state.lock().fids);
        for (_, f) in fids {
            let _ = self.release_fid(f);
        }
        self.shared.locks.release_conn(self.id);
    }

    fn dispatch(&self, req: &Request) -> Vec<u8> {
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

    fn fs(&self) -> &F {
        &self.shared.fs
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.shared.cfg.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Checks a write of `len` bytes at `offset` through a fid of `i` and charges its growth of
    /// the file to the quota: returns the offset to write at (the end of the file for
    /// `O_APPEND`) and the bytes charged.
    fn write_start(&self, i: FidInfo, offset: u64, len: usize) -> Result<(u64, u64), Errno> {
        let fl = match i.open {
            Some(fl) if fl & O_ACCMODE == O_WRONLY || fl & O_ACCMODE == O_RDWR => fl,
            _ => return Err(Errno::EBADF),
        };
        self.writable()?;
        let cur = self.shared.fs.getattr(i.ino)?;
        let off = if fl & O_APPEND != 0 { cur.size } else { offset };
        let end = off.checked_add(len as u64).ok_or(Errno::EFBIG)?;
        let grow = end.saturating_sub(cur.size);
        self.shared.quota.charge_bytes(grow)?;
        if let Some(m) = crate::privs::after_change(&cur, i.uid) {
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

    fn info(&self, fid: u32) -> Result<FidInfo, Errno> {
        let st = self.state.lock();
        let f = st.fids.get(&fid).ok_or(Errno::EBADF)?;
        Ok(FidInfo {
            ino: f.ino,
            is_dir: f.is_dir,
            uid: f.uid,
            open: f.open,
            xattr: f.xattr.is_some(),
        })
    }

    /// A fid usable for inode operations (not an xattr fid).
    fn plain(&self, fid: u32) -> Result<FidInfo, Errno> {
        let i = self.info(fid)?;
        if i.xattr {
            return Err(Errno::EBADF);
        }
        Ok(i)
    }

    fn dir_fid(&self, fid: u32) -> Result<FidInfo, Errno> {
        let i = self.plain(fid)?;
        if !i.is_dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(i)
    }

    /// Inserts a new fid holding `ino`; fails if the fid number is taken or the table full.
    fn insert_fid(&self, fid: u32, new: Fid) -> Result<(), Errno> {
        let mut st = self.state.lock();
        if fid == NOFID || st.fids.contains_key(&fid) {
            return Err(Errno::EBADF);
        }
        if st.fids.len() >= self.shared.cfg.max_fids {
            return Err(Errno::EMFILE);
        }
        self.fs().retain(new.ino);
        st.fids.insert(fid, new);
        Ok(())
    }

    /// Releases what a fid held. Returns the result of committing an xattr write.
    fn release_fid(&self, f: Fid) -> Result<(), Errno> {
        let mut res = Ok(());
        if f.open.is_some() {
            self.shared.quota.refund_open();
        }
        for o in &f.lock_owners {
            self.shared.locks.release_owner(f.ino, o);
        }
        if let Some(XattrFid::Write {
            name,
            size,
            flags,
            buf,
        }) = &f.xattr
        {
            res = if *size == 0 {
                self.fs().removexattr(f.ino, name)
            } else if buf.len() as u64 != *size {
                Err(Errno::EINVAL)
            } else {
                self.fs().setxattr(f.ino, name, buf, *flags)
            };
        }
        self.fs().release(f.ino);
        res
    }

    fn guest_attr(&self, a: &Attr) -> Getattr {
        let c = &self.shared.cfg;
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

    fn op(&self, tag: u16, msize: usize, msg: Tmsg<'_>) -> Result<Vec<u8>, Errno> {
        let fs = self.fs();
        let cfg = &self.shared.cfg;
        let root = self.shared.root;
        let iomax = msize.saturating_sub(RREAD_HEADER_LEN);
        match msg {
            Tmsg::Version { .. } | Tmsg::Flush { .. } => Err(Errno::EPROTO),
            // No authentication: ENOENT is the conventional "not required" answer.
            Tmsg::Auth { .. } => Err(Errno::ENOENT),
            Tmsg::Attach {
                fid,
                afid,
                aname,
                n_uname,
                ..
            } => {
                if afid != NOFID {
                    return Err(Errno::EINVAL);
                }
                let a = resolve_path(fs, root, root, aname)?;
                if !a.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                let uid = if n_uname == NONUNAME {
                    cfg.uid_map.unmapped_host
                } else {
                    cfg.uid_map.to_host(n_uname)
                };
                self.insert_fid(
                    fid,
                    Fid {
                        ino: a.ino,
                        is_dir: true,
                        uid,
                        parent: None,
                        open: None,
                        xattr: None,
                        lock_owners: Vec::new(),
                    },
                )?;
                Ok(reply(tag, &Rmsg::Attach { qid: qid_of(&a) }))
            }
            Tmsg::Walk { fid, newfid, names } => self.walk(tag, fid, newfid, &names),
            Tmsg::Clunk { fid } => {
                let f = self.state.lock().fids.remove(&fid).ok_or(Errno::EBADF)?;
                self.release_fid(f)?;
                Ok(reply(tag, &Rmsg::Clunk))
            }
            Tmsg::Remove { fid } => {
                let f = self.state.lock().fids.remove(&fid).ok_or(Errno::EBADF)?;
                let parent = f.parent.clone();
                let is_dir = f.is_dir;
                let ino = f.ino;
                let r = (|| {
                    self.writable()?;
                    let (p, name) = parent.ok_or(Errno::EBUSY)?;
                    self.unlink(p, &name, is_dir, Some(ino))
                })();
                let c = self.release_fid(f);
                r?;
                c?;
                Ok(reply(tag, &Rmsg::Remove))
            }
            Tmsg::Statfs { fid } => {
                self.plain(fid)?;
                let s = self.shared.quota.clamp_statfs(fs.statfs()?);
                Ok(reply(
                    tag,
                    &Rmsg::Statfs(StatfsRepr {
                        ty: s.fs_type,
                        bsize: s.bsize,
                        blocks: s.blocks,
                        bfree: s.bfree,
                        bavail: s.bavail,
                        files: s.files,
                        ffree: s.ffree,
                        fsid: s.fsid,
                        namelen: s.namelen,
                    }),
                ))
            }
            Tmsg::Lopen { fid, flags } => {
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
                self.shared.quota.charge_open()?;
                let mut a = a;
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
                            self.shared.quota.refund_bytes(a.size);
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
            Tmsg::Lcreate {
                fid,
                name,
                flags,
                mode: m,
                gid,
            } => {
                let i = self.dir_fid(fid)?;
                if i.open.is_some() {
                    return Err(Errno::EBADF);
                }
                check_name(name)?;
                self.writable()?;
                self.shared.quota.charge_file()?;
                if let Err(e) = self.shared.quota.charge_open() {
                    self.shared.quota.refund_file();
                    return Err(e);
                }
                let new = NewInode {
                    mode: mode::S_IFREG | (m & 0o7777),
                    uid: i.uid,
                    gid: cfg.gid_map.to_host(gid),
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
            Tmsg::Symlink {
                fid,
                name,
                target,
                gid,
            } => {
                let i = self.dir_fid(fid)?;
                check_name(name)?;
                self.writable()?;
                self.shared.quota.charge_file()?;
                let a = fs
                    .symlink(i.ino, name, target, i.uid, cfg.gid_map.to_host(gid))
                    .inspect_err(|_| {
                        self.shared.quota.refund_file();
                    })?;
                Ok(reply(tag, &Rmsg::Symlink { qid: qid_of(&a) }))
            }
            Tmsg::Mknod {
                dfid,
                name,
                mode: m,
                major,
                minor,
                gid,
            } => {
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
                self.shared.quota.charge_file()?;
                let new = NewInode {
                    mode: t | (m & 0o7777),
                    uid: i.uid,
                    gid: cfg.gid_map.to_host(gid),
                    rdev: makedev(major, minor),
                };
                let a = fs
                    .create(i.ino, name, &new)
                    .inspect_err(|_| self.shared.quota.refund_file())?;
                Ok(reply(tag, &Rmsg::Mknod { qid: qid_of(&a) }))
            }
            Tmsg::Mkdir {
                dfid,
                name,
                mode: m,
                gid,
            } => {
                let i = self.dir_fid(dfid)?;
                check_name(name)?;
                self.writable()?;
                self.shared.quota.charge_file()?;
                let new = NewInode {
                    mode: mode::S_IFDIR | (m & 0o7777),
                    uid: i.uid,
                    gid: cfg.gid_map.to_host(gid),
                    rdev: 0,
                };
                let a = fs
                    .create(i.ino, name, &new)
                    .inspect_err(|_| self.shared.quota.refund_file())?;
                Ok(reply(tag, &Rmsg::Mkdir { qid: qid_of(&a) }))
            }
            Tmsg::Rename { fid, dfid, name } => {
                self.plain(fid)?;
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
                fs.rename(p, &old, d.ino, name)?;
                if let Some(f) = self.state.lock().fids.get_mut(&fid) {
                    f.parent = Some((d.ino, name.to_vec()));
                }
                Ok(reply(tag, &Rmsg::Rename))
            }
            Tmsg::Renameat {
                olddirfid,
                oldname,
                newdirfid,
                newname,
            } => {
                let o = self.dir_fid(olddirfid)?;
                let n = self.dir_fid(newdirfid)?;
                check_name(oldname)?;
                check_name(newname)?;
                self.writable()?;
                fs.rename(o.ino, oldname, n.ino, newname)?;
                Ok(reply(tag, &Rmsg::Renameat))
            }
            Tmsg::Unlinkat {
                dirfid,
                name,
                flags,
            } => {
                let d = self.dir_fid(dirfid)?;
                check_name(name)?;
                self.writable()?;
                self.unlink(d.ino, name, flags & AT_REMOVEDIR != 0, None)?;
                Ok(reply(tag, &Rmsg::Unlinkat))
            }
            Tmsg::Link { dfid, fid, name } => {
                let d = self.dir_fid(dfid)?;
                let i = self.plain(fid)?;
                check_name(name)?;
                self.writable()?;
                if i.is_dir {
                    return Err(Errno::EPERM);
                }
                fs.link(i.ino, d.ino, name)?;
                Ok(reply(tag, &Rmsg::Link))
            }
            Tmsg::Readlink { fid } => {
                let i = self.plain(fid)?;
                let t = fs.readlink(i.ino)?;
                Ok(reply(tag, &Rmsg::Readlink { target: &t }))
            }
            Tmsg::Getattr { fid, .. } => {
                let i = self.plain(fid)?;
                let a = fs.getattr(i.ino)?;
                Ok(reply(tag, &Rmsg::Getattr(self.guest_attr(&a))))
            }
            Tmsg::Setattr { fid, attr } => {
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
                    uid: (v & sa::UID != 0).then(|| cfg.uid_map.to_host(attr.uid)),
                    gid: (v & sa::GID != 0).then(|| cfg.gid_map.to_host(attr.gid)),
                    size: (v & sa::SIZE != 0).then_some(attr.size),
                    atime: (v & sa::ATIME != 0)
                        .then(|| time(sa::ATIME_SET, attr.atime_sec, attr.atime_nsec)),
                    mtime: (v & sa::MTIME != 0)
                        .then(|| time(sa::MTIME_SET, attr.mtime_sec, attr.mtime_nsec)),
                    ctime: v & sa::CTIME != 0,
                };
                if set.mode.is_none() && v & (sa::SIZE | sa::UID | sa::GID) != 0 {
                    // A truncate or a change of owner by a caller without CAP_FSETID.
                    set.mode = crate::privs::after_change(&fs.getattr(i.ino)?, i.uid);
                }
                let mut charged = 0;
                if let Some(size) = set.size {
                    let cur = fs.getattr(i.ino)?;
                    if cur.is_dir() {
                        return Err(Errno::EISDIR);
                    }
                    if size > cur.size {
                        charged = size - cur.size;
                        self.shared.quota.charge_bytes(charged)?;
                    } else {
                        self.shared.quota.refund_bytes(cur.size - size);
                    }
                }
                fs.setattr(i.ino, &set)
                    .inspect_err(|_| self.shared.quota.refund_bytes(charged))?;
                Ok(reply(tag, &Rmsg::Setattr))
            }
            Tmsg::Read { fid, offset, count } => {
                let i = self.info(fid)?;
                let n = (count as usize).min(iomax);
                if i.xattr {
                    let st = self.state.lock();
                    let Some(Fid {
                        xattr: Some(XattrFid::Read(data)),
                        ..
                    }) = st.fids.get(&fid)
                    else {
                        return Err(Errno::EBADF);
                    };
                    let off = usize::try_from(offset).unwrap_or(usize::MAX);
                    let src = data.get(off..).unwrap_or(&[]);
                    return Ok(reply(
                        tag,
                        &Rmsg::Read {
                            data: src.get(..n.min(src.len())).unwrap_or(&[]),
                        },
                    ));
                }
                match i.open {
                    Some(fl) if fl & O_ACCMODE != O_WRONLY => {}
                    _ => return Err(Errno::EBADF),
                }
                // `read` writes every byte it reports, and the reply is cut to those: nothing
                // a recycled buffer held before goes out.
                let mut out = self.buffer(RREAD_HEADER_LEN + n);
                let got = fs
                    .read(
                        i.ino,
                        offset,
                        out.get_mut(RREAD_HEADER_LEN..).unwrap_or(&mut []),
                    )?
                    .min(n);
                out.truncate(RREAD_HEADER_LEN + got);
                finish_io_reply(&mut out, crate::wire::ty::RREAD, tag).map_err(|_| Errno::EIO)?;
                Ok(out)
            }
            Tmsg::Write { fid, offset, data } => {
                let i = self.info(fid)?;
                if i.xattr {
                    let mut st = self.state.lock();
                    let Some(Fid {
                        xattr: Some(XattrFid::Write { size, buf, .. }),
                        ..
                    }) = st.fids.get_mut(&fid)
                    else {
                        return Err(Errno::EBADF);
                    };
                    if offset != buf.len() as u64 || (buf.len() + data.len()) as u64 > *size {
                        return Err(Errno::EINVAL);
                    }
                    buf.extend_from_slice(data);
                    return Ok(reply(
                        tag,
                        &Rmsg::Write {
                            count: data.len() as u32,
                        },
                    ));
                }
                let (off, grow) = self.write_start(i, offset, data.len())?;
                let n = fs
                    .write(i.ino, off, data)
                    .inspect_err(|_| self.shared.quota.refund_bytes(grow))?;
                Ok(reply(
                    tag,
                    &Rmsg::Write {
                        count: n.min(data.len()) as u32,
                    },
                ))
            }
            Tmsg::Readdir { fid, offset, count } => {
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
                finish_io_reply(&mut out, crate::wire::ty::RREADDIR, tag)
                    .map_err(|_| Errno::EIO)?;
                Ok(out)
            }
            Tmsg::Fsync { fid, datasync } => {
                let i = self.plain(fid)?;
                let late = self.shared.late_errors.lock().remove(&i.ino);
                fs.fsync(i.ino, datasync != 0)?;
                match late {
                    Some(e) => Err(e),
                    None => Ok(reply(tag, &Rmsg::Fsync)),
                }
            }
            Tmsg::Lock {
                fid,
                flags: _,
                lock,
            } => {
                let i = self.plain(fid)?;
                let kind = match lock.ty {
                    lk::RDLCK => Some(LockKind::Read),
                    lk::WRLCK => Some(LockKind::Write),
                    lk::UNLCK => None,
                    _ => return Err(Errno::EINVAL),
                };
                let (start, end) = lock_range(lock.start, lock.length)?;
                let owner = LockOwner {
                    conn: self.id,
                    proc_id: lock.proc_id,
                    client_id: lock.client_id.to_vec(),
                };
                if kind.is_some() {
                    let mut st = self.state.lock();
                    let f = st.fids.get_mut(&fid).ok_or(Errno::EBADF)?;
                    if !f.lock_owners.contains(&owner) {
                        if f.lock_owners.len() >= MAX_LOCK_OWNERS_PER_FID {
                            return Err(Errno::ENOMEM);
                        }
                        f.lock_owners.push(owner.clone());
                    }
                }
                let ok = self.shared.locks.set(i.ino, &owner, kind, start, end)?;
                let status = if ok {
                    lk::STATUS_SUCCESS
                } else {
                    lk::STATUS_BLOCKED
                };
                Ok(reply(tag, &Rmsg::Lock { status }))
            }
            Tmsg::Getlock { fid, lock } => {
                let i = self.plain(fid)?;
                let kind = match lock.ty {
                    lk::RDLCK => LockKind::Read,
                    lk::WRLCK => LockKind::Write,
                    _ => return Err(Errno::EINVAL),
                };
                let (start, end) = lock_range(lock.start, lock.length)?;
                let owner = LockOwner {
                    conn: self.id,
                    proc_id: lock.proc_id,
                    client_id: lock.client_id.to_vec(),
                };
                match self.shared.locks.conflict(i.ino, &owner, kind, start, end) {
                    Some(h) => {
                        let length = if h.end == u64::MAX {
                            0
                        } else {
                            h.end - h.start + 1
                        };
                        let ty = if h.kind == LockKind::Write {
                            lk::WRLCK
                        } else {
                            lk::RDLCK
                        };
                        Ok(reply(
                            tag,
                            &Rmsg::Getlock {
                                lock: LockRepr {
                                    ty,
                                    start: h.start,
                                    length,
                                    proc_id: h.owner.proc_id,
                                    client_id: &h.owner.client_id,
                                },
                            },
                        ))
                    }
                    None => Ok(reply(
                        tag,
                        &Rmsg::Getlock {
                            lock: LockRepr {
                                ty: lk::UNLCK,
                                ..lock
                            },
                        },
                    )),
                }
            }
            Tmsg::Xattrwalk { fid, newfid, name } => {
                let i = self.plain(fid)?;
                let data = if name.is_empty() {
                    fs.listxattr(i.ino)?
                } else {
                    fs.getxattr(i.ino, name)?
                };
                if data.len() as u64 > XATTR_SIZE_MAX {
                    return Err(Errno::E2BIG);
                }
                let size = data.len() as u64;
                let new = Fid {
                    ino: i.ino,
                    is_dir: i.is_dir,
                    uid: i.uid,
                    parent: None,
                    open: None,
                    xattr: Some(XattrFid::Read(Arc::new(data))),
                    lock_owners: Vec::new(),
                };
                if newfid == fid {
                    return Err(Errno::EBADF);
                }
                self.insert_fid(newfid, new)?;
                Ok(reply(tag, &Rmsg::Xattrwalk { size }))
            }
            Tmsg::Xattrcreate {
                fid,
                name,
                size,
                flags,
            } => {
                let i = self.plain(fid)?;
                self.writable()?;
                if name.is_empty() || name.len() > 255 {
                    return Err(Errno::EINVAL);
                }
                if size > XATTR_SIZE_MAX {
                    return Err(Errno::E2BIG);
                }
                if i.open.is_some() {
                    return Err(Errno::EBADF);
                }
                let mut st = self.state.lock();
                let f = st.fids.get_mut(&fid).ok_or(Errno::EBADF)?;
                f.xattr = Some(XattrFid::Write {
                    name: name.to_vec(),
                    size,
                    flags,
                    buf: Vec::new(),
                });
                Ok(reply(tag, &Rmsg::Xattrcreate))
            }
        }
    }

    fn walk(&self, tag: u16, fid: u32, newfid: u32, names: &[&[u8]]) -> Result<Vec<u8>, Errno> {
        let fs = self.fs();
        let root = self.shared.root;
        let (start, parent) = {
            let st = self.state.lock();
            let f = st.fids.get(&fid).ok_or(Errno::EBADF)?;
            if f.xattr.is_some() {
                return Err(Errno::EBADF);
            }
            if newfid != fid && st.fids.contains_key(&newfid) {
                return Err(Errno::EBADF);
            }
            (
                FidInfo {
                    ino: f.ino,
                    is_dir: f.is_dir,
                    uid: f.uid,
                    open: f.open,
                    xattr: false,
                },
                f.parent.clone(),
            )
        };
        if names.len() > MAX_WELEM {
            return Err(Errno::E2BIG);
        }
        let mut qids = Vec::with_capacity(names.len());
        let mut cur = start.ino;
        let mut cur_dir = start.is_dir;
        let mut parent = parent;
        for (k, name) in names.iter().enumerate() {
            let step = (|| {
                if !cur_dir {
                    return Err(Errno::ENOTDIR);
                }
                if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
                    return Err(Errno::EINVAL);
                }
                if name.len() > 255 {
                    return Err(Errno::ENAMETOOLONG);
                }
                if *name == b"." {
                    return fs.getattr(cur);
                }
                if *name == b".." && cur == root {
                    return fs.getattr(root);
                }
                fs.lookup(cur, name)
            })();
            match step {
                Ok(a) => {
                    qids.push(qid_of(&a));
                    parent = if *name == b"." || *name == b".." {
                        None
                    } else {
                        Some((cur, name.to_vec()))
                    };
                    cur = a.ino;
                    cur_dir = a.is_dir();
                }
                Err(e) if k == 0 => return Err(e),
                Err(_) => return Ok(reply(tag, &Rmsg::Walk { qids })),
            }
        }
        let new = Fid {
            ino: cur,
            is_dir: cur_dir,
            uid: start.uid,
            parent,
            open: None,
            xattr: None,
            lock_owners: Vec::new(),
        };
        if newfid == fid {
            let old = {
                let mut st = self.state.lock();
                let f = st.fids.get_mut(&fid).ok_or(Errno::EBADF)?;
                if f.open.is_some() {
                    return Err(Errno::EBADF);
                }
                fs.retain(cur);
                core::mem::replace(f, new)
            };
            let _ = self.release_fid(old);
        } else {
            self.insert_fid(newfid, new)?;
        }
        Ok(reply(tag, &Rmsg::Walk { qids }))
    }

    /// Unlinks `dir/name`; with `expect`, only if that name still refers to that inode (a
    /// Tremove through a fid whose file was renamed away must not remove a newcomer).
    fn unlink(&self, dir: Ino, name: &[u8], rmdir: bool, expect: Option<Ino>) -> Result<(), Errno> {
        let fs = self.fs();
        let target = fs.lookup(dir, name)?;
        if expect.is_some_and(|i| i != target.ino) {
            return Err(Errno::ENOENT);
        }
        fs.unlink(dir, name, rmdir)?;
        if target.is_dir() || target.nlink <= 1 {
            self.shared.quota.refund_file();
            if target.is_file() {
                self.shared.quota.refund_bytes(target.size);
            }
        }
        Ok(())
    }
}

/// Why [`Server::seed_quota`] left the usage alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedError {
    /// The export has more than the allowed number of directory entries.
    TooLarge,
    /// The filesystem failed while listing or reading the tree.
    Fs(Errno),
}

fn seed_quota<F: Filesystem>(sh: &Shared<F>, max_entries: u64) -> Result<QuotaUsage, SeedError> {
    let fs = &sh.fs;
    let mut bytes = 0u64;
    let mut files = 0u64;
    let mut entries = 0u64;
    let mut linked: BTreeSet<Ino> = BTreeSet::new();
    let mut dirs: Vec<Ino> = vec![sh.root];
    while let Some(dir) = dirs.pop() {
        let mut found: Vec<(Ino, u8)> = Vec::new();
        let mut over = false;
        fs.readdir(dir, 0, &mut |e| {
            if e.name == b"." || e.name == b".." {
                return true;
            }
            entries += 1;
            if entries > max_entries {
                over = true;
                return false;
            }
            found.push((e.ino, e.kind));
            true
        })
        .map_err(SeedError::Fs)?;
        if over {
            return Err(SeedError::TooLarge);
        }
        for (ino, kind) in found {
            if kind == crate::fs::dt::DIR {
                files += 1;
                dirs.push(ino);
                continue;
            }
            let a = fs.getattr(ino).map_err(SeedError::Fs)?;
            if a.nlink > 1 && !linked.insert(ino) {
                continue;
            }
            files += 1;
            if a.is_file() {
                bytes = bytes.saturating_add(a.size);
            }
        }
    }
    sh.quota.seed(bytes, files);
    Ok(sh.quota.usage())
}

impl<F: Filesystem> Drop for Connection<F> {
    fn drop(&mut self) {
        self.clunk_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memfs::MemFs;
    use crate::wire::ty;

    fn enc(tag: u16, m: &Tmsg<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        m.emit(tag, &mut v).unwrap();
        v
    }

    fn decode(r: &[u8]) -> (u16, Rmsg<'_>) {
        let f = Frame::new_checked(r).unwrap();
        (f.tag(), Rmsg::parse(&f).unwrap())
    }

    #[test]
    fn seed_quota_counts_what_the_export_holds() {
        let fs = MemFs::new();
        let root = fs.root();
        let new = |mode| NewInode {
            mode,
            uid: 0,
            gid: 0,
            rdev: 0,
        };
        let d = fs.create(root, b"d", &new(mode::S_IFDIR | 0o755)).unwrap();
        let a = fs.create(root, b"a", &new(mode::S_IFREG | 0o644)).unwrap();
        fs.write(a.ino, 0, &[7; 3000]).unwrap();
        let b = fs.create(d.ino, b"b", &new(mode::S_IFREG | 0o644)).unwrap();
        fs.write(b.ino, 0, &[1; 500]).unwrap();
        // a second link to b counts once; a symlink is an inode without data bytes
        fs.link(b.ino, root, b"b2").unwrap();
        fs.symlink(d.ino, b"s", b"../a", 0, 0).unwrap();
        let s = Server::new(fs, ExportConfig::default());
        assert!(!s.quota().seeded());
        let u = s.seed_quota(1_000).unwrap();
        assert_eq!(u, s.quota().usage());
        assert_eq!((u.bytes, u.files), (3500, 4), "d, a, b (two links), s");
        assert!(s.quota().seeded());
        // Too many entries for the bound: the usage stays as it was.
        s.quota().seed(1, 1);
        assert_eq!(s.seed_quota(4), Err(SeedError::TooLarge));
        assert_eq!((s.quota().usage().bytes, s.quota().usage().files), (1, 1));
        assert!(s.seed_quota(5).is_ok());
        assert_eq!(s.quota().usage().bytes, 3500);
    }

    #[test]
    fn a_seeded_quota_counts_old_files_against_new_writes() {
        let fs = MemFs::new();
        let root = fs.root();
        let old = fs
            .create(
                root,
                b"old",
                &NewInode {
                    mode: mode::S_IFREG | 0o644,
                    uid: 0,
                    gid: 0,
                    rdev: 0,
                },
            )
            .unwrap();
        fs.write(old.ino, 0, &[9; 6000]).unwrap();
        let s = Server::new(fs, ExportConfig::default());
        s.quota().set_limits(QuotaLimits {
            max_bytes: Some(8000),
            max_files: None,
            max_open_files: None,
        });
        assert!(s.quota().limits_usage() && !s.quota().seeded());
        s.seed_quota(100).unwrap();
        let c = attached(&s, 8192);
        let one = |m: &Tmsg<'_>| {
            let out = c.handle(enc(1, m));
            assert_eq!(out.len(), 1);
            out.into_iter().next().unwrap_or_default()
        };
        let r = one(&Tmsg::Lcreate {
            fid: 0,
            name: b"new",
            flags: 2,
            mode: 0o644,
            gid: 0,
        });
        assert!(
            matches!(decode(&r).1, Rmsg::Lcreate { .. }),
            "{:?}",
            decode(&r)
        );
        let data = alloc::vec![1u8; 1500];
        // 6000 old + 1500 new bytes fit in 8000; 1000 more do not.
        let r = one(&Tmsg::Write {
            fid: 0,
            offset: 0,
            data: &data,
        });
        assert!(
            matches!(decode(&r).1, Rmsg::Write { count: 1500 }),
            "{:?}",
            decode(&r)
        );
        let r = one(&Tmsg::Write {
            fid: 0,
            offset: 1500,
            data: &data[..1000],
        });
        assert!(
            matches!(decode(&r).1, Rmsg::Lerror { ecode } if ecode == Errno::EDQUOT.0),
            "{:?}",
            decode(&r)
        );
    }

    #[test]
    fn flush_of_queued_request_suppresses_its_reply() {
        let s = Server::new(MemFs::new(), ExportConfig::default());
        let c = attached(&s, 8192);
        // Submitted, not yet run.
        let Submitted::Run(req) = c.submit(enc(
            5,
            &Tmsg::Mkdir {
                dfid: 0,
                name: b"d",
                mode: 0o755,
                gid: 0,
            },
        )) else {
            panic!("expected Run")
        };
        assert_eq!(req.tag(), 5);
        assert_eq!(req.msg_type(), ty::TMKDIR);
        assert!(!req.is_cheap());
        assert!(matches!(
            c.submit(enc(6, &Tmsg::Flush { oldtag: 5 })),
            Submitted::Pending
        ));
        // A second flush of the same tag also waits.
        assert!(matches!(
            c.submit(enc(7, &Tmsg::Flush { oldtag: 5 })),
            Submitted::Pending
        ));
        let out = c.execute(req);
        let tags: Vec<u16> = out.iter().map(|r| decode(r).0).collect();
        assert_eq!(tags, [6, 7], "only the Rflushes, in order");
        assert!(out.iter().all(|r| decode(r).1 == Rmsg::Flush));
        // The flushed request did not run.
        assert_eq!(s.fs().lookup(1, b"d"), Err(Errno::ENOENT));
        // Duplicate tag in flight is refused.
        let Submitted::Run(a) = c.submit(enc(9, &Tmsg::Statfs { fid: 0 })) else {
            panic!()
        };
        let Submitted::Reply(r) = c.submit(enc(9, &Tmsg::Statfs { fid: 0 })) else {
            panic!()
        };
        assert_eq!(
            decode(&r).1,
            Rmsg::Lerror {
                ecode: Errno::EBADMSG.0
            }
        );
        assert_eq!(c.execute(a).len(), 1);
    }

    /// A sent reply handed back with `recycle` carries a later Rread of the same connection;
    /// the Rread holds exactly the file's bytes (zeros where the file has a gap), never what
    /// the buffer held before, and the pool stays bounded.
    /// A connection to `s` after Tversion (`msize`) and a Tattach of fid 0.
    fn attached(s: &Server<MemFs>, msize: u32) -> Connection<MemFs> {
        let c = s.connect();
        let version = Tmsg::Version {
            msize,
            version: VERSION,
        };
        assert_eq!(c.handle(enc(NOTAG, &version)).len(), 1);
        let attach = Tmsg::Attach {
            fid: 0,
            afid: NOFID,
            uname: b"",
            aname: b"",
            n_uname: 0,
        };
        assert!(matches!(
            decode(&one_msg(&c, enc(1, &attach))).1,
            Rmsg::Attach { .. }
        ));
        c
    }

    /// Handles `msg`, which must produce exactly one reply.
    fn one_msg(c: &Connection<MemFs>, msg: Vec<u8>) -> Vec<u8> {
        let mut out = c.handle(msg);
        assert_eq!(out.len(), 1);
        out.pop().unwrap()
    }

    #[test]
    fn recycled_reply_buffers_carry_only_the_new_reply() {
        let s = Server::new(MemFs::new(), ExportConfig::default());
        let c = attached(&s, 1 << 17);
        let one = |tag: u16, m: &Tmsg<'_>| one_msg(&c, enc(tag, m));
        let walk = Tmsg::Walk {
            fid: 0,
            newfid: 1,
            names: Vec::new(),
        };
        one(2, &walk);
        let create = Tmsg::Lcreate {
            fid: 1,
            name: b"f",
            flags: 2, // O_RDWR
            mode: 0o644,
            gid: 0,
        };
        assert!(matches!(decode(&one(3, &create)).1, Rmsg::Lcreate { .. }));
        let head: Vec<u8> = (0..100u8).collect();
        for (off, data) in [(0u64, &head[..]), (50_000, &b"0123456789"[..])] {
            let w = Tmsg::Write {
                fid: 1,
                offset: off,
                data,
            };
            assert!(matches!(decode(&one(4, &w)).1, Rmsg::Write { .. }));
        }
        let mut want = head.clone();
        want.resize(50_000, 0);
        want.extend_from_slice(b"0123456789");
        // A stale buffer larger than any reply below, full of a pattern no reply contains.
        c.recycle(vec![0xAA; 70_000]);
        let read = |offset: u64, count: u32| Tmsg::Read {
            fid: 1,
            offset,
            count,
        };
        let r = one(5, &read(0, 60_000));
        assert!(r.capacity() >= 70_000, "the recycled buffer was used");
        assert_eq!(r.len(), RREAD_HEADER_LEN + want.len());
        assert_eq!(decode(&r).1, Rmsg::Read { data: &want });
        // Shorter reads in the same (now longer than needed) buffer.
        for (tag, off, count, end) in [(6, 40, 10, 50), (7, 49_995, 1000, want.len())] {
            c.recycle(r.clone());
            let r = one(tag, &read(off as u64, count));
            let data = &want[off..end];
            assert_eq!(decode(&r).1, Rmsg::Read { data });
        }
        // An executed request's buffer is kept too, and `buffer` hands it out.
        let big = vec![9u8; 40_000];
        let w = Tmsg::Write {
            fid: 1,
            offset: 0,
            data: &big,
        };
        let msg = enc(8, &w);
        let cap = msg.capacity();
        c.state.lock().spare.clear();
        assert!(matches!(
            decode(&one_msg(&c, msg)).1,
            Rmsg::Write { count: 40_000 }
        ));
        let b = c.buffer(30_000);
        assert_eq!((b.len(), b.capacity()), (30_000, cap));
        drop(b);
        // A small message does not take a spare.
        c.recycle(vec![3; SPARE_MIN_BYTES * 2]);
        assert_eq!(c.buffer(64).capacity(), 64);
        assert_eq!(c.state.lock().spare.len(), 1);
        // Small buffers are not kept; at most SPARE_BUFFERS are.
        c.recycle(vec![1; 100]);
        for _ in 0..10 {
            c.recycle(vec![2; SPARE_MIN_BYTES]);
        }
        let st = c.state.lock();
        assert_eq!(st.spare.len(), SPARE_BUFFERS);
        assert!(st.spare.iter().all(|b| b.capacity() >= SPARE_MIN_BYTES));
    }

    #[test]
    fn in_flight_limit() {
        let s = Server::new(
            MemFs::new(),
            ExportConfig {
                max_in_flight: 2,
                ..Default::default()
            },
        );
        let c = s.connect();
        c.handle(enc(
            NOTAG,
            &Tmsg::Version {
                msize: 8192,
                version: VERSION,
            },
        ));
        let mut held = Vec::new();
        for t in 1..=2 {
            let Submitted::Run(r) = c.submit(enc(t, &Tmsg::Clunk { fid: 0 })) else {
                panic!()
            };
            held.push(r);
        }
        let Submitted::Reply(r) = c.submit(enc(3, &Tmsg::Clunk { fid: 0 })) else {
            panic!()
        };
        assert_eq!(
            decode(&r).1,
            Rmsg::Lerror {
                ecode: Errno::EAGAIN.0
            }
        );
        for r in held {
            assert_eq!(
                decode(&c.execute(r)[0]).1,
                Rmsg::Lerror {
                    ecode: Errno::EBADF.0
                }
            );
        }
    }
}
