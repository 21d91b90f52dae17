//! Images and read-back helpers shared by the ext4 namespace-operation tests (`ext4_rename`,
//! `ext4_orphans`, `ext4_special_files`, `ext4_dir_spread`, `ext4_namespace_model`).

use crate::ext4img;
use crate::wimg::{debugfs, mkfs};
use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::Ext4;
use std::fs;
use std::path::{Path, PathBuf};

/// A 16 MiB image made by `mkfs.ext4` with `block`-byte blocks and the options `extra`, in a
/// temporary directory named after `tag` and the block size.
pub fn image(tag: &str, block: u32, extra: &[&str]) -> PathBuf {
    image_mib(tag, block, 16, extra)
}

/// [`image`] of `mib` MiB.
pub fn image_mib(tag: &str, block: u32, mib: u64, extra: &[&str]) -> PathBuf {
    let dir = ext4img::tmpdir(&format!("namei-{tag}-{block}"));
    mkfs(&dir, "a.img", block, mib, extra)
}

/// What `debugfs`'s `stat` says of `what` in `img`.
pub fn stat(img: &Path, what: &str) -> String {
    String::from_utf8_lossy(&debugfs(img, &format!("stat {what}"))).into_owned()
}

/// `img` as ext4-view reads it.
pub fn view(img: &Path) -> ext4_view::Ext4 {
    ext4_view::Ext4::load(Box::new(fs::read(img).unwrap())).unwrap()
}

/// `img` opened read-only by the engine, from a copy in memory.
pub fn ro(img: &Path) -> Ext4<MemDisk<'static>> {
    Ext4::open(MemDisk::new(fs::read(img).unwrap())).unwrap()
}
