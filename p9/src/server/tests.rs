//! Quota seeding, flush, buffer reuse and the in-flight limit, through whole messages.

use super::buffers::{SPARE_BUFFERS, SPARE_MIN_BYTES};
use super::*;
use crate::fs::{mode, Filesystem, NewInode};
use crate::memfs::MemFs;
use crate::policy::QuotaLimits;
use crate::wire::{ty, Frame, Rmsg, Tmsg, NOFID, NOTAG, RREAD_HEADER_LEN};
use alloc::vec::Vec;

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

/// `fid_count`, which the 9pfs backend publishes per device (`fids`) and from which it decides
/// whether a guest still has the share attached: an attach and each walk add a fid, a failed
/// attach adds none, clunks remove them (a Linux `umount` clunks every fid), and a Tversion
/// starts a new session with none.
#[test]
fn fid_count_follows_attach_walk_clunk_and_version() {
    let s = Server::new(MemFs::new(), ExportConfig::default());
    let c = s.connect();
    assert_eq!(c.fid_count(), 0);
    let c = {
        drop(c);
        attached(&s, 8192)
    };
    assert_eq!(c.fid_count(), 1);
    let walk = |newfid| Tmsg::Walk {
        fid: 0,
        newfid,
        names: Vec::new(),
    };
    assert!(matches!(
        decode(&one_msg(&c, enc(2, &walk(1)))).1,
        Rmsg::Walk { .. }
    ));
    assert!(matches!(
        decode(&one_msg(&c, enc(3, &walk(2)))).1,
        Rmsg::Walk { .. }
    ));
    assert_eq!(c.fid_count(), 3);
    // an attach reusing a fid in use fails and adds nothing
    let attach = Tmsg::Attach {
        fid: 1,
        afid: NOFID,
        uname: b"",
        aname: b"",
        n_uname: 0,
    };
    assert!(matches!(
        decode(&one_msg(&c, enc(4, &attach))).1,
        Rmsg::Lerror { .. }
    ));
    assert_eq!(c.fid_count(), 3);
    for (tag, fid) in [(5, 2), (6, 1)] {
        assert!(matches!(
            decode(&one_msg(&c, enc(tag, &Tmsg::Clunk { fid }))).1,
            Rmsg::Clunk
        ));
    }
    assert_eq!(c.fid_count(), 1);
    // clunking it again fails and changes nothing
    let r = one_msg(&c, enc(7, &Tmsg::Clunk { fid: 1 }));
    assert!(matches!(decode(&r).1, Rmsg::Lerror { .. }));
    assert_eq!(c.fid_count(), 1);
    // a new session (Tversion) clunks every fid of the old one
    let version = Tmsg::Version {
        msize: 8192,
        version: VERSION,
    };
    assert_eq!(c.handle(enc(NOTAG, &version)).len(), 1);
    assert_eq!(c.fid_count(), 0);
}
