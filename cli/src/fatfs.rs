//! [`ImageFs`] for FAT12/16/32 images, through pvfs's FAT engine (`docs/pvfs-image.md`, "FAT
//! images"): what FAT cannot store is refused as Linux's vfat refuses it. Owners and modes
//! are vfat's defaults (uid 0, gid 0, `rwxr-xr-x`; no write bits with the read-only
//! attribute), and there are no links.

use crate::imagefs::{now, ErrorKind, FsError, ImageFs, PutStats, Res, Stat};
use crate::put::{destination, host_children, host_metadata, not_the_image};
use pvfs_fs::block::FileDisk;
use pvfs_fs::ext4::{FileType, StatFs, Timestamp};
use pvfs_fs::fat::{attr, bpb::FatType, Error, Fat, Ino, ROOT_INO};
use pvfs_fs::host::ExtractStats;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

type Fs = Fat<FileDisk>;

/// What FAT cannot store, with vfat's answer.
const NO_LINKS: &str = "operation not permitted (FAT has no links)";

/// Whether `image` holds a FAT file system (and not ext4).
pub fn is_fat(image: &Path) -> bool {
    let mut head = vec![0u8; 2048];
    let Ok(mut f) = std::fs::File::open(image) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let ext4 = n >= 1082 && head[1080..1082] == [0x53, 0xEF];
    n >= 512 && !ext4 && pvfs_fs::fat::probe(&head[..512])
}

fn emsg(e: &Error) -> String {
    e.to_string()
}

fn err(e: Error) -> FsError {
    let kind = match e {
        Error::NotFound => ErrorKind::NotFound,
        Error::Invalid { .. } => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    };
    FsError::new(kind, emsg(&e), emsg(&e))
}

fn open(image: &Path, writable: bool) -> Result<Fs, String> {
    let disk = if writable {
        FileDisk::open_rw(image)
    } else {
        FileDisk::open(image)
    }
    .map_err(|e| format!("{}: {e}", image.display()))?;
    let mut fs =
        Fat::open(disk, writable).map_err(|e| format!("{}: {}", image.display(), emsg(&e)))?;
    let t = now();
    fs.set_now((t.sec, t.nsec));
    Ok(fs)
}

/// vfat's mode for an entry: directories and files `rwxr-xr-x`, read-only files `r-xr-xr-x`.
fn mode_of(dir: bool, attributes: u8) -> u16 {
    if dir {
        0o040_755
    } else if attributes & attr::READ_ONLY != 0 {
        0o100_555
    } else {
        0o100_755
    }
}

fn stamp((sec, nsec): (i64, u32)) -> Timestamp {
    Timestamp { sec, nsec }
}

fn is_dir(fs: &mut Fs, ino: Ino) -> bool {
    Fat::stat(fs, ino).is_ok_and(|s| s.dir)
}

impl ImageFs for Fs {
    type Ino = Ino;
    const ROOT: Ino = ROOT_INO;
    const NO_LINKS: Option<&'static str> = Some(NO_LINKS);

    fn open_ro(image: &Path) -> Result<Self, String> {
        open(image, false)
    }

    fn open_rw(image: &Path) -> Result<Self, String> {
        open(image, true)
    }

    fn close(mut self, image: &Path) -> Result<(), String> {
        self.sync()
            .map_err(|e| format!("{}: writing back: {}", image.display(), emsg(&e)))
    }

    fn info(&self) -> String {
        let g = self.geometry();
        let u = self.usage();
        let kind = match g.kind {
            FatType::Fat12 => "FAT12",
            FatType::Fat16 => "FAT16",
            FatType::Fat32 => "FAT32",
        };
        let label = String::from_utf8_lossy(&g.label).trim_end().to_string();
        format!(
            "volume: {label}\nvolume id: {:04X}-{:04X}\nfat type: {kind}\nsector size: {}\ncluster size: {}\nclusters: {}\nfree clusters: {}\nfats: {}\nsectors per fat: {}\nreserved sectors: {}\nroot entries: {}\nsectors: {}\n",
            g.volume_id >> 16,
            g.volume_id & 0xFFFF,
            g.sector_size,
            u.cluster_bytes,
            u.clusters,
            u.free,
            g.fats,
            g.fat_sectors,
            g.reserved,
            g.root_entries,
            g.total_sectors,
        )
    }

    /// Clusters as blocks; no inodes.
    fn df(&self) -> StatFs {
        let u = self.usage();
        StatFs {
            block_size: u.cluster_bytes,
            blocks: u64::from(u.clusters),
            free_blocks: u64::from(u.free),
            avail_blocks: u64::from(u.free),
            inodes: 0,
            free_inodes: 0,
            name_max: 255,
            fsid: 0,
        }
    }

    fn get(&mut self, path: &str, dest: &Path) -> Result<ExtractStats, String> {
        if std::fs::symlink_metadata(dest).is_ok() {
            return Err(format!("{}: exists", dest.display()));
        }
        let ino = crate::imagefs::lookup_path(self, path)
            .map_err(|e| format!("{path}: {}", e.short()))?;
        let mut st = ExtractStats::default();
        copy_out(self, ino, path, dest, &mut st)?;
        Ok(st)
    }

    fn put(image: &Path, src: &Path, dest: &str) -> Result<PutStats, String> {
        host_metadata(src)?;
        let image_id = std::fs::metadata(image)
            .map(|m| (m.dev(), m.ino()))
            .map_err(|e| format!("{}: {e}", image.display()))?;
        crate::imagefs::with_image(image, |fs: &mut Fs| {
            let md = host_metadata(src)?;
            let (parent, name, shown) = destination(fs, src, &md, dest)?;
            let mut p = Putter {
                fs,
                image_id,
                stats: PutStats::default(),
            };
            p.copy_in(parent, &name, src, &md, &shown)?;
            Ok(p.stats)
        })
    }

    fn resize(image: &Path, _size: &str) -> Result<String, String> {
        Err(format!("{}: FAT images cannot be resized", image.display()))
    }

    fn dedup(image: &Path, _paths: &[String], _json: bool) -> Result<String, String> {
        Err(format!("{}: dedup needs an ext4 image", image.display()))
    }

    fn lookup(&mut self, dir: Ino, name: &[u8]) -> Res<Ino> {
        Fat::lookup(self, dir, name).map_err(err)
    }

    /// vfat's owners and modes; `ctime` is the modification time.
    fn stat(&mut self, ino: Ino) -> Res<Stat> {
        let s = Fat::stat(self, ino).map_err(err)?;
        let sectors_per_cluster = u64::from(self.geometry().cluster_bytes() / 512);
        Ok(Stat {
            kind: if s.dir {
                FileType::Directory
            } else {
                FileType::Regular
            },
            mode: mode_of(s.dir, s.attr),
            nlink: 1,
            uid: 0,
            gid: 0,
            size: s.size,
            blocks: s.clusters * sectors_per_cluster,
            atime: stamp(s.atime),
            mtime: stamp(s.mtime),
            ctime: stamp(s.mtime),
            crtime: Some(stamp(s.crtime)),
        })
    }

    /// The FAT attributes and the first cluster.
    fn stat_extra(&mut self, ino: Ino, _st: &Stat) -> Res<String> {
        let s = Fat::stat(self, ino).map_err(err)?;
        let mut names = Vec::new();
        for (bit, name) in [
            (attr::READ_ONLY, "read-only"),
            (attr::HIDDEN, "hidden"),
            (attr::SYSTEM, "system"),
            (attr::ARCHIVE, "archive"),
        ] {
            if s.attr & bit != 0 {
                names.push(name);
            }
        }
        Ok(format!(
            "attributes: {}\nfirst cluster: {}\n",
            names.join(" "),
            s.first_cluster
        ))
    }

    fn list(&mut self, dir: Ino) -> Res<Vec<(Ino, Vec<u8>)>> {
        let mut out = Vec::new();
        self.readdir(dir, 0, &mut |l| {
            out.push((l.ino, l.name.clone()));
            true
        })
        .map_err(err)?;
        Ok(out)
    }

    fn read_at(&mut self, ino: Ino, off: u64, buf: &mut [u8]) -> Res<usize> {
        self.read(ino, off, buf).map_err(err)
    }

    fn read_link(&mut self, _ino: Ino) -> Res<Vec<u8>> {
        Err(FsError::refused(NO_LINKS))
    }

    fn make_dir(&mut self, dir: Ino, name: &[u8]) -> Res<Ino> {
        self.create(dir, name, true, 0).map_err(err)
    }

    fn remove_file(&mut self, dir: Ino, name: &[u8]) -> Res<()> {
        self.unlink(dir, name, false).map_err(err)
    }

    fn remove_dir(&mut self, dir: Ino, name: &[u8]) -> Res<()> {
        self.unlink(dir, name, true).map_err(err)
    }

    fn move_entry(&mut self, od: Ino, on: &[u8], nd: Ino, nn: &[u8]) -> Res<()> {
        self.rename(od, on, nd, nn).map_err(err)
    }

    fn set_size(&mut self, ino: Ino, size: u64) -> Res<()> {
        self.truncate(ino, size).map_err(err)
    }

    /// vfat's rule (`fat_sanitize_mode_change`, mask 022): bits in the mask are ignored, r
    /// and x stay all set, w is the owner's (or, for a file, none: the read-only attribute).
    fn set_mode(&mut self, ino: Ino, mode: u16) -> Res<()> {
        let s = Fat::stat(self, ino).map_err(err)?;
        let perm = mode & !0o022;
        let w = perm & 0o222;
        let ok = mode & !0o777 == 0 && perm & 0o555 == 0o555 && (w == 0o200 || (w == 0 && !s.dir));
        if !ok {
            return Err(FsError::refused(if s.dir {
                "operation not permitted (FAT keeps 0755 only)"
            } else {
                "operation not permitted (FAT keeps 0755 and 0555 only)"
            }));
        }
        if s.dir || ino == ROOT_INO {
            return Ok(());
        }
        let bits = (s.attr & !attr::READ_ONLY) | if w == 0 { attr::READ_ONLY } else { 0 };
        self.set_attributes(ino, bits).map_err(err)
    }

    /// Only 0:0.
    fn set_owner(&mut self, _ino: Ino, uid: Option<u32>, gid: Option<u32>) -> Res<()> {
        if [uid, gid].iter().flatten().any(|&i| i != 0) {
            return Err(FsError::refused(
                "operation not permitted (FAT owners are 0:0)",
            ));
        }
        Ok(())
    }

    fn make_symlink(&mut self, _dir: Ino, _name: &[u8], _target: &[u8]) -> Res<()> {
        Err(FsError::refused(NO_LINKS))
    }

    fn make_link(&mut self, _ino: Ino, _dir: Ino, _name: &[u8]) -> Res<()> {
        Err(FsError::refused(NO_LINKS))
    }
}

/// Copy `ino` (shown as `shown`) out to host `dest`: directories and files, a read-only file
/// read-only on the host, with access and modification times.
fn copy_out(
    fs: &mut Fs,
    ino: Ino,
    shown: &str,
    dest: &Path,
    st: &mut ExtractStats,
) -> Result<(), String> {
    let s = Fat::stat(fs, ino).map_err(|e| format!("{shown}: {}", emsg(&e)))?;
    let io = |e: std::io::Error| format!("{}: {e}", dest.display());
    if s.dir {
        std::fs::create_dir(dest).map_err(io)?;
        st.dirs += 1;
        let children = fs.list(ino).map_err(|e| format!("{shown}: {e}"))?;
        for (child, name) in children {
            let sub = dest.join(std::ffi::OsStr::from_bytes(&name));
            let shown = format!(
                "{}/{}",
                shown.trim_end_matches('/'),
                String::from_utf8_lossy(&name)
            );
            copy_out(fs, child, &shown, &sub, st)?;
        }
    } else {
        let mut f = std::fs::File::create(dest).map_err(io)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        loop {
            let n = fs
                .read(ino, off, &mut buf)
                .map_err(|e| format!("{shown}: {}", emsg(&e)))?;
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n]).map_err(io)?;
            off += n as u64;
        }
        st.files += 1;
        st.bytes += off;
        if s.attr & attr::READ_ONLY != 0 {
            let mut p = f.metadata().map_err(io)?.permissions();
            p.set_readonly(true);
            std::fs::set_permissions(dest, p).map_err(io)?;
        }
    }
    let t = |(sec, nsec): (i64, u32)| {
        std::time::UNIX_EPOCH + std::time::Duration::new(u64::try_from(sec).unwrap_or(0), nsec)
    };
    let times = std::fs::FileTimes::new()
        .set_accessed(t(s.atime))
        .set_modified(t(s.mtime));
    // A read-only file cannot be opened for writing, but its times can be set through a
    // read-only handle.
    std::fs::File::open(dest)
        .and_then(|f| f.set_times(times))
        .map_err(io)
}

/// `put` onto FAT: directories and regular files with their times; a host file without
/// write bits gets the read-only attribute; symbolic links and special files are refused.
struct Putter<'a> {
    fs: &'a mut Fs,
    /// (st_dev, st_ino) of the image file: never copied into itself.
    image_id: (u64, u64),
    stats: PutStats,
}

impl Putter<'_> {
    /// Copy host `src` (metadata `md`) to entry `name` of image directory `parent`.
    fn copy_in(
        &mut self,
        parent: Ino,
        name: &[u8],
        src: &Path,
        md: &std::fs::Metadata,
        shown: &str,
    ) -> Result<(), String> {
        let fail = |e: &Error| format!("{shown}: {}", emsg(e));
        not_the_image(src, md, self.image_id)?;
        let ft = md.file_type();
        let ino = if ft.is_dir() {
            let dir = match Fat::lookup(self.fs, parent, name) {
                Ok(ino) if is_dir(self.fs, ino) => ino,
                Ok(_) => {
                    return Err(format!(
                        "{shown}: cannot overwrite non-directory with directory"
                    ))
                }
                Err(Error::NotFound) => {
                    self.stats.dirs += 1;
                    self.fs
                        .create(parent, name, true, 0)
                        .map_err(|e| fail(&e))?
                }
                Err(e) => return Err(fail(&e)),
            };
            for c in host_children(src, shown)? {
                let cmd = host_metadata(&c.path)?;
                self.copy_in(dir, c.name.as_bytes(), &c.path, &cmd, &c.shown)?;
            }
            dir
        } else if ft.is_file() {
            let ino = match Fat::lookup(self.fs, parent, name) {
                Ok(ino) if is_dir(self.fs, ino) => return Err(format!("{shown}: is a directory")),
                Ok(ino) => {
                    self.fs.truncate(ino, 0).map_err(|e| fail(&e))?;
                    ino
                }
                Err(Error::NotFound) => self
                    .fs
                    .create(parent, name, false, 0)
                    .map_err(|e| fail(&e))?,
                Err(e) => return Err(fail(&e)),
            };
            self.copy_data(ino, src, md, shown)?;
            ino
        } else if ft.is_symlink() {
            return Err(format!(
                "{shown}: operation not permitted (FAT cannot store symbolic links)"
            ));
        } else {
            return Err(format!(
                "{shown}: operation not permitted (FAT cannot store special files)"
            ));
        };
        let t = |s: i64, n: i64| (s, n.clamp(0, 999_999_999) as u32);
        self.fs
            .set_times(
                ino,
                Some(t(md.mtime(), md.mtime_nsec())),
                Some(t(md.atime(), md.atime_nsec())),
            )
            .map_err(|e| fail(&e))
    }

    /// Write host regular file `src`'s data into `ino`, and its lack of write bits as the
    /// read-only attribute.
    fn copy_data(
        &mut self,
        ino: Ino,
        src: &Path,
        md: &std::fs::Metadata,
        shown: &str,
    ) -> Result<(), String> {
        let fail = |e: &Error| format!("{shown}: {}", emsg(e));
        let mut f = std::fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| format!("{}: {e}", src.display()))?;
            if n == 0 {
                break;
            }
            self.fs.write(ino, off, &buf[..n]).map_err(|e| fail(&e))?;
            off += n as u64;
        }
        self.stats.files += 1;
        self.stats.bytes += off;
        if md.mode() & 0o222 == 0 {
            let s = Fat::stat(self.fs, ino).map_err(|e| fail(&e))?;
            self.fs
                .set_attributes(ino, s.attr | attr::READ_ONLY)
                .map_err(|e| fail(&e))?;
        }
        Ok(())
    }
}
