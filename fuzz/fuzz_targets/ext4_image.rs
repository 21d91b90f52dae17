//! Fuzz the ext4 engine's on-disk parsers: mount the input as an image, then walk the tree
//! (readdir, lookup, getattr, file data, symlinks, xattrs), resume a readdir from every
//! cookie of the root, and look up a few paths. Any outcome but a panic or a hang is fine.
//! Seeds: `fuzz/corpus/ext4_image/` (64 KiB images from `mkfs.ext4 -b 1024 -N 32 -d`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::{Ext4, Options, ROOT_INO};

fuzz_target!(|data: &[u8]| {
    let opts = Options {
        cache_bytes: 64 << 10,
    };
    let Ok(mut fs) = Ext4::open_with(MemDisk::borrowed(data), &opts) else {
        return;
    };
    let _ = fs.statfs();
    let _ = fs.scan(4096, 1 << 16);
    let mut cookies = Vec::new();
    let _ = fs.readdir(ROOT_INO, 0, |e| {
        cookies.push(e.next_cookie);
        cookies.len() < 256
    });
    for c in cookies {
        let _ = fs.readdir(ROOT_INO, c, |_| false);
    }
    for p in [
        &b"d/f"[..],
        b"s",
        b"longlink",
        b"big",
        b"lost+found",
        b"d/e12",
    ] {
        if let Ok(ino) = fs.lookup_path(p) {
            let _ = fs.getattr(ino);
            let _ = fs.readlink(ino);
            let _ = fs.read(ino, 0, &mut [0u8; 512]);
            let _ = fs.data_ranges(ino);
        }
    }
});
