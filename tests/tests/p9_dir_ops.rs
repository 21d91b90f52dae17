//! 9P2000.L conformance of the directory messages: create, rename, link, unlink and Treaddir
//! (offsets that survive changes, replies capped by msize), against the in-memory filesystem.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::server::ExportConfig;
use pvfs_9p::wire::{qid_type, Rmsg, Tmsg};
use pvfs_tests::p9client::errno::{EBADF, EEXIST, EINVAL, EISDIR, ENOENT, ENOTDIR, ENOTEMPTY};
use pvfs_tests::p9client::{o, Client};
use pvfs_tests::p9memfs::{memfs_server, mount, put};

#[test]
fn directory_ops() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    let d = c.mkdir(0, "d", 0o750, 0).unwrap();
    assert_eq!(d.ty, qid_type::DIR);
    assert_eq!(c.mkdir(0, "d", 0o750, 0), Err(EEXIST));
    assert_eq!(c.mkdir(0, "..", 0o750, 0), Err(EINVAL));
    c.walk(0, 1, &["d"]).unwrap();
    put(&mut c, "f", b"abc");
    // link
    c.walk(0, 2, &["f"]).unwrap();
    c.link(1, 2, "hard").unwrap();
    assert_eq!(c.getattr(2).unwrap().nlink, 2);
    assert_eq!(c.link(1, 1, "dirlink"), Err(1), "hard link to a directory");
    // mknod
    let q = c.mknod(1, "null", 0o020666, 1, 3).unwrap();
    c.walk(1, 3, &["null"]).unwrap();
    let g = c.getattr(3).unwrap();
    assert_eq!(g.qid, q);
    assert_eq!(g.mode, 0o020666);
    assert_eq!(g.rdev, (1 << 8) | 3);
    c.clunk(3).unwrap();
    // renameat
    c.renameat(1, "hard", 0, "moved").unwrap();
    c.walk(0, 3, &["moved"]).unwrap();
    assert_eq!(
        c.getattr(3).unwrap().qid.path,
        c.getattr(2).unwrap().qid.path
    );
    c.clunk(3).unwrap();
    assert_eq!(c.renameat(1, "hard", 0, "x"), Err(ENOENT));
    // rename (by fid)
    c.rename(2, 1, "f2").unwrap();
    assert_eq!(c.walk(0, 3, &["f"]), Err(ENOENT));
    c.walk(1, 3, &["f2"]).unwrap();
    c.clunk(3).unwrap();
    // rename of the root fid has no parent.
    assert!(c.rename(0, 1, "root").is_err());
    // unlinkat
    assert_eq!(c.unlinkat(0, "d", 0), Err(EISDIR));
    assert_eq!(c.unlinkat(0, "d", 0x200), Err(ENOTEMPTY));
    assert_eq!(c.unlinkat(0, "moved", 0x200), Err(ENOTDIR));
    c.unlinkat(0, "moved", 0).unwrap();
    assert_eq!(c.unlinkat(0, "moved", 0), Err(ENOENT));
    // remove clunks the fid.
    c.remove(2).unwrap();
    assert_eq!(c.getattr(2), Err(EBADF));
    // Tremove through a fid whose name now belongs to another file removes nothing.
    put(&mut c, "victim", b"1");
    c.walk(0, 2, &["victim"]).unwrap();
    c.renameat(0, "victim", 0, "moved-away").unwrap();
    put(&mut c, "victim", b"2");
    assert_eq!(c.remove(2), Err(ENOENT));
    assert_eq!(c.getattr(2), Err(EBADF), "clunked even on failure");
    c.walk(0, 2, &["victim"]).unwrap();
    c.clunk(2).unwrap();
    c.unlinkat(0, "victim", 0).unwrap();
    c.unlinkat(0, "moved-away", 0).unwrap();
    c.unlinkat(1, "null", 0).unwrap();
    c.clunk(1).unwrap();
    c.unlinkat(0, "d", 0x200).unwrap();
    // statfs
    let s = c.statfs(0).unwrap();
    assert_eq!(s.bsize, 4096);
    assert_eq!(s.namelen, 255);
    assert!(s.bfree <= s.blocks);
    assert_eq!(c.statfs(42), Err(EBADF));
}

#[test]
fn readdir_offsets_survive_changes() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = Client::mount(&ts.addr, 4096, "/");
    for i in 0..50 {
        put(&mut c, &format!("file{i:02}"), b"");
    }
    c.walk(0, 1, &[]).unwrap();
    assert_eq!(
        c.readdir(1, 0, 4096),
        Err(EBADF),
        "readdir needs an open fid"
    );
    c.lopen(1, o::RDONLY | o::DIRECTORY).unwrap();
    let first = c.readdir(1, 0, 200).unwrap();
    assert!(!first.is_empty() && first.len() < 52);
    assert_eq!(first[0].name, b".");
    assert_eq!(first[1].name, b"..");
    assert_eq!(
        first[1].qid, first[0].qid,
        "'..' at the export root is the root"
    );
    // Change the directory between calls: delete a listed and an unlisted entry, add one.
    let last = first.last().unwrap().clone();
    c.unlinkat(0, std::str::from_utf8(&first[2].name).unwrap(), 0)
        .unwrap();
    c.unlinkat(0, "file49", 0).unwrap();
    put(&mut c, "zzz", b"");
    let mut names: Vec<Vec<u8>> = first.iter().map(|e| e.name.clone()).collect();
    let mut off = last.offset;
    loop {
        let v = c.readdir(1, off, 300).unwrap();
        let Some(l) = v.last() else { break };
        off = l.offset;
        names.extend(v.into_iter().map(|e| e.name));
    }
    let mut expect: Vec<Vec<u8>> = vec![b".".to_vec(), b"..".to_vec()];
    expect.extend((0..49).map(|i| format!("file{i:02}").into_bytes()));
    expect.push(b"zzz".to_vec());
    assert_eq!(names, expect, "no entry lost or repeated");
    // Count too small for one entry.
    assert_eq!(c.readdir(1, 0, 10), Err(EINVAL));
    // Readdir on a file fid.
    put(&mut c, "plain", b"");
    c.walk(0, 2, &["plain"]).unwrap();
    c.lopen(2, o::RDONLY).unwrap();
    assert_eq!(c.readdir(2, 0, 4096), Err(ENOTDIR));
}

#[test]
fn readdir_reply_capped_by_msize() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = Client::mount(&ts.addr, 4096, "/");
    for i in 0..300 {
        put(&mut c, &format!("a-rather-long-file-name-{i:04}"), b"");
    }
    c.walk(0, 1, &[]).unwrap();
    c.lopen(1, o::RDONLY).unwrap();
    let r = c
        .call(&Tmsg::Readdir {
            fid: 1,
            offset: 0,
            count: 1 << 30,
        })
        .unwrap();
    assert!(r.buf.len() <= 4096);
    let Rmsg::Readdir { data } = r.msg() else {
        panic!()
    };
    assert!(
        data.len() <= 4096 - 11 && data.len() > 4096 - 11 - 60,
        "filled up to the cap"
    );
    assert_eq!(c.readdir_all(1).unwrap().len(), 302);
}
