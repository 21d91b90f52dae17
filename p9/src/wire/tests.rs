//! Round trips of every message, truncations and hostile inputs.

use super::*;
use alloc::vec::Vec;

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

#[test]
fn io_reply_header_matches_the_encoded_reply() {
    for (data, kind) in [(&b"abcde"[..], ty::RREAD), (&b""[..], ty::RREADDIR)] {
        let mut built = alloc::vec![0u8; RREAD_HEADER_LEN];
        built.extend_from_slice(data);
        finish_io_reply(&mut built, kind, 0x1234).unwrap();
        let mut want = Vec::new();
        let m = if kind == ty::RREAD {
            Rmsg::Read { data }
        } else {
            Rmsg::Readdir { data }
        };
        m.emit(0x1234, &mut want).unwrap();
        assert_eq!(built, want);
    }
    assert!(finish_io_reply(&mut [0u8; 10], ty::RREAD, 1).is_err());
}
