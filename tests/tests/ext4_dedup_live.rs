//! A paced dedup run (`pvfs_fs::dedup::Job`, one unit of work a step) while files change
//! between its steps, as guests change them while pvfs runs it: at every step boundary of the
//! run, one of a write into a file, an unlink or a truncate happens. After each run the image
//! is `e2fsck -fn` clean, every file reads what was last written to it (a file changed after
//! it was hashed is compared again and never merged with stale contents; a file merged
//! before the change got its own copy), and every store's reference count equals its stubs.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::MemDisk;
use pvfs_fs::dedup::Job;
use pvfs_fs::ext4::{Ext4, Ino, Options, ROOT_INO};
use pvfs_tests::ext4img::{self, Rng};
use pvfs_tests::wimg::{e2fsck, mkfs, CLOCK};
use std::collections::BTreeMap;
use std::fs;

type Files = BTreeMap<String, Vec<u8>>;

#[derive(Debug, Clone, Copy)]
enum Change {
    /// Flip the first byte of `b` (which starts equal to `a`).
    WriteB,
    /// Unlink `c` (equal to `a`).
    UnlinkC,
    /// Truncate `a` to half its size.
    TruncateA,
}

fn initial() -> Files {
    let mut rng = Rng::new(0x11FE);
    let x = rng.bytes(20_000);
    let y = rng.bytes(3000);
    let mut f = Files::new();
    for n in ["a", "b", "c", "f"] {
        f.insert(n.into(), x.clone());
    }
    for n in ["d", "e"] {
        f.insert(n.into(), y.clone());
    }
    f.insert("u".into(), rng.bytes(5000));
    f
}

/// The base image, made in a directory of its own (`tag`: tests run in parallel).
fn base_image(tag: &str) -> Vec<u8> {
    let dir = ext4img::tmpdir(tag);
    let img = mkfs(&dir, "base.img", 1024, 8, &[]);
    let mut fs = Ext4::open_rw(MemDisk::new(fs::read(&img).unwrap()), &Options::default()).unwrap();
    fs.set_clock(CLOCK);
    for (n, d) in initial() {
        let ino = fs.create(ROOT_INO, n.as_bytes(), 0o644, 0, 0).unwrap();
        assert_eq!(fs.write(ino, 0, &d).unwrap(), d.len());
    }
    fs.close().unwrap().into_vec().unwrap()
}

fn lookup(fs: &mut Ext4<MemDisk<'static>>, n: &str) -> Ino {
    fs.lookup(ROOT_INO, n.as_bytes()).unwrap()
}

/// Apply `c` to the engine and the model; whether the changed file was a stub then.
fn change(fs: &mut Ext4<MemDisk<'static>>, model: &mut Files, c: Change) -> bool {
    match c {
        Change::WriteB => {
            let b = lookup(fs, "b");
            let was = fs.shared_store(b).unwrap().is_some();
            let v = model.get_mut("b").unwrap();
            v[0] ^= 0xFF;
            assert_eq!(fs.write(b, 0, &v[..1]).unwrap(), 1);
            was
        }
        Change::UnlinkC => {
            let c = lookup(fs, "c");
            let was = fs.shared_store(c).unwrap().is_some();
            fs.unlink(ROOT_INO, b"c").unwrap();
            model.remove("c");
            was
        }
        Change::TruncateA => {
            let a = lookup(fs, "a");
            let was = fs.shared_store(a).unwrap().is_some();
            fs.truncate(a, 10_000).unwrap();
            model.get_mut("a").unwrap().truncate(10_000);
            was
        }
    }
}

/// Files of the root, and stubs per store against each store's recorded count.
fn check(img: &[u8], model: &Files, what: &str) {
    // One directory per test thread: the tests run in parallel.
    let t = format!("{:?}", std::thread::current().id());
    let dir = ext4img::tmpdir(&format!(
        "dedup-live-{}",
        t.trim_matches(|c: char| !c.is_ascii_digit())
    ));
    let p = dir.join("run.img");
    fs::write(&p, img).unwrap();
    if let Err(r) = e2fsck(&p) {
        panic!("{what}: {r}");
    }
    let mut fs = Ext4::open(MemDisk::borrowed(img)).unwrap();
    let mut files = Files::new();
    let mut stubs: BTreeMap<Ino, u32> = BTreeMap::new();
    for e in fs.read_dir(ROOT_INO).unwrap() {
        let name = String::from_utf8(e.name.clone()).unwrap();
        if [".", "..", "lost+found", ".pvfs"].contains(&name.as_str()) {
            continue;
        }
        let size = fs.getattr(e.ino).unwrap().size as usize;
        let mut b = vec![0u8; size];
        assert_eq!(fs.read(e.ino, 0, &mut b).unwrap(), size);
        files.insert(name, b);
        if let Some(s) = fs.shared_store(e.ino).unwrap() {
            *stubs.entry(s).or_default() += 1;
        }
    }
    assert!(
        &files == model,
        "{what}: contents differ from what was written"
    );
    let mut recorded = BTreeMap::new();
    if let Ok(d) = fs.lookup_path(b"/.pvfs/shared") {
        for e in fs.read_dir(d).unwrap() {
            if e.name != b"." && e.name != b".." {
                let v = fs.getxattr(e.ino, b"trusted.pvfs.refs").unwrap();
                recorded.insert(e.ino, u32::from_le_bytes(v.try_into().unwrap()));
            }
        }
    }
    assert_eq!(
        stubs, recorded,
        "{what}: stubs per store vs recorded counts"
    );
}

#[test]
fn files_changing_during_a_paced_run_are_never_merged_stale() {
    let base = base_image("dedup-live-base");
    // Steps of an undisturbed run, one unit each.
    let steps = {
        let mut fs = Ext4::open_rw(MemDisk::new(base.clone()), &Options::default()).unwrap();
        let mut job = Job::new(&[b"/"]);
        let mut n = 0;
        while !job.step(&mut fs, 1).unwrap() {
            n += 1;
        }
        let r = job.report();
        assert_eq!((r.files_merged, r.stores_created), (6, 2), "{r:?}");
        let img = fs.close().unwrap().into_vec().unwrap();
        check(&img, &initial(), "undisturbed");
        n + 1
    };
    assert!(steps > 10, "{steps} steps");
    let mut stub_changes = 0;
    let mut recompared = 0;
    for c in [Change::WriteB, Change::UnlinkC, Change::TruncateA] {
        for k in 0..=steps {
            let mut fs = Ext4::open_rw(MemDisk::new(base.clone()), &Options::default()).unwrap();
            fs.set_clock(CLOCK);
            let mut model = initial();
            let mut job = Job::new(&[b"/"]);
            let mut done = false;
            for i in 0..=steps + 1 {
                if i == k {
                    stub_changes += usize::from(change(&mut fs, &mut model, c));
                }
                if !done {
                    done = job.step(&mut fs, 1).unwrap();
                }
            }
            assert!(done && job.is_done());
            recompared += usize::from(job.report().mismatches > 0);
            let img = fs.close().unwrap().into_vec().unwrap();
            check(&img, &model, &format!("{c:?} before step {k}"));
        }
    }
    println!(
        "{steps} steps; {stub_changes} changes hit a merged file, {recompared} runs compared a changed file after hashing it"
    );
    assert!(stub_changes > 0 && recompared > 0);
}

/// The live dedup's control (`pvfs_fs::dedup::control::DedupCtl`, what the domain's serve
/// loop drives): a request starts one paced run, the same request again starts nothing, a
/// second request while it goes is answered busy, guests' writes between steps are kept, and
/// the answer carries the figures.
#[test]
fn the_live_control_runs_one_paced_run_at_a_time() {
    use pvfs_fs::dedup::control::{parse_state, request, DedupCtl, State};
    let mut fs = Ext4::open_rw(
        MemDisk::new(base_image("dedup-live-ctl")),
        &Options::default(),
    )
    .unwrap();
    fs.set_clock(CLOCK);
    let mut model = initial();
    let mut ctl = DedupCtl::new();
    assert_eq!(ctl.on_request("nonsense"), None);
    let a = ctl.on_request(&request("r1")).unwrap();
    assert_eq!(parse_state(&a.state, "r1"), State::Running);
    assert_eq!(
        ctl.on_request(&request("r1")),
        None,
        "the same request again"
    );
    let busy = ctl.on_request(&request("r2")).unwrap();
    assert!(matches!(parse_state(&busy.state, "r2"), State::Failed(w) if w.starts_with("busy")));
    let mut steps = 0;
    let done = loop {
        steps += 1;
        if steps == 5 {
            change(&mut fs, &mut model, Change::WriteB);
        }
        if let Some(a) = ctl.step(&mut fs, 4096) {
            break a;
        }
    };
    assert!(steps > 5, "paced: {steps} steps");
    assert_eq!(parse_state(&done.state, "r1"), State::Done);
    let r = done.result.unwrap();
    assert!(r.contains("\"files_merged\":5"), "a, c, f and d, e: {r}");
    assert!(!ctl.running());
    let img = fs.close().unwrap().into_vec().unwrap();
    check(&img, &model, "live control");
}
