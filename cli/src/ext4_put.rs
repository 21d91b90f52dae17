//! `pvfs image put` onto ext4, like `cp -a`: modes, owners, times, extended attributes,
//! symbolic links, special files and hard links are kept, and all-zero blocks become holes.

use crate::ext4fs::{emsg, with_ext4};
use crate::host_xattrs::{host_xattrs, HostXattrs};
use crate::imagefs::PutStats;
use crate::put::{destination, host_children, host_metadata, not_the_image};
use pvfs_fs::block::FileDisk;
use pvfs_fs::ext4::{Error, Ext4, FileType, Ino, SetAttr, Timestamp, XattrSet};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

type Fs = Ext4<FileDisk>;

/// Copy host `src` into ext4 `image` at `dest`.
pub fn run(image: &Path, src: &Path, dest: &str) -> Result<PutStats, String> {
    let image_id = std::fs::metadata(image)
        .map(|m| (m.dev(), m.ino()))
        .map_err(|e| format!("{}: {e}", image.display()))?;
    // `cp -a` names: no trailing slashes (they would change getfattr's paths).
    let trimmed = src.as_os_str().as_bytes();
    let keep = trimmed.len() - trimmed.iter().rev().take_while(|&&c| c == b'/').count();
    let src = PathBuf::from(std::ffi::OsStr::from_bytes(
        trimmed.get(..keep.max(1)).unwrap_or(trimmed),
    ));
    host_metadata(&src)?;
    let xattrs = host_xattrs(&src)?;
    with_ext4(image, |fs| {
        let mut p = Putter {
            fs,
            xattrs,
            image_id,
            links: HashMap::new(),
            stats: PutStats::default(),
            buf: vec![0u8; CHUNK],
        };
        p.put(&src, dest)?;
        Ok(p.stats)
    })
}

/// Host read size while copying files in (a multiple of every block size).
const CHUNK: usize = 1 << 20;

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
        let md = host_metadata(src)?;
        let (parent, name, shown) = destination(self.fs, src, &md, dest)?;
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
        not_the_image(src, md, self.image_id)?;
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
            for c in host_children(src, shown)? {
                let cmd = host_metadata(&c.path)?;
                self.copy(dir, c.name.as_bytes(), &c.path, &cmd, &c.shown)?;
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
