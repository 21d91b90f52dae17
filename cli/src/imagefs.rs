//! What a `pvfs image` command needs of a file system: [`ImageFs`], implemented for ext4
//! (`ext4fs.rs`) and FAT (`fatfs.rs`), and the path handling every command shares (lookup
//! of `/`-separated paths, a path's parent directory, opening an image for a change and
//! writing it back whatever happened).
//!
//! Each file system answers with one common [`Stat`] and one [`FsError`], so the commands in
//! `image.rs` and `edit.rs` are written once. What a file system cannot store is refused by
//! its implementation with the message Linux's driver for it would give
//! ([`FsError::refused`]).

use pvfs_fs::ext4::{FileType, StatFs, Timestamp};
use pvfs_fs::host::ExtractStats;
use std::fmt;
use std::path::Path;

/// What a command does with an error besides reporting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such entry.
    NotFound,
    /// An argument the operation cannot take (such as moving a directory into itself).
    Invalid,
    /// Anything else.
    Other,
}

/// An error from the file system under a command: its kind, and the message to show.
#[derive(Debug, Clone)]
pub struct FsError {
    /// What kind of error.
    pub kind: ErrorKind,
    /// The message the write commands show (engine details such as inode numbers left out).
    short: String,
    /// The message the read commands show (the engine's own).
    long: String,
}

impl FsError {
    /// An engine error with its short and full messages.
    pub fn new(kind: ErrorKind, short: String, long: String) -> FsError {
        FsError { kind, short, long }
    }

    /// What the file system cannot do, said as Linux's driver for it says it.
    pub fn refused(msg: &str) -> FsError {
        FsError::new(ErrorKind::Other, msg.to_string(), msg.to_string())
    }

    /// The message the write commands show.
    pub fn short(&self) -> &str {
        &self.short
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.long)
    }
}

/// A file system call's result.
pub type Res<T> = Result<T, FsError>;

/// An inode's attributes as the commands show them.
#[derive(Debug, Clone)]
pub struct Stat {
    /// File type.
    pub kind: FileType,
    /// Type and permission bits (`st_mode`).
    pub mode: u16,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Space used, in 512-byte units.
    pub blocks: u64,
    /// Last access.
    pub atime: Timestamp,
    /// Last modification.
    pub mtime: Timestamp,
    /// Last change.
    pub ctime: Timestamp,
    /// Creation, when the file system keeps it.
    pub crtime: Option<Timestamp>,
}

impl Stat {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == FileType::Directory
    }
}

/// What `put` copied.
#[derive(Debug, Default, Clone)]
pub struct PutStats {
    /// Regular files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Data bytes written.
    pub bytes: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Extra hard links made.
    pub hardlinks: u64,
    /// FIFOs, sockets and device nodes created.
    pub special: u64,
}

/// A file system `pvfs image` works on.
pub trait ImageFs: Sized {
    /// An inode number.
    type Ino: Copy + Eq + fmt::Display;
    /// The root directory.
    const ROOT: Self::Ino;
    /// Why the file system holds no links (hard or symbolic), when it holds none: `ln`
    /// refuses with this before looking at any path.
    const NO_LINKS: Option<&'static str> = None;

    /// Open `image` read-only.
    fn open_ro(image: &Path) -> Result<Self, String>;
    /// Open `image` read-write (its clock set to now).
    fn open_rw(image: &Path) -> Result<Self, String>;
    /// Write everything back and close (the image is left clean).
    fn close(self, image: &Path) -> Result<(), String>;

    /// The `key: value` lines of `pvfs image info`.
    fn info(&self) -> String;
    /// Space and inode counts for `pvfs image df`.
    fn df(&self) -> StatFs;
    /// Copy `path` out to host `dest` (which must not exist).
    fn get(&mut self, path: &str, dest: &Path) -> Result<ExtractStats, String>;
    /// Copy host `src` into `image` at `dest` (`pvfs image put`): open, copy, close.
    fn put(image: &Path, src: &Path, dest: &str) -> Result<PutStats, String>;
    /// Grow `image` to `size` (`pvfs image resize`); the report printed.
    fn resize(image: &Path, size: &str) -> Result<String, String>;
    /// Merge the identical files under `paths` (`pvfs image dedup`); the report printed.
    fn dedup(image: &Path, paths: &[String], json: bool) -> Result<String, String>;

    /// Entry `name` of directory `dir`.
    fn lookup(&mut self, dir: Self::Ino, name: &[u8]) -> Res<Self::Ino>;
    /// An inode's attributes.
    fn stat(&mut self, ino: Self::Ino) -> Res<Stat>;
    /// The `stat` lines after the times, particular to this file system.
    fn stat_extra(&mut self, ino: Self::Ino, st: &Stat) -> Res<String>;
    /// A directory's entries (without `.` and `..`), in directory order.
    fn list(&mut self, dir: Self::Ino) -> Res<Vec<(Self::Ino, Vec<u8>)>>;
    /// Read at `off`; 0 at the end.
    fn read_at(&mut self, ino: Self::Ino, off: u64, buf: &mut [u8]) -> Res<usize>;
    /// A symbolic link's target.
    fn read_link(&mut self, ino: Self::Ino) -> Res<Vec<u8>>;

    /// Make directory `name` in `dir` (mode 0755, owner 0:0 where there are owners).
    fn make_dir(&mut self, dir: Self::Ino, name: &[u8]) -> Res<Self::Ino>;
    /// Remove non-directory `name` from `dir`.
    fn remove_file(&mut self, dir: Self::Ino, name: &[u8]) -> Res<()>;
    /// Remove empty directory `name` from `dir`.
    fn remove_dir(&mut self, dir: Self::Ino, name: &[u8]) -> Res<()>;
    /// Move `od`/`on` to `nd`/`nn` (POSIX rename rules).
    fn move_entry(&mut self, od: Self::Ino, on: &[u8], nd: Self::Ino, nn: &[u8]) -> Res<()>;
    /// Set a regular file's size.
    fn set_size(&mut self, ino: Self::Ino, size: u64) -> Res<()>;
    /// Set the permission bits.
    fn set_mode(&mut self, ino: Self::Ino, mode: u16) -> Res<()>;
    /// Set the owner and/or group.
    fn set_owner(&mut self, ino: Self::Ino, uid: Option<u32>, gid: Option<u32>) -> Res<()>;
    /// Make symbolic link `name` in `dir` to `target` (owner 0:0).
    fn make_symlink(&mut self, dir: Self::Ino, name: &[u8], target: &[u8]) -> Res<()>;
    /// Make `name` in `dir` another name of `ino`.
    fn make_link(&mut self, ino: Self::Ino, dir: Self::Ino, name: &[u8]) -> Res<()>;
}

/// Now, as the engines stamp it.
pub fn now() -> Timestamp {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Timestamp {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        },
        Err(_) => Timestamp { sec: 0, nsec: 0 },
    }
}

/// Open `image` read-write, run `f`, and close the file system whatever `f` returned.
pub fn with_image<F: ImageFs, T>(
    image: &Path,
    f: impl FnOnce(&mut F) -> Result<T, String>,
) -> Result<T, String> {
    let mut fs = F::open_rw(image)?;
    let r = f(&mut fs);
    let closed = fs.close(image);
    match (r, closed) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), Ok(())) => Err(e),
        (Ok(_), Err(c)) => Err(c),
        (Err(e), Err(c)) => Err(format!("{e} (and {c})")),
    }
}

/// Resolve an absolute or root-relative path (`/`-separated, no symlink following).
pub fn lookup_path<F: ImageFs>(fs: &mut F, path: &str) -> Res<F::Ino> {
    let mut ino = F::ROOT;
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        ino = fs.lookup(ino, comp.as_bytes())?;
    }
    Ok(ino)
}

/// Whether `ino` is a directory (false when it cannot be read).
pub fn is_dir<F: ImageFs>(fs: &mut F, ino: F::Ino) -> bool {
    fs.stat(ino).is_ok_and(|s| s.is_dir())
}

/// `path` resolved, or the write commands' `PATH: what` message.
pub fn resolve<F: ImageFs>(fs: &mut F, path: &str) -> Result<F::Ino, String> {
    lookup_path(fs, path).map_err(|e| format!("{path}: {}", e.short()))
}

/// Split `path` into its parent directory (resolved) and last component.
pub fn parent_of<F: ImageFs>(fs: &mut F, path: &str) -> Result<(F::Ino, Vec<u8>), String> {
    let trimmed = path.trim_end_matches('/');
    let (dir, leaf) = match trimmed.rsplit_once('/') {
        Some((d, l)) => (d, l),
        None => ("", trimmed),
    };
    if leaf.is_empty() || leaf == "." || leaf == ".." {
        return Err(format!("{path}: not allowed on the root, `.` or `..`"));
    }
    let parent = lookup_path(fs, dir).map_err(|e| format!("{path}: {}", e.short()))?;
    match fs.stat(parent) {
        Ok(a) if a.is_dir() => Ok((parent, leaf.as_bytes().to_vec())),
        Ok(_) => Err(format!("{path}: not a directory")),
        Err(e) => Err(format!("{path}: {}", e.short())),
    }
}
