//! 9P2000.L conformance of the session messages: Tversion negotiation, Tauth and Tattach, Twalk
//! (symbolic links never followed), against the in-memory filesystem over a loopback socket.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::server::ExportConfig;
use pvfs_9p::wire::{qid_type, Rmsg, Tmsg};
use pvfs_tests::p9client::errno::{EBADF, EINVAL, ENOENT, ENOTDIR, EPROTO};
use pvfs_tests::p9client::{o, Client};
use pvfs_tests::p9memfs::{memfs_server, mount, put};

#[test]
fn version_negotiation() {
    let ts = memfs_server(ExportConfig {
        max_msize: 128 * 1024,
        ..Default::default()
    });
    let mut c = Client::connect(&ts.addr);
    // Requests before Tversion are refused.
    assert_eq!(c.attach(0, "/", 0), Err(EPROTO));
    // msize below the minimum.
    assert_eq!(c.version(4095), Err(EINVAL));
    assert_eq!(c.version(1024), Err(EINVAL));
    // Capped at the transport maximum.
    assert_eq!(c.version(1 << 24).unwrap(), 128 * 1024);
    assert_eq!(c.version(8192).unwrap(), 8192);
    // Unknown version.
    let r = c
        .call(&Tmsg::Version {
            msize: 8192,
            version: b"9P2000",
        })
        .unwrap();
    assert_eq!(
        r.msg(),
        Rmsg::Version {
            msize: 8192,
            version: b"unknown"
        }
    );
    // A new Tversion resets the session: old fids are gone.
    c.version(8192).unwrap();
    c.attach(0, "", 0).unwrap();
    c.version(8192).unwrap();
    assert_eq!(c.getattr(0), Err(EBADF));
}

#[test]
fn auth_and_attach() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = Client::connect(&ts.addr);
    c.version(8192).unwrap();
    let e = c
        .call(&Tmsg::Auth {
            afid: 5,
            uname: b"u",
            aname: b"",
            n_uname: 0,
        })
        .unwrap_err();
    assert_eq!(e, ENOENT, "no authentication required");
    // afid other than NOFID is refused (no authentication).
    let e = c
        .call(&Tmsg::Attach {
            fid: 1,
            afid: 5,
            uname: b"",
            aname: b"",
            n_uname: 0,
        })
        .unwrap_err();
    assert_eq!(e, EINVAL);
    let q = c.attach(1, "/", 0).unwrap();
    assert_eq!(q.ty, qid_type::DIR);
    // fid in use.
    assert_eq!(c.attach(1, "/", 0), Err(EBADF));
    // aname selects a path inside the export.
    c.mkdir(1, "sub", 0o755, 0).unwrap();
    let q2 = c.attach(2, "/sub", 0).unwrap();
    assert_ne!(q2.path, q.path);
    assert_eq!(c.attach(3, "/nope", 0), Err(ENOENT));
    // ".." in aname does not escape.
    assert_eq!(c.attach(4, "/../../..", 0).unwrap().path, q.path);
}

#[test]
fn walk_semantics() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    let root = c.getattr(0).unwrap().qid;
    c.mkdir(0, "a", 0o755, 0).unwrap();
    c.walk(0, 1, &["a"]).unwrap();
    c.mkdir(1, "b", 0o755, 0).unwrap();
    c.clunk(1).unwrap();
    // Clone with zero names.
    assert_eq!(c.walk(0, 1, &[]).unwrap(), vec![]);
    assert_eq!(c.getattr(1).unwrap().qid.path, root.path);
    // newfid in use.
    assert_eq!(c.walk(0, 1, &["a"]), Err(EBADF));
    c.clunk(1).unwrap();
    // Full walk.
    let q = c.walk(0, 1, &["a", "b"]).unwrap();
    assert_eq!(q.len(), 2);
    assert!(q.iter().all(|q| q.ty == qid_type::DIR));
    // Walking fid onto itself.
    c.walk(1, 1, &[".."]).unwrap();
    assert_eq!(c.getattr(1).unwrap().qid, q[0]);
    c.clunk(1).unwrap();
    // Partial walk: fewer qids, newfid not created.
    let q = c.walk(0, 2, &["a", "missing", "b"]).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(c.getattr(2), Err(EBADF));
    // First element fails: error.
    assert_eq!(c.walk(0, 2, &["missing"]), Err(ENOENT));
    // Past the root: ".." at the export root stays there.
    let root = c.getattr(0).unwrap().qid;
    let q = c.walk(0, 2, &["..", "..", "a", "..", ".."]).unwrap();
    assert_eq!(q.len(), 5);
    assert_eq!(q[0], root);
    assert_eq!(q[4], root);
    assert_eq!(c.getattr(2).unwrap().qid, root);
    c.clunk(2).unwrap();
    // More than 16 names.
    let many = vec!["a"; 17];
    assert!(c.walk(0, 2, &many).is_err());
    // Bad fid, and names with '/'.
    assert_eq!(c.walk(77, 2, &["a"]), Err(EBADF));
    assert_eq!(c.walk(0, 2, &["a/b"]), Err(EINVAL));
    // Walking through a file.
    put(&mut c, "f", b"x");
    assert_eq!(c.walk(0, 2, &["f", "x"]).unwrap().len(), 1);
    c.walk(0, 2, &["f"]).unwrap();
    assert_eq!(c.walk(2, 3, &["x"]), Err(ENOTDIR));
}

#[test]
fn symlinks_never_followed() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    c.mkdir(0, "d", 0o755, 0).unwrap();
    let q = c.symlink(0, "up", "/", 0).unwrap();
    assert_eq!(q.ty, qid_type::SYMLINK);
    c.symlink(0, "dl", "d", 0).unwrap();
    c.walk(0, 1, &["up"]).unwrap();
    assert_eq!(c.readlink(1).unwrap(), b"/");
    assert_eq!(c.getattr(1).unwrap().mode & 0o170000, 0o120000);
    // Walking through a symlink fails rather than following it.
    assert_eq!(c.walk(0, 2, &["dl", "x"]).unwrap().len(), 1);
    assert_eq!(c.walk(1, 2, &["x"]), Err(ENOTDIR));
    assert_eq!(c.attach(5, "/dl", 0), Err(ENOTDIR));
    assert_eq!(c.lopen(1, o::RDONLY), Err(40));
}
