//! `pvfs image` write commands: change an ext4 or FAT image in place with pvfs's own engines,
//! written once over [`ImageFs`].
//!
//! Every command opens the image read-write, does its work, and closes the engine whatever
//! happened, so the image is written back and left clean (e2fsck- or fsck.fat-clean) even
//! when the command fails half-way (for example when the image fills up during a `put`). The
//! first error stops the command; it is reported as one `pvfs: PATH: what` line and the exit
//! status is 1. Paths inside the image are absolute or relative to the root, `/`-separated;
//! symlinks in them are not followed. The behaviour of each command is documented in
//! `docs/pvfs-image.md`.

use crate::imagefs::{
    is_dir, lookup_path, parent_of, resolve, with_image, ErrorKind, FsError, ImageFs,
};
use clap::Subcommand;
use pvfs_fs::ext4::FileType;
use std::path::PathBuf;

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

/// Run one write command on file system `F`.
pub fn run<F: ImageFs>(cmd: EditCmd) -> Result<(), String> {
    match cmd {
        EditCmd::Mkdir {
            parents,
            image,
            path,
        } => with_image(&image, |fs: &mut F| mkdir(fs, &path, parents)),
        EditCmd::Rm {
            recursive,
            image,
            path,
        } => with_image(&image, |fs: &mut F| rm(fs, &path, recursive)),
        EditCmd::Ln {
            symbolic,
            image,
            target,
            linkpath,
        } => with_image(&image, |fs: &mut F| ln(fs, &target, &linkpath, symbolic)),
        EditCmd::Truncate { image, size, path } => {
            let bytes = parse_size(&size)
                .ok_or_else(|| format!("{size}: not a size (bytes, or with K, M, G or T)"))?;
            with_image(&image, |fs: &mut F| {
                let ino = resolve(fs, &path)?;
                let a = fs.stat(ino).map_err(|e| at(&path, &e))?;
                if a.kind != FileType::Regular {
                    return Err(format!("{path}: not a regular file"));
                }
                fs.set_size(ino, bytes).map_err(|e| at(&path, &e))
            })
        }
        EditCmd::Mv { image, from, to } => with_image(&image, |fs: &mut F| mv(fs, &from, &to)),
        EditCmd::Chmod { image, mode, path } => {
            let m = u16::from_str_radix(&mode, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| format!("{mode}: not an octal mode (0 to 7777)"))?;
            with_image(&image, |fs: &mut F| {
                let ino = resolve(fs, &path)?;
                fs.set_mode(ino, m).map_err(|e| at(&path, &e))
            })
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
            let (uid, gid) = (num(u)?, num(g)?);
            if uid.is_none() && gid.is_none() {
                return Err(bad());
            }
            with_image(&image, |fs: &mut F| {
                let ino = resolve(fs, &path)?;
                fs.set_owner(ino, uid, gid).map_err(|e| at(&path, &e))
            })
        }
        EditCmd::Put { image, src, path } => {
            let st = F::put(&image, &src, &path)?;
            eprintln!(
                "pvfs: copied {} files ({} bytes), {} directories, {} symlinks, {} hard links, {} special files",
                st.files, st.bytes, st.dirs, st.symlinks, st.hardlinks, st.special
            );
            Ok(())
        }
    }
}

/// `PATH: what` for an error at `path`.
fn at(path: &str, e: &FsError) -> String {
    format!("{path}: {}", e.short())
}

fn mkdir<F: ImageFs>(fs: &mut F, path: &str, parents: bool) -> Result<(), String> {
    if !parents {
        let (parent, leaf) = parent_of(fs, path)?;
        return fs
            .make_dir(parent, &leaf)
            .map(drop)
            .map_err(|e| at(path, &e));
    }
    let mut dir = F::ROOT;
    let mut done = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        done.push('/');
        done.push_str(comp);
        dir = match fs.lookup(dir, comp.as_bytes()) {
            Ok(ino) => {
                let a = fs.stat(ino).map_err(|e| at(&done, &e))?;
                if !a.is_dir() {
                    return Err(format!("{done}: exists and is not a directory"));
                }
                ino
            }
            Err(e) if e.kind == ErrorKind::NotFound => fs
                .make_dir(dir, comp.as_bytes())
                .map_err(|e| at(&done, &e))?,
            Err(e) => return Err(at(&done, &e)),
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

fn ln<F: ImageFs>(fs: &mut F, target: &str, linkpath: &str, symbolic: bool) -> Result<(), String> {
    if let Some(why) = F::NO_LINKS {
        return Err(format!("{linkpath}: {why}"));
    }
    // `ln TARGET DIR` makes DIR/BASENAME(TARGET).
    let (dir, name, shown) = match lookup_path(fs, linkpath) {
        Ok(ino) if is_dir(fs, ino) => {
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
        Err(e) if e.kind == ErrorKind::NotFound => {
            let (d, n) = parent_of(fs, linkpath)?;
            (d, n, linkpath.to_string())
        }
        Err(e) => return Err(at(linkpath, &e)),
    };
    if symbolic {
        fs.make_symlink(dir, &name, target.as_bytes())
            .map_err(|e| at(&shown, &e))
    } else {
        let ino = resolve(fs, target)?;
        match fs.stat(ino) {
            Ok(a) if a.is_dir() => {
                return Err(format!("{target}: hard link not allowed for directory"))
            }
            Ok(_) => {}
            Err(e) => return Err(at(target, &e)),
        }
        fs.make_link(ino, dir, &name).map_err(|e| at(&shown, &e))
    }
}

fn mv<F: ImageFs>(fs: &mut F, from: &str, to: &str) -> Result<(), String> {
    let (odir, oname) = parent_of(fs, from)?;
    fs.lookup(odir, &oname).map_err(|e| at(from, &e))?;
    // `mv FROM DIR` moves into DIR (unless DIR is FROM itself, which is a no-op rename).
    let (ndir, nname, shown) = match lookup_path(fs, to) {
        Ok(ino) if is_dir(fs, ino) => {
            let shown = format!(
                "{}/{}",
                to.trim_end_matches('/'),
                String::from_utf8_lossy(&oname)
            );
            (ino, oname.clone(), shown)
        }
        Ok(_)
        | Err(FsError {
            kind: ErrorKind::NotFound,
            ..
        }) => {
            let (d, n) = parent_of(fs, to)?;
            (d, n, to.to_string())
        }
        Err(e) => return Err(at(to, &e)),
    };
    fs.move_entry(odir, &oname, ndir, &nname)
        .map_err(|e| match e.kind {
            ErrorKind::Invalid => format!("{from}: cannot move a directory into itself ({shown})"),
            _ => at(&shown, &e),
        })
}

fn rm<F: ImageFs>(fs: &mut F, path: &str, recursive: bool) -> Result<(), String> {
    let (parent, leaf) = parent_of(fs, path)?;
    let ino = fs.lookup(parent, &leaf).map_err(|e| at(path, &e))?;
    let a = fs.stat(ino).map_err(|e| at(path, &e))?;
    if a.is_dir() {
        if !recursive {
            return Err(format!("{path}: is a directory (use rm -r)"));
        }
        remove_contents(fs, ino, path.trim_end_matches('/'))?;
        fs.remove_dir(parent, &leaf)
    } else {
        fs.remove_file(parent, &leaf)
    }
    .map_err(|e| at(path, &e))
}

/// Remove everything inside directory `dir` (depth first).
fn remove_contents<F: ImageFs>(fs: &mut F, dir: F::Ino, shown: &str) -> Result<(), String> {
    for (ino, name) in fs.list(dir).map_err(|e| at(shown, &e))? {
        let child = format!("{shown}/{}", String::from_utf8_lossy(&name));
        let a = fs.stat(ino).map_err(|e| at(&child, &e))?;
        if a.is_dir() {
            remove_contents(fs, ino, &child)?;
            fs.remove_dir(dir, &name)
        } else {
            fs.remove_file(dir, &name)
        }
        .map_err(|e| at(&child, &e))?;
    }
    Ok(())
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
}
