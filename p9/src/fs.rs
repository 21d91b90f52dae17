//! The `Filesystem` trait the 9P server drives, and the types it exchanges.
//!
//! The trait is inode-based, like the ext4 engine: the server resolves names with `lookup` and
//! keeps inode numbers in its fids. Every method takes `&self` so that a transport can run
//! several requests at once; implementations do their own locking. Methods that modify the
//! filesystem default to `EOPNOTSUPP` (a read-only backend overrides them with `EROFS`).

use alloc::vec::Vec;

/// An inode number.
pub type Ino = u64;

/// A Linux errno value, sent to the client in `Rlerror`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub u32);

#[allow(missing_docs, reason = "Linux errno names")]
impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const EIO: Errno = Errno(5);
    pub const E2BIG: Errno = Errno(7);
    pub const EBADF: Errno = Errno(9);
    pub const EAGAIN: Errno = Errno(11);
    pub const ENOMEM: Errno = Errno(12);
    pub const EACCES: Errno = Errno(13);
    pub const EFAULT: Errno = Errno(14);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const EXDEV: Errno = Errno(18);
    pub const ENOTDIR: Errno = Errno(20);
    pub const EISDIR: Errno = Errno(21);
    pub const EINVAL: Errno = Errno(22);
    pub const EMFILE: Errno = Errno(24);
    pub const EFBIG: Errno = Errno(27);
    pub const ENOSPC: Errno = Errno(28);
    pub const EROFS: Errno = Errno(30);
    pub const EMLINK: Errno = Errno(31);
    pub const ERANGE: Errno = Errno(34);
    pub const ENAMETOOLONG: Errno = Errno(36);
    pub const ENOLCK: Errno = Errno(37);
    pub const ENOSYS: Errno = Errno(38);
    pub const ENOTEMPTY: Errno = Errno(39);
    pub const ELOOP: Errno = Errno(40);
    pub const ENODATA: Errno = Errno(61);
    pub const EPROTO: Errno = Errno(71);
    pub const EBADMSG: Errno = Errno(74);
    pub const EOVERFLOW: Errno = Errno(75);
    pub const EOPNOTSUPP: Errno = Errno(95);
    pub const EDQUOT: Errno = Errno(122);
}

/// Result of filesystem operations.
pub type FsResult<T> = Result<T, Errno>;

/// File type bits of `mode` (Linux `S_IF*`): the engine's one definition
/// (`pvfs_fs::ext4::mode`, 16-bit like `i_mode`), widened to the 32-bit mode 9P carries.
#[allow(missing_docs, reason = "Linux names")]
pub mod mode {
    use pvfs_fs::ext4::mode as m;
    pub const S_IFMT: u32 = m::S_IFMT as u32;
    pub const S_IFSOCK: u32 = m::S_IFSOCK as u32;
    pub const S_IFLNK: u32 = m::S_IFLNK as u32;
    pub const S_IFREG: u32 = m::S_IFREG as u32;
    pub const S_IFBLK: u32 = m::S_IFBLK as u32;
    pub const S_IFDIR: u32 = m::S_IFDIR as u32;
    pub const S_IFCHR: u32 = m::S_IFCHR as u32;
    pub const S_IFIFO: u32 = m::S_IFIFO as u32;
}

/// A timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Timespec {
    /// Seconds since the epoch.
    pub sec: u64,
    /// Nanoseconds.
    pub nsec: u32,
}

/// Inode attributes, in host (filesystem) ids. Not the Rgetattr body (`wire::Getattr`), which
/// repeats most of these fields on purpose: the guest sees mapped ids, a qid and a `valid`
/// mask; `server/attr.rs` (`guest_attr`) is the one place that converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs, reason = "stat(2) fields")]
pub struct Attr {
    pub ino: Ino,
    /// Inode generation (changes when an inode number is reused).
    pub generation: u32,
    /// Type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    /// Linux `new_encode_dev` encoding.
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    /// 512-byte blocks.
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub btime: Timespec,
    /// Changes on every modification of the inode (data or metadata).
    pub version: u64,
}

impl Attr {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFDIR
    }
    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFLNK
    }
    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFREG
    }
}

/// `DT_*` directory entry types.
#[allow(missing_docs, reason = "Linux names")]
pub mod dt {
    pub const UNKNOWN: u8 = 0;
    pub const FIFO: u8 = 1;
    pub const CHR: u8 = 2;
    pub const DIR: u8 = 4;
    pub const BLK: u8 = 6;
    pub const REG: u8 = 8;
    pub const LNK: u8 = 10;
    pub const SOCK: u8 = 12;
}

/// `DT_*` type of a mode.
pub fn dt_of_mode(m: u32) -> u8 {
    match m & mode::S_IFMT {
        mode::S_IFDIR => dt::DIR,
        mode::S_IFREG => dt::REG,
        mode::S_IFLNK => dt::LNK,
        mode::S_IFCHR => dt::CHR,
        mode::S_IFBLK => dt::BLK,
        mode::S_IFIFO => dt::FIFO,
        mode::S_IFSOCK => dt::SOCK,
        _ => dt::UNKNOWN,
    }
}

/// One directory entry given to a readdir callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Inode number of the entry.
    pub ino: Ino,
    /// `DT_*` type.
    pub kind: u8,
    /// Name bytes.
    pub name: &'a [u8],
    /// Cookie that resumes the listing just after this entry. Cookies are stable: they stay
    /// valid when other entries are added or removed.
    pub next_cookie: u64,
}

/// The callback [`Filesystem::readdir`] calls with each entry, in cookie order; it returns
/// `false` to stop the listing.
pub type DirVisitor<'a> = &'a mut dyn FnMut(DirEntry<'_>) -> bool;

/// Filesystem statistics: the Rstatfs body itself (statfs(2)'s fields, which 9P2000.L carries
/// unchanged), so a filesystem's answer goes on the wire without a copy field by field.
pub use crate::wire::StatfsRepr as FsStat;

/// How to set a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSet {
    /// The filesystem's current time.
    Now,
    /// A given time.
    At(Timespec),
}

/// Attribute changes (host ids). `None` leaves a field alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs, reason = "fields mirror Tsetattr")]
pub struct SetAttr {
    /// Permission bits only (the type cannot change).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeSet>,
    pub mtime: Option<TimeSet>,
    /// Update ctime to now even if nothing else changes.
    pub ctime: bool,
}

/// Ownership and mode of a new inode (host ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewInode {
    /// Full mode including type bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for device nodes (Linux `new_encode_dev`).
    pub rdev: u64,
}

/// `setxattr` flags.
#[allow(missing_docs, reason = "Linux names")]
pub mod xattr_flags {
    pub const CREATE: u32 = 1;
    pub const REPLACE: u32 = 2;
}

/// A filesystem served over 9P. All ids are host ids; the server translates guest ids.
#[allow(unused_variables, reason = "default bodies ignore their arguments")]
pub trait Filesystem: Send + Sync {
    /// The root directory inode.
    fn root(&self) -> Ino;
    /// Looks up `name` (never `.` or `..` except for `..`, which returns the parent) in `dir`.
    fn lookup(&self, dir: Ino, name: &[u8]) -> FsResult<Attr>;
    /// Attributes of `ino`.
    fn getattr(&self, ino: Ino) -> FsResult<Attr>;
    /// Reads from `off` into `buf`; returns the number of bytes read (0 at end of file).
    /// Every byte of `buf[..n]` must be written (holes as zeros): `buf` may hold an earlier
    /// reply's bytes ([`crate::Connection::recycle`]).
    fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> FsResult<usize>;
    /// Whether a [`read`](Self::read) of `len` bytes at `off` would wait for the disk. A
    /// filesystem that says so has started fetching the data in the background, so a server
    /// with other requests may run them first and read later. A hint only (errors are left to
    /// the read itself); the default is never.
    fn read_would_wait(&self, ino: Ino, off: u64, len: u32) -> bool {
        let _ = (ino, off, len);
        false
    }
    /// Lists `dir` starting after `cookie` (0 = from the start). Calls `f` for each entry
    /// until it returns `false`.
    fn readdir(&self, dir: Ino, cookie: u64, f: DirVisitor<'_>) -> FsResult<()>;
    /// Target of a symbolic link.
    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>>;
    /// Filesystem statistics.
    fn statfs(&self) -> FsResult<FsStat>;

    /// The server holds a reference to `ino` (a fid points at it). An inode unlinked while
    /// referenced must stay readable and writable until the last `release`.
    fn retain(&self, ino: Ino) {}
    /// Drops a reference taken with `retain`.
    fn release(&self, ino: Ino) {}

    /// Names of extended attributes, each NUL-terminated (listxattr(2) format).
    fn listxattr(&self, ino: Ino) -> FsResult<Vec<u8>> {
        Ok(Vec::new())
    }
    /// Value of an extended attribute.
    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        Err(Errno::ENODATA)
    }
    /// Sets an extended attribute.
    fn setxattr(&self, ino: Ino, name: &[u8], value: &[u8], flags: u32) -> FsResult<()> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Removes an extended attribute.
    fn removexattr(&self, ino: Ino, name: &[u8]) -> FsResult<()> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Reads one of pvfs's own xattrs (`trusted.pvfs.*`), which guests can neither see nor
    /// set through [`getxattr`](Self::getxattr) and its kin: template shares keep their
    /// marks in them (`crate::overlay`). The default reads it like any xattr; a filesystem
    /// that hides them from guests overrides both methods.
    fn getxattr_private(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        self.getxattr(ino, name)
    }
    /// Sets one of pvfs's own xattrs (see [`getxattr_private`](Self::getxattr_private)).
    fn setxattr_private(&self, ino: Ino, name: &[u8], value: &[u8]) -> FsResult<()> {
        self.setxattr(ino, name, value, 0)
    }
    /// Writes `data` at `off`; returns the number of bytes written.
    fn write(&self, ino: Ino, off: u64, data: &[u8]) -> FsResult<usize> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Whether a [`write`](Self::write) of `len` bytes at `off` into `ino` is certain to
    /// succeed in full unless the device fails: `ino` is a regular file the filesystem can
    /// write, and it has room for the data with a margin. A server may then answer the
    /// `Twrite` before running it (see [`crate::server::WriteBehind`]). When in doubt, say
    /// no: the write then runs before its reply, with its exact error. The default is never.
    fn write_would_fit(&self, ino: Ino, off: u64, len: u64) -> bool {
        let _ = (ino, off, len);
        false
    }
    /// Bytes of `ino`'s data (attributes `a`) that count against its export's space quota:
    /// its size, except where the data is shared with something the export does not own (a
    /// template share's files not yet copied count nothing; their first write or truncate
    /// is charged the whole copy).
    fn owned_bytes(&self, ino: Ino, a: &Attr) -> u64 {
        let _ = ino;
        a.size
    }
    /// Changes attributes; returns the new attributes.
    fn setattr(&self, ino: Ino, set: &SetAttr) -> FsResult<Attr> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Creates a regular file, directory, device node, fifo or socket named `name` in `dir`.
    fn create(&self, dir: Ino, name: &[u8], new: &NewInode) -> FsResult<Attr> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Creates a symbolic link.
    fn symlink(&self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> FsResult<Attr> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Creates a hard link to `ino` named `name` in `dir`.
    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Removes `name` from `dir`; `rmdir` selects directory removal (`AT_REMOVEDIR`).
    fn unlink(&self, dir: Ino, name: &[u8], rmdir: bool) -> FsResult<()> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Renames `olddir/oldname` to `newdir/newname`, replacing a compatible target.
    fn rename(&self, olddir: Ino, oldname: &[u8], newdir: Ino, newname: &[u8]) -> FsResult<()> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Makes `ino`'s data (and metadata unless `datasync`) durable.
    fn fsync(&self, ino: Ino, datasync: bool) -> FsResult<()> {
        Ok(())
    }
    /// Makes everything durable (shutdown).
    fn sync(&self) -> FsResult<()> {
        Ok(())
    }
    /// The device under the filesystem has grown to `device_bytes`: grow into it as far as
    /// the filesystem can, durably, and return its size in bytes afterwards; `statfs`
    /// reports it from then on (a share without a space quota sees the new space at once).
    /// The default, for filesystems that cannot grow while they are served (FAT; the
    /// in-memory one), refuses with `EOPNOTSUPP`.
    fn grow(&self, device_bytes: u64) -> FsResult<u64> {
        Err(Errno::EOPNOTSUPP)
    }
}

impl<F: Filesystem + ?Sized> Filesystem for alloc::sync::Arc<F> {
    fn root(&self) -> Ino {
        (**self).root()
    }
    fn lookup(&self, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        (**self).lookup(dir, name)
    }
    fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        (**self).getattr(ino)
    }
    fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> FsResult<usize> {
        (**self).read(ino, off, buf)
    }
    fn read_would_wait(&self, ino: Ino, off: u64, len: u32) -> bool {
        (**self).read_would_wait(ino, off, len)
    }
    fn write_would_fit(&self, ino: Ino, off: u64, len: u64) -> bool {
        (**self).write_would_fit(ino, off, len)
    }
    fn readdir(&self, dir: Ino, cookie: u64, f: DirVisitor<'_>) -> FsResult<()> {
        (**self).readdir(dir, cookie, f)
    }
    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        (**self).readlink(ino)
    }
    fn statfs(&self) -> FsResult<FsStat> {
        (**self).statfs()
    }
    fn retain(&self, ino: Ino) {
        (**self).retain(ino)
    }
    fn release(&self, ino: Ino) {
        (**self).release(ino)
    }
    fn listxattr(&self, ino: Ino) -> FsResult<Vec<u8>> {
        (**self).listxattr(ino)
    }
    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        (**self).getxattr(ino, name)
    }
    fn setxattr(&self, ino: Ino, name: &[u8], value: &[u8], flags: u32) -> FsResult<()> {
        (**self).setxattr(ino, name, value, flags)
    }
    fn removexattr(&self, ino: Ino, name: &[u8]) -> FsResult<()> {
        (**self).removexattr(ino, name)
    }
    fn getxattr_private(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        (**self).getxattr_private(ino, name)
    }
    fn setxattr_private(&self, ino: Ino, name: &[u8], value: &[u8]) -> FsResult<()> {
        (**self).setxattr_private(ino, name, value)
    }
    fn write(&self, ino: Ino, off: u64, data: &[u8]) -> FsResult<usize> {
        (**self).write(ino, off, data)
    }
    fn owned_bytes(&self, ino: Ino, a: &Attr) -> u64 {
        (**self).owned_bytes(ino, a)
    }
    fn setattr(&self, ino: Ino, set: &SetAttr) -> FsResult<Attr> {
        (**self).setattr(ino, set)
    }
    fn create(&self, dir: Ino, name: &[u8], new: &NewInode) -> FsResult<Attr> {
        (**self).create(dir, name, new)
    }
    fn symlink(&self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> FsResult<Attr> {
        (**self).symlink(dir, name, target, uid, gid)
    }
    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        (**self).link(ino, dir, name)
    }
    fn unlink(&self, dir: Ino, name: &[u8], rmdir: bool) -> FsResult<()> {
        (**self).unlink(dir, name, rmdir)
    }
    fn rename(&self, olddir: Ino, oldname: &[u8], newdir: Ino, newname: &[u8]) -> FsResult<()> {
        (**self).rename(olddir, oldname, newdir, newname)
    }
    fn fsync(&self, ino: Ino, datasync: bool) -> FsResult<()> {
        (**self).fsync(ino, datasync)
    }
    fn sync(&self) -> FsResult<()> {
        (**self).sync()
    }
    fn grow(&self, device_bytes: u64) -> FsResult<u64> {
        (**self).grow(device_bytes)
    }
}
