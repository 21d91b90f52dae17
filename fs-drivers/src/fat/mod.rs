//! The FAT engine: FAT12, FAT16 and FAT32 with VFAT long names, read and write, no journal.
//!
//! Layout: [`bpb`] (boot sector, FSInfo), [`table`] (the FAT, kept in memory), [`entry`]
//! (32-byte directory entries and long-name slots), [`name`] (long names, 8.3 aliases),
//! [`time`] (DOS timestamps), `node` (inode numbers), `dir` (reading and changing
//! directories), `file` (file data), `ops` (create, unlink, rename, attributes).
//!
//! **Inode numbers.** FAT has none. The engine hands out numbers from a counter the first
//! time it meets an entry (a lookup or a listing) and keeps a table from the entry's place
//! (parent directory's number, slot of its short entry) to the number; the root is
//! [`ROOT_INO`]. A number stays the same while the volume is mounted, also across renames
//! (the table follows the entry) and after an unlink while the file is still retained; a
//! new mount numbers afresh. The table grows with the entries visited (about 100 bytes each).
//!
//! **Write ordering (no journal).** Every change is written through before the call
//! returns, in an order chosen so that a power cut at any write leaves nothing worse than
//! lost clusters (which `fsck.fat` reclaims) or a file whose cluster chain is longer than its
//! size (which `fsck.fat` trims back to the size): clusters are allocated in every FAT copy
//! (first copy first) before anything points at them; data is written before the entry's
//! size or first cluster; an entry is cleared (its short entry first, then its long-name
//! slots, as Linux does) before its clusters are freed; a shrinking file gets its new size
//! before its chain is
//! cut; a rename clears the old entry before it writes the new one, so a cut between the two
//! loses the file to lost clusters rather than leaving two entries on one chain
//! (cross-linked). FSInfo's free count is set to "unknown" before the first change after
//! a mount or sync and written back by [`Fat::sync`], so a crash never leaves a wrong count.
//! A cut between a new name's long-name slots and its short entry, or between a removed
//! name's short entry and its long-name slots, leaves orphaned long-name slots when they lie
//! in different sectors: no reader shows them, and `fsck.fat` removes them.

pub mod bpb;
mod dir;
pub mod entry;
mod file;
pub mod name;
mod node;
mod ops;
pub mod table;
pub mod time;

use crate::block::{BlockDevice, DevError};
use alloc::vec;
use alloc::vec::Vec;
use bpb::{FatType, Geometry};
use node::Nodes;
use table::Table;

pub use entry::attr;
pub use node::Stat;

/// An inode number (see the module documentation).
pub type Ino = u64;
/// The root directory's number.
pub const ROOT_INO: Ino = 1;
/// The largest file FAT can hold.
pub const MAX_FILE: u64 = 0xFFFF_FFFF;
/// The most entries Linux lets a directory have.
pub const MAX_DIR_ENTRIES: usize = 65_536;

/// Errors from the FAT engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The block device failed.
    Dev(DevError),
    /// The boot sector is not a FAT boot sector this engine accepts.
    BadBootSector {
        /// Which field.
        what: &'static str,
    },
    /// A structure is malformed.
    Corrupt {
        /// Which structure.
        what: &'static str,
        /// A cluster, sector or slot number, depending on `what`.
        at: u64,
    },
    /// The volume exceeds what the engine keeps in memory.
    TooLarge {
        /// What is too large.
        what: &'static str,
    },
    /// No such entry or inode.
    NotFound,
    /// Not a directory.
    NotDir,
    /// A directory where a file was needed.
    IsDir,
    /// The name exists already.
    Exists,
    /// The directory is not empty.
    NotEmpty,
    /// No free cluster, or no room in a fixed root directory.
    NoSpace,
    /// A name FAT cannot store (invalid UTF-8 or a character vfat refuses).
    InvalidName,
    /// A name longer than 255 UTF-16 units.
    NameTooLong,
    /// The engine was mounted read-only.
    ReadOnly,
    /// Beyond FAT's 4 GiB - 1 file size.
    FileTooBig,
    /// An argument the operation cannot take (such as moving a directory into itself).
    Invalid {
        /// What.
        what: &'static str,
    },
}

impl From<DevError> for Error {
    fn from(e: DevError) -> Error {
        Error::Dev(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Dev(e) => write!(f, "device: {e}"),
            Error::BadBootSector { what } => write!(f, "not a FAT volume: {what}"),
            Error::Corrupt { what, at } => write!(f, "corrupt: {what} ({at})"),
            Error::TooLarge { what } => write!(f, "too large: {what}"),
            Error::NotFound => f.write_str("no such file or directory"),
            Error::NotDir => f.write_str("not a directory"),
            Error::IsDir => f.write_str("is a directory"),
            Error::Exists => f.write_str("file exists"),
            Error::NotEmpty => f.write_str("directory not empty"),
            Error::NoSpace => f.write_str("no space left on device"),
            Error::InvalidName => f.write_str("invalid file name (FAT cannot store it)"),
            Error::NameTooLong => f.write_str("file name too long"),
            Error::ReadOnly => f.write_str("read-only file system"),
            Error::FileTooBig => f.write_str("file too large"),
            Error::Invalid { what } => write!(f, "invalid argument: {what}"),
        }
    }
}

/// Space figures for statfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes per cluster.
    pub cluster_bytes: u32,
    /// Data clusters.
    pub clusters: u32,
    /// Free clusters.
    pub free: u32,
}

/// A mounted FAT volume.
pub struct Fat<D: BlockDevice> {
    dev: D,
    geo: Geometry,
    table: Table,
    writable: bool,
    /// Device sectors per FAT sector.
    dev_per_sector: u64,
    nodes: Nodes,
    /// FSInfo sector is valid and its free count is currently "unknown" on disk.
    fsinfo_unknown: bool,
    fsinfo_present: bool,
    /// The time changes are stamped with (Unix seconds, nanoseconds).
    now: (i64, u32),
}

/// Whether `sector` (a whole boot sector) looks like a FAT boot sector this engine mounts.
pub fn probe(sector: &[u8]) -> bool {
    Geometry::parse(sector).is_ok()
}

impl<D: BlockDevice> Fat<D> {
    /// Mounts the volume on `dev`, for writing when `writable` (and the device allows it).
    pub fn open(mut dev: D, writable: bool) -> Result<Self, Error> {
        let dss = u64::from(dev.sector_size());
        let mut boot = vec![0u8; dss.max(512) as usize];
        dev.read(0, &mut boot)?;
        let geo = Geometry::parse(&boot)?;
        let ss = u64::from(geo.sector_size);
        if ss < dss || ss % dss != 0 {
            return Err(Error::BadBootSector {
                what: "sector size smaller than the device's",
            });
        }
        let dev_per_sector = ss / dss;
        if u64::from(geo.total_sectors) * dev_per_sector > dev.sector_count() {
            return Err(Error::BadBootSector {
                what: "volume larger than the device",
            });
        }
        let bits = match geo.kind {
            FatType::Fat12 => 12u64,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        let need = ((u64::from(geo.clusters) + 2) * bits).div_ceil(8) + 1;
        let sectors = need.div_ceil(ss).min(u64::from(geo.fat_sectors));
        let first_fat = u64::from(geo.reserved)
            + u64::from(geo.active_fat.unwrap_or(0)) * u64::from(geo.fat_sectors);
        let mut bytes = vec![0u8; (sectors * ss) as usize];
        dev.read(first_fat * dev_per_sector, &mut bytes)?;
        if (bytes.len() as u64) < need {
            bytes.resize(need as usize, 0);
        }
        let table = Table::new(&geo, bytes)?;
        let writable = writable && !dev.read_only();
        let mut fat = Fat {
            dev,
            nodes: Nodes::new(&geo),
            geo,
            table,
            writable,
            dev_per_sector,
            fsinfo_unknown: false,
            fsinfo_present: false,
            now: (time::DOS_EPOCH, 0),
        };
        if fat.geo.fsinfo != 0 {
            let mut s = vec![0u8; ss as usize];
            fat.read_sectors(u64::from(fat.geo.fsinfo), &mut s)?;
            if bpb::fsinfo_valid(&s) {
                fat.fsinfo_present = true;
                fat.fsinfo_unknown = bpb::fsinfo_counts(&s).0 == bpb::FSINFO_UNKNOWN;
            }
        }
        Ok(fat)
    }

    /// Sets the time the next changes are stamped with (Unix seconds, nanoseconds); the
    /// embedder sets it before each change from its clock.
    pub fn set_now(&mut self, now: (i64, u32)) {
        self.now = now;
    }

    /// The volume's layout.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// Whether changes are accepted.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Space figures.
    pub fn usage(&self) -> Usage {
        Usage {
            cluster_bytes: self.geo.cluster_bytes(),
            clusters: self.geo.clusters,
            free: self.table.free(),
        }
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device, for the embedder's own work with it (events, completions); the engine's
    /// data must not be changed behind its back.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Gives the device back (after [`Fat::sync`]).
    pub fn into_device(self) -> D {
        self.dev
    }

    /// Writes FSInfo's free count and flushes the device: everything is durable.
    pub fn sync(&mut self) -> Result<(), Error> {
        if !self.writable {
            return Ok(());
        }
        self.flush_table()?;
        if self.fsinfo_present && self.fsinfo_unknown {
            let free = self.table.free();
            let next = self.table.next_free();
            self.update_fsinfo(free, next)?;
            self.fsinfo_unknown = false;
        }
        self.dev.flush()?;
        Ok(())
    }

    fn update_fsinfo(&mut self, free: u32, next: u32) -> Result<(), Error> {
        let mut s = vec![0u8; self.geo.sector_size as usize];
        let at = u64::from(self.geo.fsinfo);
        self.read_sectors(at, &mut s)?;
        bpb::fsinfo_set(&mut s, free, next);
        self.write_sectors(at, &s)
    }

    fn check_writable(&self) -> Result<(), Error> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly)
        }
    }

    /// Before the first table change after a mount or sync: FSInfo's count becomes unknown.
    fn before_table_change(&mut self) -> Result<(), Error> {
        if self.fsinfo_present && !self.fsinfo_unknown {
            self.update_fsinfo(bpb::FSINFO_UNKNOWN, 0xFFFF_FFFF)?;
            self.barrier()?;
            self.fsinfo_unknown = true;
        }
        Ok(())
    }

    /// Writes the changed table sectors to every FAT copy, the first copy completely before
    /// the next (an ordering point of the write scheme).
    fn flush_table(&mut self) -> Result<(), Error> {
        if !self.table.has_dirty() {
            return Ok(());
        }
        self.before_table_change()?;
        let copies: Vec<u32> = match self.geo.active_fat {
            Some(a) => vec![a],
            None => (0..self.geo.fats).collect(),
        };
        let reserved = u64::from(self.geo.reserved);
        let per = u64::from(self.geo.fat_sectors);
        let k = self.dev_per_sector;
        let dirty: Vec<(u32, Vec<u8>)> = self
            .table
            .take_dirty()
            .into_iter()
            .filter(|(s, _)| u64::from(*s) < per)
            .map(|(s, b)| (s, b.to_vec()))
            .collect();
        for copy in copies {
            for (s, b) in &dirty {
                let at = reserved + u64::from(copy) * per + u64::from(*s);
                self.dev.write(at * k, b, false)?;
            }
        }
        Ok(())
    }

    /// An ordering point: every write issued so far is durable before any write issued
    /// after (a device flush; devices with a volatile cache may otherwise reorder writes).
    fn barrier(&mut self) -> Result<(), Error> {
        self.dev.flush()?;
        Ok(())
    }

    /// Reads whole FAT sectors starting at `sector`.
    fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.check_range(sector, buf.len())?;
        self.dev.read(sector * self.dev_per_sector, buf)?;
        Ok(())
    }

    /// Writes whole FAT sectors starting at `sector`.
    fn write_sectors(&mut self, sector: u64, buf: &[u8]) -> Result<(), Error> {
        self.check_range(sector, buf.len())?;
        self.dev.write(sector * self.dev_per_sector, buf, false)?;
        Ok(())
    }

    fn check_range(&self, sector: u64, len: usize) -> Result<(), Error> {
        let n = (len as u64).div_ceil(u64::from(self.geo.sector_size));
        match sector.checked_add(n) {
            Some(end) if end <= u64::from(self.geo.total_sectors) => Ok(()),
            _ => Err(Error::Corrupt {
                what: "sector beyond the volume",
                at: sector,
            }),
        }
    }

    /// The current time as DOS date, time and 10 ms count.
    fn now_dos(&self) -> (u16, u16, u8) {
        time::from_unix(self.now.0, self.now.1)
    }
}

#[cfg(test)]
mod tests;
