//! `pvfs image` write commands: change an ext4 image in place with pvfs's own engine.
//!
//! Every command opens the image read-write, does its work, and closes the engine whatever
//! happened, so the image is written back and marked clean (e2fsck-clean) even when the
//! command fails half-way (for example when the image fills up during a `put`). The first
//! error stops the command; it is reported as one `pvfs: PATH: what` line and the exit status
//! is 1. Paths inside the image are absolute or relative to the root, `/`-separated; symlinks
//! in them are not followed. The behaviour of each command is documented in
//! `docs/pvfs-image.md`.

use clap::Subcommand;
use pvfs_fs::block::FileDisk;
use pvfs_fs::ext4::{
    Error, Ext4, FileType, Ino, Options, RenameFlags, SetAttr, Timestamp, XattrSet, ROOT_INO,
};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The write subcommands of `pvfs image`.
#[derive(Subcommand)]
pub enum EditCmd {
    /// Copy a host file or tree into the image, like `cp -a SRC PATH`.
    ///
    /// If PATH is an existing directory, SRC is copied to PATH/BASENAME(SRC); otherwise PATH
    /// (whose parent must exist) is created. Directories are copied recursively (merged into
    /// directories that already exist in the image); regular files keep their mode, owner
    /// and data, and all-zero blocks become holes. An existing regular file at a destination
    /// is rewritten in place, other existing non-directories are replaced (as by `cp -a`).
    /// Prints a one-line summary on stderr.
    Put {
        /// ext4 image file
        image: PathBuf,
        /// Host file or directory to copy in.
        src: PathBuf,
        /// Destination path inside the image.
        path: String,
    },
    /// Create a directory (mode 0755, owner 0:0).
    Mkdir {
        /// Create missing parents; an existing directory is not an error.
        #[arg(short = 'p')]
        parents: bool,
        /// ext4 image file
        image: PathBuf,
        /// Path inside the image.
        path: String,
    },
    /// Make a hard link (or with -s a symbolic link) LINKPATH to TARGET, like `ln`.
    ///
    /// If LINKPATH is an existing directory, the link is LINKPATH/BASENAME(TARGET). A hard
    /// link's TARGET is a path inside the image (not a directory); a symbolic link's TARGET is
    /// stored as given (owner 0:0).
    Ln {
        /// Make a symbolic link.
        #[arg(short = 's')]
        symbolic: bool,
        /// ext4 image file
        image: PathBuf,
        /// What the link points to.
        target: String,
        /// The new link.
        linkpath: String,
    },
    /// Move or rename FROM to TO, like `mv`.
    ///
    /// If TO is an existing directory, FROM goes to TO/BASENAME(FROM); otherwise TO is
    /// replaced with POSIX rename rules (a file replaces a file, a directory an empty
    /// directory).
    Mv {
        /// ext4 image file
        image: PathBuf,
        /// Path inside the image.
        from: String,
        /// New path inside the image.
        to: String,
    },
    /// Set the permission bits (octal, e.g. 0644 or 4755) of PATH.
    Chmod {
        /// ext4 image file
        image: PathBuf,
        /// Octal mode, at most 7777.
        mode: String,
        /// Path inside the image (a symlink itself, not followed).
        path: String,
    },
    /// Set the owner and/or group of PATH: `UID:GID`, `UID` or `:GID` (numbers).
    Chown {
        /// ext4 image file
        image: PathBuf,
        /// `UID:GID`, `UID` or `:GID`.
        owner: String,
        /// Path inside the image (a symlink itself, not followed).
        path: String,
    },
    /// Set the size of regular file PATH, like `truncate -s SIZE`: shrinking frees the blocks
    /// past the end, growing leaves a hole.
    Truncate {
        /// ext4 image file
        image: PathBuf,
        /// New size in bytes, or with a K, M, G or T suffix (powers of 1024).
        size: String,
        /// Path inside the image.
        path: String,
    },
    /// Remove a file, or with -r a directory tree.
    Rm {
        /// Remove directories and their contents recursively.
        #[arg(short = 'r')]
        recursive: bool,
        /// ext4 image file
        image: PathBuf,
        /// Path inside the image.
        path: String,
    },
}

pub(crate) type Fs = Ext4<FileDisk>;

/// The engine's error as a short message (inode numbers left out).
pub(crate) fn emsg(e: &Error) -> String {
    match e {
        Error::NotDir { .. } => "not a directory".to_string(),
        Error::IsDir { .. } => "is a directory".to_string(),
        other => other.to_string(),
    }
}

fn now() -> Timestamp {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Timestamp {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        },
        Err(_) => Timestamp { sec: 0, nsec: 0 },
    }
}

/// Open `image` read-write, run `f`, and close the engine whatever `f` returned.
pub(crate) fn with_image<T>(
    image: &Path,
    f: impl FnOnce(&mut Fs) -> Result<T, String>,
) -> Result<T, String> {
    let disk = FileDisk::open_rw(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut fs = Ext4::open_rw(disk, &Options::default())
        .map_err(|e| format!("{}: {}", image.display(), emsg(&e)))?;
    fs.set_clock(now());
    let r = f(&mut fs);
    let closed = fs
        .close()
        .map(drop)
        .map_err(|e| format!("{}: writing back: {}", image.display(), emsg(&e)));
    match (r, closed) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), Ok(())) => Err(e),
        (Ok(_), Err(c)) => Err(c),
        (Err(e), Err(c)) => Err(format!("{e} (and {c})")),
    }
}

/// Split `path` into its parent directory (resolved) and last component.
fn parent_of(fs: &mut Fs, path: &str) -> Result<(Ino, Vec<u8>), String> {
    let trimmed = path.trim_end_matches('/');
    let (dir, leaf) = match trimmed.rsplit_once('/') {
        Some((d, l)) => (d, l),
        None => ("", trimmed),
    };
    if leaf.is_empty() || leaf == "." || leaf == ".." {
        return Err(format!("{path}: not allowed on the root, `.` or `..`"));
    }
    let parent = fs
        .lookup_path(dir.as_bytes())
        .map_err(|e| format!("{path}: {}", emsg(&e)))?;
    match fs.getattr(parent) {
        Ok(a) if a.kind == FileType::Directory => Ok((parent, leaf.as_bytes().to_vec())),
        Ok(_) => Err(format!("{path}: not a directory")),
        Err(e) => Err(format!("{path}: {}", emsg(&e))),
    }
}

/// Run one write command.
pub fn run(cmd: EditCmd) -> Result<(), String> {
    match cmd {
        EditCmd::Mkdir {
            parents,
            image,
            path,
        } => with_image(&image, |fs| mkdir(fs, &path, parents)),
        EditCmd::Rm {
            recursive,
            image,
            path,
        } => with_image(&image, |fs| rm(fs, &path, recursive)),
        EditCmd::Ln {
            symbolic,
            image,
            target,
            linkpath,
        } => with_image(&image, |fs| ln(fs, &target, &linkpath, symbolic)),
        EditCmd::Truncate { image, size, path } => {
            let bytes = parse_size(&size)
                .ok_or_else(|| format!("{size}: not a size (bytes, or with K, M, G or T)"))?;
            with_image(&image, |fs| {
                let ino = fs
                    .lookup_path(path.as_bytes())
                    .map_err(|e| format!("{path}: {}", emsg(&e)))?;
                let a = fs
                    .getattr(ino)
                    .map_err(|e| format!("{path}: {}", emsg(&e)))?;
                if a.kind != FileType::Regular {
                    return Err(format!("{path}: not a regular file"));
                }
                fs.truncate(ino, bytes)
                    .map_err(|e| format!("{path}: {}", emsg(&e)))
            })
        }
        EditCmd::Mv { image, from, to } => with_image(&image, |fs| mv(fs, &from, &to)),
        EditCmd::Chmod { image, mode, path } => {
            let m = u16::from_str_radix(&mode, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| format!("{mode}: not an octal mode (0 to 7777)"))?;
            let set = SetAttr {
                mode: Some(m),
                ..SetAttr::default()
            };
            with_image(&image, |fs| set_attr(fs, &path, &set))
        }
        EditCmd::Chown { image, owner, path } => {
            let bad = || format!("{owner}: not UID:GID, UID or :GID (numbers)");
            let num = |x: &str| -> Result<Option<u32>, String> {
                if x.is_empty() {
                    Ok(None)
                } else {
                    x.parse().map(Some).map_err(|_| bad())
                }
            };
            let (u, g) = owner.split_once(':').unwrap_or((&owner, ""));
            let set = SetAttr {
                uid: num(u)?,
                gid: num(g)?,
                ..SetAttr::default()
            };
            if set.uid.is_none() && set.gid.is_none() {
                return Err(bad());
            }
            with_image(&image, |fs| set_attr(fs, &path, &set))
        }
        EditCmd::Put { image, src, path } => {
            let image_id = std::fs::metadata(&image)
                .map(|m| (m.dev(), m.ino()))
                .map_err(|e| format!("{}: {e}", image.display()))?;
            // `cp -a` names: no trailing slashes (they would change getfattr's paths).
            let trimmed = src.as_os_str().as_bytes();
            let keep = trimmed.len() - trimmed.iter().rev().take_while(|&&c| c == b'/').count();
            let src = PathBuf::from(std::ffi::OsStr::from_bytes(
                trimmed.get(..keep.max(1)).unwrap_or(trimmed),
            ));
            std::fs::symlink_metadata(&src).map_err(|e| format!("{}: {e}", src.display()))?;
            let xattrs = host_xattrs(&src)?;
            let st = with_image(&image, |fs| {
                let mut p = Putter {
                    fs,
                    xattrs,
                    image_id,
                    links: HashMap::new(),
                    stats: PutStats::default(),
                    buf: vec![0u8; CHUNK],
                };
                p.put(&src, &path)?;
                Ok(p.stats)
            })?;
            eprintln!(
                "pvfs: copied {} files ({} bytes), {} directories, {} symlinks, {} hard links, {} special files",
                st.files, st.bytes, st.dirs, st.symlinks, st.hardlinks, st.special
            );
            Ok(())
        }
    }
}

fn mkdir(fs: &mut Fs, path: &str, parents: bool) -> Result<(), String> {
    if !parents {
        let (parent, leaf) = parent_of(fs, path)?;
        return fs
            .mkdir(parent, &leaf, 0o755, 0, 0)
            .map(drop)
            .map_err(|e| format!("{path}: {}", emsg(&e)));
    }
    let mut dir = ROOT_INO;
    let mut done = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        done.push('/');
        done.push_str(comp);
        dir = match fs.lookup(dir, comp.as_bytes()) {
            Ok(ino) => {
                let a = fs
                    .getattr(ino)
                    .map_err(|e| format!("{done}: {}", emsg(&e)))?;
                if a.kind != FileType::Directory {
                    return Err(format!("{done}: exists and is not a directory"));
                }
                ino
            }
            Err(Error::NotFound) => fs
                .mkdir(dir, comp.as_bytes(), 0o755, 0, 0)
                .map_err(|e| format!("{done}: {}", emsg(&e)))?,
            Err(e) => return Err(format!("{done}: {}", emsg(&e))),
        };
    }
    Ok(())
}

/// `123`, `4K`, `10M`, `2G`, `1T` (powers of 1024).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let (num, shift) = match s.as_bytes().last()? {
        b'K' | b'k' => (s.get(..s.len() - 1)?, 10),
        b'M' | b'm' => (s.get(..s.len() - 1)?, 20),
        b'G' | b'g' => (s.get(..s.len() - 1)?, 30),
        b'T' | b't' => (s.get(..s.len() - 1)?, 40),
        _ => (s, 0),
    };
    if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

fn set_attr(fs: &mut Fs, path: &str, set: &SetAttr) -> Result<(), String> {
    let ino = fs
        .lookup_path(path.as_bytes())
        .map_err(|e| format!("{path}: {}", emsg(&e)))?;
    fs.setattr(ino, set)
        .map_err(|e| format!("{path}: {}", emsg(&e)))
}

fn ln(fs: &mut Fs, target: &str, linkpath: &str, symbolic: bool) -> Result<(), String> {
    // `ln TARGET DIR` makes DIR/BASENAME(TARGET).
    let (dir, name, shown) = match fs.lookup_path(linkpath.as_bytes()) {
        Ok(ino) if fs.getattr(ino).is_ok_and(|a| a.kind == FileType::Directory) => {
            let base = target
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            if base.is_empty() || base == "." || base == ".." {
                return Err(format!("{linkpath}: file exists"));
            }
            let shown = format!("{}/{base}", linkpath.trim_end_matches('/'));
            (ino, base.as_bytes().to_vec(), shown)
        }
        Ok(_) => return Err(format!("{linkpath}: file exists")),
        Err(Error::NotFound) => {
            let (d, n) = parent_of(fs, linkpath)?;
            (d, n, linkpath.to_string())
        }
        Err(e) => return Err(format!("{linkpath}: {}", emsg(&e))),
    };
    if symbolic {
        fs.symlink(dir, &name, target.as_bytes(), 0, 0)
            .map(drop)
            .map_err(|e| format!("{shown}: {}", emsg(&e)))
    } else {
        let ino = fs
            .lookup_path(target.as_bytes())
            .map_err(|e| format!("{target}: {}", emsg(&e)))?;
        match fs.getattr(ino) {
            Ok(a) if a.kind == FileType::Directory => {
                return Err(format!("{target}: hard link not allowed for directory"))
            }
            Ok(_) => {}
            Err(e) => return Err(format!("{target}: {}", emsg(&e))),
        }
        fs.link(ino, dir, &name)
            .map_err(|e| format!("{shown}: {}", emsg(&e)))
    }
}

fn mv(fs: &mut Fs, from: &str, to: &str) -> Result<(), String> {
    let (odir, oname) = parent_of(fs, from)?;
    fs.lookup(odir, &oname)
        .map_err(|e| format!("{from}: {}", emsg(&e)))?;
    // `mv FROM DIR` moves into DIR (unless DIR is FROM itself, which is a no-op rename).
    let (ndir, nname, shown) = match fs.lookup_path(to.as_bytes()) {
        Ok(ino) if fs.getattr(ino).is_ok_and(|a| a.kind == FileType::Directory) => {
            let shown = format!(
                "{}/{}",
                to.trim_end_matches('/'),
                String::from_utf8_lossy(&oname)
            );
            (ino, oname.clone(), shown)
        }
        Ok(_) | Err(Error::NotFound) => {
            let (d, n) = parent_of(fs, to)?;
            (d, n, to.to_string())
        }
        Err(e) => return Err(format!("{to}: {}", emsg(&e))),
    };
    fs.rename(odir, &oname, ndir, &nname, RenameFlags::default())
        .map_err(|e| match e {
            Error::Invalid { .. } => {
                format!("{from}: cannot move a directory into itself ({shown})")
            }
            e => format!("{shown}: {}", emsg(&e)),
        })
}

fn rm(fs: &mut Fs, path: &str, recursive: bool) -> Result<(), String> {
    let (parent, leaf) = parent_of(fs, path)?;
    let ino = fs
        .lookup(parent, &leaf)
        .map_err(|e| format!("{path}: {}", emsg(&e)))?;
    let a = fs
        .getattr(ino)
        .map_err(|e| format!("{path}: {}", emsg(&e)))?;
    if a.kind == FileType::Directory {
        if !recursive {
            return Err(format!("{path}: is a directory (use rm -r)"));
        }
        remove_contents(fs, ino, path.trim_end_matches('/'))?;
        fs.rmdir(parent, &leaf)
    } else {
        fs.unlink(parent, &leaf)
    }
    .map_err(|e| format!("{path}: {}", emsg(&e)))
}

/// Remove everything inside directory `dir` (depth first).
fn remove_contents(fs: &mut Fs, dir: Ino, shown: &str) -> Result<(), String> {
    let entries = fs
        .read_dir(dir)
        .map_err(|e| format!("{shown}: {}", emsg(&e)))?;
    for e in entries {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let child = format!("{shown}/{}", String::from_utf8_lossy(&e.name));
        let a = fs
            .getattr(e.ino)
            .map_err(|err| format!("{child}: {}", emsg(&err)))?;
        if a.kind == FileType::Directory {
            remove_contents(fs, e.ino, &child)?;
            fs.rmdir(dir, &e.name)
        } else {
            fs.unlink(dir, &e.name)
        }
        .map_err(|err| format!("{child}: {}", emsg(&err)))?;
    }
    Ok(())
}

/// Host read size while copying files in (a multiple of every block size).
const CHUNK: usize = 1 << 20;

/// What `put` copied.
#[derive(Default)]
struct PutStats {
    files: u64,
    dirs: u64,
    bytes: u64,
    symlinks: u64,
    hardlinks: u64,
    special: u64,
}

fn mtime_of(md: &std::fs::Metadata) -> Timestamp {
    Timestamp {
        sec: md.mtime(),
        nsec: md.mtime_nsec().clamp(0, 999_999_999) as u32,
    }
}

fn atime_of(md: &std::fs::Metadata) -> Timestamp {
    Timestamp {
        sec: md.atime(),
        nsec: md.atime_nsec().clamp(0, 999_999_999) as u32,
    }
}

struct Putter<'a> {
    fs: &'a mut Fs,
    /// Host path → its extended attributes.
    xattrs: HostXattrs,
    /// (st_dev, st_ino) of the image file: never copied into itself.
    image_id: (u64, u64),
    /// Source inodes with several links already copied: (st_dev, st_ino) → image inode.
    links: HashMap<(u64, u64), Ino>,
    stats: PutStats,
    buf: Vec<u8>,
}

impl Putter<'_> {
    fn put(&mut self, src: &Path, dest: &str) -> Result<(), String> {
        let md = std::fs::symlink_metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
        // `cp -a SRC DEST`: into DEST when it is an existing directory, else as DEST.
        let (parent, name, shown) = match self.fs.lookup_path(dest.as_bytes()) {
            Ok(ino) => {
                let a = self
                    .fs
                    .getattr(ino)
                    .map_err(|e| format!("{dest}: {}", emsg(&e)))?;
                if a.kind != FileType::Directory {
                    if md.is_dir() {
                        return Err(format!(
                            "{dest}: cannot overwrite non-directory with directory"
                        ));
                    }
                    // A non-directory onto an existing non-directory: replaced, as by cp.
                    let (parent, leaf) = parent_of(self.fs, dest)?;
                    return self.copy(parent, &leaf, src, &md, dest);
                }
                let base = src
                    .file_name()
                    .ok_or_else(|| format!("{}: has no file name to copy to", src.display()))?;
                let shown = format!("{}/{}", dest.trim_end_matches('/'), base.to_string_lossy());
                (ino, base.as_bytes().to_vec(), shown)
            }
            Err(Error::NotFound) => {
                let (parent, leaf) = parent_of(self.fs, dest)?;
                (parent, leaf, dest.to_string())
            }
            Err(e) => return Err(format!("{dest}: {}", emsg(&e))),
        };
        self.copy(parent, &name, src, &md, &shown)
    }

    /// Copy host `src` (metadata `md`) to entry `name` of image directory `parent`.
    fn copy(
        &mut self,
        parent: Ino,
        name: &[u8],
        src: &Path,
        md: &std::fs::Metadata,
        shown: &str,
    ) -> Result<(), String> {
        let fail = |e: &Error| format!("{shown}: {}", emsg(e));
        if (md.dev(), md.ino()) == self.image_id {
            return Err(format!("{}: is the image itself", src.display()));
        }
        let mode = (md.mode() & 0o7777) as u16;
        let ft = md.file_type();
        if ft.is_dir() {
            let dir = match self.fs.mkdir(parent, name, mode, md.uid(), md.gid()) {
                Ok(ino) => {
                    self.stats.dirs += 1;
                    ino
                }
                // `cp -a` merges into a directory that exists.
                Err(Error::Exists) => {
                    let ino = self.fs.lookup(parent, name).map_err(|e| fail(&e))?;
                    let a = self.fs.getattr(ino).map_err(|e| fail(&e))?;
                    if a.kind != FileType::Directory {
                        return Err(format!(
                            "{shown}: cannot overwrite non-directory with directory"
                        ));
                    }
                    let set = SetAttr {
                        mode: Some(mode),
                        uid: Some(md.uid()),
                        gid: Some(md.gid()),
                        ..SetAttr::default()
                    };
                    self.fs.setattr(ino, &set).map_err(|e| fail(&e))?;
                    ino
                }
                Err(e) => return Err(fail(&e)),
            };
            let mut entries: Vec<_> = std::fs::read_dir(src)
                .map_err(|e| format!("{}: {e}", src.display()))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: {e}", src.display()))?;
            entries.sort();
            for n in entries {
                let child = src.join(&n);
                let cmd = std::fs::symlink_metadata(&child)
                    .map_err(|e| format!("{}: {e}", child.display()))?;
                let cshown = format!("{}/{}", shown.trim_end_matches('/'), n.to_string_lossy());
                self.copy(dir, n.as_bytes(), &child, &cmd, &cshown)?;
            }
            self.copy_xattrs(dir, src, shown)?;
            // Last: adding the entries changed the directory's times.
            self.times(dir, md, shown)
        } else {
            let key = (md.dev(), md.ino());
            if md.nlink() > 1 {
                if let Some(&ino) = self.links.get(&key) {
                    match self.fs.lookup(parent, name) {
                        Ok(old) if old == ino => return Ok(()),
                        Ok(old) => {
                            if self
                                .fs
                                .getattr(old)
                                .is_ok_and(|a| a.kind == FileType::Directory)
                            {
                                return Err(format!(
                                    "{shown}: cannot overwrite directory with non-directory"
                                ));
                            }
                            self.fs.unlink(parent, name).map_err(|e| fail(&e))?;
                        }
                        Err(Error::NotFound) => {}
                        Err(e) => return Err(fail(&e)),
                    }
                    self.fs.link(ino, parent, name).map_err(|e| fail(&e))?;
                    self.stats.hardlinks += 1;
                    return Ok(());
                }
            }
            let (uid, gid) = (md.uid(), md.gid());
            // `cp -a` onto an existing non-directory: a regular file onto a regular file is
            // rewritten in place (same inode: its other names see the new data); anything
            // else is removed first.
            let mut reuse = None;
            match self.fs.lookup(parent, name) {
                Ok(old) => {
                    let a = self.fs.getattr(old).map_err(|e| fail(&e))?;
                    if a.kind == FileType::Directory {
                        return Err(format!(
                            "{shown}: cannot overwrite directory with non-directory"
                        ));
                    }
                    if ft.is_file() && a.kind == FileType::Regular {
                        reuse = Some(old);
                    } else {
                        self.fs.unlink(parent, name).map_err(|e| fail(&e))?;
                    }
                }
                Err(Error::NotFound) => {}
                Err(e) => return Err(fail(&e)),
            }
            let ino = if ft.is_file() {
                let ino = match reuse {
                    Some(old) => {
                        self.fs.truncate(old, 0).map_err(|e| fail(&e))?;
                        let set = SetAttr {
                            mode: Some(mode),
                            uid: Some(uid),
                            gid: Some(gid),
                            ..SetAttr::default()
                        };
                        self.fs.setattr(old, &set).map_err(|e| fail(&e))?;
                        old
                    }
                    None => self
                        .fs
                        .create(parent, name, mode, uid, gid)
                        .map_err(|e| fail(&e))?,
                };
                self.stats.files += 1;
                self.copy_data(ino, src, md.len(), shown)?;
                ino
            } else if ft.is_symlink() {
                let target =
                    std::fs::read_link(src).map_err(|e| format!("{}: {e}", src.display()))?;
                let ino = self
                    .fs
                    .symlink(parent, name, target.as_os_str().as_bytes(), uid, gid)
                    .map_err(|e| fail(&e))?;
                self.stats.symlinks += 1;
                ino
            } else {
                // FIFOs, sockets and device nodes: the type bits come with the mode.
                let full = (md.mode() & 0o177_777) as u16;
                let ino = self
                    .fs
                    .mknod(parent, name, full, md.rdev(), uid, gid)
                    .map_err(|e| fail(&e))?;
                self.stats.special += 1;
                ino
            };
            if md.nlink() > 1 {
                self.links.insert(key, ino);
            }
            self.copy_xattrs(ino, src, shown)?;
            self.times(ino, md, shown)
        }
    }

    /// Give image inode `ino` the extended attributes host file `src` has.
    fn copy_xattrs(&mut self, ino: Ino, src: &Path, shown: &str) -> Result<(), String> {
        let Some(list) = self.xattrs.get(src.as_os_str().as_bytes()) else {
            return Ok(());
        };
        for (name, value) in list {
            self.fs
                .set_xattr(ino, name, value, XattrSet::Any)
                .map_err(|e| {
                    format!(
                        "{shown}: xattr {}: {}",
                        String::from_utf8_lossy(name),
                        emsg(&e)
                    )
                })?;
        }
        Ok(())
    }

    /// Give image inode `ino` the access and modification times of `md`.
    fn times(&mut self, ino: Ino, md: &std::fs::Metadata, shown: &str) -> Result<(), String> {
        let set = SetAttr {
            atime: Some(atime_of(md)),
            mtime: Some(mtime_of(md)),
            ..SetAttr::default()
        };
        self.fs
            .setattr(ino, &set)
            .map_err(|e| format!("{shown}: {}", emsg(&e)))
    }

    /// Copy the data of host file `src` into image file `ino`; all-zero blocks are left as
    /// holes.
    fn copy_data(&mut self, ino: Ino, src: &Path, size: u64, shown: &str) -> Result<(), String> {
        let bs = self.fs.superblock().block_size() as usize;
        let mut f = std::fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
        let mut off = 0u64;
        let mut end = 0u64;
        loop {
            let n =
                read_full(&mut f, &mut self.buf).map_err(|e| format!("{}: {e}", src.display()))?;
            if n == 0 {
                break;
            }
            let chunk = self.buf.get(..n).unwrap_or(&[]);
            // Runs of blocks with at least one non-zero byte.
            let mut i = 0usize;
            while i < n {
                let blk_end = |s: usize| (s + bs).min(n);
                let zero = |s: usize| {
                    chunk
                        .get(s..blk_end(s))
                        .is_some_and(|b| b.iter().all(|&x| x == 0))
                };
                if zero(i) {
                    i = blk_end(i);
                    continue;
                }
                let start = i;
                while i < n && !zero(i) {
                    i = blk_end(i);
                }
                let run = chunk.get(start..i).unwrap_or(&[]);
                write_all(self.fs, ino, off + start as u64, run)
                    .map_err(|e| format!("{shown}: {}", emsg(&e)))?;
                self.stats.bytes += run.len() as u64;
                end = off + i as u64;
            }
            off += n as u64;
        }
        if off != size {
            return Err(format!("{}: changed while being copied", src.display()));
        }
        if end < size {
            // A trailing hole.
            self.fs
                .truncate(ino, size)
                .map_err(|e| format!("{shown}: {}", emsg(&e)))?;
        }
        Ok(())
    }
}

/// Write all of `data` at `off` (the engine may write less than asked).
fn write_all(fs: &mut Fs, ino: Ino, mut off: u64, mut data: &[u8]) -> Result<(), Error> {
    while !data.is_empty() {
        let n = fs.write(ino, off, data)?;
        if n == 0 {
            return Err(Error::NoSpace);
        }
        off += n as u64;
        data = data.get(n..).unwrap_or(&[]);
    }
    Ok(())
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(buf.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Path (as bytes) → extended attributes of every file under `src`, symlinks not followed,
/// read with one `getfattr -h -P -R -d -m - -e hex --absolute-names` run (std has no xattr
/// calls).
type HostXattrs = HashMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

fn host_xattrs(src: &Path) -> Result<HostXattrs, String> {
    let out = std::process::Command::new("getfattr")
        .args([
            "-h",
            "-P",
            "-R",
            "-d",
            "-m",
            "-",
            "-e",
            "hex",
            "--absolute-names",
        ])
        .arg(src)
        .output()
        .map_err(|e| format!("getfattr (package attr) is needed to copy xattrs: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{}: getfattr: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_getfattr(&out.stdout)
        .ok_or_else(|| format!("{}: cannot parse getfattr's output", src.display()))
}

/// Undo getfattr's `\ooo` escapes.
fn unescape(s: &[u8]) -> Option<Vec<u8>> {
    let mut v = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'\\' {
            let oct = s.get(i + 1..i + 4)?;
            let mut b = 0u32;
            for &d in oct {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                b = b * 8 + u32::from(d - b'0');
            }
            v.push(u8::try_from(b).ok()?);
            i += 4;
        } else {
            v.push(c);
            i += 1;
        }
    }
    Some(v)
}

fn parse_getfattr(text: &[u8]) -> Option<HostXattrs> {
    let mut map = HostXattrs::new();
    let mut cur: Option<Vec<u8>> = None;
    for line in text.split(|&c| c == b'\n') {
        if line.is_empty() {
            continue;
        }
        if let Some(p) = line.strip_prefix(b"# file: ") {
            cur = Some(unescape(p)?);
            continue;
        }
        let path = cur.clone()?;
        let eq = line.iter().position(|&c| c == b'=');
        let (name, value) = match eq {
            Some(k) => (line.get(..k)?, line.get(k + 1..)?),
            None => (line, &b"0x"[..]),
        };
        let hex = value.strip_prefix(b"0x")?;
        if hex.len() % 2 != 0 {
            return None;
        }
        let mut bytes = Vec::with_capacity(hex.len() / 2);
        for pair in hex.chunks(2) {
            let h = std::str::from_utf8(pair).ok()?;
            bytes.push(u8::from_str_radix(h, 16).ok()?);
        }
        map.entry(path).or_default().push((unescape(name)?, bytes));
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("4097"), Some(4097));
        assert_eq!(parse_size("3K"), Some(3072));
        assert_eq!(parse_size("5G"), Some(5 << 30));
        assert_eq!(parse_size("16777216T"), None, "overflow");
        for bad in ["", "K", "-1", "1.5M", "1X", "+3"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn getfattr_output_is_parsed() {
        let text = b"# file: xs/f\nuser.a=0x0102\nuser.empty=0x\n\n# file: xs/d/we ird\\012name\\134\nuser.b=0x6869\n\n";
        let m = parse_getfattr(text).unwrap();
        assert_eq!(
            m[&b"xs/f"[..]],
            vec![
                (b"user.a".to_vec(), vec![1, 2]),
                (b"user.empty".to_vec(), vec![])
            ]
        );
        assert_eq!(
            m[&b"xs/d/we ird\nname\\"[..]],
            vec![(b"user.b".to_vec(), b"hi".to_vec())]
        );
        assert!(parse_getfattr(b"user.a=0x01\n").is_none(), "no file line");
        assert!(
            parse_getfattr(b"# file: x\nuser.a=0x1\n").is_none(),
            "odd hex"
        );
    }
}
