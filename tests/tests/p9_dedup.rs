//! Guests' view of deduplicated files through the 9P server over the ext4 adapter: two
//! names of one shared content stat as two private files (own qid, one link, the blocks they
//! had), read their bytes, and show none of the sharing: no `trusted.pvfs.*` xattr is
//! listed, read, set or removed, and `/.pvfs` cannot be walked to, listed, created, renamed
//! onto or removed, on an export at `/`. A write through one name changes that name only;
//! the quota counts each name's full size. The image stays `e2fsck -fn` clean.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::ext4::Ext4Fs;
use pvfs_9p::host::ServeOptions;
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_tests::ext4img::Rng;
use pvfs_tests::p9client::{o, require_tool, temp_dir, Client, TestServer};
use pvfs_tests::wimg::{debugfs, e2fsck_clean, mkfs_sized, open_rw};
use std::process::Command;

const EPERM: u32 = 1;
const ENOENT: u32 = 2;
const ENODATA: u32 = 61;

#[test]
fn guests_cannot_observe_sharing() {
    for t in ["mkfs.ext4", "e2fsck", "debugfs", "setfattr"] {
        require_tool(t);
    }
    let dir = temp_dir("p9-dedup");
    let src = dir.join("src");
    let data = Rng::new(9).bytes(300_000);
    for d in ["g1", "g2"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
        std::fs::write(src.join(d).join("f"), &data).unwrap();
    }
    let st = Command::new("setfattr")
        .args(["-n", "user.k", "-v", "v"])
        .arg(src.join("g2/f"))
        .status()
        .unwrap();
    assert!(st.success());
    let img = dir.join("img.ext4");
    mkfs_sized(&img, "16M", &["-b", "4096", "-d", src.to_str().unwrap()]);
    {
        let mut fs = open_rw(&img);
        let r = pvfs_fs::dedup::dedup(&mut fs, &[b"/"]).unwrap();
        assert_eq!((r.files_merged, r.stores_created), (2, 1), "{r:?}");
        fs.close().unwrap();
    }
    let engine = open_rw(&img);
    let fs = std::sync::Arc::new(Ext4Fs::new(engine));
    let server = Server::new(fs.clone(), ExportConfig::default());
    let usage = server.seed_quota(1000).unwrap();
    assert_eq!(usage.bytes, 600_000, "each name costs its full size");
    let ts = TestServer::start(server, 2, ServeOptions::default());
    let mut c = Client::mount(&ts.addr, 65536, "/");

    // Two private-looking files.
    let q1 = c.walk(0, 1, &["g1", "f"]).unwrap()[1];
    let q2 = c.walk(0, 2, &["g2", "f"]).unwrap()[1];
    assert_ne!(q1.path, q2.path);
    let (a1, a2) = (c.getattr(1).unwrap(), c.getattr(2).unwrap());
    for a in [&a1, &a2] {
        assert_eq!((a.nlink, a.size, a.blocks), (1, 300_000, 592), "{a:?}");
    }
    c.lopen(1, o::RDONLY).unwrap();
    c.lopen(2, o::RDWR).unwrap();
    assert_eq!(c.read_all(1, 65536).unwrap(), data);
    assert_eq!(c.read_all(2, 65536).unwrap(), data);

    // The sharing xattrs: not listed, not readable, not settable, not removable.
    c.walk(2, 3, &[]).unwrap();
    let n = c.xattrwalk(3, 4, "").unwrap();
    let list = c.read(4, 0, n as u32).unwrap();
    assert_eq!(list, b"user.k\0", "only the file's own xattr is listed");
    c.clunk(4).unwrap();
    assert_eq!(c.xattrwalk(3, 4, "trusted.pvfs.shared"), Err(ENODATA));
    c.xattrcreate(3, "trusted.pvfs.shared", 8, 0).unwrap();
    c.write(3, 0, &[0; 8]).unwrap();
    assert_eq!(c.clunk(3), Err(EPERM), "setting a sharing xattr");
    c.walk(2, 3, &[]).unwrap();
    c.xattrcreate(3, "trusted.pvfs.shared", 0, 0).unwrap();
    assert_eq!(c.clunk(3), Err(ENODATA), "removing a sharing xattr");

    // The store directory is out of reach, even from an export at `/`.
    assert_eq!(c.walk(0, 5, &[".pvfs"]).err(), Some(ENOENT));
    c.walk(0, 5, &[]).unwrap();
    c.lopen(5, o::RDONLY).unwrap();
    let names = c.readdir_names(5).unwrap();
    assert!(!names.iter().any(|n| n == b".pvfs"), "{names:?}");
    assert!(names.iter().any(|n| n == b"g1"), "{names:?}");
    assert_eq!(c.mkdir(0, ".pvfs", 0o755, 0).err(), Some(EPERM));
    assert_eq!(c.renameat(0, "g1", 0, ".pvfs"), Err(EPERM));
    assert_eq!(c.unlinkat(0, ".pvfs", 0x200), Err(ENOENT));

    // A write through g2/f: g1/f is unchanged; g2/f keeps its inode and link count.
    assert_eq!(c.write(2, 10, b"guest two").unwrap(), 9);
    c.fsync(2).unwrap();
    let mut two = data.clone();
    two[10..19].copy_from_slice(b"guest two");
    assert_eq!(c.read_all(2, 65536).unwrap(), two);
    assert_eq!(c.read_all(1, 65536).unwrap(), data);
    let a2b = c.getattr(2).unwrap();
    assert_eq!((a2b.qid.path, a2b.nlink, a2b.size), (q2.path, 1, 300_000));
    drop(c);
    drop(ts);
    fs.close().unwrap().unwrap();
    e2fsck_clean(&img);
    assert_eq!(debugfs(&img, "cat /g2/f"), two, "g2/f has its own blocks");
    let ea = String::from_utf8(debugfs(&img, "ea_list /g2/f")).unwrap();
    assert!(
        ea.contains("user.k") && !ea.contains("trusted.pvfs"),
        "{ea}"
    );
    let ea = String::from_utf8(debugfs(&img, "ea_list /g1/f")).unwrap();
    assert!(
        ea.contains("trusted.pvfs.shared"),
        "g1/f is still shared: {ea}"
    );
}
