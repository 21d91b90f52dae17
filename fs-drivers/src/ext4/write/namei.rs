//! Namespace operations of the writer: `symlink` (fast, in `i_block`, and slow, in a data
//! block), `link`, `mknod` (fifos, sockets, character and block devices with the Linux `rdev`
//! encodings), `setattr` (permission bits, owners, timestamps with nanoseconds) and `rename`
//! (POSIX replace rules, `noreplace`, `exchange`, directories across parents).

use super::{
    dir_tail, dirent_type, put16, put32, set_mtime_ctime, set_time, store_extents, EXT4_LINK_MAX,
    S_IFREG,
};
use crate::block::BlockDevice;
use crate::ext4::{
    corrupt, crc32c_raw, flags, le16, le32, valid_name, Error, Ext4, FileType, Ino, Inode,
    RenameFlags, Result, SetAttr, Timestamp, NAME_MAX, S_IFDIR, S_IFLNK, S_IFMT,
};

const S_IFIFO: u16 = 0x1000;
const S_IFCHR: u16 = 0x2000;
const S_IFBLK: u16 = 0x6000;
const S_IFSOCK: u16 = 0xC000;

/// Longest symlink target (Linux: `PATH_MAX - 1`; the target must fit one block too).
pub(in crate::ext4) const SYMLINK_MAX: usize = 4095;
/// Targets shorter than this are stored in `i_block` (fast symlinks).
const FAST_SYMLINK_MAX: usize = 59;

/// Seconds representable by ext4's 34-bit timestamps (32 signed bits plus two epoch bits).
const TS_MIN: i64 = -(1 << 31);
const TS_MAX: i64 = (1 << 31) + (3 << 32) - 1;

/// A timestamp clamped to what an inode can hold (as Linux clamps to the file system's
/// range); nanoseconds must be below 10⁹.
fn clamp_ts(t: Timestamp) -> Result<Timestamp> {
    if t.nsec >= 1_000_000_000 {
        return Err(Error::Invalid {
            what: "timestamp nanoseconds",
        });
    }
    Ok(if t.sec < TS_MIN {
        Timestamp {
            sec: TS_MIN,
            nsec: 0,
        }
    } else if t.sec > TS_MAX {
        Timestamp {
            sec: TS_MAX,
            nsec: 999_999_999,
        }
    } else {
        t
    })
}

/// Split a Linux user-space `dev_t` (glibc `makedev` layout) into major and minor.
fn dev_split(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

impl<D: BlockDevice> Ext4<D> {
    /// Check that an inode's blocks can be freed with it: inodes without blocks (fast
    /// symlinks, devices, fifos, sockets, empty files) and valid extent trees can.
    /// Block-mapped inodes with blocks are refused. An xattr block (released with the inode)
    /// is checked here, before anything changes.
    pub(super) fn check_releasable(&mut self, inode: &Inode) -> Result<()> {
        let mut ea_blocks = 0;
        if inode.file_acl != 0 {
            self.xattr_block_check(inode)?;
            ea_blocks = self.ctx.bs as u64 / 512;
        }
        let kind = inode.mode & S_IFMT;
        let blockless = inode.blocks.saturating_sub(ea_blocks) == 0
            && (inode.flags & flags::EXTENTS == 0
                || (kind == S_IFLNK && inode.size <= FAST_SYMLINK_MAX as u64));
        if blockless {
            return Ok(());
        }
        if inode.flags & flags::EXTENTS == 0 {
            return Err(Error::Unsupported {
                what: "releasing a block-mapped inode",
            });
        }
        self.load_tree(inode).map(|_| ())
    }

    /// Change the attributes of `ino`: permission bits (the type bits stay), owner, group
    /// (32 bits; the high halves live in `osd2`) and timestamps (nanoseconds in the extra
    /// fields when the inode has them; clamped to ext4's range). The change time is `ctime`
    /// when given, else the engine clock. Nothing to change leaves the inode alone.
    pub fn setattr(&mut self, ino: Ino, set: &SetAttr) -> Result<()> {
        self.ensure_rw()?;
        if *set == SetAttr::default() {
            self.load_inode(ino)?;
            return Ok(());
        }
        let atime = set.atime.map(clamp_ts).transpose()?;
        let mtime = set.mtime.map(clamp_ts).transpose()?;
        let ctime = clamp_ts(set.ctime.unwrap_or(self.clock))?;
        let inode = self.load_inode(ino)?;
        let set = *set;
        let mode = set.mode.map(|m| (inode.mode & S_IFMT) | (m & 0o7777));
        self.patch_inode(ino, |raw| {
            if let Some(m) = mode {
                put16(raw, 0, m);
            }
            if let Some(u) = set.uid {
                put16(raw, 0x2, u as u16);
                put16(raw, 0x78, (u >> 16) as u16);
            }
            if let Some(g) = set.gid {
                put16(raw, 0x18, g as u16);
                put16(raw, 0x7A, (g >> 16) as u16);
            }
            if let Some(t) = atime {
                set_time(raw, 0x8, Some(0x8C), t);
            }
            if let Some(t) = mtime {
                set_time(raw, 0x10, Some(0x88), t);
            }
            set_time(raw, 0xC, Some(0x84), ctime);
        })?;
        self.maybe_sync()
    }

    /// Create symbolic link `name` in `dir` pointing at `target` (1..=4095 bytes, no NUL).
    /// Targets shorter than 60 bytes are stored in the inode (fast symlink, no extents flag),
    /// longer ones in one data block mapped by an extent.
    pub fn symlink(
        &mut self,
        dir: Ino,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Ino> {
        if target.is_empty() || target.len() > SYMLINK_MAX.min(self.ctx.bs - 1) {
            return Err(Error::Invalid {
                what: "symlink target length",
            });
        }
        if target.contains(&0) {
            return Err(Error::Invalid {
                what: "symlink target contains NUL",
            });
        }
        self.check_new_entry(dir, name)?;
        let ino = self.alloc_inode(false, dir)?;
        self.new_inode(ino, S_IFLNK | 0o777, uid, gid, 1)?;
        let len = target.len();
        if len <= FAST_SYMLINK_MAX {
            self.patch_inode(ino, |raw| {
                let fl = le32(raw, 0x20) & !flags::EXTENTS;
                put32(raw, 0x20, fl);
                if let Some(ib) = raw.get_mut(0x28..0x64) {
                    ib.fill(0);
                    if let Some(d) = ib.get_mut(..len) {
                        d.copy_from_slice(target);
                    }
                }
                put32(raw, 0x4, len as u32);
            })?;
        } else {
            let goal = self
                .groups
                .get(((ino - 1) / self.ctx.inodes_per_group.max(1)) as usize)
                .map_or(0, |d| d.inode_table);
            let blk = match self.alloc_blocks(goal, 1) {
                Ok((b, _)) => b,
                Err(e) => {
                    self.abandon_inode(ino, false)?;
                    return Err(e);
                }
            };
            let b = self.block_new(blk)?;
            if let Some(d) = b.get_mut(..len) {
                d.copy_from_slice(target);
            }
            self.dirty_data.insert(blk);
            let sectors = (self.ctx.bs / 512) as u32;
            self.patch_inode(ino, |raw| {
                put32(raw, 0x4, len as u32);
                put32(raw, 0x1C, sectors);
                if let Some(ib) = raw.get_mut(0x28..0x64) {
                    store_extents(ib, &[(0, 1, blk)]);
                }
            })?;
        }
        if let Err(e) = self.dir_add(dir, name, ino, FileType::Symlink) {
            self.free_all_blocks(ino)?;
            self.abandon_inode(ino, false)?;
            return Err(e);
        }
        self.maybe_sync()?;
        Ok(ino)
    }

    /// Add a hard link `name` in `dir` to `ino` (not a directory: [`Error::IsDir`]). The link
    /// count may reach 65000 ([`Error::TooManyLinks`] beyond); an inode whose last link is
    /// gone (open-unlinked) cannot be linked again ([`Error::NotFound`]).
    pub fn link(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> Result<()> {
        self.ensure_rw()?;
        let inode = self.load_inode(ino)?;
        if inode.mode & S_IFMT == S_IFDIR {
            return Err(Error::IsDir { ino });
        }
        if inode.links == 0 {
            return Err(Error::NotFound);
        }
        if inode.links >= EXT4_LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        self.check_new_entry(dir, name)?;
        self.dir_add(dir, name, ino, FileType::from_mode(inode.mode))?;
        let now = self.clock;
        self.patch_inode(ino, |raw| {
            let l = le16(raw, 0x1A);
            put16(raw, 0x1A, l.saturating_add(1));
            set_time(raw, 0xC, Some(0x84), now);
        })?;
        self.maybe_sync()
    }

    /// Create a special file `name` in `dir`. `mode` holds the type (`S_IFIFO`, `S_IFCHR`,
    /// `S_IFBLK`, `S_IFSOCK`, or `S_IFREG` for an empty regular file) and the permission
    /// bits. `rdev` (devices only) is a Linux user-space `dev_t` (glibc `makedev` layout,
    /// major < 4096, minor < 2²⁰); it is stored like Linux does: the old 16-bit encoding in
    /// `i_block[0]` when major and minor are below 256, else the new encoding in
    /// `i_block[1]`.
    pub fn mknod(
        &mut self,
        dir: Ino,
        name: &[u8],
        mode: u16,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Ino> {
        let kind = mode & S_IFMT;
        match kind {
            S_IFREG => return self.create(dir, name, mode & 0o7777, uid, gid),
            S_IFIFO | S_IFSOCK | S_IFCHR | S_IFBLK => {}
            _ => {
                return Err(Error::Invalid {
                    what: "mknod file type",
                })
            }
        }
        let dev = matches!(kind, S_IFCHR | S_IFBLK);
        let (major, minor) = if dev { dev_split(rdev) } else { (0, 0) };
        if major >= 1 << 12 || minor >= 1 << 20 {
            return Err(Error::Invalid {
                what: "device number out of range",
            });
        }
        let (old, new) = if major < 256 && minor < 256 {
            (((major << 8) | minor) as u32, 0u32)
        } else {
            (
                0u32,
                ((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)) as u32,
            )
        };
        self.check_new_entry(dir, name)?;
        let ino = self.alloc_inode(false, dir)?;
        self.new_inode(ino, kind | (mode & 0o7777), uid, gid, 1)?;
        self.patch_inode(ino, |raw| {
            let fl = le32(raw, 0x20) & !flags::EXTENTS;
            put32(raw, 0x20, fl);
            if let Some(ib) = raw.get_mut(0x28..0x64) {
                ib.fill(0);
            }
            put32(raw, 0x28, old);
            put32(raw, 0x2C, new);
        })?;
        if let Err(e) = self.dir_add(dir, name, ino, FileType::from_mode(kind)) {
            self.abandon_inode(ino, false)?;
            return Err(e);
        }
        self.maybe_sync()?;
        Ok(ino)
    }
}

/// `i_links_count` after a directory gains a subdirectory (`dir_nlink`: 1 means "many").
fn dir_nlink_inc(l: u16) -> u16 {
    if l == 1 || l >= EXT4_LINK_MAX - 1 {
        1
    } else {
        l + 1
    }
}

/// `i_links_count` after a directory loses a subdirectory (an overflowed count stays 1).
fn dir_nlink_dec(l: u16) -> u16 {
    if l > 2 {
        l - 1
    } else {
        l
    }
}

impl<D: BlockDevice> Ext4<D> {
    /// `dir` as a directory the writer can change entries of (extent-mapped, not inline or
    /// encrypted, htree only with `dir_index`).
    fn writable_dir(&mut self, dir: Ino) -> Result<Inode> {
        let inode = self.dir_inode(dir)?;
        if inode.flags & flags::INDEX != 0 && !self.ctx.dir_index {
            return Err(Error::Unsupported {
                what: "changing an htree directory without dir_index",
            });
        }
        if inode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0
            || inode.flags & flags::EXTENTS == 0
        {
            return Err(Error::Unsupported {
                what: "changing an inline, encrypted or block-mapped directory",
            });
        }
        self.load_tree(&inode)?;
        Ok(inode)
    }

    /// Whether directory `dir` holds only `.` and `..`.
    fn dir_is_empty(&mut self, dir: Ino) -> Result<bool> {
        let mut entries = 0usize;
        self.readdir(dir, 0, |e| {
            entries += 1;
            e.name == b"." || e.name == b".."
        })?;
        Ok(entries <= 2)
    }

    /// `Invalid` when directory `anc` is `dir` or one of its ancestors (walking `..` up to
    /// the root, bounded by the inode count).
    fn check_not_ancestor(&mut self, anc: Ino, dir: Ino) -> Result<()> {
        let mut cur = dir;
        for _ in 0..=self.ctx.inodes_count {
            if cur == anc {
                return Err(Error::Invalid {
                    what: "moving a directory into its own subtree",
                });
            }
            if cur == crate::ext4::ROOT_INO {
                return Ok(());
            }
            let up = self.lookup(cur, b"..")?;
            if up == cur {
                return corrupt("directory parent loop", u64::from(cur));
            }
            cur = up;
        }
        corrupt("directory parent loop", u64::from(dir))
    }

    /// Point the entry `name → old` of `dir` at `new` (of type `kind`) in place, and stamp
    /// the directory's mtime/ctime.
    fn set_entry(
        &mut self,
        dir: Ino,
        name: &[u8],
        old: Ino,
        new: Ino,
        kind: FileType,
    ) -> Result<()> {
        let dinode = self.writable_dir(dir)?;
        let ctx = self.ctx;
        let bs = ctx.bs as u64;
        let limit = if ctx.csum { ctx.bs - 12 } else { ctx.bs };
        let t = if ctx.filetype { dirent_type(kind) } else { 0 };
        let mut found = false;
        for lblk in 0..dinode.size / bs {
            let Some(phys) = self.map(&dinode, lblk)?.phys else {
                continue;
            };
            let b = self.block(phys)?;
            if !Self::verify_dir_block(&ctx, &dinode, lblk, b, phys)? {
                continue;
            }
            let mut off = 0usize;
            let mut hit = None;
            while off + 8 <= limit {
                let rec = usize::from(le16(b, off + 4));
                let nl = usize::from(b.get(off + 6).copied().unwrap_or(0));
                if rec < 8 || off + rec > limit {
                    return corrupt("directory entry", phys);
                }
                if le32(b, off) == old && b.get(off + 8..off + 8 + nl) == Some(name) {
                    hit = Some(off);
                    break;
                }
                off += rec;
            }
            if let Some(off) = hit {
                let b = self.block_mut(phys)?;
                put32(b, off, new);
                if let Some(x) = b.get_mut(off + 7) {
                    *x = t;
                }
                dir_tail(&ctx, b, dinode.seed);
                found = true;
                break;
            }
        }
        if !found {
            return Err(Error::NotFound);
        }
        let now = self.clock;
        self.patch_inode(dir, |raw| set_mtime_ctime(raw, now))?;
        Ok(())
    }

    /// Point the `..` entry of directory `dir` at `parent` (block 0, second entry; the dx
    /// root checksum or the leaf tail is updated).
    fn set_dotdot(&mut self, dir: Ino, parent: Ino) -> Result<()> {
        let dinode = self.writable_dir(dir)?;
        let ctx = self.ctx;
        let at = u64::from(dir);
        let phys = self.map(&dinode, 0)?.phys.ok_or(Error::Corrupt {
            what: "directory block 0",
            at,
        })?;
        let b = self.block(phys)?;
        let leaf = Self::verify_dir_block(&ctx, &dinode, 0, b, phys)?;
        let first = usize::from(le16(b, 4));
        if first != 12 || b.get(18) != Some(&2) || b.get(20..22) != Some(b"..") {
            return corrupt("directory .. entry", at);
        }
        let b = self.block_mut(phys)?;
        put32(b, 12, parent);
        if leaf {
            dir_tail(&ctx, b, dinode.seed);
        } else if ctx.csum {
            let count_off = 0x18 + usize::from(b.get(0x1D).copied().unwrap_or(0));
            let limit = usize::from(le16(b, count_off));
            let count = usize::from(le16(b, count_off + 2));
            let tail = count_off + limit * 8;
            if count > limit || tail + 8 > ctx.bs {
                return corrupt("dx root limit", at);
            }
            let mut c = crc32c_raw(dinode.seed, b.get(..count_off + count * 8).unwrap_or(&[]));
            c = crc32c_raw(c, b.get(tail..tail + 4).unwrap_or(&[]));
            c = crc32c_raw(c, &[0; 4]);
            put32(b, tail + 4, c);
        }
        Ok(())
    }

    /// Change a directory's link count by `delta` subdirectories (dir_nlink semantics).
    fn dir_links_add(&mut self, dir: Ino, delta: i32) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        self.patch_inode(dir, |raw| {
            let mut l = le16(raw, 0x1A);
            for _ in 0..delta.unsigned_abs() {
                l = if delta > 0 {
                    dir_nlink_inc(l)
                } else {
                    dir_nlink_dec(l)
                };
            }
            put16(raw, 0x1A, l);
        })
    }

    /// Drop one link of `ino` whose entry is already gone: a directory (empty, checked by
    /// the caller) or a last link is released with its blocks; otherwise the count goes down
    /// and ctime is stamped.
    pub(super) fn drop_link(&mut self, ino: Ino) -> Result<()> {
        let inode = self.load_inode(ino)?;
        let dir = inode.mode & S_IFMT == S_IFDIR;
        let links = if dir {
            0
        } else {
            inode.links.saturating_sub(1)
        };
        if links > 0 {
            let now = self.clock;
            self.patch_inode(ino, |raw| {
                put16(raw, 0x1A, links);
                set_time(raw, 0xC, Some(0x84), now);
            })
        } else {
            self.last_link_gone(ino, dir)
        }
    }

    /// Rename `olddir/oldname` to `newdir/newname` with POSIX semantics: an existing target
    /// is replaced (file over file, directory over an empty directory; file over directory
    /// is [`Error::IsDir`], directory over file [`Error::NotDir`], over a non-empty directory
    /// [`Error::NotEmpty`]); the same inode on both sides is a no-op; a directory moved to
    /// another parent gets its `..` rewritten and both parents' link counts fixed; moving a
    /// directory into its own subtree is [`Error::Invalid`]. `noreplace` refuses an existing
    /// target ([`Error::Exists`]); `exchange` swaps two existing entries. The replaced inode
    /// loses a link (and is freed with its last one). The moved inodes' ctime and both
    /// parents' mtime/ctime are stamped. Every refusal leaves the file system unchanged.
    pub fn rename(
        &mut self,
        olddir: Ino,
        oldname: &[u8],
        newdir: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        self.ensure_rw()?;
        if flags.noreplace && flags.exchange {
            return Err(Error::Invalid {
                what: "rename with both noreplace and exchange",
            });
        }
        for n in [oldname, newname] {
            if n.len() > NAME_MAX || !valid_name(n) || n == b"." || n == b".." {
                return Err(Error::InvalidName);
            }
        }
        self.writable_dir(olddir)?;
        let newdir_inode = self.writable_dir(newdir)?;
        let src = self.lookup(olddir, oldname)?;
        let dst = match self.lookup(newdir, newname) {
            Ok(i) => Some(i),
            Err(Error::NotFound) => None,
            Err(e) => return Err(e),
        };
        if flags.exchange && dst.is_none() {
            return Err(Error::NotFound);
        }
        if flags.noreplace && dst.is_some() {
            return Err(Error::Exists);
        }
        if dst == Some(src) {
            return Ok(());
        }
        let sinode = self.load_inode(src)?;
        let s_dir = sinode.mode & S_IFMT == S_IFDIR;
        let dinode = match dst {
            Some(d) => Some(self.load_inode(d)?),
            None => None,
        };
        let d_dir = dinode.as_ref().is_some_and(|i| i.mode & S_IFMT == S_IFDIR);
        let cross = olddir != newdir;
        if s_dir {
            self.writable_dir(src)?;
            if cross {
                self.check_not_ancestor(src, newdir)?;
            }
        }
        if flags.exchange && d_dir {
            if let Some(d) = dst {
                self.writable_dir(d)?;
                if cross {
                    self.check_not_ancestor(d, olddir)?;
                }
            }
        }
        // What the replaced inode would free, checked before anything changes.
        if let (Some(d), Some(di), false) = (dst, dinode.as_ref(), flags.exchange) {
            match (s_dir, d_dir) {
                (true, false) => return Err(Error::NotDir { ino: d }),
                (false, true) => return Err(Error::IsDir { ino: d }),
                _ => {}
            }
            if d_dir && !self.dir_is_empty(d)? {
                return Err(Error::NotEmpty);
            }
            if d_dir || di.links <= 1 {
                self.check_releasable(di)?;
            }
        }
        // Subdirectory count changes of the parents.
        let (s, d) = (i32::from(s_dir), i32::from(d_dir));
        let (old_delta, new_delta) = match (flags.exchange, cross) {
            (true, true) => (d - s, s - d),
            (true, false) => (0, 0),
            (false, true) => (-s, s - d),
            (false, false) => (0, -d),
        };
        let no_dir_nlink = self.sb.feature_ro_compat & 0x20 == 0;
        if no_dir_nlink && new_delta > 0 && newdir_inode.links >= EXT4_LINK_MAX - 1 {
            return Err(Error::TooManyLinks);
        }
        if no_dir_nlink && old_delta > 0 && self.load_inode(olddir)?.links >= EXT4_LINK_MAX - 1 {
            return Err(Error::TooManyLinks);
        }
        let skind = FileType::from_mode(sinode.mode);
        let now = self.clock;
        match (dst, dinode.as_ref()) {
            (Some(d), Some(di)) if flags.exchange => {
                let dkind = FileType::from_mode(di.mode);
                self.set_entry(olddir, oldname, src, d, dkind)?;
                self.set_entry(newdir, newname, d, src, skind)?;
                if cross && d_dir {
                    self.set_dotdot(d, olddir)?;
                }
                self.patch_inode(d, |raw| set_time(raw, 0xC, Some(0x84), now))?;
            }
            (Some(d), Some(_)) => {
                self.set_entry(newdir, newname, d, src, skind)?;
                self.remove_entry(olddir, oldname, src)?;
                self.drop_link(d)?;
            }
            _ => {
                self.dir_add(newdir, newname, src, skind)?;
                self.remove_entry(olddir, oldname, src)?;
            }
        }
        if cross && s_dir {
            self.set_dotdot(src, newdir)?;
        }
        self.dir_links_add(olddir, old_delta)?;
        self.dir_links_add(newdir, new_delta)?;
        self.patch_inode(src, |raw| set_time(raw, 0xC, Some(0x84), now))?;
        self.maybe_sync()
    }
}
