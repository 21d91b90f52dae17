//! What `pvfs image put` does the same on every file system: where `cp -a SRC DEST` puts SRC,
//! and a host directory's entries in the order they are copied. What each file system keeps
//! of a host file is its own (`ext4_put.rs`, `fatfs.rs`).

use crate::imagefs::{lookup_path, parent_of, ErrorKind, ImageFs};
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where `cp -a SRC DEST` puts host `src` (metadata `md`): into DEST when it is an existing
/// directory (as DEST/BASENAME(SRC)), else as DEST (whose parent must exist). Returns the
/// directory, the name in it, and the path shown in messages.
pub fn destination<F: ImageFs>(
    fs: &mut F,
    src: &Path,
    md: &Metadata,
    dest: &str,
) -> Result<(F::Ino, Vec<u8>, String), String> {
    match lookup_path(fs, dest) {
        Ok(ino) => {
            let a = fs.stat(ino).map_err(|e| format!("{dest}: {}", e.short()))?;
            if !a.is_dir() {
                if md.is_dir() {
                    return Err(format!(
                        "{dest}: cannot overwrite non-directory with directory"
                    ));
                }
                // A non-directory onto an existing non-directory: replaced, as by cp.
                let (parent, leaf) = parent_of(fs, dest)?;
                return Ok((parent, leaf, dest.to_string()));
            }
            let base = src
                .file_name()
                .ok_or_else(|| format!("{}: has no file name to copy to", src.display()))?;
            let shown = format!("{}/{}", dest.trim_end_matches('/'), base.to_string_lossy());
            Ok((ino, base.as_bytes().to_vec(), shown))
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            let (parent, leaf) = parent_of(fs, dest)?;
            Ok((parent, leaf, dest.to_string()))
        }
        Err(e) => Err(format!("{dest}: {}", e.short())),
    }
}

/// One entry of a host directory being copied in.
pub struct HostChild {
    /// Its name.
    pub name: OsString,
    /// Its host path.
    pub path: PathBuf,
    /// The path shown in messages.
    pub shown: String,
}

/// The entries of host directory `src` (shown as `shown`), sorted by name.
pub fn host_children(src: &Path, shown: &str) -> Result<Vec<HostChild>, String> {
    let mut names: Vec<OsString> = std::fs::read_dir(src)
        .map_err(|e| format!("{}: {e}", src.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", src.display()))?;
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| HostChild {
            path: src.join(&name),
            shown: format!("{}/{}", shown.trim_end_matches('/'), name.to_string_lossy()),
            name,
        })
        .collect())
}

/// A host file's metadata, symlinks not followed.
pub fn host_metadata(path: &Path) -> Result<Metadata, String> {
    std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Refuses to copy the image into itself (`image_id` is its (st_dev, st_ino)).
pub fn not_the_image(src: &Path, md: &Metadata, image_id: (u64, u64)) -> Result<(), String> {
    if (md.dev(), md.ino()) == image_id {
        return Err(format!("{}: is the image itself", src.display()));
    }
    Ok(())
}
