//! 9P benchmark: `pvfs serve` (ext4 image) against diod (the same tree extracted to a
//! directory), measured in the same run with the same client and parameters.
//!
//! `cargo bench -p pvfs-tests --bench p9` (set `P9_BENCH_SECS` to change the time per phase).
//! Prints getattr ops/s, 4 KiB read ops/s and 1 MiB read throughput, and the ratios.
#![allow(clippy::unwrap_used, reason = "benchmark")]

use pvfs_tests::p9client::{free_port, o, require_tool, temp_dir, Client, ServeProcess};
use pvfs_tests::wimg::mkfs_sized;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BIG: usize = 32 << 20;
const MIB: u32 = 1 << 20;

fn fill(path: &Path, len: usize) {
    let mut x = 0x1234_5678u32;
    let v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(path, v).unwrap();
}

struct Figures {
    getattr: f64,
    read4k: f64,
    read1m_mib_s: f64,
    msize: u32,
}

fn measure(addr: &str, aname: &str, secs: f64) -> Figures {
    let mut c = Client::mount(addr, MIB + 4096, aname);
    let msize = c.msize;
    let dur = Duration::from_secs_f64(secs);

    // getattr
    c.walk(0, 1, &["small.bin"]).unwrap();
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < dur {
        for _ in 0..64 {
            c.getattr(1).unwrap();
        }
        n += 64;
    }
    let getattr = n as f64 / t.elapsed().as_secs_f64();

    // 4 KiB reads across a 1 MiB file
    c.lopen(1, o::RDONLY).unwrap();
    let mut buf = Vec::new();
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < dur {
        for _ in 0..64 {
            let off = (n % 256) * 4096;
            let r = c.read_into(1, off, 4096, &mut buf).unwrap();
            assert_eq!(r.len(), 4096);
            n += 1;
        }
    }
    let read4k = n as f64 / t.elapsed().as_secs_f64();

    // Sequential reads of a 32 MiB file, 1 MiB per request or the largest the negotiated msize
    // allows (msize - 24, as the Linux client does), wrapping around.
    c.walk(0, 2, &["big.bin"]).unwrap();
    c.lopen(2, o::RDONLY).unwrap();
    let count = MIB.min(msize - 24);
    let t = Instant::now();
    let mut bytes = 0u64;
    let mut off = 0u64;
    while t.elapsed() < dur {
        let r = c.read_into(2, off, count, &mut buf).unwrap();
        assert!(!r.is_empty() || off >= BIG as u64);
        bytes += r.len() as u64;
        off = if r.is_empty() {
            0
        } else {
            off + r.len() as u64
        };
    }
    let read1m_mib_s = bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    Figures {
        getattr,
        read4k,
        read1m_mib_s,
        msize,
    }
}

fn median(v: &[Figures]) -> Figures {
    let med = |f: fn(&Figures) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    Figures {
        getattr: med(|f| f.getattr),
        read4k: med(|f| f.read4k),
        read1m_mib_s: med(|f| f.read1m_mib_s),
        msize: v[0].msize,
    }
}

struct Diod(Child);
impl Drop for Diod {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes benches; nothing to list.
    }
    require_tool("diod");
    require_tool("mkfs.ext4");
    let secs: f64 = std::env::var("P9_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let dir = temp_dir("p9-bench");
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    fill(&tree.join("small.bin"), 1 << 20);
    fill(&tree.join("big.bin"), BIG);
    let img = dir.join("img.ext4");
    mkfs_sized(&img, "64M", &["-d", tree.to_str().unwrap()]);

    let pvfs = ServeProcess::start(&["--image", img.to_str().unwrap()], &dir.join("serve.log"));
    let port = free_port();
    let diod = Diod(
        Command::new("diod")
            .args([
                "-f",
                "-n",
                "-N",
                "-L",
                "stderr",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-e",
            ])
            .arg(&tree)
            .stderr(std::fs::File::create(dir.join("diod.log")).unwrap())
            .spawn()
            .expect("spawn diod"),
    );
    let mut up = false;
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(up, "diod did not start");

    // The machine is shared: alternate the two servers over several rounds and keep each
    // one's median, so that background load hits both alike.
    let rounds: usize = std::env::var("P9_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let diod_addr = format!("tcp:127.0.0.1:{port}");
    let (mut ps, mut ds) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ps.push(measure(&pvfs.addr, "/", secs));
        ds.push(measure(&diod_addr, tree.to_str().unwrap(), secs));
    }
    drop(diod);
    drop(pvfs);
    let p = median(&ps);
    let d = median(&ds);

    println!(
        "9P benchmark: same client, {secs} s per phase, median of {rounds} alternating rounds, \
         loopback TCP, one connection, one request in flight"
    );
    println!("msize: pvfs {} / diod {}", p.msize, d.msize);
    println!(
        "{:<22} {:>14} {:>14} {:>8}",
        "metric", "pvfs", "diod", "ratio"
    );
    for (name, a, b) in [
        ("getattr ops/s", p.getattr, d.getattr),
        ("4 KiB read ops/s", p.read4k, d.read4k),
        ("1 MiB read MiB/s", p.read1m_mib_s, d.read1m_mib_s),
    ] {
        println!("{name:<22} {a:>14.0} {b:>14.0} {:>7.2}x", a / b);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
