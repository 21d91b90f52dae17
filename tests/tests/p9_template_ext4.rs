//! Template shares on ext4: the model-based random test (`pvfs_tests::overlay_model`) on the
//! ext4 engine, with the image checked by `e2fsck -fn` after each sequence and the merged
//! view compared with the model again after a remount; and power cuts at every write of
//! three copy-ups (metadata only through new directories, data, a file with two links), on
//! a disk that also loses or reorders what was not flushed: after each, every file reads as
//! the template's version or the whole copy, and the image passes `e2fsck -fn`.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_9p::ext4::Ext4Fs;
use pvfs_9p::fs::{mode, Filesystem, NewInode, SetAttr, Timespec};
use pvfs_9p::memfs::{MemFs, MemFsLimits};
use pvfs_9p::overlay::OverlayFs;
use pvfs_fs::block::{BlockDevice, MemDisk, ReorderDisk};
use pvfs_fs::ext4::{Ext4, Options};
use pvfs_tests::overlay_model::{build_template, dump, resolve, run};
use pvfs_tests::wimg::{e2fsck, mkfs};
use std::path::Path;
use std::sync::Arc;

/// The clock of both sides (a realistic one: a deleted inode's `i_dtime` is the time, and
/// e2fsck reads a small one as an orphan list link).
fn clock() -> Timespec {
    Timespec {
        sec: 1_700_000_000,
        nsec: 0,
    }
}

fn model() -> MemFs {
    let m = MemFs::with_limits(MemFsLimits::default(), clock);
    build_template(&m, m.root());
    m
}

fn mount<D: BlockDevice + Send>(dev: D) -> Arc<Ext4Fs<D>> {
    let fs = Ext4::open_rw(dev, &Options::default()).unwrap();
    Arc::new(Ext4Fs::new(fs).with_clock(clock))
}

fn dir(fs: &dyn Filesystem, name: &str) -> u64 {
    let new = NewInode {
        mode: mode::S_IFDIR | 0o755,
        uid: 0,
        gid: 0,
        rdev: 0,
    };
    fs.create(fs.root(), name.as_bytes(), &new).unwrap().ino
}

/// A fresh image holding `/templates` (the template tree) and an empty `/guest`, closed.
fn template_image(tmp: &Path) -> Vec<u8> {
    let img = mkfs(tmp, "tmpl.img", 1024, 24, &[]);
    let fs = mount(MemDisk::new(std::fs::read(&img).unwrap()));
    let t = dir(&*fs, "templates");
    dir(&*fs, "guest");
    build_template(&*fs, t);
    fs.close().unwrap().unwrap().into_vec().unwrap()
}

fn fsck(tmp: &Path, what: &str, bytes: &[u8]) {
    let p = tmp.join("check.img");
    std::fs::write(&p, bytes).unwrap();
    if let Err(e) = e2fsck(&p) {
        panic!("{what}: e2fsck -fn: {e}");
    }
}

fn roots(fs: &dyn Filesystem) -> (u64, u64) {
    let r = fs.root();
    (
        fs.lookup(r, b"guest").unwrap().ino,
        fs.lookup(r, b"templates").unwrap().ino,
    )
}

#[test]
fn merged_view_matches_model_ext4() {
    let tmp = pvfs_tests::ext4img::tmpdir("p9-template-ext4");
    let image = template_image(&tmp);
    let seeds: u64 = std::env::var("PVFS_TEMPLATE_EXT4_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for seed in 1..=seeds {
        let fs = mount(MemDisk::new(image.clone()));
        let (guest, tmpl) = roots(&*fs);
        let model = model();
        let before = dump(&*fs, tmpl);
        let open = || -> Box<dyn Filesystem> {
            Box::new(OverlayFs::new(fs.clone(), guest, tmpl).unwrap())
        };
        let mut view = open();
        let (_, mut inos) = run(
            &model,
            model.root(),
            &mut view,
            &mut || open(),
            25,
            seed,
            150,
        );
        drop(view);
        assert_eq!(
            dump(&*fs, tmpl),
            before,
            "seed {seed}: the template changed"
        );
        let bytes = fs.close().unwrap().unwrap().into_vec().unwrap();
        fsck(&tmp, &format!("seed {seed}"), &bytes);
        // Remounted: the same tree, the same inode numbers.
        let fs = mount(MemDisk::new(bytes));
        let view = OverlayFs::new(fs.clone(), guest, tmpl).unwrap();
        let want = dump(&model, model.root());
        inos.check(
            &format!("seed {seed} remounted"),
            &dump(&view, view.root()),
            &want,
        );
    }
}

type CutFs = Ext4Fs<ReorderDisk<MemDisk<'static>>>;

/// The copy-ups under test, each followed by an fsync: a chmod deep in the template (its
/// directories copied, then the file's metadata), a one-byte write into the middle of the
/// template's 70,000-byte file (its data copied), and a write to a template file with two
/// links (one copy for both names).
fn copy_ups(fs: &Arc<CutFs>) {
    let (guest, tmpl) = roots(&**fs);
    let Ok(view) = OverlayFs::new(fs.clone(), guest, tmpl) else {
        return;
    };
    let root = view.root();
    let Ok(deep) = resolve(&view, root, "/etc/sub/deep/file") else {
        return;
    };
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    if view.setattr(deep, &chmod).is_err() || view.fsync(deep, false).is_err() {
        return;
    }
    for (path, off, byte) in [("/etc/passwd", 30_000, b"X"), ("/a", 0, b"Y")] {
        let Ok(ino) = resolve(&view, root, path) else {
            return;
        };
        if view.write(ino, off, byte).is_err() || view.fsync(ino, false).is_err() {
            return;
        }
    }
}

fn read_all(fs: &dyn Filesystem, root: u64, path: &str) -> (u64, Vec<u8>) {
    let ino = resolve(fs, root, path).unwrap();
    let size = fs.getattr(ino).unwrap().size as usize;
    let mut buf = vec![0u8; size];
    assert_eq!(fs.read(ino, 0, &mut buf).unwrap(), size, "{path}");
    (ino, buf)
}

fn writes(fs: &CutFs) -> u64 {
    fs.with_engine(|e| e.device_mut().writes()).unwrap()
}

#[test]
fn power_cut_at_every_write_of_a_copy_up() {
    let tmp = pvfs_tests::ext4img::tmpdir("p9-template-crash");
    let image = template_image(&tmp);
    let template: Vec<u8> = {
        let fs = mount(MemDisk::new(image.clone()));
        let (_, tmpl) = roots(&*fs);
        let ino = resolve(&*fs, tmpl, "/etc/passwd").unwrap();
        let mut buf = vec![0u8; 70_000];
        assert_eq!(fs.read(ino, 0, &mut buf).unwrap(), 70_000);
        buf
    };
    let mut written = template.clone();
    written[30_000] = b'X';
    // The uncut run, counting its writes.
    let total = {
        let fs = mount(ReorderDisk::new(MemDisk::new(image.clone())));
        let before = writes(&fs);
        copy_ups(&fs);
        writes(&fs) - before
    };
    assert!(total > 5, "the copy-up wrote only {total} times");
    let mut seen = [0usize; 2];
    for n in 0..total {
        let fs = mount(ReorderDisk::new(MemDisk::new(image.clone())));
        fs.with_engine(|e| e.device_mut().cut_power_after_writes(n));
        copy_ups(&fs);
        let ext4 = Arc::try_unwrap(fs)
            .ok()
            .and_then(Ext4Fs::into_inner)
            .expect("the view still holds the engine");
        let crashed = ext4.into_device().crash(n).unwrap().into_vec().unwrap();
        // A read-write mount replays the journal; then the view must show one of the two.
        let fs = mount(MemDisk::new(crashed));
        let (guest, tmpl) = roots(&*fs);
        let view = OverlayFs::new(fs.clone(), guest, tmpl).unwrap();
        let root = view.root();
        let (ino, buf) = read_all(&view, root, "/etc/passwd");
        let a = view.getattr(ino).unwrap();
        assert_eq!(a.mode, mode::S_IFREG | 0o644, "cut after {n}");
        if buf == template {
            seen[0] += 1;
        } else if buf == written {
            seen[1] += 1;
        } else {
            let at = buf.iter().zip(&template).position(|(a, b)| a != b);
            panic!("cut after {n} of {total} writes: a torn file (first difference at {at:?})");
        }
        let (dino, data) = read_all(&view, root, "/etc/sub/deep/file");
        let m = view.getattr(dino).unwrap().mode;
        assert_eq!(data, b"deep data", "cut after {n}");
        assert!(
            m == mode::S_IFREG | 0o640 || m == mode::S_IFREG | 0o600,
            "cut after {n}: {m:o}"
        );
        let (a1, d1) = read_all(&view, root, "/a");
        let (a2, d2) = read_all(&view, root, "/etc/b");
        assert_eq!((a1, &d1), (a2, &d2), "cut after {n}: the two links differ");
        assert!(
            d1 == b"linked twice" || d1 == b"Yinked twice",
            "cut after {n}: {d1:?}"
        );
        assert_eq!(
            read_all(&*fs, tmpl, "/etc/passwd").1,
            template,
            "cut after {n}"
        );
        assert_eq!(
            read_all(&*fs, tmpl, "/a").1,
            b"linked twice",
            "cut after {n}"
        );
        drop(view);
        let bytes = fs.close().unwrap().unwrap().into_vec().unwrap();
        fsck(&tmp, &format!("cut after {n}"), &bytes);
    }
    println!(
        "{total} writes; after the cuts: the template's data {}, the whole copy {}",
        seen[0], seen[1]
    );
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
}
