//! The 9pfs request path inside pvfs, in-process: `cargo xtask bench p9-path`
//! (`cargo bench -p pvfs-tests --bench p9_path`).
//!
//! What the 9pfs backend does for each request a guest puts on its ring, without the ring and
//! the hypervisor: the request is accepted into the ring's queue (`pvfs_9p::sched::Queue`),
//! asked whether it would wait for the disk, executed by the connection against the ext4
//! adapter (`Ext4Fs`) over a queued in-memory disk (`QueueDisk<MemDisk>`, as blkfront: posted
//! reads and writes, readahead), and its reply buffer is handed back for reuse. The volume is
//! made by `mkfs.ext4 -b 4096 -O orphan_file` (4 KiB blocks, and the orphan file Debian 13's
//! mkfs.ext4 adds by default) with a 256 MiB block cache, as pvfs mounts its volume in the
//! test bed.
//!
//! Measured, per request (median over `PVFS_BENCH_ROUNDS` rounds, default 5):
//! - `Tread` of 128 KiB (the Linux client's default msize), sequential over a 64 MiB file
//!   already in the cache, as `dd bs=1M` of a file just written;
//! - `Twrite` of 128 KiB, sequential, a new 64 MiB file, then `Tfsync`;
//! - a metadata round: walk + lcreate + clunk, walk + getattr + clunk, walk + unlink
//!   (`Tunlinkat`) with the file's fid held and clunked after it, as Linux's client removes a
//!   file for `p9meta` in the test bed; the average, then each kind's
//!   time per request.
//!
//! The baseline, measured in the same run: copying 128 KiB from one buffer into another
//! (`copy_from_slice` of the request's payload), the least a read or a write must do. Figures
//! are reported as multiples of that copy.
#![allow(clippy::unwrap_used, reason = "benchmark harness")]

use pvfs_9p::ext4::Ext4Fs;
use pvfs_9p::sched::{Queue, Step};
use pvfs_9p::server::{Connection, ExportConfig, Server};
use pvfs_9p::wire::{ty, Tmsg};
use pvfs_fs::block::{MemDisk, QueueDisk};
use pvfs_tests::wimg::mkfs_sized;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

type Fs = Arc<Ext4Fs<QueueDisk<MemDisk<'static>>>>;

const CHUNK: usize = 128 * 1024;
const FILE: usize = 64 << 20;
/// Files of the metadata round (`PVFS_BENCH_META_FILES`, default 2000; more for a profile).
fn meta_files() -> u32 {
    std::env::var("PVFS_BENCH_META_FILES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

fn msg(tag: u16, m: &Tmsg<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.emit(tag, &mut out).unwrap();
    out
}

/// One connection with its queue, driven as the 9pfs backend's serve loop drives a ring.
struct Ring {
    conn: Connection<Fs>,
    fs: Fs,
    queue: Queue,
    tag: u16,
}

impl Ring {
    fn new(fs: Fs) -> Self {
        let server = Server::new(fs.clone(), ExportConfig::default());
        let mut r = Ring {
            conn: server.connect(),
            fs,
            queue: Queue::new(64, 1 << 20),
            tag: 0,
        };
        r.call(&Tmsg::Version {
            msize: (CHUNK + 4096) as u32,
            version: b"9P2000.L",
        });
        r.call(&Tmsg::Attach {
            fid: 0,
            afid: u32::MAX,
            uname: b"",
            aname: b"",
            n_uname: 0,
        });
        r
    }

    /// Runs one request to its reply, as `serve_ring` does: accept, step until it ran (taking
    /// the disk's progress as the backend does), run a write answered before it ran, hand the
    /// reply buffer back. Returns the reply's type.
    fn call(&mut self, m: &Tmsg<'_>) -> u8 {
        self.tag = self.tag.wrapping_add(1) % 0xFFFF;
        let mut encoded = msg(self.tag, m);
        let mut buf = self.conn.buffer(encoded.len());
        buf.clear();
        buf.append(&mut encoded);
        let mut out = Vec::new();
        self.queue.accept(&self.conn, buf, &mut out);
        let mut progress = 0u64;
        while out.is_empty() {
            let (moved, idle) = self
                .fs
                .with_engine(|e| {
                    let d = e.device_mut();
                    let moved = pvfs_fs::block::BlockDevice::reap(d);
                    (moved, pvfs_fs::block::BlockDevice::posted(d) == 0)
                })
                .unwrap();
            progress += u64::from(moved);
            match self.queue.step(&self.conn, progress, idle, &mut out) {
                Step::Idle | Step::Deferred | Step::Ran { .. } => {}
            }
        }
        if let Some(res) = self.queue.finish_write(&self.conn) {
            res.unwrap();
        }
        let t = out[0][4];
        for r in out {
            self.conn.recycle(r);
        }
        t
    }

    fn expect(&mut self, m: &Tmsg<'_>, want: u8) {
        let got = self.call(m);
        assert_eq!(got, want, "{m:?}");
    }

    /// [`expect`](Self::expect), adding the time it took (s) to `total`.
    fn expect_timed(&mut self, total: &mut f64, m: &Tmsg<'_>, want: u8) {
        let t = Instant::now();
        self.expect(m, want);
        *total += t.elapsed().as_secs_f64();
    }

    /// Runs `msg(offset)` for every chunk of the file in order, each answered with `want`;
    /// returns the time per request in µs.
    fn stream<'a>(&mut self, want: u8, msg: impl Fn(u64) -> Tmsg<'a>) -> f64 {
        let t = Instant::now();
        for k in 0..FILE / CHUNK {
            self.expect(&msg((k * CHUNK) as u64), want);
        }
        t.elapsed().as_secs_f64() * 1e6 / (FILE / CHUNK) as f64
    }
}

fn image() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("pvfs-bench-p9path-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tree")).unwrap();
    let img = dir.join("vol.img");
    let tree = dir.join("tree");
    mkfs_sized(
        &img,
        "512M",
        &[
            "-b",
            "4096",
            "-O",
            "orphan_file",
            "-d",
            tree.to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(&img).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn mount(bytes: &[u8]) -> Fs {
    let disk = QueueDisk::new(MemDisk::new(bytes.to_vec()), 64);
    let opts = pvfs_fs::ext4::Options {
        cache_bytes: 256 << 20,
    };
    let engine = pvfs_fs::ext4::Ext4::open_rw(disk, &opts).unwrap();
    Arc::new(Ext4Fs::new(engine))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Round {
    copy_us: f64,
    write_us: f64,
    fsync_ms: f64,
    read_us: f64,
    meta_us: f64,
    /// Time per request of each kind in the metadata round ([`KINDS`]).
    kinds_us: [f64; 6],
}

/// The metadata round's kinds of request, in `Round::kinds_us`'s order.
const KINDS: [&str; 6] = [
    "Twalk",
    "Tlcreate",
    "Tgetattr",
    "Tclunk",
    "Tunlinkat",
    "Tclunk, removed file",
];

fn round(bytes: &[u8]) -> Round {
    // Baseline: the payload copy.
    let src = vec![0x5Au8; CHUNK];
    let mut dst = vec![0u8; CHUNK];
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    }
    let copy_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);

    let fs = mount(bytes);
    let mut r = Ring::new(fs);
    r.expect(
        &Tmsg::Walk {
            fid: 0,
            newfid: 1,
            names: vec![],
        },
        ty::RWALK,
    );
    r.expect(
        &Tmsg::Lcreate {
            fid: 1,
            name: b"big",
            flags: 2,
            mode: 0o644,
            gid: 0,
        },
        ty::RLCREATE,
    );
    let data: Vec<u8> = (0..CHUNK).map(|i| (i % 253) as u8).collect();
    let write_us = r.stream(ty::RWRITE, |offset| Tmsg::Write {
        fid: 1,
        offset,
        data: &data,
    });
    let t = Instant::now();
    r.expect(
        &Tmsg::Fsync {
            fid: 1,
            datasync: 0,
        },
        ty::RFSYNC,
    );
    let fsync_ms = t.elapsed().as_secs_f64() * 1e3;
    r.expect(&Tmsg::Clunk { fid: 1 }, ty::RCLUNK);

    r.expect(
        &Tmsg::Walk {
            fid: 0,
            newfid: 2,
            names: vec![&b"big"[..]],
        },
        ty::RWALK,
    );
    r.expect(&Tmsg::Lopen { fid: 2, flags: 0 }, ty::RLOPEN);
    let read_us = r.stream(ty::RREAD, |offset| Tmsg::Read {
        fid: 2,
        offset,
        count: CHUNK as u32,
    });
    r.expect(&Tmsg::Clunk { fid: 2 }, ty::RCLUNK);

    // time per request by kind (KINDS)
    let mut kinds = [0f64; 6];
    let t = Instant::now();
    let files = meta_files();
    for i in 0..files {
        let name = format!("f{i}");
        let name = name.as_bytes();
        r.expect_timed(
            &mut kinds[0],
            &Tmsg::Walk {
                fid: 0,
                newfid: 3,
                names: vec![],
            },
            ty::RWALK,
        );
        r.expect_timed(
            &mut kinds[1],
            &Tmsg::Lcreate {
                fid: 3,
                name,
                flags: 0o300 | 1,
                mode: 0o644,
                gid: 0,
            },
            ty::RLCREATE,
        );
        r.expect_timed(&mut kinds[3], &Tmsg::Clunk { fid: 3 }, ty::RCLUNK);
        r.expect_timed(
            &mut kinds[0],
            &Tmsg::Walk {
                fid: 0,
                newfid: 4,
                names: vec![name],
            },
            ty::RWALK,
        );
        r.expect_timed(
            &mut kinds[2],
            &Tmsg::Getattr {
                fid: 4,
                mask: 0x3fff,
            },
            ty::RGETATTR,
        );
        // Linux's client holds the file's fid while it removes it, and clunks it after.
        r.expect_timed(
            &mut kinds[4],
            &Tmsg::Unlinkat {
                dirfid: 0,
                name,
                flags: 0,
            },
            ty::RUNLINKAT,
        );
        r.expect_timed(&mut kinds[5], &Tmsg::Clunk { fid: 4 }, ty::RCLUNK);
    }
    let meta_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(files * 7);
    // walks are two a file
    let per = [2.0, 1.0, 1.0, 1.0, 1.0, 1.0].map(|n: f64| n * f64::from(files));
    let kinds_us = core::array::from_fn(|k| kinds[k] * 1e6 / per[k]);
    Round {
        copy_us,
        write_us,
        fsync_ms,
        read_us,
        meta_us,
        kinds_us,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = std::env::var("PVFS_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let bytes = image();
    let rs: Vec<Round> = (0..rounds).map(|_| round(&bytes)).collect();
    let copy = median(rs.iter().map(|r| r.copy_us).collect());
    let read = median(rs.iter().map(|r| r.read_us).collect());
    let write = median(rs.iter().map(|r| r.write_us).collect());
    let fsync = median(rs.iter().map(|r| r.fsync_ms).collect());
    let meta = median(rs.iter().map(|r| r.meta_us).collect());
    println!("p9-path: median of {rounds} rounds");
    println!("  copy 128 KiB (baseline)   {copy:8.2} us   1.00");
    println!(
        "  Tread 128 KiB, cached     {read:8.2} us   {:.2}x the copy",
        read / copy
    );
    println!(
        "  Twrite 128 KiB            {write:8.2} us   {:.2}x the copy",
        write / copy
    );
    println!("  Tfsync after 64 MiB       {:8.2} ms", fsync);
    println!(
        "  metadata request (avg)    {meta:8.2} us   {:.2}x the copy",
        meta / copy
    );
    for (k, name) in KINDS.iter().enumerate() {
        let us = median(rs.iter().map(|r| r.kinds_us[k]).collect());
        println!("    {name:<22}  {us:8.2} us");
    }
}
