//! `xfront CASE --tag TAG`: in dom0, attach to dom0's 9pfs device tagged TAG (made with
//! `pvfs share add 0 --tag TAG …`) as a hostile frontend, run CASE (one case per device) and
//! print one `XFRONT` line. Exit status 0 when
//! pvfs did what the case expects (disconnected the device or answered with errors, and kept
//! serving), 1 when it did not, 2 on a usage or setup error.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use pvfs_xfront::cases::{self, Case};
use pvfs_xfront::{device, err, Platform, Res};

mod sys;

/// dom0's kernel devices and the `xenstore-*` programs.
struct Dom0 {
    gnt: sys::Gntalloc,
    evt: sys::Evtchn,
    t0: Instant,
}

fn xs(args: &[&str]) -> Option<String> {
    let out = Command::new(args[0]).args(&args[1..]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

impl Platform for Dom0 {
    type Mem = sys::Granted;
    fn grant(&mut self, domid: u16, pages: usize) -> Res<(Vec<u32>, sys::Granted)> {
        self.gnt
            .alloc(domid, pages)
            .map_err(|e| err(format!("gntalloc of {pages} pages: {e}")))
    }
    fn bind_unbound(&mut self, remote: u16) -> Res<u32> {
        self.evt
            .bind_unbound(remote)
            .map_err(|e| err(format!("evtchn bind: {e}")))
    }
    fn notify(&mut self, port: u32) -> Res<()> {
        self.evt
            .notify(port)
            .map_err(|e| err(format!("evtchn notify: {e}")))
    }
    fn xs_read(&mut self, path: &str) -> Option<String> {
        xs(&["xenstore-read", path])
    }
    fn xs_write(&mut self, path: &str, value: &str) -> Res<()> {
        xs(&["xenstore-write", path, value])
            .map(|_| ())
            .ok_or_else(|| err(format!("xenstore-write {path} failed")))
    }
    fn xs_list(&mut self, path: &str) -> Vec<String> {
        xs(&["xenstore-list", path])
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
    fn sleep_ms(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    fn now_ms(&mut self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }
}

fn usage() -> ExitCode {
    let names: Vec<_> = Case::ALL.iter().map(|c| c.name()).collect();
    eprintln!(
        "usage: xfront CASE --tag TAG   (CASE: {})\n       xfront load PREFIX FILE CONTENT RELEASE",
        names.join(", ")
    );
    ExitCode::from(2)
}

/// `xfront load PREFIX FILE CONTENT RELEASE`: connects every dom0 9pfs device whose tag
/// starts with PREFIX, runs a session on each (reading FILE, which must hold the bytes of the
/// local file CONTENT), prints `XFRONT LOAD connected=… answered=… failed=…`, keeps them
/// connected until the file RELEASE exists (at most 30 minutes), then closes them all.
fn load(p: &mut Dom0, prefix: &str, file: &str, content: &str, release: &str) -> ExitCode {
    let want = match std::fs::read(content) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("xfront: load: {content}: {e}");
            return ExitCode::from(2);
        }
    };
    let found = pvfs_xfront::load::devices_with_prefix(p, prefix);
    println!("XFRONT LOAD found={} prefix={prefix}", found.len());
    let t0 = Instant::now();
    let mut devs = Vec::new();
    let mut failed = 0usize;
    for (fe, tag) in &found {
        match device::connect(p, fe, 60_000) {
            Ok(d) => devs.push((tag.clone(), d)),
            Err(e) => {
                failed += 1;
                println!("XFRONT LOAD {tag} not connected: {e}");
            }
        }
        if devs.len() % 100 == 0 && !devs.is_empty() {
            println!(
                "XFRONT LOAD progress connected={} in {} s",
                devs.len(),
                t0.elapsed().as_secs()
            );
        }
    }
    let connect_s = t0.elapsed().as_secs();
    let mut answered = 0usize;
    for (tag, d) in &devs {
        match pvfs_xfront::load::session(p, d, file, &want) {
            Ok(()) => answered += 1,
            Err(e) => {
                failed += 1;
                println!("XFRONT LOAD {tag} session failed: {e}");
            }
        }
    }
    println!(
        "XFRONT LOAD connected={} answered={answered} failed={failed} connect_s={connect_s} total_s={}",
        devs.len(),
        t0.elapsed().as_secs()
    );
    let hold = Instant::now();
    while !std::path::Path::new(release).exists() && hold.elapsed() < Duration::from_secs(1800) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut closed = 0usize;
    for (_, d) in &devs {
        if d.close(p, 10_000).is_ok() {
            closed += 1;
        }
    }
    println!("XFRONT LOAD closed={closed}");
    if failed == 0 && answered == found.len() && !found.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn open_dom0() -> Result<Dom0, ExitCode> {
    match sys::Gntalloc::open().and_then(|g| Ok((g, sys::Evtchn::open()?))) {
        Ok((gnt, evt)) => Ok(Dom0 {
            gnt,
            evt,
            t0: Instant::now(),
        }),
        Err(e) => {
            eprintln!("xfront: cannot open /dev/xen/gntalloc and /dev/xen/evtchn: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, prefix, file, content, release] = args.as_slice() {
        if cmd == "load" {
            return match open_dom0() {
                Ok(mut p) => load(&mut p, prefix, file, content, release),
                Err(code) => code,
            };
        }
    }
    let (Some(case), Some("--tag"), Some(tag), None) = (
        args.first().and_then(|c| Case::parse(c)),
        args.get(1).map(String::as_str),
        args.get(2),
        args.get(3),
    ) else {
        return usage();
    };
    let mut p = match open_dom0() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let dev = match device::find_by_tag(&mut p, tag)
        .and_then(|fe| device::connect(&mut p, &fe, 30_000))
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("xfront: {}: {e}", case.name());
            return ExitCode::from(2);
        }
    };
    println!(
        "XFRONT {} connected port={} ring_half_bytes={}",
        case.name(),
        dev.port,
        dev.ring.half()
    );
    let rep = cases::run(&mut p, &dev, case);
    let closed = dev.close(&mut p, 10_000);
    match rep {
        Ok(r) => {
            println!("{} closed_state={:?}", r.line(), closed.ok().flatten());
            if r.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            println!("XFRONT {} FAILED error={:?}", case.name(), e.0);
            ExitCode::FAILURE
        }
    }
}
