//! ext4 write benchmark: `cargo xtask bench ext4-write` (`cargo bench -p pvfs-tests --bench
//! ext4_write`). Needs root and a loop device (the kernel side is a loop mount); otherwise it
//! prints `skipped: …` and exits successfully (with `PVFS_REQUIRE_ALL=1` it fails instead).
//!
//! Both sides start from the same fresh image (`mkfs.ext4 -b 4096`, default features,
//! `lazy_itable_init=0,lazy_journal_init=0` so that no background initialisation runs during
//! the kernel's measurement), of the same size, in the same directory, in the same run:
//!
//! - small files: 10 000 files of 1 KiB in 100 directories of 100, then one sync;
//! - sequential: one 1 GiB file written in 1 MiB calls, then one sync.
//!
//! pvfs: the engine on a `FileDisk` over the image file; the clock starts after `open_rw` and
//! stops when `sync` (small files) or `fsync` of the file (sequential) returns: a journal
//! commit, data and metadata written and `fdatasync`ed. Linux: the image
//! loop-mounted (`mount -o loop`), `std::fs` writes; the clock starts after the mount and stops
//! when the sync returns (`syncfs` via `sync -f` for the small files, `fsync` of the file for
//! the sequential write: the loop driver turns the flush into an fsync of the image file).
//! Unmounting (and pvfs's `close`) happen after the clock stops. Both are "durable on the
//! image file" at the stop. Each figure is the median of `PVFS_BENCH_ROUNDS` rounds (default
//! 3), sides alternating. pvfs's images are checked with `e2fsck -fn` and read back.
#![allow(clippy::unwrap_used, reason = "benchmark harness")]

use pvfs_fs::block::{FileDisk, MemDisk};
use pvfs_fs::ext4::{Ext4, Options, Timestamp, ROOT_INO};
use pvfs_tests::ext4img::Rng;
use pvfs_tests::wimg::{e2fsck_clean, LoopMount};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE_MIB: u64 = 2048;
const DIRS: usize = 100;
const FILES_PER_DIR: usize = 100;
const SMALL: usize = 1024;
const BIG: usize = 1 << 30;
const CHUNK: usize = 1 << 20;

fn sh(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn fresh_image(dir: &Path, name: &str) -> PathBuf {
    let img = dir.join(name);
    let _ = fs::remove_file(&img);
    fs::File::create(&img)
        .unwrap()
        .set_len(IMAGE_MIB << 20)
        .unwrap();
    sh(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-E"])
        .arg("lazy_itable_init=0,lazy_journal_init=0")
        .arg(&img))
    .unwrap();
    // Written back before anything is timed.
    sh(Command::new("sync").arg("-f").arg(&img)).unwrap();
    img
}

fn open(img: &Path) -> Ext4<FileDisk> {
    let mut fs = Ext4::open_rw(FileDisk::open_rw(img).unwrap(), &Options::default()).unwrap();
    fs.set_clock(Timestamp {
        sec: 1_700_000_000,
        nsec: 0,
    });
    fs
}

fn small_payload(i: usize) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; SMALL];
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    v
}

fn pvfs_small(img: &Path) -> Duration {
    let mut fs = open(img);
    let t = Instant::now();
    for d in 0..DIRS {
        let dir = fs
            .mkdir(ROOT_INO, format!("d{d:03}").as_bytes(), 0o755, 0, 0)
            .unwrap();
        for f in 0..FILES_PER_DIR {
            let ino = fs
                .create(dir, format!("f{f:03}").as_bytes(), 0o644, 0, 0)
                .unwrap();
            let data = small_payload(d * FILES_PER_DIR + f);
            assert_eq!(fs.write(ino, 0, &data).unwrap(), SMALL);
        }
    }
    fs.sync().unwrap();
    let el = t.elapsed();
    fs.close().unwrap();
    el
}

fn kernel_small(img: &Path, mnt: &Path) -> Duration {
    let m = LoopMount::new(img, mnt, false).unwrap();
    let t = Instant::now();
    for d in 0..DIRS {
        let dir = m.path().join(format!("d{d:03}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..FILES_PER_DIR {
            fs::write(
                dir.join(format!("f{f:03}")),
                small_payload(d * FILES_PER_DIR + f),
            )
            .unwrap();
        }
    }
    sh(Command::new("sync").arg("-f").arg(m.path())).unwrap();
    let el = t.elapsed();
    drop(m);
    el
}

fn pvfs_seq(img: &Path, data: &[u8]) -> Duration {
    let mut fs = open(img);
    let t = Instant::now();
    let ino = fs.create(ROOT_INO, b"big", 0o644, 0, 0).unwrap();
    let mut off = 0usize;
    while off < BIG {
        let n = fs.write(ino, off as u64, &data[..CHUNK]).unwrap();
        assert_eq!(n, CHUNK, "short write at {off}");
        off += n;
    }
    fs.fsync(ino).unwrap();
    let el = t.elapsed();
    fs.close().unwrap();
    el
}

fn kernel_seq(img: &Path, mnt: &Path, data: &[u8]) -> Duration {
    let m = LoopMount::new(img, mnt, false).unwrap();
    let t = Instant::now();
    let mut f = fs::File::create(m.path().join("big")).unwrap();
    for _ in 0..BIG / CHUNK {
        f.write_all(&data[..CHUNK]).unwrap();
    }
    f.sync_all().unwrap();
    let el = t.elapsed();
    drop(f);
    drop(m);
    el
}

/// pvfs's result must be e2fsck-clean and read back right.
fn check_small(img: &Path) {
    e2fsck_clean(img);
    let mut fs = Ext4::open(FileDisk::open(img).unwrap()).unwrap();
    for i in [0, 1, 4242, DIRS * FILES_PER_DIR - 1] {
        let p = format!("/d{:03}/f{:03}", i / FILES_PER_DIR, i % FILES_PER_DIR);
        let ino = fs.lookup_path(p.as_bytes()).unwrap();
        let mut b = vec![0u8; SMALL + 1];
        assert_eq!(fs.read(ino, 0, &mut b).unwrap(), SMALL);
        assert!(b[..SMALL] == small_payload(i)[..], "{p}");
    }
    assert_eq!(fs.statfs().inodes - fs.statfs().free_inodes, 11 + 10_100);
}

fn check_seq(img: &Path, data: &[u8]) {
    e2fsck_clean(img);
    let bytes = fs::read(img).unwrap();
    let mut fs = Ext4::open(MemDisk::new(bytes)).unwrap();
    let ino = fs.lookup_path(b"/big").unwrap();
    assert_eq!(fs.getattr(ino).unwrap().size, BIG as u64);
    let mut b = vec![0u8; CHUNK];
    for off in [0, BIG / 2, BIG - CHUNK] {
        assert_eq!(fs.read(ino, off as u64, &mut b).unwrap(), CHUNK);
        assert!(b == data[..CHUNK], "content at {off}");
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = std::env::temp_dir().join("pvfs-bench-ext4-write");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let mnt = dir.join("mnt");
    // Can this process loop-mount?
    let probe = fresh_image(&dir, "probe.img");
    match LoopMount::new(&probe, &mnt, false) {
        Ok(m) => drop(m),
        Err(e) => {
            pvfs_tests::skip(&format!(
                "the kernel side needs a loop mount, which failed here ({e})"
            ));
            let _ = fs::remove_dir_all(&dir);
            return;
        }
    }
    fs::remove_file(&probe).unwrap();
    let rounds: usize = std::env::var("PVFS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let data = Rng::new(7).bytes(CHUNK);
    // Profiling aid: `PVFS_BENCH_ONLY=pvfs-seq` runs just pvfs's sequential write once, with
    // the time spent in `write` calls and in the final `fsync` printed;
    // `PVFS_BENCH_CACHE_MIB` sets its block cache size (default: the engine's default).
    if std::env::var("PVFS_BENCH_ONLY").as_deref() == Ok("pvfs-seq") {
        let img = fresh_image(&dir, "pvfs.img");
        let mut opts = Options::default();
        if let Some(mib) = std::env::var("PVFS_BENCH_CACHE_MIB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
        {
            opts.cache_bytes = mib << 20;
        }
        let mut fs = Ext4::open_rw(FileDisk::open_rw(&img).unwrap(), &opts).unwrap();
        let t = Instant::now();
        let ino = fs.create(ROOT_INO, b"big", 0o644, 0, 0).unwrap();
        for i in 0..BIG / CHUNK {
            fs.write(ino, (i * CHUNK) as u64, &data).unwrap();
        }
        let w = t.elapsed();
        fs.fsync(ino).unwrap();
        println!("pvfs 1 GiB: writes {w:?}, then fsync {:?}", t.elapsed() - w);
        fs.close().unwrap();
        let _ = fs::remove_dir_all(&dir);
        return;
    }
    let (mut ps, mut ks, mut pq, mut kq) = (vec![], vec![], vec![], vec![]);
    for r in 0..rounds {
        eprintln!("round {}/{rounds}", r + 1);
        let img = fresh_image(&dir, "pvfs.img");
        ps.push(pvfs_small(&img));
        check_small(&img);
        let img = fresh_image(&dir, "linux.img");
        ks.push(kernel_small(&img, &mnt));
        eprintln!("  small files: pvfs {:?}, Linux {:?}", ps[r], ks[r]);
        let img = fresh_image(&dir, "pvfs.img");
        pq.push(pvfs_seq(&img, &data));
        check_seq(&img, &data);
        let img = fresh_image(&dir, "linux.img");
        kq.push(kernel_seq(&img, &mnt, &data));
        eprintln!("  1 GiB sequential: pvfs {:?}, Linux {:?}", pq[r], kq[r]);
    }
    let files = (DIRS * FILES_PER_DIR) as f64;
    let (ps, ks, pq, kq) = (median(ps), median(ks), median(pq), median(kq));
    let mbs = |d: Duration| BIG as f64 / (1 << 20) as f64 / d.as_secs_f64();
    let fps = |d: Duration| files / d.as_secs_f64();
    println!("\n| measurement (median of {rounds}) | pvfs | Linux ext4 (loop) | pvfs/Linux |");
    println!("|---|---:|---:|---:|");
    // One row: pvfs's time `p` and Linux's `k`, each with its rate in `unit`.
    let row = |what: &str, p: Duration, k: Duration, rate: &dyn Fn(Duration) -> f64, unit: &str| {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {what} | {:.0} ms, {:.0} {unit} | {:.0} ms, {:.0} {unit} | {:.2}× |",
            ms(p),
            rate(p),
            ms(k),
            rate(k),
            rate(p) / rate(k)
        );
    };
    row("10 000 × 1 KiB files + sync", ps, ks, &fps, "files/s");
    row("1 GiB sequential + sync", pq, kq, &mbs, "MiB/s");
    let _ = fs::remove_dir_all(&dir);
}
