//! The ext4 engine's write path on hostile images: mount the input read-write, run a short
//! sequence of operations the input chooses (create, mkdir, write, truncate, unlink, rename,
//! setxattr, symlink, link, sync, grow into the device's spare 256 KiB), then close. Errors
//! are expected; a panic or a hang is not.
//!
//! Input: the image, whose last 256 bytes are also the operations (4 bytes each: kind and
//! three arguments; an image's last blocks are usually free, so a seed is an image with 256
//! bytes of operations appended). Seeds: `fuzz/corpus/ext4_write/`, the `ext4_image` seeds
//! with operations appended.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::{Ext4, Options, RenameFlags, XattrSet, ROOT_INO};

const OPS_BYTES: usize = 256;
/// Device space past the image, which the grow operation may take.
const SPARE_BYTES: usize = 256 << 10;
const NAMES: [&[u8]; 6] = [b"a", b"b", b"dir", b"lost+found", b"d", b"f"];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2048 + OPS_BYTES {
        return;
    }
    let ops = &data[data.len() - OPS_BYTES..];
    let opts = Options {
        cache_bytes: 64 << 10,
    };
    // The device is larger than the image, for `grow`.
    let mut disk = data.to_vec();
    disk.resize(data.len() + SPARE_BYTES, 0);
    let Ok(mut fs) = Ext4::open_rw(MemDisk::new(disk), &opts) else {
        return;
    };
    // Inodes the sequence can name: the root, and what it looked up or made.
    let mut inos = vec![ROOT_INO];
    for n in NAMES {
        if let Ok(i) = fs.lookup(ROOT_INO, n) {
            inos.push(i);
        }
    }
    let buf = [0x5au8; 4096];
    for op in ops.chunks_exact(4) {
        let (kind, a, b, c) = (op[0], op[1], op[2], op[3]);
        let ino = inos[usize::from(a) % inos.len()];
        let other = inos[usize::from(c) % inos.len()];
        let name = NAMES[usize::from(b) % NAMES.len()];
        let made = match kind % 12 {
            0 => fs.create(ino, name, 0o644, 0, 0).ok(),
            1 => fs.mkdir(ino, name, 0o755, 0, 0).ok(),
            2 => {
                let off = u64::from(b) * 1000 + u64::from(c) * 65_536;
                let len = (usize::from(c) * 37) % buf.len();
                let _ = fs.write(ino, off, &buf[..len]);
                None
            }
            3 => {
                let _ = fs.truncate(ino, u64::from(b) * 777 + (u64::from(c) << 20));
                None
            }
            4 => {
                let _ = fs.unlink(ino, name);
                None
            }
            5 => {
                let flags = RenameFlags {
                    noreplace: c & 1 != 0,
                    exchange: c & 2 != 0,
                };
                let to = NAMES[usize::from(c >> 2) % NAMES.len()];
                let _ = fs.rename(ino, name, other, to, flags);
                None
            }
            6 => {
                let how = [XattrSet::Any, XattrSet::Create, XattrSet::Replace][usize::from(c % 3)];
                let _ = fs.set_xattr(ino, b"user.x", &buf[..usize::from(b) * 8], how);
                None
            }
            7 => fs.symlink(ino, name, &NAMES[usize::from(c) % NAMES.len()][..], 0, 0).ok(),
            8 => {
                let _ = fs.link(other, ino, name);
                None
            }
            9 => fs.lookup(ino, name).ok(),
            10 => {
                let by = u64::from(b) << (c % 12);
                let _ = fs.grow(fs.superblock().blocks_count.saturating_add(by));
                None
            }
            _ => {
                let _ = fs.sync();
                None
            }
        };
        if let Some(i) = made {
            if inos.len() < 64 {
                inos.push(i);
            }
        }
    }
    let _ = fs.statfs();
    let _ = fs.close();
});
