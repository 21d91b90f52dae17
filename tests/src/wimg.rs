//! Helpers for write-path tests: blank images from `mkfs.ext4`, the `e2fsck -fn` and
//! `debugfs` oracles, and a read-write engine with a fixed clock.

use crate::ext4img;
use pvfs_fs::block::{BlockDevice, FileDisk, MemDisk};
use pvfs_fs::ext4::{Ext4, FileType, Ino, Options, Timestamp, ROOT_INO};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A `mib` MiB image `dir/name` made by `mkfs.ext4 -q -F -b block extra…` (default features).
pub fn mkfs(dir: &Path, name: &str, block: u32, mib: u64, extra: &[&str]) -> PathBuf {
    let img = dir.join(name);
    let f = fs::File::create(&img).expect("create image file");
    f.set_len(mib << 20).expect("size image file");
    drop(f);
    ext4img::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", &block.to_string()])
            .args(extra)
            .arg(&img),
    );
    img
}

/// `mkfs.ext4 -q -F extra… img size`: mkfs.ext4 makes the file itself, `size` in its notation
/// (`8M`); with `-d TREE` among `extra` the image holds that tree. Default features.
pub fn mkfs_sized(img: &Path, size: &str, extra: &[&str]) {
    ext4img::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .args(extra)
            .arg(img)
            .arg(size),
    );
}

/// A symbolic link target of `len` bytes: letters, with a `/` as every `every`th byte, so that
/// no component is longer than `every - 1` bytes.
pub fn symlink_target(len: usize, every: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if i % every == every - 1 {
                b'/'
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect()
}

/// Output of `e2fsck -fn img`: `Ok(())` when clean, else the report.
pub fn e2fsck(img: &Path) -> Result<(), String> {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(img)
        .output()
        .expect("e2fsck must be installed (ci/host-deps.sh)");
    if out.status.code() == Some(0) {
        Ok(())
    } else {
        Err(format!(
            "e2fsck -fn exit {:?}:\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Panics with e2fsck's report unless `e2fsck -fn img` is clean.
pub fn e2fsck_clean(img: &Path) {
    if let Err(report) = e2fsck(img) {
        panic!("{report}");
    }
}

/// Output of `debugfs -R req img` (panics if debugfs fails to run).
pub fn debugfs(img: &Path, req: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .args(["-R", req])
        .arg(img)
        .output()
        .expect("debugfs must be installed (ci/host-deps.sh)");
    assert!(out.status.success(), "debugfs {req} failed");
    out.stdout
}

/// The names `read_dir` lists in the directory `dir`, in its order (`.` and `..` included).
pub fn dir_names<D: BlockDevice>(fs: &mut Ext4<D>, dir: Ino) -> Vec<Vec<u8>> {
    fs.read_dir(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// The fixed clock write tests stamp inodes with.
pub const CLOCK: Timestamp = Timestamp {
    sec: 1_700_000_000,
    nsec: 123_456_789,
};

/// `img` mounted read-write with [`CLOCK`].
pub fn open_rw(img: &Path) -> Ext4<FileDisk> {
    let disk = FileDisk::open_rw(img).expect("open image read-write");
    let mut fs = Ext4::open_rw(disk, &Options::default()).expect("mount read-write");
    fs.set_clock(CLOCK);
    fs
}

/// Path (`/a/b`) → `None` for a directory, `Some(contents)` for anything else; without
/// `lost+found`.
pub type Tree = BTreeMap<String, Option<Vec<u8>>>;

/// The tree of an image as the engine reads it (read-only mount).
pub fn engine_tree(bytes: &[u8]) -> Tree {
    let mut fs = Ext4::open(MemDisk::borrowed(bytes)).unwrap();
    let mut t = Tree::new();
    let mut stack: Vec<(String, Ino)> = vec![(String::new(), ROOT_INO)];
    while let Some((p, dir)) = stack.pop() {
        for e in fs.read_dir(dir).unwrap() {
            let name = String::from_utf8(e.name.clone()).unwrap();
            if name == "." || name == ".." || (p.is_empty() && name == "lost+found") {
                continue;
            }
            let path = format!("{p}/{name}");
            if e.kind == FileType::Directory {
                t.insert(path.clone(), None);
                stack.push((path, e.ino));
            } else {
                let size = fs.getattr(e.ino).unwrap().size as usize;
                let mut b = vec![0u8; size];
                assert_eq!(fs.read(e.ino, 0, &mut b).unwrap(), size, "{path}");
                t.insert(path, Some(b));
            }
        }
    }
    t
}

/// `None` when this process can loop-mount, else why not (probed once per process).
pub fn cannot_mount() -> Option<&'static str> {
    static WHY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    WHY.get_or_init(|| {
        let dir = ext4img::tmpdir("loop-probe");
        let img = mkfs(&dir, "probe.img", 4096, 8, &[]);
        let r = LoopMount::new(&img, &dir.join("mnt"), true).err();
        let _ = fs::remove_dir_all(&dir);
        r
    })
    .as_deref()
}

/// A loop mount of an ext4 image, unmounted on drop.
pub struct LoopMount(PathBuf);

impl LoopMount {
    /// `mount -t ext4 -o loop[,ro] img at` (creating `at`); `Err` carries mount's message.
    pub fn new(img: &Path, at: &Path, read_only: bool) -> Result<Self, String> {
        fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let opts = if read_only { "loop,ro" } else { "loop" };
        let out = Command::new("mount")
            .args(["-t", "ext4", "-o", opts])
            .arg(img)
            .arg(at)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if out.status.success() {
            Ok(LoopMount(at.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for LoopMount {
    /// `umount`, retried while the mount is briefly busy (udev probes a new loop device), then
    /// detached lazily so that no mount outlives the run.
    fn drop(&mut self) {
        for _ in 0..50 {
            let done = Command::new("umount")
                .arg(&self.0)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if done {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("umount {}: busy, detaching lazily", self.0.display());
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
