//! `pvfs image …` subcommands: read an ext2/3/4 image directly (no root, no mount); the
//! write commands are in `edit.rs`.
//!
//! Output formats are part of the interface (scripts and tests parse them); they are documented
//! on each subcommand and in `docs/pvfs-image.md`.

use crate::edit::EditCmd;
use clap::Subcommand;
use pvfs_fs::block::FileDisk;
use pvfs_fs::ext4::{Attr, Ext4, FileType, Ino, Timestamp};
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

fn open(image: &Path) -> Result<Ext4<FileDisk>, String> {
    pvfs_fs::host::open_image(image).map_err(|e| e.to_string())
}

fn resolve(fs: &mut Ext4<FileDisk>, path: &str) -> Result<Ino, String> {
    fs.lookup_path(path.as_bytes())
        .map_err(|e| format!("{path}: {e}"))
}

pub fn run(cmd: ImageCmd) -> Result<(), String> {
    if cmd.image().is_some_and(crate::fatimage::is_fat) {
        return crate::fatimage::run(cmd);
    }
    let mut out = std::io::stdout().lock();
    let w = |r: std::io::Result<()>| r.map_err(|e| format!("stdout: {e}"));
    match cmd {
        ImageCmd::Edit(c) => crate::edit::run(c),
        ImageCmd::Dedup { json, image, paths } => {
            let text = crate::dedup::run(&image, &paths, json)?;
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Resize { image, size } => {
            let text = crate::resize::run(&image, &size)?;
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Info { image } => {
            let fs = open(&image)?;
            w(out.write_all(info(&fs).as_bytes()))
        }
        ImageCmd::Ls { long, image, path } => {
            let mut fs = open(&image)?;
            let text = ls(&mut fs, &path, long)?;
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Cat { image, path } => {
            let mut fs = open(&image)?;
            let ino = resolve(&mut fs, &path)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0u64;
            loop {
                let n = fs
                    .read(ino, off, &mut buf)
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
            let mut fs = open(&image)?;
            let text = stat(&mut fs, &path)?;
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Get { image, path, dest } => {
            let mut fs = open(&image)?;
            let st = pvfs_fs::host::extract(&mut fs, &path, &dest).map_err(|e| e.to_string())?;
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
            let fs = open(&image)?;
            let s = fs.statfs();
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

/// Bytes shown as UTF-8 where valid, `\xHH` otherwise (and for control characters).
pub fn escape(b: &[u8]) -> String {
    let mut s = String::new();
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    s.push_str(&format!("\\x{byte:02x}"));
                }
            } else {
                s.push(c);
            }
        }
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

/// `ls -l` style mode string.
pub fn mode_string(mode: u16) -> String {
    let t = match FileType::from_mode(mode) {
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharDev => 'c',
        FileType::BlockDev => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
        FileType::Regular => '-',
        FileType::Unknown => '?',
    };
    let mut s = String::from(t);
    let bit = |m: u16, c: char| if mode & m != 0 { c } else { '-' };
    let special =
        |x: u16, sbit: u16, lower: char, upper: char| match (mode & x != 0, mode & sbit != 0) {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T'));
    s
}

/// `YYYY-MM-DD HH:MM:SS.NNNNNNNNN` (UTC).
pub fn fmt_time(t: Timestamp) -> String {
    let days = t.sec.div_euclid(86_400);
    let secs = t.sec.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:09}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        t.nsec
    )
}

fn long_line(fs: &mut Ext4<FileDisk>, a: &Attr, name: &[u8]) -> String {
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
        if let Ok(t) = fs.readlink(a.ino) {
            line.push_str(" -> ");
            line.push_str(&escape(&t));
        }
    }
    line.push('\n');
    line
}

fn ls(fs: &mut Ext4<FileDisk>, path: &str, long: bool) -> Result<String, String> {
    let ino = resolve(fs, path)?;
    let a = fs.getattr(ino).map_err(|e| format!("{path}: {e}"))?;
    let mut text = String::new();
    if a.kind != FileType::Directory {
        let name = path.rsplit('/').next().unwrap_or(path);
        return Ok(if long {
            long_line(fs, &a, name.as_bytes())
        } else {
            format!("{}\n", escape(name.as_bytes()))
        });
    }
    let mut entries = fs.read_dir(ino).map_err(|e| format!("{path}: {e}"))?;
    entries.retain(|e| e.name != b"." && e.name != b"..");
    entries.sort_by(|x, y| x.name.cmp(&y.name));
    for e in entries {
        if long {
            let a = fs
                .getattr(e.ino)
                .map_err(|err| format!("{path}/{}: {err}", escape(&e.name)))?;
            text.push_str(&long_line(fs, &a, &e.name));
        } else {
            text.push_str(&escape(&e.name));
            text.push('\n');
        }
    }
    Ok(text)
}

fn time_field(t: Timestamp) -> String {
    format!("{} ({}.{:09})", fmt_time(t), t.sec, t.nsec)
}

fn stat(fs: &mut Ext4<FileDisk>, path: &str) -> Result<String, String> {
    let ino = resolve(fs, path)?;
    let a = fs.getattr(ino).map_err(|e| format!("{path}: {e}"))?;
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
        "path: {path}\ninode: {}\ntype: {kind}\nmode: {:04o} ({})\nlinks: {}\nuid: {}\ngid: {}\nsize: {}\nblocks: {}\n",
        a.ino,
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
    s.push_str(&format!(
        "generation: {}\nflags: {:#x}\n",
        a.generation, a.flags
    ));
    if matches!(a.kind, FileType::CharDev | FileType::BlockDev) {
        s.push_str(&format!("rdev: {},{}\n", a.rdev_major, a.rdev_minor));
    }
    if a.kind == FileType::Symlink {
        let t = fs.readlink(ino).map_err(|e| format!("{path}: {e}"))?;
        s.push_str(&format!("target: {}\n", escape(&t)));
    }
    let names = fs.listxattr(ino).map_err(|e| format!("{path}: {e}"))?;
    for n in names {
        let v = fs.getxattr(ino, &n).map_err(|e| format!("{path}: {e}"))?;
        s.push_str(&format!("xattr {}: {}\n", escape(&n), escape(&v)));
    }
    Ok(s)
}

fn info(fs: &Ext4<FileDisk>) -> String {
    let sb = fs.superblock();
    let mut state = match sb.state {
        1 => "clean".to_string(),
        s if s & 2 != 0 => "has errors".to_string(),
        _ => "not clean".to_string(),
    };
    if sb.feature_incompat & 0x4 != 0 {
        state.push_str(", needs journal recovery");
    }
    let uuid: String = sb
        .uuid
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if matches!(i, 4 | 6 | 8 | 10) {
                format!("-{b:02x}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect();
    let name_end = sb.volume_name.iter().position(|&c| c == 0).unwrap_or(16);
    let hash = match sb.def_hash_version {
        0 => "legacy",
        1 => "half_md4",
        2 => "tea",
        _ => "unknown",
    };
    let t = |s: u32| {
        fmt_time(Timestamp {
            sec: i64::from(s),
            nsec: 0,
        })
    };
    let mut s = format!(
        "volume: {}\nuuid: {uuid}\nstate: {state}\nblock size: {}\nblocks: {}\nfree blocks: {}\nreserved blocks: {}\ninodes: {}\nfree inodes: {}\ninode size: {}\ngroups: {}\nblocks per group: {}\ninodes per group: {}\nfirst data block: {}\nfeatures: {}\nhash: {hash}\njournal inode: {}\ncreated: {}\nlast write: {}\nmount count: {}\n",
        escape(sb.volume_name.get(..name_end).unwrap_or(&[])),
        sb.block_size(),
        sb.blocks_count,
        sb.free_blocks_count,
        sb.r_blocks_count,
        sb.inodes_count,
        sb.free_inodes_count,
        sb.inode_size,
        sb.group_count(),
        sb.blocks_per_group,
        sb.inodes_per_group,
        sb.first_data_block,
        sb.feature_names().join(" "),
        sb.journal_inum,
        t(sb.mkfs_time),
        t(sb.wtime),
        sb.mnt_count,
    );
    if let Some(r) = fs.read_only_reason() {
        s.push_str(&format!("read-only: {r}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(mode_string(0o104755), "-rwsr-xr-x");
        assert_eq!(mode_string(0o041777), "drwxrwxrwt");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx");
        assert_eq!(
            fmt_time(Timestamp { sec: 0, nsec: 5 }),
            "1970-01-01 00:00:00.000000005"
        );
        assert_eq!(
            fmt_time(Timestamp {
                sec: 1_600_000_000,
                nsec: 0
            }),
            "2020-09-13 12:26:40.000000000"
        );
        assert_eq!(
            fmt_time(Timestamp {
                sec: -86_400 * 365,
                nsec: 0
            }),
            "1969-01-01 00:00:00.000000000"
        );
        assert_eq!(escape(b"a\xffb\n"), "a\\xffb\\x0a");
    }
}
