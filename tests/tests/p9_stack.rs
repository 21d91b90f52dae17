//! Stack use of the 9P server on the deepest trees and longest paths a guest can make: it must
//! not grow with the depth of a tree or the length of a path (no recursion a guest drives).
//!
//! The workload runs over the real ext4 engine through the per-channel queue, as the 9pfs
//! backend drives it, on a thread whose stack is [`STACK`] bytes: a directory chain as deep as
//! PATH_MAX allows (2,047 levels of "d"), walked from the root 16 names at a time, a rename of
//! the chain's top into its own bottom (the ancestor check climbs every level: EINVAL), files
//! renamed between the root and the bottom, the export's quota measured (a walk of the whole
//! tree), and the chain removed from the bottom up. The same workload at depth 64 and at depth
//! 2,047 must both fit: if stack use grew with depth, the deep run would overflow. Each run is a
//! child process (this test binary again), since an overflow aborts the process.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::ext4::Ext4Fs;
use pvfs_9p::sched::{Queue, Step};
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_9p::wire::{ty, Tmsg};
use pvfs_9p::Filesystem;
use pvfs_tests::p9client::{require_tool, temp_dir};
use pvfs_tests::wimg::{e2fsck, mkfs_sized};
use std::process::Command;
use std::sync::Arc;

/// The stack the workload must fit in: a quarter of the kernel's 256 KiB. (On the host's test
/// build it fits in 16 KiB today; a recursion of even 32 bytes a level would need more than this
/// at depth 2,047.)
const STACK: usize = 64 * 1024;
const CHILD: &str = "PVFS_P9_STACK_DEPTH";

fn msg(tag: u16, m: &Tmsg<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.emit(tag, &mut out).unwrap();
    out
}

struct Session {
    c: pvfs_9p::Connection<Arc<Ext4Fs<pvfs_fs::block::FileDisk>>>,
    q: Queue,
    tag: u16,
}

impl Session {
    /// Sends `m` and returns the reply's type (and the errno of an Rlerror).
    fn call(&mut self, m: &Tmsg<'_>) -> (u8, u32) {
        self.tag = self.tag.wrapping_add(1) % 60000;
        let mut out = Vec::new();
        self.q.accept(&self.c, msg(self.tag, m), &mut out);
        while matches!(self.q.step(&self.c, 0, true, &mut out), Step::Ran { .. }) {}
        let r = out.pop().expect("a reply");
        let errno = if r[4] == ty::RLERROR {
            u32::from_le_bytes([r[7], r[8], r[9], r[10]])
        } else {
            0
        };
        (r[4], errno)
    }
    fn ok(&mut self, m: &Tmsg<'_>) {
        let (t, e) = self.call(m);
        assert_ne!(t, ty::RLERROR, "{m:?} failed with errno {e}");
    }
    fn walk(&mut self, fid: u32, newfid: u32, names: Vec<&[u8]>) {
        self.ok(&Tmsg::Walk { fid, newfid, names });
    }
}

/// The workload at `depth` levels, in the current thread.
fn workload(img: &std::path::Path, depth: usize) {
    let disk = pvfs_fs::block::FileDisk::open_rw(img).unwrap();
    let engine = pvfs_fs::ext4::Ext4::open_rw(disk, &Default::default()).unwrap();
    let fs = Arc::new(Ext4Fs::new(engine));
    let server = Server::new(fs.clone(), ExportConfig::default());
    let mut s = Session {
        c: server.connect(),
        q: Queue::new(64, 1 << 20),
        tag: 0,
    };
    s.ok(&Tmsg::Version {
        msize: 65536,
        version: b"9P2000.L",
    });
    s.ok(&Tmsg::Attach {
        fid: 0,
        afid: u32::MAX,
        uname: b"",
        aname: b"",
        n_uname: 0,
    });
    // The chain: fid 1 follows it down, one mkdir and one walk a level.
    s.walk(0, 1, vec![]);
    for _ in 0..depth {
        s.ok(&Tmsg::Mkdir {
            dfid: 1,
            name: b"d",
            mode: 0o755,
            gid: 0,
        });
        s.walk(1, 1, vec![b"d"]);
    }
    // Walks of 16 names from the root to the bottom (fid 2).
    s.walk(0, 2, vec![]);
    let mut left = depth;
    while left > 0 {
        let n = left.min(16);
        s.walk(2, 2, vec![b"d"; n]);
        left -= n;
    }
    // A file at the bottom goes to the root and back.
    s.walk(2, 3, vec![]);
    s.ok(&Tmsg::Lcreate {
        fid: 3,
        name: b"f",
        flags: 0o2,
        mode: 0o644,
        gid: 0,
    });
    s.ok(&Tmsg::Clunk { fid: 3 });
    for (from, to) in [(2, 0), (0, 2)] {
        s.ok(&Tmsg::Renameat {
            olddirfid: from,
            oldname: b"f",
            newdirfid: to,
            newname: b"f",
        });
    }
    // The chain's top into its own bottom: refused, after climbing every level.
    let (t, e) = s.call(&Tmsg::Renameat {
        olddirfid: 0,
        oldname: b"d",
        newdirfid: 2,
        newname: b"loop",
    });
    assert_eq!((t, e), (ty::RLERROR, 22), "rename into its own subtree");
    // The export's usage measured: a walk of the whole tree.
    let usage = server.seed_quota(1_000_000).unwrap();
    assert!(usage.files >= depth as u64, "{usage:?}");
    // Removed from the bottom up: fid 2 climbs one level a step.
    s.ok(&Tmsg::Unlinkat {
        dirfid: 2,
        name: b"f",
        flags: 0,
    });
    for _ in 0..depth {
        s.walk(2, 2, vec![b".."]);
        s.ok(&Tmsg::Unlinkat {
            dirfid: 2,
            name: b"d",
            flags: 0x200,
        });
    }
    drop(s);
    drop(server);
    fs.sync().unwrap();
}

/// In the child: the workload on a thread with a [`STACK`]-byte stack.
fn child(depth: usize) {
    let img = std::path::PathBuf::from(std::env::var("PVFS_P9_STACK_IMG").unwrap());
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || workload(&img, depth))
        .unwrap()
        .join()
        .unwrap();
    println!("p9-stack: depth {depth} fits in {STACK} bytes of stack");
}

#[test]
fn server_stack_use_does_not_grow_with_depth() {
    if let Ok(d) = std::env::var(CHILD) {
        return child(d.parse().unwrap());
    }
    require_tool("mkfs.ext4");
    require_tool("e2fsck");
    let dir = temp_dir("p9-stack");
    for depth in [64usize, 2047] {
        let img = dir.join(format!("v{depth}.img"));
        mkfs_sized(&img, "64M", &["-N", "8192"]);
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "server_stack_use_does_not_grow_with_depth",
                "--nocapture",
            ])
            .env(CHILD, depth.to_string())
            .env("PVFS_P9_STACK_IMG", &img)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("fits in"),
            "depth {depth} did not fit in {STACK} bytes of stack ({}):\n{text}",
            out.status
        );
        if let Err(report) = e2fsck(&img) {
            panic!("after depth {depth}: {report}");
        }
    }
}
