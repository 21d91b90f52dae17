//! `pvfs image …` subcommands: read an ext2/3/4 or FAT image directly (no root, no mount),
//! written once over [`ImageFs`]; the write commands are in `edit.rs`.
//!
//! Output formats are part of the interface (scripts and tests parse them); they are documented
//! on each subcommand and in `docs/pvfs-image.md`.

use crate::edit::EditCmd;
use crate::format::{escape, fmt_time, mode_string, time_field};
use crate::imagefs::{lookup_path, ImageFs, Stat};
use clap::Subcommand;
use pvfs_fs::block::FileDisk;
use pvfs_fs::ext4::{Ext4, FileType};
use pvfs_fs::fat::Fat;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Print the image's features, sizes and state as `key: value` lines.
    ///
    /// Keys, in order: volume, uuid, state (clean|not clean|has errors, plus
    /// ", needs journal recovery"), block size, blocks, free blocks, reserved blocks, inodes,
    /// free inodes, inode size, groups, blocks per group, inodes per group, first data block,
    /// features (space separated, e2fsprogs names), hash (default dx hash), journal inode,
    /// created, last write, mount count, read-only (only when the engine would refuse writes).
    Info {
        /// ext4 image file
        image: PathBuf,
    },
    /// List a directory (or one file).
    ///
    /// Without -l: one name per line, sorted by bytes, without `.` and `..`. With -l, one
    /// line per entry: `MODE NLINK UID GID SIZE MTIME NAME`, where MODE is `ls`-style
    /// (`drwxr-xr-x`), MTIME is `YYYY-MM-DD HH:MM:SS.NNNNNNNNN` in UTC, and symlinks end with
    /// ` -> TARGET`. Non-UTF-8 bytes in names are shown as `\xHH`.
    Ls {
        /// Long format.
        #[arg(short = 'l')]
        long: bool,
        /// ext4 image file
        image: PathBuf,
        /// Path inside the image (default `/`).
        #[arg(default_value = "/")]
        path: String,
    },
    /// Write a file's bytes to stdout, unchanged.
    Cat {
        /// ext4 image file
        image: PathBuf,
        /// Path inside the image.
        path: String,
    },
    /// Print an inode's attributes as `key: value` lines.
    ///
    /// Keys: path, inode, type, mode (octal and ls-style), links, uid, gid, size, blocks
    /// (512-byte units), atime, mtime, ctime, crtime (when stored) as
    /// `YYYY-MM-DD HH:MM:SS.NNNNNNNNN (SECONDS.NANOS)` in UTC, generation, flags (hex), rdev
    /// (`MAJOR,MINOR`, devices only), target (symlinks only), and one `xattr NAME: VALUE` line
    /// per extended attribute (value shown with `\xHH` escapes).
    Stat {
        /// ext4 image file
        image: PathBuf,
        /// Path inside the image.
        path: String,
    },
    /// Copy PATH out of the image to DEST (which must not exist), like `cp -a PATH DEST`.
    ///
    /// Directories are copied recursively; regular files keep their holes (the copy is
    /// sparse); symlinks are recreated; hard links inside the copied tree stay hard links;
    /// permission bits, atime and mtime (symlinks' too) are kept; uid/gid are kept when the
    /// process may set them (silently skipped otherwise). Device nodes, FIFOs and sockets are
    /// skipped with a warning on stderr. Prints a one-line summary on stderr.
    Get {
        /// ext4 image file
        image: PathBuf,
        /// Path inside the image.
        path: String,
        /// Destination on the host (must not exist).
        dest: PathBuf,
    },
    /// Print space and inode usage as `key: value` lines.
    ///
    /// Keys: block size, blocks, used blocks, free blocks, available blocks (free minus
    /// reserved), inodes, used inodes, free inodes, name max.
    Df {
        /// ext4 image file
        image: PathBuf,
    },
    /// Grow the image file to SIZE and the file system in it to match (online-grow code).
    ///
    /// SIZE is a byte count, optionally with a `K`, `M`, `G` or `T` suffix (powers of 1024).
    /// The file is extended (never shortened) and the file system grown to the whole blocks
    /// SIZE holds, or a little less (a last group too small for its metadata is left out, as
    /// resize2fs does). Prints `key: value` lines: block size, old blocks, blocks, size.
    /// Shrinking, and growing past what the reserved group descriptor blocks describe, are
    /// refused (exit status 1) and change nothing.
    Resize {
        /// ext4 image file
        image: PathBuf,
        /// New size of the image file.
        size: String,
    },
    /// Merge identical regular files under PATH… (default `/`) into shared copy-on-write
    /// contents, and print what was saved.
    ///
    /// Files are grouped by size, then SHA-256, then compared byte by byte; each group of
    /// identical files then keeps one copy of the data in a hidden store (`/.pvfs/shared/`),
    /// while every name keeps its own inode, attributes and times. A write through any name
    /// gives that name its own copy again. Prints one line, `merged N files (K new shared
    /// contents), saved B bytes; S files scanned`, or with --json one object with the keys
    /// files_scanned, files_merged, stores_created, mismatches, bytes_saved. Exit status 1 on
    /// an error (what was merged before it stays merged, and the image stays consistent).
    Dedup {
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
        /// ext4 image file
        image: PathBuf,
        /// Paths inside the image to deduplicate (default `/`).
        paths: Vec<String>,
    },
    /// Write commands (put, mkdir, rm, …).
    #[command(flatten)]
    Edit(crate::edit::EditCmd),
}

impl ImageCmd {
    /// The image file the command works on.
    pub fn image(&self) -> Option<&Path> {
        Some(match self {
            ImageCmd::Info { image }
            | ImageCmd::Ls { image, .. }
            | ImageCmd::Cat { image, .. }
            | ImageCmd::Stat { image, .. }
            | ImageCmd::Get { image, .. }
            | ImageCmd::Df { image }
            | ImageCmd::Resize { image, .. }
            | ImageCmd::Dedup { image, .. } => image,
            ImageCmd::Edit(c) => match c {
                EditCmd::Put { image, .. }
                | EditCmd::Mkdir { image, .. }
                | EditCmd::Ln { image, .. }
                | EditCmd::Mv { image, .. }
                | EditCmd::Chmod { image, .. }
                | EditCmd::Chown { image, .. }
                | EditCmd::Truncate { image, .. }
                | EditCmd::Rm { image, .. } => image,
            },
        })
    }
}

/// Run one `pvfs image` command on the image's file system (FAT or ext4).
pub fn run(cmd: ImageCmd) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    if cmd.image().is_some_and(crate::fatfs::is_fat) {
        run_on::<Fat<FileDisk>>(cmd, &mut out)
    } else {
        run_on::<Ext4<FileDisk>>(cmd, &mut out)
    }
}

/// Run `cmd` on file system `F`, writing its output to `out`.
fn run_on<F: ImageFs>(cmd: ImageCmd, out: &mut impl Write) -> Result<(), String> {
    let w = |r: std::io::Result<()>| r.map_err(|e| format!("stdout: {e}"));
    match cmd {
        ImageCmd::Edit(c) => crate::edit::run::<F>(c),
        ImageCmd::Dedup { json, image, paths } => {
            let text = F::dedup(&image, &paths, json)?;
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Resize { image, size } => {
            let text = F::resize(&image, &size)?;
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Info { image } => {
            let fs = F::open_ro(&image)?;
            w(out.write_all(fs.info().as_bytes()))
        }
        ImageCmd::Ls { long, image, path } => {
            let mut fs = F::open_ro(&image)?;
            let text = ls(&mut fs, &path, long)?;
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Cat { image, path } => {
            let mut fs = F::open_ro(&image)?;
            let ino = resolve(&mut fs, &path)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0u64;
            loop {
                let n = fs
                    .read_at(ino, off, &mut buf)
                    .map_err(|e| format!("{path}: {e}"))?;
                if n == 0 {
                    break;
                }
                w(out.write_all(buf.get(..n).unwrap_or(&[])))?;
                off += n as u64;
            }
            w(out.flush())
        }
        ImageCmd::Stat { image, path } => {
            let mut fs = F::open_ro(&image)?;
            let text = stat(&mut fs, &path)?;
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Get { image, path, dest } => {
            let mut fs = F::open_ro(&image)?;
            let st = fs.get(&path, &dest)?;
            for s in &st.skipped {
                eprintln!("pvfs: skipped special file {s}");
            }
            eprintln!(
                "pvfs: copied {} files ({} bytes), {} directories, {} symlinks, {} hard links",
                st.files, st.bytes, st.dirs, st.symlinks, st.hardlinks
            );
            Ok(())
        }
        ImageCmd::Df { image } => {
            let fs = F::open_ro(&image)?;
            let s = fs.df();
            let text = format!(
                "block size: {}\nblocks: {}\nused blocks: {}\nfree blocks: {}\navailable blocks: {}\ninodes: {}\nused inodes: {}\nfree inodes: {}\nname max: {}\n",
                s.block_size,
                s.blocks,
                s.blocks.saturating_sub(s.free_blocks),
                s.free_blocks,
                s.avail_blocks,
                s.inodes,
                s.inodes.saturating_sub(s.free_inodes),
                s.free_inodes,
                s.name_max
            );
            w(out.write_all(text.as_bytes()))
        }
    }
}

/// `path` resolved, or the read commands' `PATH: what` message.
fn resolve<F: ImageFs>(fs: &mut F, path: &str) -> Result<F::Ino, String> {
    lookup_path(fs, path).map_err(|e| format!("{path}: {e}"))
}

fn long_line<F: ImageFs>(fs: &mut F, ino: F::Ino, a: &Stat, name: &[u8]) -> String {
    let mut line = format!(
        "{} {} {} {} {} {} {}",
        mode_string(a.mode),
        a.nlink,
        a.uid,
        a.gid,
        a.size,
        fmt_time(a.mtime),
        escape(name)
    );
    if a.kind == FileType::Symlink {
        if let Ok(t) = fs.read_link(ino) {
            line.push_str(" -> ");
            line.push_str(&escape(&t));
        }
    }
    line.push('\n');
    line
}

fn ls<F: ImageFs>(fs: &mut F, path: &str, long: bool) -> Result<String, String> {
    let ino = resolve(fs, path)?;
    let a = fs.stat(ino).map_err(|e| format!("{path}: {e}"))?;
    let mut text = String::new();
    if !a.is_dir() {
        let name = path.rsplit('/').next().unwrap_or(path);
        return Ok(if long {
            long_line(fs, ino, &a, name.as_bytes())
        } else {
            format!("{}\n", escape(name.as_bytes()))
        });
    }
    let mut entries = fs.list(ino).map_err(|e| format!("{path}: {e}"))?;
    entries.sort_by(|x, y| x.1.cmp(&y.1));
    for (child, name) in entries {
        if long {
            let a = fs
                .stat(child)
                .map_err(|err| format!("{path}/{}: {err}", escape(&name)))?;
            text.push_str(&long_line(fs, child, &a, &name));
        } else {
            text.push_str(&escape(&name));
            text.push('\n');
        }
    }
    Ok(text)
}

fn stat<F: ImageFs>(fs: &mut F, path: &str) -> Result<String, String> {
    let ino = resolve(fs, path)?;
    let a = fs.stat(ino).map_err(|e| format!("{path}: {e}"))?;
    let kind = match a.kind {
        FileType::Regular => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::CharDev => "character device",
        FileType::BlockDev => "block device",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::Unknown => "unknown",
    };
    let mut s = format!(
        "path: {path}\ninode: {ino}\ntype: {kind}\nmode: {:04o} ({})\nlinks: {}\nuid: {}\ngid: {}\nsize: {}\nblocks: {}\n",
        a.mode & 0o7777,
        mode_string(a.mode),
        a.nlink,
        a.uid,
        a.gid,
        a.size,
        a.blocks
    );
    s.push_str(&format!(
        "atime: {}\nmtime: {}\nctime: {}\n",
        time_field(a.atime),
        time_field(a.mtime),
        time_field(a.ctime)
    ));
    if let Some(c) = a.crtime {
        s.push_str(&format!("crtime: {}\n", time_field(c)));
    }
    s.push_str(&fs.stat_extra(ino, &a).map_err(|e| format!("{path}: {e}"))?);
    Ok(s)
}
