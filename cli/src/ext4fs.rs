//! [`ImageFs`] for ext2/3/4 images, through pvfs's ext4 engine: owners, modes, links,
//! symbolic links and extended attributes as the image stores them.

use crate::format::{escape, fmt_time};
use crate::imagefs::{with_image, ErrorKind, FsError, ImageFs, PutStats, Res, Stat};
use pvfs_fs::block::FileDisk;
use pvfs_fs::ext4::{Error, Ext4, FileType, Ino, Options, RenameFlags, SetAttr, StatFs};
use pvfs_fs::host::ExtractStats;
use std::path::Path;

/// The engine's error as a short message (inode numbers left out).
pub(crate) fn emsg(e: &Error) -> String {
    match e {
        Error::NotDir { .. } => "not a directory".to_string(),
        Error::IsDir { .. } => "is a directory".to_string(),
        other => other.to_string(),
    }
}

fn err(e: Error) -> FsError {
    let kind = match e {
        Error::NotFound => ErrorKind::NotFound,
        Error::Invalid { .. } => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    };
    FsError::new(kind, emsg(&e), e.to_string())
}

impl ImageFs for Ext4<FileDisk> {
    type Ino = Ino;
    const ROOT: Ino = pvfs_fs::ext4::ROOT_INO;

    fn open_ro(image: &Path) -> Result<Self, String> {
        pvfs_fs::host::open_image(image).map_err(|e| e.to_string())
    }

    fn open_rw(image: &Path) -> Result<Self, String> {
        let disk = FileDisk::open_rw(image).map_err(|e| format!("{}: {e}", image.display()))?;
        let mut fs = Ext4::open_rw(disk, &Options::default())
            .map_err(|e| format!("{}: {}", image.display(), emsg(&e)))?;
        fs.set_clock(crate::imagefs::now());
        Ok(fs)
    }

    fn close(self, image: &Path) -> Result<(), String> {
        Ext4::close(self)
            .map(drop)
            .map_err(|e| format!("{}: writing back: {}", image.display(), emsg(&e)))
    }

    fn info(&self) -> String {
        info(self)
    }

    fn df(&self) -> StatFs {
        self.statfs()
    }

    fn get(&mut self, path: &str, dest: &Path) -> Result<ExtractStats, String> {
        pvfs_fs::host::extract(self, path, dest).map_err(|e| e.to_string())
    }

    fn put(image: &Path, src: &Path, dest: &str) -> Result<PutStats, String> {
        crate::ext4_put::run(image, src, dest)
    }

    fn resize(image: &Path, size: &str) -> Result<String, String> {
        crate::resize::run(image, size)
    }

    fn dedup(image: &Path, paths: &[String], json: bool) -> Result<String, String> {
        crate::dedup::run(image, paths, json)
    }

    fn lookup(&mut self, dir: Ino, name: &[u8]) -> Res<Ino> {
        Ext4::lookup(self, dir, name).map_err(err)
    }

    fn stat(&mut self, ino: Ino) -> Res<Stat> {
        let a = self.getattr(ino).map_err(err)?;
        Ok(Stat {
            kind: a.kind,
            mode: a.mode,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            size: a.size,
            blocks: a.blocks,
            atime: a.atime,
            mtime: a.mtime,
            ctime: a.ctime,
            crtime: a.crtime,
        })
    }

    fn stat_extra(&mut self, ino: Ino, st: &Stat) -> Res<String> {
        let a = self.getattr(ino).map_err(err)?;
        let mut s = format!("generation: {}\nflags: {:#x}\n", a.generation, a.flags);
        if matches!(st.kind, FileType::CharDev | FileType::BlockDev) {
            s.push_str(&format!("rdev: {},{}\n", a.rdev_major, a.rdev_minor));
        }
        if st.kind == FileType::Symlink {
            let t = self.readlink(ino).map_err(err)?;
            s.push_str(&format!("target: {}\n", escape(&t)));
        }
        for n in self.listxattr(ino).map_err(err)? {
            let v = self.getxattr(ino, &n).map_err(err)?;
            s.push_str(&format!("xattr {}: {}\n", escape(&n), escape(&v)));
        }
        Ok(s)
    }

    fn list(&mut self, dir: Ino) -> Res<Vec<(Ino, Vec<u8>)>> {
        let entries = self.read_dir(dir).map_err(err)?;
        Ok(entries
            .into_iter()
            .filter(|e| e.name != b"." && e.name != b"..")
            .map(|e| (e.ino, e.name))
            .collect())
    }

    fn read_at(&mut self, ino: Ino, off: u64, buf: &mut [u8]) -> Res<usize> {
        self.read(ino, off, buf).map_err(err)
    }

    fn read_link(&mut self, ino: Ino) -> Res<Vec<u8>> {
        self.readlink(ino).map_err(err)
    }

    fn make_dir(&mut self, dir: Ino, name: &[u8]) -> Res<Ino> {
        self.mkdir(dir, name, 0o755, 0, 0).map_err(err)
    }

    fn remove_file(&mut self, dir: Ino, name: &[u8]) -> Res<()> {
        self.unlink(dir, name).map_err(err)
    }

    fn remove_dir(&mut self, dir: Ino, name: &[u8]) -> Res<()> {
        self.rmdir(dir, name).map_err(err)
    }

    fn move_entry(&mut self, od: Ino, on: &[u8], nd: Ino, nn: &[u8]) -> Res<()> {
        self.rename(od, on, nd, nn, RenameFlags::default())
            .map_err(err)
    }

    fn set_size(&mut self, ino: Ino, size: u64) -> Res<()> {
        self.truncate(ino, size).map_err(err)
    }

    fn set_mode(&mut self, ino: Ino, mode: u16) -> Res<()> {
        let set = SetAttr {
            mode: Some(mode),
            ..SetAttr::default()
        };
        self.setattr(ino, &set).map_err(err)
    }

    fn set_owner(&mut self, ino: Ino, uid: Option<u32>, gid: Option<u32>) -> Res<()> {
        let set = SetAttr {
            uid,
            gid,
            ..SetAttr::default()
        };
        self.setattr(ino, &set).map_err(err)
    }

    fn make_symlink(&mut self, dir: Ino, name: &[u8], target: &[u8]) -> Res<()> {
        self.symlink(dir, name, target, 0, 0).map(drop).map_err(err)
    }

    fn make_link(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> Res<()> {
        self.link(ino, dir, name).map_err(err)
    }
}

/// Open `image` read-write, run `f` on the ext4 engine, and close it whatever `f` returned.
pub(crate) fn with_ext4<T>(
    image: &Path,
    f: impl FnOnce(&mut Ext4<FileDisk>) -> Result<T, String>,
) -> Result<T, String> {
    with_image(image, f)
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
        fmt_time(pvfs_fs::ext4::Timestamp {
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
