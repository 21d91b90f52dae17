//! Host-only helpers (feature `std`): open an image file, and copy a tree out of an image the
//! way `cp -a SRC DEST` does when `DEST` does not exist yet.

use crate::block::{BlockDevice, FileDisk};
use crate::ext4::{Attr, Error, Ext4, FileType, Ino, Timestamp};
use std::collections::HashMap;
use std::fmt;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::vec::Vec;

/// An error while copying out, with the path it concerns.
#[derive(Debug)]
pub enum HostError {
    /// The engine failed on the image path.
    Fs(Error, String),
    /// The host file system failed on the destination path.
    Io(std::io::Error, PathBuf),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Fs(e, p) => write!(f, "{p}: {e}"),
            HostError::Io(e, p) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for HostError {}

/// Open an ext4 image file read-only.
pub fn open_image(path: &Path) -> Result<Ext4<FileDisk>, HostError> {
    let disk = FileDisk::open(path).map_err(|e| HostError::Io(e, path.to_path_buf()))?;
    Ext4::open(disk).map_err(|e| HostError::Fs(e, path.display().to_string()))
}

/// What [`extract`] copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExtractStats {
    /// Regular files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Extra hard links created.
    pub hardlinks: u64,
    /// Data bytes written (holes excluded).
    pub bytes: u64,
    /// Device nodes, FIFOs and sockets skipped (std cannot create them).
    pub skipped: Vec<String>,
}

fn to_systime(t: Timestamp) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(t.sec, t.nsec)
}

struct Extractor<'a, D: BlockDevice> {
    fs: &'a mut Ext4<D>,
    links: HashMap<Ino, PathBuf>,
    stats: ExtractStats,
    buf: Vec<u8>,
}

/// Copy `src` (a path inside the image) to `dest`, which must not exist: directories
/// recursively, regular files (sparse: holes are skipped with a seek), symlinks, and hard links
/// as links; the volume's `/.pvfs` (the store of shared contents) is left out, while
/// deduplicated files are copied with their contents. Keeps permission bits, mtime and atime (symlinks' too), and uid/gid when the
/// process may change them (ownership errors are ignored, as `cp -a` does for non-root).
pub fn extract<D: BlockDevice>(
    fs: &mut Ext4<D>,
    src: &str,
    dest: &Path,
) -> Result<ExtractStats, HostError> {
    let ino = fs
        .lookup_path(src.as_bytes())
        .map_err(|e| HostError::Fs(e, src.into()))?;
    if std::fs::symlink_metadata(dest).is_ok() {
        return Err(HostError::Io(
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "destination exists"),
            dest.to_path_buf(),
        ));
    }
    let mut x = Extractor {
        fs,
        links: HashMap::new(),
        stats: ExtractStats::default(),
        buf: Vec::new(),
    };
    x.copy(ino, src.to_string(), dest)?;
    Ok(x.stats)
}

impl<D: BlockDevice> Extractor<'_, D> {
    fn fs_err(&self, e: Error, p: &str) -> HostError {
        HostError::Fs(e, p.to_string())
    }

    fn copy(&mut self, ino: Ino, src: String, dest: &Path) -> Result<(), HostError> {
        let attr = self.fs.getattr(ino).map_err(|e| self.fs_err(e, &src))?;
        let io = |e: std::io::Error| HostError::Io(e, dest.to_path_buf());
        if attr.kind != FileType::Directory && attr.nlink > 1 {
            if let Some(first) = self.links.get(&ino) {
                std::fs::hard_link(first, dest).map_err(io)?;
                self.stats.hardlinks += 1;
                return Ok(());
            }
            self.links.insert(ino, dest.to_path_buf());
        }
        match attr.kind {
            FileType::Directory => {
                std::fs::create_dir(dest).map_err(io)?;
                self.stats.dirs += 1;
                let entries = self.fs.read_dir(ino).map_err(|e| self.fs_err(e, &src))?;
                for e in entries {
                    if e.name == b"." || e.name == b".." {
                        continue;
                    }
                    // The store of shared contents is the engine's, not the tree's.
                    if ino == crate::ext4::ROOT_INO && e.name == crate::ext4::shared::HIDDEN_DIR {
                        continue;
                    }
                    // The engine rejects names with '/' or NUL; never let a name climb out.
                    if e.name.is_empty() || e.name.iter().any(|&c| c == b'/' || c == 0) {
                        return Err(HostError::Fs(Error::InvalidName, src));
                    }
                    let child_src = format!(
                        "{}/{}",
                        src.trim_end_matches('/'),
                        String::from_utf8_lossy(&e.name)
                    );
                    let child_dest = dest.join(std::ffi::OsStr::from_bytes(&e.name));
                    self.copy(e.ino, child_src, &child_dest)?;
                }
            }
            FileType::Regular => {
                self.copy_file(ino, &attr, &src, dest)?;
                self.stats.files += 1;
            }
            FileType::Symlink => {
                let target = self.fs.readlink(ino).map_err(|e| self.fs_err(e, &src))?;
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), dest)
                    .map_err(io)?;
                self.stats.symlinks += 1;
            }
            _ => {
                self.stats.skipped.push(src);
                return Ok(());
            }
        }
        self.finish(&attr, dest)
    }

    fn copy_file(
        &mut self,
        ino: Ino,
        attr: &Attr,
        src: &str,
        dest: &Path,
    ) -> Result<(), HostError> {
        let io = |e: std::io::Error| HostError::Io(e, dest.to_path_buf());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(io)?;
        let ranges = self.fs.data_ranges(ino).map_err(|e| self.fs_err(e, src))?;
        const CHUNK: usize = 1 << 20;
        if self.buf.len() < CHUNK {
            self.buf.resize(CHUNK, 0);
        }
        for (off, len) in ranges {
            f.seek(SeekFrom::Start(off)).map_err(io)?;
            let mut pos = off;
            let end = off + len;
            while pos < end {
                let want = usize::try_from(end - pos).unwrap_or(CHUNK).min(CHUNK);
                let buf = self.buf.get_mut(..want).unwrap_or(&mut []);
                let n = self
                    .fs
                    .read(ino, pos, buf)
                    .map_err(|e| HostError::Fs(e, src.to_string()))?;
                if n == 0 {
                    break;
                }
                f.write_all(buf.get(..n).unwrap_or(&[])).map_err(io)?;
                pos += n as u64;
                self.stats.bytes += n as u64;
            }
        }
        f.set_len(attr.size).map_err(io)?;
        Ok(())
    }

    fn finish(&mut self, attr: &Attr, dest: &Path) -> Result<(), HostError> {
        let io = |e: std::io::Error| HostError::Io(e, dest.to_path_buf());
        match std::os::unix::fs::lchown(dest, Some(attr.uid), Some(attr.gid)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(io(e)),
        }
        if attr.kind != FileType::Symlink {
            let perm = std::fs::Permissions::from_mode(u32::from(attr.mode & 0o7777));
            std::fs::set_permissions(dest, perm).map_err(io)?;
        }
        filetime::set_symlink_file_times(dest, to_systime(attr.atime), to_systime(attr.mtime))
            .map_err(io)?;
        Ok(())
    }
}
