//! Fuzz the FAT engine's on-disk parsers and its write path: mount the input as an image
//! (read-write, in memory), walk the tree (readdir, lookup, stat, file data), resume a
//! listing from every cookie of the root, then change it (create a file and a directory with
//! long names, write, extend, truncate, rename, unlink) and walk it again. Any outcome but a
//! panic or a hang is fine. Seeds: `fuzz/corpus/fat_image/` (FAT12 images from `mkfs.vfat`
//! with a few files and directories written by mtools).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pvfs_fs::block::{BlockDevice, MemDisk};
use pvfs_fs::fat::{Fat, Ino, ROOT_INO};

fn walk<D: BlockDevice>(fs: &mut Fat<D>, dir: Ino, depth: u32, budget: &mut u32) {
    let mut entries = Vec::new();
    let _ = fs.readdir(dir, 0, &mut |l| {
        entries.push((l.ino, l.name.clone(), l.dir));
        entries.len() < 64
    });
    for (ino, name, is_dir) in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let _ = fs.lookup(dir, &name);
        let _ = fs.stat(ino);
        if is_dir {
            if depth < 8 {
                walk(fs, ino, depth + 1, budget);
            }
        } else {
            let _ = fs.read(ino, 0, &mut [0u8; 4096]);
            let _ = fs.read(ino, 100_000, &mut [0u8; 512]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 1 << 20 {
        return;
    }
    let Ok(mut fs) = Fat::open(MemDisk::new(data.to_vec()), true) else {
        return;
    };
    let _ = fs.usage();
    let mut budget = 512;
    walk(&mut fs, ROOT_INO, 0, &mut budget);
    let mut cookies = Vec::new();
    let _ = fs.readdir(ROOT_INO, 0, &mut |l| {
        cookies.push(l.next);
        cookies.len() < 128
    });
    for c in cookies {
        let _ = fs.readdir(ROOT_INO, c, &mut |_| false);
    }
    if let Ok(f) = fs.create(ROOT_INO, "a new file with a long name ✓".as_bytes(), false, 0) {
        let _ = fs.write(f, 0, &[7u8; 5000]);
        let _ = fs.write(f, 20_000, b"tail");
        let _ = fs.truncate(f, 3000);
    }
    if let Ok(d) = fs.create(ROOT_INO, b"DIR", true, 0) {
        let _ = fs.rename(ROOT_INO, "a new file with a long name ✓".as_bytes(), d, b"moved");
        let _ = fs.create(d, b"x", false, 0);
    }
    let _ = fs.unlink(ROOT_INO, b"README.TXT", false);
    let _ = fs.unlink(ROOT_INO, b"dir", true);
    let _ = fs.sync();
    let mut budget = 512;
    walk(&mut fs, ROOT_INO, 0, &mut budget);
});
