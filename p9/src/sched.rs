//! Per-channel request queue for transports that take many requests at once (one per Xen
//! ring): every complete request is accepted from the channel as soon as it arrives (so the
//! guest's ring space is freed and a `Tflush` finds its target in flight), and the queue then
//! decides which accepted request runs next.
//!
//! Order: cheap requests (metadata answered from memory, see [`Request::is_cheap`]) go ahead
//! of bulk ones, so a `stat` is not stuck behind a queue of large writes from the same guest;
//! a bulk request is overtaken at most [`MAX_OVERTAKES`] times in a row, so it cannot starve.
//! The 9P client may not rely on the order of requests that are in flight together (each has
//! its own tag and reply), so reordering them is allowed.
//!
//! With [`Queue::step`], a read whose data the filesystem must fetch from the disk is put
//! aside while the fetch runs in the background ([`Filesystem::read_would_wait`]), and the
//! requests behind it run meanwhile; it runs once the disk has made progress (or is idle).
//!
//! A `Twrite` that can only fail with a device error ([`crate::Filesystem::write_would_fit`])
//! is answered by [`Queue::step`] before it runs ([`crate::server::WriteBehind`]); the
//! transport sends the reply and then runs the write with [`Queue::finish_write`], so the
//! client prepares its next request while the server writes. The next `step` runs it first
//! if the transport has not. [`Queue::set_early_writes`] turns this off.
//!
//! The queue bounds what it holds ([`Queue::has_room`]), in requests and bytes, so a guest
//! cannot make pvfs buffer more than about one ring's worth of its requests.

use crate::server::{Connection, Executed, Request, Submitted, WriteBehind};
use crate::Errno;
use crate::Filesystem;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// How many times in a row a bulk request at the head may be overtaken by cheap ones.
pub const MAX_OVERTAKES: u32 = 8;

/// What [`Queue::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A request of this type and size (bytes) ran; its replies were appended.
    Ran {
        /// Message type.
        ty: u8,
        /// Message size.
        size: usize,
    },
    /// A read was put aside until the disk has its data.
    Deferred,
    /// Nothing can run now.
    Idle,
}

/// Accepted requests of one channel, waiting to run.
#[derive(Debug)]
pub struct Queue {
    items: VecDeque<Request>,
    /// Reads waiting for the disk ([`Queue::step`]), with the disk progress count at the time
    /// they were put aside.
    deferred: VecDeque<(Request, u64)>,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
    overtakes: u32,
    /// A write answered before it ran ([`Queue::step`]), to run with [`Queue::finish_write`].
    behind: Option<WriteBehind>,
    /// Whether [`Queue::step`] answers writes before running them.
    early_writes: bool,
}

impl Queue {
    /// A queue holding at most `max_items` requests and `max_bytes` of request bytes (one
    /// request is always allowed, however large).
    pub fn new(max_items: usize, max_bytes: usize) -> Self {
        Queue {
            items: VecDeque::new(),
            deferred: VecDeque::new(),
            bytes: 0,
            max_items: max_items.max(1),
            max_bytes,
            overtakes: 0,
            behind: None,
            early_writes: true,
        }
    }

    /// Whether [`step`](Self::step) may answer a `Twrite` before running it (the default;
    /// see [`crate::server::WriteBehind`]). With `false` every write runs before its reply,
    /// so its reply carries its exact outcome.
    pub fn set_early_writes(&mut self, on: bool) {
        self.early_writes = on;
    }

    /// Whether another request may be accepted.
    pub fn has_room(&self) -> bool {
        self.is_empty() || (self.len() < self.max_items && self.bytes < self.max_bytes)
    }

    /// Requests waiting (including reads put aside until the disk has their data).
    pub fn len(&self) -> usize {
        self.items.len() + self.deferred.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.deferred.is_empty()
    }

    /// Reads put aside until the disk has their data.
    pub fn deferred(&self) -> usize {
        self.deferred.len()
    }

    /// Accepts one message through `conn`: replies that are ready at once (version, flush,
    /// protocol errors) are appended to `replies`; requests to run are queued. The queue
    /// does not bound `replies`: its caller stops accepting while too many wait to be sent
    /// ([`crate::channel::Outbox::has_room`]).
    pub fn accept<F: Filesystem>(
        &mut self,
        conn: &Connection<F>,
        msg: Vec<u8>,
        replies: &mut Vec<Vec<u8>>,
    ) {
        match conn.submit(msg) {
            Submitted::Reply(r) => replies.push(r),
            Submitted::Run(req) => {
                self.bytes = self.bytes.saturating_add(req.size());
                self.items.push_back(req);
            }
            Submitted::Pending => {}
        }
    }

    /// The request to run next (see the module documentation), removed from the queue.
    pub fn take_next(&mut self) -> Option<Request> {
        let head_cheap = self.items.front()?.is_cheap();
        let pick = if head_cheap || self.overtakes >= MAX_OVERTAKES {
            0
        } else {
            self.items.iter().position(Request::is_cheap).unwrap_or(0)
        };
        self.overtakes = if pick == 0 { 0 } else { self.overtakes + 1 };
        let req = self.items.remove(pick)?;
        self.bytes = self.bytes.saturating_sub(req.size());
        Some(req)
    }

    /// Runs the next request through `conn`; its replies are appended to `replies`. Returns
    /// false if nothing was waiting.
    pub fn run_next<F: Filesystem>(
        &mut self,
        conn: &Connection<F>,
        replies: &mut Vec<Vec<u8>>,
    ) -> bool {
        match self.take_next() {
            Some(req) => {
                replies.extend(conn.execute(req));
                true
            }
            None => false,
        }
    }

    /// One step for a transport whose filesystem reads the disk in the background
    /// ([`Filesystem::read_would_wait`]): a put-aside read whose wait may be over runs to
    /// completion (the disk made progress since it was put aside, i.e. `disk_progress`
    /// changed, or the disk has nothing in flight, `disk_idle`); otherwise the next request
    /// runs, unless it is a read whose data is not in memory, which is put aside while the
    /// filesystem fetches it, so the requests behind it run first instead of waiting for the
    /// disk with it. A request is put aside at most once. Replies are appended to `replies`.
    pub fn step<F: Filesystem>(
        &mut self,
        conn: &Connection<F>,
        disk_progress: u64,
        disk_idle: bool,
        replies: &mut Vec<Vec<u8>>,
    ) -> Step {
        // A write answered in the last step runs before anything else (if the transport has
        // not run it already).
        let _ = self.finish_write(conn);
        if let Some(pos) = self
            .deferred
            .iter()
            .position(|&(_, at)| disk_idle || at != disk_progress)
        {
            if let Some((req, _)) = self.deferred.remove(pos) {
                self.bytes = self.bytes.saturating_sub(req.size());
                let (ty, size) = (req.msg_type(), req.size());
                replies.extend(conn.execute(req));
                return Step::Ran { ty, size };
            }
        }
        let Some(req) = self.take_next() else {
            return Step::Idle;
        };
        let (ty, size) = (req.msg_type(), req.size());
        match conn.execute_or_defer(req, self.early_writes) {
            Ok(Executed::Done(r)) => {
                replies.extend(r);
                Step::Ran { ty, size }
            }
            Ok(Executed::Answered(r, w)) => {
                replies.extend(r);
                self.behind = Some(w);
                Step::Ran { ty, size }
            }
            Err(req) => {
                self.bytes = self.bytes.saturating_add(req.size());
                self.deferred.push_back((req, disk_progress));
                Step::Deferred
            }
        }
    }

    /// Runs the write the last [`step`](Self::step) answered before running it (see
    /// [`crate::server::WriteBehind`]), if there is one: the transport calls this once it
    /// has sent that step's replies, before any other request of the filesystem runs.
    /// Returns what the write did (`None`: there was none).
    pub fn finish_write<F: Filesystem>(
        &mut self,
        conn: &Connection<F>,
    ) -> Option<Result<usize, Errno>> {
        let w = self.behind.take()?;
        Some(conn.finish_write(w))
    }

    /// Whether a write answered by the last [`step`](Self::step) still has to run
    /// ([`finish_write`](Self::finish_write)).
    pub fn has_write_behind(&self) -> bool {
        self.behind.is_some()
    }

    /// Drops every waiting request (the channel is going away); their fids stay with the
    /// connection and are released with it. A write already answered is run first, since
    /// the client was told it is done.
    pub fn clear<F: Filesystem>(&mut self, conn: &Connection<F>) {
        let _ = self.finish_write(conn);
        self.deferred.clear();
        self.items.clear();
        self.bytes = 0;
        self.overtakes = 0;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::memfs::MemFs;
    use crate::server::{ExportConfig, Server};
    use crate::wire::{ty, Frame, Rmsg, Tmsg};
    use alloc::sync::Arc;

    /// Message `m` with tag `tag`, encoded.
    pub(crate) fn msg(tag: u16, m: &Tmsg<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        m.emit(tag, &mut out).unwrap();
        out
    }

    /// The tag of an encoded message.
    pub(crate) fn tag_of(r: &[u8]) -> u16 {
        u16::from_le_bytes([r[5], r[6]])
    }

    fn session() -> (Server<MemFs>, Connection<MemFs>) {
        session_with(MemFs::new())
    }

    /// A session on `fs` with fid 0 the root and fid 1 the file "f", open read-write.
    fn session_with<F: Filesystem>(fs: F) -> (Server<F>, Connection<F>) {
        let s = Server::new(fs, ExportConfig::default());
        let c = s.connect();
        let mut out = Vec::new();
        let mut q = Queue::new(64, 1 << 20);
        q.accept(
            &c,
            msg(
                0xffff,
                &Tmsg::Version {
                    msize: 65536,
                    version: b"9P2000.L",
                },
            ),
            &mut out,
        );
        q.accept(
            &c,
            msg(
                1,
                &Tmsg::Attach {
                    fid: 0,
                    afid: u32::MAX,
                    uname: b"",
                    aname: b"",
                    n_uname: 0,
                },
            ),
            &mut out,
        );
        while q.run_next(&c, &mut out) {}
        q.accept(
            &c,
            msg(
                2,
                &Tmsg::Walk {
                    fid: 0,
                    newfid: 1,
                    names: vec![],
                },
            ),
            &mut out,
        );
        q.accept(
            &c,
            msg(
                3,
                &Tmsg::Lcreate {
                    fid: 1,
                    name: b"f",
                    flags: 2,
                    mode: 0o644,
                    gid: 0,
                },
            ),
            &mut out,
        );
        while q.run_next(&c, &mut out) {}
        assert!(out.iter().all(|r| r[4] != ty::RLERROR), "setup failed");
        (s, c)
    }

    #[test]
    fn cheap_requests_overtake_bulk_ones_but_not_forever() {
        let (_s, c) = session();
        let mut q = Queue::new(64, 1 << 20);
        let mut out = Vec::new();
        let data = [7u8; 4096];
        // 12 writes queued first, then 12 getattrs.
        for t in 10..22 {
            q.accept(&c, write_msg(t, &data), &mut out);
        }
        for t in 30..42 {
            q.accept(
                &c,
                msg(
                    t,
                    &Tmsg::Getattr {
                        fid: 1,
                        mask: 0x7ff,
                    },
                ),
                &mut out,
            );
        }
        assert_eq!((q.len(), out.len()), (24, 0));
        while q.run_next(&c, &mut out) {}
        let order: Vec<u16> = out.iter().map(|r| tag_of(r)).collect();
        assert!(out.iter().all(|r| r[4] != ty::RLERROR));
        // 8 getattrs overtake the first write, which then runs; and so on.
        let mut want: Vec<u16> = (30..38).collect();
        want.push(10);
        want.extend(38..42);
        want.extend(11..22);
        assert_eq!(order, want);
    }

    #[test]
    fn flush_of_a_queued_request_answers_without_running_it() {
        let (_s, c) = session();
        let mut q = Queue::new(64, 1 << 20);
        let mut out = Vec::new();
        q.accept(&c, write_msg(50, b"never"), &mut out);
        q.accept(&c, msg(51, &Tmsg::Flush { oldtag: 50 }), &mut out);
        assert!(out.is_empty(), "the flush waits for its target");
        while q.run_next(&c, &mut out) {}
        // Only the Rflush: the write's reply is suppressed, and it did not run.
        assert_eq!(out.len(), 1);
        assert_eq!((out[0][4], tag_of(&out[0])), (ty::RFLUSH, 51));
        out.clear();
        q.accept(
            &c,
            msg(
                52,
                &Tmsg::Getattr {
                    fid: 1,
                    mask: 0x7ff,
                },
            ),
            &mut out,
        );
        q.run_next(&c, &mut out);
        let f = Frame::new_checked(&out[0][..]).unwrap();
        match Rmsg::parse(&f).unwrap() {
            Rmsg::Getattr(a) => assert_eq!(a.size, 0, "the flushed write must not have happened"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn room_is_bounded_in_requests_and_bytes() {
        let (_s, c) = session();
        let mut out = Vec::new();
        let mut q = Queue::new(3, 10_000);
        let big = [1u8; 6000];
        assert!(q.has_room());
        q.accept(&c, write_msg(60, &big), &mut out);
        assert!(q.has_room(), "under both limits");
        q.accept(&c, write_msg(61, &big), &mut out);
        assert!(!q.has_room(), "byte limit reached");
        q.run_next(&c, &mut out);
        assert!(q.has_room());
        let mut q = Queue::new(3, 1 << 20);
        for t in 70..73 {
            q.accept(&c, msg(t, &Tmsg::Getattr { fid: 1, mask: 1 }), &mut out);
        }
        assert!(!q.has_room(), "request limit reached");
        q.clear(&c);
        assert!(q.is_empty() && q.has_room());
    }

    fn write_msg(tag: u16, data: &[u8]) -> Vec<u8> {
        msg(
            tag,
            &Tmsg::Write {
                fid: 1,
                offset: 0,
                data,
            },
        )
    }

    fn read_msg(tag: u16) -> Vec<u8> {
        msg(
            tag,
            &Tmsg::Read {
                fid: 1,
                offset: 0,
                count: 100,
            },
        )
    }

    /// A session whose file "f" holds `data`, written through fid 1, and the file's inode.
    fn cold_session(data: &[u8]) -> (Arc<MemFs>, Connection<Arc<MemFs>>, u64) {
        let fs = Arc::new(MemFs::new());
        let (_s, c) = session_with(fs.clone());
        let mut out = Vec::new();
        let mut q = Queue::new(64, 1 << 20);
        q.accept(&c, write_msg(5, data), &mut out);
        while q.run_next(&c, &mut out) {}
        assert!(out.iter().all(|r| r[4] == ty::RWRITE), "write failed");
        let ino = fs.lookup(fs.root(), b"f").unwrap().ino;
        (fs, c, ino)
    }

    /// A cold session and a queue of `max_items` in which a read of "f" (tag `tag`) has just
    /// been put aside at disk progress `at`.
    struct PutAside {
        fs: Arc<MemFs>,
        c: Connection<Arc<MemFs>>,
        ino: u64,
        q: Queue,
        out: Vec<Vec<u8>>,
    }

    fn put_aside(data: &[u8], max_items: usize, tag: u16, at: u64) -> PutAside {
        let (fs, c, ino) = cold_session(data);
        let mut q = Queue::new(max_items, 1 << 20);
        let mut out = Vec::new();
        fs.make_cold(ino);
        q.accept(&c, read_msg(tag), &mut out);
        assert_eq!(q.step(&c, at, false, &mut out), Step::Deferred);
        PutAside { fs, c, ino, q, out }
    }

    #[test]
    fn a_read_waiting_for_the_disk_is_put_aside_and_the_next_requests_run_first() {
        let PutAside {
            c, mut q, mut out, ..
        } = put_aside(b"cold data", 64, 10, 0);
        q.accept(
            &c,
            msg(
                11,
                &Tmsg::Getattr {
                    fid: 1,
                    mask: 0x7ff,
                },
            ),
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!((q.len(), q.deferred()), (2, 1));
        assert_eq!(
            q.step(&c, 0, false, &mut out),
            Step::Ran {
                ty: ty::TGETATTR,
                size: msg(
                    11,
                    &Tmsg::Getattr {
                        fid: 1,
                        mask: 0x7ff
                    }
                )
                .len()
            }
        );
        assert_eq!(
            (out.len(), tag_of(&out[0]), out[0][4]),
            (1, 11, ty::RGETATTR)
        );
        // No disk progress yet: the read keeps waiting.
        assert_eq!(q.step(&c, 0, false, &mut out), Step::Idle);
        assert_eq!(out.len(), 1);
        // The disk moved: the read runs, with the file's data.
        assert!(matches!(
            q.step(&c, 1, false, &mut out),
            Step::Ran { ty: ty::TREAD, .. }
        ));
        assert!(q.is_empty());
        assert_eq!((out.len(), tag_of(&out[1])), (2, 10));
        let f = Frame::new_checked(&out[1][..]).unwrap();
        match Rmsg::parse(&f).unwrap() {
            Rmsg::Read { data } => assert_eq!(data, b"cold data"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_put_aside_read_runs_once_the_disk_is_idle_and_is_put_aside_only_once() {
        let PutAside {
            fs,
            c,
            ino,
            mut q,
            mut out,
        } = put_aside(b"x", 64, 20, 7);
        // Cold again before it resumes: a resumed read runs regardless.
        fs.make_cold(ino);
        assert!(matches!(
            q.step(&c, 7, true, &mut out),
            Step::Ran { ty: ty::TREAD, .. }
        ));
        assert_eq!((out.len(), out[0][4]), (1, ty::RREAD));
        assert_eq!(q.step(&c, 7, true, &mut out), Step::Idle);
    }

    #[test]
    fn flushing_a_put_aside_read_answers_the_flush_alone() {
        let PutAside {
            c, mut q, mut out, ..
        } = put_aside(b"never sent", 2, 30, 0);
        q.accept(&c, read_msg(31), &mut out);
        assert!(
            !q.has_room(),
            "a put-aside read still counts against the bounds"
        );
        q.accept(&c, msg(32, &Tmsg::Flush { oldtag: 30 }), &mut out);
        assert!(out.is_empty(), "the flush waits for its target");
        // The other read is not cold: it runs while the flushed one waits.
        assert!(matches!(
            q.step(&c, 0, false, &mut out),
            Step::Ran { ty: ty::TREAD, .. }
        ));
        assert!(matches!(
            q.step(&c, 1, false, &mut out),
            Step::Ran { ty: ty::TREAD, .. }
        ));
        let got: Vec<(u16, u8)> = out.iter().map(|r| (tag_of(r), r[4])).collect();
        assert_eq!(got, vec![(31, ty::RREAD), (32, ty::RFLUSH)]);
    }

    #[test]
    fn a_write_is_answered_before_it_runs_and_runs_before_the_next_request() {
        let fs = Arc::new(MemFs::new());
        let (_s, c) = session_with(fs.clone());
        let ino = fs.lookup(fs.root(), b"f").unwrap().ino;
        let mut q = Queue::new(64, 1 << 20);
        let mut out = Vec::new();
        q.accept(&c, write_msg(40, b"written behind"), &mut out);
        q.accept(&c, read_msg(41), &mut out);
        assert!(matches!(
            q.step(&c, 0, true, &mut out),
            Step::Ran { ty: ty::TWRITE, .. }
        ));
        // Answered with the full count, not run yet.
        assert_eq!((out.len(), tag_of(&out[0]), out[0][4]), (1, 40, ty::RWRITE));
        assert_eq!(u32::from_le_bytes(out[0][7..11].try_into().unwrap()), 14);
        assert!(q.has_write_behind());
        assert_eq!(fs.getattr(ino).unwrap().size, 0);
        assert_eq!(q.finish_write(&c), Some(Ok(14)));
        assert_eq!(q.finish_write(&c), None);
        assert_eq!(fs.getattr(ino).unwrap().size, 14);
        assert!(matches!(
            q.step(&c, 0, true, &mut out),
            Step::Ran { ty: ty::TREAD, .. }
        ));
        assert_eq!(&out[1][11..], b"written behind");
        // A transport that does not run it itself: the next step runs it first.
        q.accept(&c, write_msg(42, b"second"), &mut out);
        assert!(matches!(
            q.step(&c, 0, true, &mut out),
            Step::Ran { ty: ty::TWRITE, .. }
        ));
        assert!(q.has_write_behind());
        q.accept(&c, read_msg(43), &mut out);
        assert!(matches!(
            q.step(&c, 0, true, &mut out),
            Step::Ran { ty: ty::TREAD, .. }
        ));
        assert!(!q.has_write_behind());
        let got: Vec<(u16, u8)> = out.iter().map(|r| (tag_of(r), r[4])).collect();
        assert_eq!(
            got,
            vec![
                (40, ty::RWRITE),
                (41, ty::RREAD),
                (42, ty::RWRITE),
                (43, ty::RREAD)
            ]
        );
        assert_eq!(&out[3][11..], b"secondn behind");
    }

    #[test]
    fn with_early_writes_off_a_write_runs_before_its_reply() {
        let fs = Arc::new(MemFs::new());
        let (_s, c) = session_with(fs.clone());
        let ino = fs.lookup(fs.root(), b"f").unwrap().ino;
        let mut q = Queue::new(64, 1 << 20);
        q.set_early_writes(false);
        let mut out = Vec::new();
        q.accept(&c, write_msg(40, b"now"), &mut out);
        assert!(matches!(
            q.step(&c, 0, true, &mut out),
            Step::Ran { ty: ty::TWRITE, .. }
        ));
        assert!(!q.has_write_behind());
        assert_eq!(fs.getattr(ino).unwrap().size, 3);
        assert_eq!(out[0][4], ty::RWRITE);
    }

    #[test]
    fn a_write_that_may_not_fit_is_not_answered_early() {
        // MemFs's default space is far below 1 << 40: the write fails before its reply.
        let fs = Arc::new(MemFs::new());
        let (_s, c) = session_with(fs.clone());
        let mut q = Queue::new(64, 1 << 20);
        let mut out = Vec::new();
        q.accept(
            &c,
            msg(
                40,
                &Tmsg::Write {
                    fid: 1,
                    offset: 1 << 40,
                    data: b"far",
                },
            ),
            &mut out,
        );
        q.step(&c, 0, true, &mut out);
        assert!(!q.has_write_behind());
        assert_eq!(out[0][4], ty::RLERROR);
        // A write through a fid not open for writing is not answered early either.
        q.accept(
            &c,
            msg(
                41,
                &Tmsg::Write {
                    fid: 0,
                    offset: 0,
                    data: b"dir",
                },
            ),
            &mut out,
        );
        q.step(&c, 0, true, &mut out);
        assert!(!q.has_write_behind());
        assert_eq!(out[1][4], ty::RLERROR);
    }

    /// MemFs whose writes fail with `EIO` once `fail` is set, although it says they fit.
    struct FailingWrites {
        inner: MemFs,
        fail: core::sync::atomic::AtomicBool,
    }

    impl Filesystem for FailingWrites {
        fn root(&self) -> crate::fs::Ino {
            self.inner.root()
        }
        fn lookup(&self, dir: crate::fs::Ino, name: &[u8]) -> crate::fs::FsResult<crate::fs::Attr> {
            self.inner.lookup(dir, name)
        }
        fn getattr(&self, ino: crate::fs::Ino) -> crate::fs::FsResult<crate::fs::Attr> {
            self.inner.getattr(ino)
        }
        fn read(
            &self,
            ino: crate::fs::Ino,
            off: u64,
            buf: &mut [u8],
        ) -> crate::fs::FsResult<usize> {
            self.inner.read(ino, off, buf)
        }
        fn readdir(
            &self,
            dir: crate::fs::Ino,
            cookie: u64,
            f: &mut dyn FnMut(crate::fs::DirEntry<'_>) -> bool,
        ) -> crate::fs::FsResult<()> {
            self.inner.readdir(dir, cookie, f)
        }
        fn readlink(&self, ino: crate::fs::Ino) -> crate::fs::FsResult<Vec<u8>> {
            self.inner.readlink(ino)
        }
        fn statfs(&self) -> crate::fs::FsResult<crate::fs::FsStat> {
            self.inner.statfs()
        }
        fn create(
            &self,
            dir: crate::fs::Ino,
            name: &[u8],
            new: &crate::fs::NewInode,
        ) -> crate::fs::FsResult<crate::fs::Attr> {
            self.inner.create(dir, name, new)
        }
        fn write_would_fit(&self, _ino: crate::fs::Ino, _off: u64, _len: u64) -> bool {
            true
        }
        fn write(&self, ino: crate::fs::Ino, off: u64, data: &[u8]) -> crate::fs::FsResult<usize> {
            if self.fail.load(core::sync::atomic::Ordering::Relaxed) {
                return Err(Errno::EIO);
            }
            self.inner.write(ino, off, data)
        }
    }

    #[test]
    fn a_write_that_fails_after_its_reply_is_reported_by_the_next_fsync() {
        let fs = Arc::new(FailingWrites {
            inner: MemFs::new(),
            fail: core::sync::atomic::AtomicBool::new(false),
        });
        let (s, c) = session_with(fs.clone());
        let mut q = Queue::new(64, 1 << 20);
        let mut out = Vec::new();
        q.accept(&c, write_msg(40, b"fine"), &mut out);
        q.step(&c, 0, true, &mut out);
        assert_eq!(q.finish_write(&c), Some(Ok(4)));
        assert_eq!(s.quota().usage().bytes, 4);
        fs.fail.store(true, core::sync::atomic::Ordering::Relaxed);
        q.accept(
            &c,
            msg(
                41,
                &Tmsg::Write {
                    fid: 1,
                    offset: 4,
                    data: b"lost",
                },
            ),
            &mut out,
        );
        q.step(&c, 0, true, &mut out);
        assert_eq!(out[1][4], ty::RWRITE, "answered before it ran");
        assert_eq!(q.finish_write(&c), Some(Err(Errno::EIO)));
        assert_eq!(
            s.quota().usage().bytes,
            4,
            "the failed write's charge is refunded"
        );
        let fsync = |tag| {
            msg(
                tag,
                &Tmsg::Fsync {
                    fid: 1,
                    datasync: 0,
                },
            )
        };
        q.accept(&c, fsync(42), &mut out);
        q.step(&c, 0, true, &mut out);
        assert_eq!(out[2][4], ty::RLERROR);
        assert_eq!(
            u32::from_le_bytes(out[2][7..11].try_into().unwrap()),
            Errno::EIO.0
        );
        // Reported once, like a failed write-back.
        q.accept(&c, fsync(43), &mut out);
        q.step(&c, 0, true, &mut out);
        assert_eq!(out[3][4], ty::RFSYNC);
    }
}
