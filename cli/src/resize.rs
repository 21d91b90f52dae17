//! `pvfs image resize IMAGE SIZE`: grow an image file and the ext4 file system in it, with
//! the engine's online grow (`Ext4::grow`), the code pvfs runs when its disk grows.
//!
//! The file is extended to SIZE first (never shortened), then the file system grown to the
//! whole blocks it holds. Refused before anything changes: a SIZE smaller than the file
//! system (pvfs does not shrink), and one past what the file system can count
//! (`Error::GrowLimit`, `Ext4::grow_limit`; past its reserved descriptor blocks the engine
//! converts it to meta_bg, as Linux does). If the grow fails after the file was extended, the
//! file gets its old length back. Output (stdout) and errors: `docs/pvfs-image.md`.

use crate::edit::parse_size;
use crate::ext4fs::{emsg, with_ext4};
use pvfs_fs::ext4::Error;
use std::fs::OpenOptions;
use std::path::Path;

/// Grow `image` to `size` (bytes, or with a K, M, G or T suffix); the report printed.
pub fn run(image: &Path, size: &str) -> Result<String, String> {
    let name = image.display();
    let bytes = parse_size(size)
        .ok_or_else(|| format!("{size}: not a size (bytes, or with K, M, G or T)"))?;
    let (bs, old, limit) = {
        let mut fs = pvfs_fs::host::open_image(image).map_err(|e| e.to_string())?;
        let bs = u64::from(fs.superblock().block_size());
        let old = fs.superblock().blocks_count;
        let limit = fs
            .grow_limit()
            .map_err(|e| format!("{name}: {}", emsg(&e)))?;
        (bs, old, limit)
    };
    let want = bytes / bs;
    if want < old {
        return Err(format!(
            "{name}: cannot shrink the file system from {} to {bytes} bytes (pvfs only grows)",
            old * bs
        ));
    }
    if want > limit {
        let e = Error::GrowLimit { max_blocks: limit };
        return Err(format!("{name}: {} ({} bytes)", emsg(&e), limit * bs));
    }
    let mut file = OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(|e| format!("{name}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("{name}: {e}"))?;
    // A block device (an LV, a loop device) has the size it has: its metadata says 0, its end
    // is where it ends, and only its owner can make it bigger.
    if std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) {
        use std::io::{Seek, SeekFrom};
        let dev = file
            .seek(SeekFrom::End(0))
            .map_err(|e| format!("{name}: {e}"))?;
        if dev < bytes {
            return Err(format!(
                "{name}: the device holds {dev} bytes, fewer than {bytes}; grow the device first"
            ));
        }
    }
    let len = if meta.file_type().is_file() {
        meta.len()
    } else {
        bytes
    };
    if len < bytes {
        file.set_len(bytes)
            .map_err(|e| format!("{name}: extending to {bytes} bytes: {e}"))?;
    }
    let grown = with_ext4(image, |fs| {
        fs.grow(want).map_err(|e| format!("{name}: {}", emsg(&e)))
    });
    match grown {
        Ok(blocks) => Ok(format!(
            "block size: {bs}\nold blocks: {old}\nblocks: {blocks}\nsize: {}\n",
            blocks * bs
        )),
        Err(e) => {
            if len < bytes {
                let _ = file.set_len(len);
            }
            Err(e)
        }
    }
}
