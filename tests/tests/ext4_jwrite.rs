//! The journal the writer keeps is real jbd2: an image cut right after a commit (before the
//! checkpoint) is replayed by `e2fsck -fy`, by the Linux kernel (loop mount) and by our own
//! read-write mount to the same tree, which is the tree as of that commit. The log wraps
//! around the journal many times and stays consistent; an unclosed mount is replayed, not
//! refused; a journal left needing recovery by the Linux kernel is replayed by us like
//! e2fsck does.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::{BlockDevice, DevError, MemDisk, QueueDisk};
use pvfs_fs::ext4::{Error, Ext4, Options, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::{e2fsck_clean, engine_tree, mkfs, Tree, CLOCK};
use std::fs;
use std::path::Path;
use std::process::Command;

const COMMIT_HEAD: [u8; 8] = [0xC0, 0x3B, 0x39, 0x98, 0, 0, 0, 2];

/// A memory disk whose power is cut right after the `cut_at`-th jbd2 commit block is written:
/// later writes and flushes fail and are not applied.
struct CutAfterCommit {
    inner: MemDisk<'static>,
    cut_at: Option<u32>,
    commits: u32,
    dead: bool,
    /// Device sectors of the commit blocks written, in order.
    commit_lbas: Vec<u64>,
}

impl CutAfterCommit {
    fn new(bytes: Vec<u8>, cut_at: Option<u32>) -> Self {
        CutAfterCommit {
            inner: MemDisk::new(bytes),
            cut_at,
            commits: 0,
            dead: false,
            commit_lbas: Vec::new(),
        }
    }
}

impl BlockDevice for CutAfterCommit {
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError> {
        self.inner.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), DevError> {
        if self.dead {
            return Err(DevError::Io { lba, code: -5 });
        }
        self.inner.write(lba, buf, fua)?;
        if buf.len() >= 8 && buf[..8] == COMMIT_HEAD {
            self.commits += 1;
            self.commit_lbas.push(lba);
            if Some(self.commits) == self.cut_at {
                self.dead = true;
            }
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DevError> {
        if self.dead {
            return Err(DevError::Io { lba: 0, code: -5 });
        }
        Ok(())
    }
}

/// The tree under a host directory (a kernel mount).
fn host_tree(root: &Path) -> Tree {
    let mut t = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = format!("/{}", path.strip_prefix(root).unwrap().display());
            if rel == "/lost+found" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                t.insert(rel, None);
                stack.push(path);
            } else {
                t.insert(rel, Some(fs::read(&path).unwrap()));
            }
        }
    }
    t
}

/// `e2fsck -fy` on a copy of `bytes`: the recovered image (exit 0 or 1 accepted: "fixed" is
/// what a journal replay reports), which must then be clean.
fn e2fsck_replay(dir: &Path, name: &str, bytes: &[u8]) -> Vec<u8> {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    let out = Command::new("e2fsck").arg("-fy").arg(&p).output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "e2fsck -fy: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    e2fsck_clean(&p);
    fs::read(&p).unwrap()
}

/// Our replay: a read-write mount and a clean close; the result must pass `e2fsck -fn`.
fn our_replay(dir: &Path, name: &str, bytes: &[u8]) -> Vec<u8> {
    let fs = Ext4::open_rw(MemDisk::new(bytes.to_vec()), &Options::default()).unwrap();
    let out = fs.close().unwrap().into_vec().unwrap();
    let p = dir.join(name);
    fs::write(&p, &out).unwrap();
    e2fsck_clean(&p);
    out
}

fn needs_recovery(bytes: &[u8]) -> bool {
    bytes[1024 + 0x60] & 0x4 != 0
}

/// Kernel mounts are taken one at a time (tests run in parallel threads).
static MOUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Unmount, retrying while something (a device scan) still holds the mount for a moment.
fn umount(mnt: &Path) {
    for _ in 0..50 {
        let out = Command::new("umount").arg(mnt).output().unwrap();
        if out.status.success() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ext4img::run(Command::new("umount").arg(mnt));
}

/// `mount -o loop img mnt`: false if it fails (as where loop mounts are not permitted).
fn loop_mount(img: &Path, mnt: &Path) -> bool {
    Command::new("mount")
        .args(["-o", "loop"])
        .arg(img)
        .arg(mnt)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Loop-mount a copy of `bytes` read-write, read its tree, unmount. `None` (with a message)
/// when this host does not allow loop mounts at all (checked with a pristine image).
fn kernel_tree(dir: &Path, bytes: &[u8], pristine: &Path) -> Option<(Tree, Vec<u8>)> {
    let _one = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let mnt = dir.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let probe = dir.join("probe.img");
    fs::copy(pristine, &probe).unwrap();
    if !loop_mount(&probe, &mnt) {
        pvfs_tests::skip("the Linux kernel mount check (loop mount not permitted here)");
        return None;
    }
    umount(&mnt);
    let img = dir.join("kernel.img");
    fs::write(&img, bytes).unwrap();
    // The kernel must take the crashed image.
    ext4img::run(
        Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt),
    );
    let t = host_tree(&mnt);
    umount(&mnt);
    e2fsck_clean(&img);
    Some((t, fs::read(&img).unwrap()))
}

/// Operations for one step `i` of the workloads below, mirrored in `model`.
fn step(fs: &mut Ext4<CutAfterCommit>, i: usize, model: &mut Tree) -> Result<(), Error> {
    let d = match i % 7 {
        0 => "",
        k => &format!("/d{k}"),
    };
    if !d.is_empty() && !model.contains_key(d) {
        fs.mkdir(ROOT_INO, &d.as_bytes()[1..], 0o755, 0, 0)?;
        model.insert(d.to_string(), None);
    }
    let dino = if d.is_empty() {
        ROOT_INO
    } else {
        fs.lookup(ROOT_INO, &d.as_bytes()[1..])?
    };
    let name = format!("f{i}");
    let data = ext4img::Rng::new(i as u64 + 1).bytes(300 + (i * 977) % 5000);
    let ino = fs.create(dino, name.as_bytes(), 0o644, 0, 0)?;
    model.insert(format!("{d}/{name}"), Some(Vec::new()));
    fs.write(ino, 0, &data)?;
    model.insert(format!("{d}/{name}"), Some(data));
    if i % 3 == 2 {
        let old = format!("f{}", i - 2);
        let od = match (i - 2) % 7 {
            0 => String::new(),
            k => format!("/d{k}"),
        };
        let odino = if od.is_empty() {
            ROOT_INO
        } else {
            fs.lookup(ROOT_INO, &od.as_bytes()[1..])?
        };
        fs.unlink(odino, old.as_bytes())?;
        model.remove(&format!("{od}/{old}"));
    }
    Ok(())
}

/// Run `steps` steps with a sync after each on a copy of `base`, cutting the power after
/// commit `cut_at`. Returns the image, the model as of the last completed sync, the number of
/// commits and the sectors of the commit blocks.
fn run(base: &[u8], steps: usize, cut_at: Option<u32>) -> (Vec<u8>, Tree, u32, Vec<u64>) {
    let dev = CutAfterCommit::new(base.to_vec(), cut_at);
    let mut fs = Ext4::open_rw(dev, &Options::default()).unwrap();
    fs.set_clock(CLOCK);
    let mut model = Tree::new();
    let mut synced = Tree::new();
    for i in 0..steps {
        let r = step(&mut fs, i, &mut model).and_then(|()| fs.sync());
        match r {
            Ok(()) => synced = model.clone(),
            Err(e) => {
                assert!(cut_at.is_some(), "{e:?}");
                // The commit of this sync is on disk: its state is the model now.
                synced = model.clone();
                break;
            }
        }
    }
    let dev = if cut_at.is_some_and(|c| fs.device_mut().commits >= c) {
        assert!(fs.sync().is_err(), "an aborted journal must refuse to sync");
        fs.into_device()
    } else {
        fs.close().unwrap()
    };
    let (commits, lbas) = (dev.commits, dev.commit_lbas);
    (dev.inner.into_vec().unwrap(), synced, commits, lbas)
}

fn crash_after_commit(block: u32, extra: &[&str]) {
    let dir = ext4img::tmpdir(&format!("jwrite-commit-{block}-{}", extra.len()));
    let img = mkfs(&dir, "base.img", block, 16, extra);
    let base = fs::read(&img).unwrap();
    // Mount (1 commit) and 12 synced steps; the power goes right after the 10th commit.
    let (crashed, model, commits, _) = run(&base, 12, Some(10));
    assert_eq!(commits, 10);
    assert!(needs_recovery(&crashed), "needs_recovery must stay set");
    let ours = our_replay(&dir, "ours.img", &crashed);
    let theirs = e2fsck_replay(&dir, "e2fsck.img", &crashed);
    assert!(!needs_recovery(&ours) && !needs_recovery(&theirs));
    let t_ours = engine_tree(&ours);
    assert_eq!(t_ours.len(), model.len());
    assert!(
        t_ours == model,
        "our replay differs from the committed state"
    );
    assert!(
        engine_tree(&theirs) == model,
        "e2fsck's replay differs from the committed state"
    );
    // ext4-view reads our replay the same way.
    let view = ext4_view::Ext4::load(Box::new(ours.clone())).unwrap();
    for (p, c) in &model {
        if let Some(c) = c {
            assert!(view.read(p.as_str()).unwrap() == *c, "{p}");
        }
    }
    if let Some((t, _)) = kernel_tree(&dir, &crashed, &img) {
        assert!(
            t == model,
            "the kernel's replay differs from the committed state"
        );
    }
}

#[test]
fn crash_after_commit_1k_csum_v3() {
    crash_after_commit(1024, &[]);
}

#[test]
fn crash_after_commit_4k_csum_v3() {
    crash_after_commit(4096, &[]);
}

#[test]
fn crash_after_commit_1k_no_checksums_32bit() {
    crash_after_commit(1024, &["-O", "^metadata_csum,^64bit"]);
}

/// Many small transactions: the log wraps around the 1024-block journal several times.
/// Cut right after several commits, among them ones whose log wraps around the end of the
/// journal: e2fsck and our replay agree with the model; the uncut run closes clean.
#[test]
fn journal_wraps_and_replays() {
    let dir = ext4img::tmpdir("jwrite-wrap");
    let img = mkfs(&dir, "base.img", 1024, 8, &[]);
    let base = fs::read(&img).unwrap();
    let steps = 400;
    let (full, model, commits, lbas) = run(&base, steps, None);
    let p = dir.join("full.img");
    fs::write(&p, &full).unwrap();
    e2fsck_clean(&p);
    assert!(engine_tree(&full) == model);
    // Where the log lives: journal block → file-system block (mkfs may split the journal).
    let out = Command::new("debugfs")
        .args(["-R", "blocks <8>"])
        .arg(&img)
        .output()
        .unwrap();
    let jmap: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|b| b.parse().unwrap())
        .collect();
    assert_eq!(jmap.len(), 1024);
    let j0 = jmap[0];
    let jsb = &full[(j0 * 1024) as usize..][..1024];
    let be = |o: usize| u32::from_be_bytes(jsb[o..o + 4].try_into().unwrap());
    let (maxlen, first, seq) = (be(0x10), be(0x14), be(0x18));
    assert_eq!(be(0x1C), 0, "journal left empty");
    assert!(seq > commits, "sequence counts the commits");
    let jpos = |lba: u64| jmap.iter().position(|&b| b == lba / 2).unwrap() as u32;
    // Commit blocks going backwards in the journal: the log wrapped.
    let wrapped: Vec<u32> = (1..lbas.len())
        .filter(|&k| jpos(lbas[k]) < jpos(lbas[k - 1]))
        .map(|k| k as u32 + 1)
        .collect();
    assert!(
        wrapped.len() >= 3,
        "the log must wrap several times: {wrapped:?}"
    );
    let mut cuts: Vec<u32> = (2..commits).step_by(40).collect();
    cuts.extend(&wrapped);
    let mut wraps_checked = 0;
    let mut checked = 0;
    for cut in cuts {
        let (crashed, model, c, lbas) = run(&base, steps, Some(cut));
        assert_eq!(c, cut);
        let pos = jpos(lbas[lbas.len() - 1]);
        assert!(pos >= first && pos < maxlen);
        let start = {
            let jsb = &crashed[(j0 * 1024) as usize..][..1024];
            u32::from_be_bytes(jsb[0x1C..0x20].try_into().unwrap())
        };
        if pos < start {
            wraps_checked += 1; // this transaction's log wraps around the end
        }
        let ours = our_replay(&dir, "ours.img", &crashed);
        assert!(engine_tree(&ours) == model, "cut {cut}: our replay");
        let theirs = e2fsck_replay(&dir, "e2fsck.img", &crashed);
        assert!(engine_tree(&theirs) == model, "cut {cut}: e2fsck replay");
        checked += 1;
    }
    println!("{checked} cuts checked, {wraps_checked} inside a wrapping transaction");
    assert!(
        wraps_checked > 0,
        "no cut hit a transaction wrapping the log"
    );
}

/// A journalled mount that is dropped without `close` leaves `needs_recovery` set; the next
/// read-write mount replays instead of refusing, and fsynced data is there.
#[test]
fn unclosed_mount_is_replayed_and_fsync_is_durable() {
    let dir = ext4img::tmpdir("jwrite-unclosed");
    let img = mkfs(&dir, "u.img", 4096, 16, &[]);
    let data = ext4img::Rng::new(5).bytes(70_000);
    let bytes = {
        let mut fs =
            Ext4::open_rw(MemDisk::new(fs::read(&img).unwrap()), &Options::default()).unwrap();
        let d = fs.mkdir(ROOT_INO, b"dir", 0o755, 0, 0).unwrap();
        let f = fs.create(d, b"file", 0o600, 0, 0).unwrap();
        fs.write(f, 0, &data).unwrap();
        fs.fsync(f).unwrap();
        assert!(fs.fsync(0).is_err());
        // Not synced: may or may not survive, but must not break anything.
        fs.create(ROOT_INO, b"late", 0o644, 0, 0).unwrap();
        fs.into_device().into_vec().unwrap()
    };
    assert!(needs_recovery(&bytes));
    let state = dir.join("state.img");
    fs::write(&state, &bytes).unwrap();
    let text = ext4img::dumpe2fs(&state);
    assert!(text.contains("needs_recovery"), "{text}");
    assert!(text.contains("Filesystem state:         clean"), "{text}");
    let ours = our_replay(&dir, "ours.img", &bytes);
    let t = engine_tree(&ours);
    assert!(t.get("/dir/file") == Some(&Some(data)));
    // A read-only mount still works without writing.
    let mut ro = Ext4::open(MemDisk::borrowed(&bytes)).unwrap();
    assert!(ro.lookup_path(b"/dir/file").is_ok());
}

/// A journal that the Linux kernel left needing recovery (file system shut down with
/// EXT4_IOC_SHUTDOWN after its log was flushed, so the transactions are in the log and not
/// checkpointed) is replayed by our read-write mount exactly as e2fsck replays it.
#[test]
fn kernel_journal_is_replayed_like_e2fsck() {
    let _one = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = ext4img::tmpdir("jwrite-kernel");
    let img = mkfs(&dir, "k.img", 1024, 16, &[]);
    let mnt = dir.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    if !loop_mount(&img, &mnt) {
        pvfs_tests::skip("replay of a kernel-written journal (loop mount not permitted here)");
        return;
    }
    let mut want = Tree::new();
    fs::create_dir(mnt.join("d")).unwrap();
    want.insert("/d".into(), None);
    for i in 0..20 {
        let data = ext4img::Rng::new(i + 40).bytes(100 + (i as usize * 3001) % 9000);
        fs::write(mnt.join(format!("d/f{i}")), &data).unwrap();
        want.insert(format!("/d/f{i}"), Some(data));
    }
    ext4img::run(&mut Command::new("sync"));
    // EXT4_IOC_SHUTDOWN (_IOR('X', 125, __u32)) with EXT4_GOING_FLAGS_LOGFLUSH.
    let shut = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import fcntl,os,struct\nfd=os.open('{}',os.O_RDONLY)\nfcntl.ioctl(fd,0x8004587D,struct.pack('I',1))",
            mnt.display()
        ))
        .output();
    umount(&mnt);
    let failed = match shut {
        Err(e) => Some(format!(
            "python3, which makes the shutdown ioctl, would not run: {e}"
        )),
        Ok(o) if !o.status.success() => Some(format!(
            "the EXT4_IOC_SHUTDOWN ioctl (through python3) failed: {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    };
    if let Some(why) = failed {
        pvfs_tests::skip(&format!("replay of a kernel-written journal ({why})"));
        return;
    }
    let crashed = fs::read(&img).unwrap();
    assert!(
        needs_recovery(&crashed),
        "the kernel left no journal to replay"
    );
    let ours = our_replay(&dir, "ours.img", &crashed);
    let theirs = e2fsck_replay(&dir, "e2fsck.img", &crashed);
    assert!(engine_tree(&theirs) == want, "e2fsck's replay");
    assert!(
        engine_tree(&ours) == want,
        "our replay differs from e2fsck's"
    );
}

/// Without any sync, thousands of creates dirty far more metadata than the 1024-block journal
/// holds (the cache alone would allow 4096 dirty blocks): the engine commits on its own at
/// operation boundaries, every transaction fits, and a cut after one of those commits
/// replays like e2fsck to a clean image holding a prefix of the files.
#[test]
fn large_change_sets_commit_in_pieces() {
    let dir = ext4img::tmpdir("jwrite-large");
    let img = mkfs(
        &dir,
        "l.img",
        1024,
        32,
        &[
            "-J",
            "size=1",
            "-N",
            "4096",
            "-U",
            "6f2a1c3e-8d4b-4e5f-9a0b-1c2d3e4f5a6b",
            "-E",
            "hash_seed=0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
        ],
    );
    let base = fs::read(&img).unwrap();
    let files = 2500;
    let go = |cut: Option<u32>| {
        let dev = CutAfterCommit::new(base.clone(), cut);
        let mut fs = Ext4::open_rw(dev, &Options::default()).unwrap();
        fs.set_clock(CLOCK);
        let mut done = 0;
        'outer: for d in 0..25 {
            let Ok(dino) = fs.mkdir(ROOT_INO, format!("d{d}").as_bytes(), 0o755, 0, 0) else {
                break;
            };
            for i in 0..files / 25 {
                let name = format!("file-{i:05}");
                let Ok(f) = fs.create(dino, name.as_bytes(), 0o644, 0, 0) else {
                    break 'outer;
                };
                if fs.write(f, 0, name.as_bytes()).is_err() {
                    break 'outer;
                }
                done += 1;
            }
        }
        (fs, done)
    };
    let (mut fs, done) = go(None);
    assert_eq!(done, files);
    let before_close = fs.device_mut().commits;
    assert!(
        before_close >= 3,
        "only {before_close} commits: the change set was not split"
    );
    let bytes = fs.close().unwrap().inner.into_vec().unwrap();
    let p = dir.join("done.img");
    fs::write(&p, &bytes).unwrap();
    e2fsck_clean(&p);
    let t = engine_tree(&bytes);
    assert_eq!(t.values().filter(|v| v.is_some()).count(), files);
    // Cut after the first commit the engine made on its own (the mount's is the first).
    let (fs, done) = go(Some(2));
    assert!(done < files);
    let crashed = fs.into_device().inner.into_vec().unwrap();
    let ours = our_replay(&dir, "ours.img", &crashed);
    let theirs = e2fsck_replay(&dir, "e2fsck.img", &crashed);
    let t = engine_tree(&ours);
    assert!(t == engine_tree(&theirs));
    let n = t.values().filter(|v| v.is_some()).count();
    // The operation the cut interrupted may have committed (its commit came first).
    assert!(
        n > 0 && n <= done + 1,
        "{n} files after the replay, {done} created"
    );
    let mut empty = 0;
    for (p, v) in &t {
        if let Some(c) = v {
            if c.is_empty() {
                empty += 1; // created by the interrupted operation, not written yet
            } else {
                assert_eq!(
                    c.as_slice(),
                    p.rsplit('/').next().unwrap().as_bytes(),
                    "{p}"
                );
            }
        }
    }
    assert!(empty <= 1);
}

/// File data written back in the background (posted writes while the writer goes on) ends up
/// exactly where `fsync` would have put it; a posted write that fails makes the next `fsync`
/// fail instead of claiming the data durable, and nothing half-done reaches the volume.
#[test]
fn background_write_back_is_durable_at_fsync_and_its_errors_reach_fsync() {
    let dir = ext4img::tmpdir("jwrite-posted");
    let img = mkfs(&dir, "p.img", 4096, 16, &[]);
    let base = fs::read(&img).unwrap();
    let data = ext4img::Rng::new(9).bytes(1 << 20);
    let write_file = |dev: QueueDisk<MemDisk<'static>>| {
        let mut fs = Ext4::open_rw(dev, &Options::default()).unwrap();
        fs.set_clock(CLOCK);
        let f = fs.create(ROOT_INO, b"big", 0o644, 0, 0).unwrap();
        let mut started = 0;
        for (i, chunk) in data.chunks(64 << 10).enumerate() {
            fs.write(f, (i as u64) << 16, chunk).unwrap();
            started += fs.start_write_back(16, 64).unwrap();
            fs.device_mut().reap();
        }
        (fs, f, started)
    };
    // Good disk: most of the data went out before fsync, and the image is right.
    let (mut fs, f, started) = write_file(QueueDisk::new(MemDisk::new(base.clone()), 64));
    assert!(started >= 200, "{started} of 256 blocks started early");
    fs.fsync(f).unwrap();
    let bytes = fs.close().unwrap().into_inner().into_vec().unwrap();
    let p = dir.join("good.img");
    fs::write(&p, &bytes).unwrap();
    e2fsck_clean(&p);
    assert!(engine_tree(&bytes).get("/big") == Some(&Some(data.clone())));
    // Every posted write fails: fsync reports it, and the volume still checks clean.
    let mut dev = QueueDisk::new(MemDisk::new(base), 64);
    dev.fail_posted(0..u64::MAX);
    let (mut fs, f, started) = write_file(dev);
    assert!(started > 0);
    assert!(fs.fsync(f).is_err(), "fsync after a failed posted write");
    let bytes = fs.into_device().into_inner().into_vec().unwrap();
    let p = dir.join("failed.img");
    fs::write(&p, &bytes).unwrap();
    e2fsck_clean(&p);
    assert!(!engine_tree(&bytes).contains_key("/big"));
}

/// A fresh 32 MiB image (4 KiB blocks) holding one 4 MiB file `/name` of random bytes (seed
/// `seed`), written and closed by the engine: the test directory, the file's data and the
/// image.
fn image_with_file(tag: &str, name: &[u8], seed: u64) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let dir = ext4img::tmpdir(tag);
    let img = mkfs(&dir, "base.img", 4096, 32, &[]);
    let data = ext4img::Rng::new(seed).bytes(4 << 20);
    let mut fs = Ext4::open_rw(MemDisk::new(fs::read(&img).unwrap()), &Options::default()).unwrap();
    fs.set_clock(CLOCK);
    let f = fs.create(ROOT_INO, name, 0o644, 0, 0).unwrap();
    fs.write(f, 0, &data).unwrap();
    let bytes = fs.close().unwrap().into_vec().unwrap();
    (dir, data, bytes)
}

/// Random-access reads on a device with a queue: `start_read` starts the missing blocks as
/// posted reads and says the read would wait, once; after the disk completes, the read finds
/// everything in memory.
#[test]
fn start_read_fetches_missing_data_in_the_background_and_says_when_a_read_would_wait() {
    let (dir, data, bytes) = image_with_file("jwrite-startread", b"rand", 12);
    // A device without a queue never makes a read wait.
    {
        let mut fs = Ext4::open_rw(MemDisk::new(bytes.clone()), &Options::default()).unwrap();
        let f = fs.lookup_path(b"/rand").unwrap();
        assert!(!fs.start_read(f, 1 << 20, 128 << 10).unwrap());
    }
    let mut fs =
        Ext4::open_rw(QueueDisk::new(MemDisk::new(bytes), 16), &Options::default()).unwrap();
    fs.set_clock(CLOCK);
    let f = fs.lookup_path(b"/rand").unwrap();
    // Random 128 KiB pieces, in an order no readahead would guess.
    for &at in &[3u64 << 20, 1 << 20, (2 << 20) + (64 << 10), 0] {
        let len = 128u64 << 10;
        let misses = fs.cache().stats().misses;
        assert!(
            fs.start_read(f, at, len).unwrap(),
            "cold data at {at}: the read would wait"
        );
        let started = fs.device_mut().reads_started;
        assert!(started > 0);
        assert_eq!(
            fs.cache().stats().misses,
            misses,
            "no data block was read synchronously"
        );
        // Asked again before the disk finished: still waiting, and no second request.
        assert!(fs.start_read(f, at, len).unwrap());
        assert_eq!(
            fs.device_mut().reads_started,
            started,
            "the reads were started once"
        );
        fs.device_mut().reap();
        assert!(
            !fs.start_read(f, at, len).unwrap(),
            "fetched: the read would not wait"
        );
        let mut buf = vec![0u8; len as usize];
        assert_eq!(fs.read(f, at, &mut buf).unwrap(), len as usize);
        assert!(
            buf == data[at as usize..][..len as usize],
            "contents at {at}"
        );
        assert_eq!(
            fs.cache().stats().misses,
            misses,
            "the read found everything in memory"
        );
    }
    // Past the end of the file, nothing to wait for.
    assert!(!fs.start_read(f, 8 << 20, 4096).unwrap());
    let bytes = fs.close().unwrap().into_inner().into_vec().unwrap();
    let p = dir.join("after.img");
    fs::write(&p, &bytes).unwrap();
    e2fsck_clean(&p);
}

/// Sequential reads on a device with a queue read ahead: the data matches, most of it came
/// from posted reads, and a write into the window that was read ahead is what later reads see
/// (never the older data the readahead brought in).
#[test]
fn sequential_reads_read_ahead_and_see_later_writes() {
    let (dir, mut data, bytes) = image_with_file("jwrite-readahead", b"seq", 11);
    let mut fs =
        Ext4::open_rw(QueueDisk::new(MemDisk::new(bytes), 16), &Options::default()).unwrap();
    fs.set_clock(CLOCK);
    let f = fs.lookup_path(b"/seq").unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 128 << 10];
    let mut off = 0u64;
    loop {
        if off == 1 << 20 {
            // Overwrite 64 KiB ahead of the reader, inside the window already read ahead,
            // with a device batch in between (the write-back).
            let patch = vec![0x5A; 64 << 10];
            fs.write(f, off + (128 << 10), &patch).unwrap();
            data[(off as usize + (128 << 10))..][..64 << 10].copy_from_slice(&patch);
            fs.sync().unwrap();
        }
        let n = fs.read(f, off, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        off += n as u64;
        fs.device_mut().reap();
    }
    assert!(got == data, "contents differ");
    let started = fs.device_mut().reads_started;
    let misses = fs.cache().stats().misses;
    eprintln!("posted reads {started}, blocks read synchronously {misses}");
    assert!(started >= 8, "{started} posted reads");
    // 1024 blocks of file data: only the first window (and metadata) is read synchronously.
    assert!(misses < 200, "{misses} blocks read synchronously");
    let bytes = fs.close().unwrap().into_inner().into_vec().unwrap();
    let p = dir.join("after.img");
    fs::write(&p, &bytes).unwrap();
    e2fsck_clean(&p);
}
