use super::table::{Node, Table};
use super::{OverlayFs, WORK_NAME};
use crate::fs::{mode, Errno, Filesystem, NewInode, SetAttr};
use crate::memfs::MemFs;
use alloc::sync::Arc;
use alloc::vec::Vec;

fn node(parent: u64, dir: bool) -> Node {
    Node {
        upper: None,
        lower: Some(1),
        meta: false,
        dir,
        parent,
        name: b"n".to_vec(),
    }
}

#[test]
fn table_drops_idle_leaves_only() {
    let mut t = Table::new(1, node(1, true), 4);
    // A chain 1 <- 2 <- 3 <- 4: every entry but the last is a parent.
    t.put(2, node(1, true));
    t.put(3, node(2, true));
    t.put(4, node(3, false));
    t.add_refs(4, 1);
    for i in 10..20 {
        t.put(i, node(1, false));
        assert!(t.len() <= 5, "{} entries", t.len());
    }
    for i in 1..=4 {
        assert!(t.get(i).is_ok(), "entry {i} was pinned and dropped");
    }
    assert!(t.get(19).is_ok(), "the newest entry was dropped");
    assert!(t.get(10).is_err(), "the oldest idle entry stayed");
    t.add_refs(4, -1);
    t.put(30, node(1, false));
    assert!(t.get(4).is_err(), "entry 4 is idle now and the oldest");
}

fn dir(fs: &MemFs, parent: u64, name: &[u8]) -> u64 {
    let new = NewInode {
        mode: mode::S_IFDIR | 0o755,
        uid: 0,
        gid: 0,
        rdev: 0,
    };
    fs.create(parent, name, &new).unwrap().ino
}

fn file(fs: &dyn Filesystem, parent: u64, name: &[u8], data: &[u8]) -> u64 {
    let new = NewInode {
        mode: mode::S_IFREG | 0o644,
        uid: 0,
        gid: 0,
        rdev: 0,
    };
    let ino = fs.create(parent, name, &new).unwrap().ino;
    fs.write(ino, 0, data).unwrap();
    ino
}

fn names(fs: &dyn Filesystem, d: u64) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    fs.readdir(d, 0, &mut |e| {
        v.push(e.name.to_vec());
        true
    })
    .unwrap();
    v
}

#[test]
fn guest_sees_no_private_state() {
    let base = Arc::new(MemFs::new());
    let t = dir(&base, 1, b"t");
    let g = dir(&base, 1, b"g");
    file(&*base, t, b"f", b"template");
    let ov = OverlayFs::new(base.clone(), g, t).unwrap();
    let f = ov.lookup(ov.root(), b"f").unwrap().ino;
    ov.setattr(
        f,
        &SetAttr {
            mode: Some(0o600),
            ..SetAttr::default()
        },
    )
    .unwrap();
    // The copy has an origin xattr and the work directory exists, in the upper tree only.
    let up = base.lookup(g, b"f").unwrap().ino;
    assert!(base.getxattr(up, b"trusted.pvfs.origin").is_ok());
    assert!(base.lookup(g, WORK_NAME).is_ok());
    assert_eq!(ov.listxattr(f).unwrap(), Vec::<u8>::new());
    assert_eq!(ov.getxattr(f, b"trusted.pvfs.origin"), Err(Errno::ENODATA));
    assert_eq!(
        ov.setxattr(f, b"trusted.pvfs.origin", b"x", 0),
        Err(Errno::EPERM)
    );
    assert_eq!(ov.removexattr(f, b"trusted.pvfs.origin"), Err(Errno::EPERM));
    assert_eq!(ov.lookup(ov.root(), WORK_NAME), Err(Errno::ENOENT));
    assert!(!names(&ov, ov.root()).iter().any(|n| n == WORK_NAME));
    let new = NewInode {
        mode: mode::S_IFDIR | 0o755,
        uid: 0,
        gid: 0,
        rdev: 0,
    };
    assert_eq!(ov.create(ov.root(), WORK_NAME, &new), Err(Errno::EPERM));
    // Metadata only: the data is still the template's inode's.
    let mut buf = [0u8; 8];
    assert_eq!(ov.read(f, 0, &mut buf).unwrap(), 8);
    assert_eq!(&buf, b"template");
    assert_eq!(base.getattr(up).unwrap().size, 8);
}

#[test]
fn interrupted_copies_are_invisible_and_cleaned() {
    let base = Arc::new(MemFs::new());
    let t = dir(&base, 1, b"t");
    let g = dir(&base, 1, b"g");
    let lf = file(&*base, t, b"f", b"template data");
    {
        let ov = OverlayFs::new(base.clone(), g, t).unwrap();
        let f = ov.lookup(ov.root(), b"f").unwrap().ino;
        assert_eq!(f, lf, "a template file is reported with its template inode");
        ov.setattr(
            f,
            &SetAttr {
                uid: Some(7),
                ..SetAttr::default()
            },
        )
        .unwrap();
    }
    // A crash while the data was being copied: part of it in the copy, the mark still set.
    let up = base.lookup(g, b"f").unwrap().ino;
    base.write(up, 0, b"TORN").unwrap();
    // And one before a copy was renamed into place.
    let work = base.lookup(g, WORK_NAME).unwrap().ino;
    file(&*base, work, b"tmp-99", b"half");
    let ov = OverlayFs::new(base.clone(), g, t).unwrap();
    assert_eq!(
        base.lookup(work, b"tmp-99"),
        Err(Errno::ENOENT),
        "leftover kept"
    );
    let f = ov.lookup(ov.root(), b"f").unwrap();
    assert_eq!((f.ino, f.uid), (lf, 7));
    let mut buf = [0u8; 13];
    assert_eq!(ov.read(f.ino, 0, &mut buf).unwrap(), 13);
    assert_eq!(&buf, b"template data", "a torn copy was read");
    // The first write copies the data, then the guest's bytes land on it.
    assert_eq!(ov.write(f.ino, 0, b"T").unwrap(), 1);
    assert_eq!(ov.read(f.ino, 0, &mut buf).unwrap(), 13);
    assert_eq!(&buf, b"Template data");
    assert_eq!(
        ov.getattr(f.ino).unwrap().ino,
        lf,
        "the inode number changed on copy-up"
    );
}

#[test]
fn nested_or_equal_directories_are_refused() {
    let base = Arc::new(MemFs::new());
    let t = dir(&base, 1, b"t");
    let inner = dir(&base, t, b"g");
    assert!(OverlayFs::new(base.clone(), inner, t).is_err());
    assert!(OverlayFs::new(base.clone(), t, inner).is_err());
    assert!(OverlayFs::new(base.clone(), t, t).is_err());
}

#[test]
fn open_files_outlive_unlink_and_copy_up() {
    let base = Arc::new(MemFs::new());
    let t = dir(&base, 1, b"t");
    let g = dir(&base, 1, b"g");
    file(&*base, t, b"f", b"template");
    let ov = OverlayFs::new(base.clone(), g, t).unwrap();
    let f = ov.lookup(ov.root(), b"f").unwrap().ino;
    // Held (a fid) while it is copied up, then unlinked: still readable and writable.
    ov.retain(f);
    assert_eq!(ov.write(f, 0, b"T").unwrap(), 1);
    ov.unlink(ov.root(), b"f", false).unwrap();
    assert_eq!(ov.lookup(ov.root(), b"f"), Err(Errno::ENOENT));
    assert_eq!(ov.write(f, 8, b"!").unwrap(), 1);
    let mut buf = [0u8; 9];
    assert_eq!(ov.read(f, 0, &mut buf).unwrap(), 9);
    assert_eq!(&buf, b"Template!");
    ov.release(f);
    assert_eq!(
        ov.getattr(f),
        Err(Errno::ENOENT),
        "the entry outlived its last reference"
    );
    // The template is untouched, and the name shows a whiteout to the volume only.
    let mut tb = [0u8; 8];
    assert_eq!(
        base.read(base.lookup(t, b"f").unwrap().ino, 0, &mut tb)
            .unwrap(),
        8
    );
    assert_eq!(&tb, b"template");
    let w = base.lookup(g, b"f").unwrap();
    assert_eq!((w.mode & mode::S_IFMT, w.rdev), (mode::S_IFCHR, 0));
}
