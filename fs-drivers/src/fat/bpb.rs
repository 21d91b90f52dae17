//! The boot sector: the BIOS parameter block (BPB) read into a checked [`Geometry`], and the
//! FAT32 FSInfo sector.

use super::Error;

/// Which FAT variant a volume is (by the width of its table entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    /// 12-bit entries.
    Fat12,
    /// 16-bit entries.
    Fat16,
    /// 32-bit entries (28 bits used).
    Fat32,
}

/// The largest FAT table the engine keeps in memory (bytes of one copy actually in use).
pub const MAX_TABLE_BYTES: u64 = 64 << 20;

/// Cluster counts below these are FAT12 and FAT16 (Microsoft's rule, which Linux follows).
const FAT12_LIMIT: u32 = 4085;
const FAT32_MAX_CLUSTERS: u32 = 0x0FFF_FFF5 - 2;

/// A volume's layout, every field range-checked against the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// FAT variant.
    pub kind: FatType,
    /// Bytes per logical sector (512–4096, a power of two).
    pub sector_size: u32,
    /// Sectors per cluster (a power of two).
    pub sectors_per_cluster: u32,
    /// Sectors before the first FAT.
    pub reserved: u32,
    /// Number of FAT copies.
    pub fats: u32,
    /// Sectors per FAT copy.
    pub fat_sectors: u32,
    /// The copy FAT32 keeps current when mirroring is off (`None`: every copy is written).
    pub active_fat: Option<u32>,
    /// Root directory entries (FAT12/16; 0 on FAT32).
    pub root_entries: u32,
    /// First sector of the FAT12/16 root directory.
    pub root_start: u32,
    /// Sectors of the FAT12/16 root directory.
    pub root_sectors: u32,
    /// First cluster of the FAT32 root directory (0 on FAT12/16).
    pub root_cluster: u32,
    /// First sector of cluster 2.
    pub data_start: u32,
    /// Number of data clusters (valid cluster numbers are `2..clusters + 2`).
    pub clusters: u32,
    /// Sectors of the volume.
    pub total_sectors: u32,
    /// FSInfo sector (FAT32; 0 when there is none).
    pub fsinfo: u32,
    /// Volume serial number.
    pub volume_id: u32,
    /// Volume label from the boot sector (11 bytes, space padded).
    pub label: [u8; 11],
    /// OEM name.
    pub oem: [u8; 8],
}

fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn bad(what: &'static str) -> Error {
    Error::BadBootSector { what }
}

impl Geometry {
    /// Bytes per cluster.
    pub fn cluster_bytes(&self) -> u32 {
        self.sector_size * self.sectors_per_cluster
    }

    /// First sector of data cluster `c` (which the caller has range-checked).
    pub fn cluster_sector(&self, c: u32) -> u64 {
        u64::from(self.data_start)
            + u64::from(c.saturating_sub(2)) * u64::from(self.sectors_per_cluster)
    }

    /// Parses a boot sector (at least 512 bytes). Every value that later arithmetic relies on
    /// is checked here, so the rest of the engine can compute offsets without overflow.
    pub fn parse(b: &[u8]) -> Result<Geometry, Error> {
        if b.len() < 512 {
            return Err(bad("short boot sector"));
        }
        if b[510] != 0x55 || b[511] != 0xAA {
            return Err(bad("no 0x55AA signature"));
        }
        let sector_size = le16(b, 11);
        if !matches!(sector_size, 512 | 1024 | 2048 | 4096) {
            return Err(bad("bytes per sector"));
        }
        let spc = u32::from(b[13]);
        if spc == 0 || !spc.is_power_of_two() {
            return Err(bad("sectors per cluster"));
        }
        let reserved = le16(b, 14);
        if reserved == 0 {
            return Err(bad("reserved sectors"));
        }
        let fats = u32::from(b[16]);
        if fats == 0 || fats > 4 {
            return Err(bad("number of FATs"));
        }
        let root_entries = le16(b, 17);
        let total16 = le16(b, 19);
        let fat16_sectors = le16(b, 22);
        let total32 = le32(b, 32);
        let total_sectors = if total16 != 0 { total16 } else { total32 };
        let fat32 = fat16_sectors == 0;
        let fat_sectors = if fat32 { le32(b, 36) } else { fat16_sectors };
        if fat_sectors == 0 {
            return Err(bad("sectors per FAT"));
        }
        if fat32 && root_entries != 0 {
            return Err(bad("FAT32 with a fixed root directory"));
        }
        if !fat32 && root_entries == 0 {
            return Err(bad("no root directory entries"));
        }
        let root_bytes = root_entries * 32;
        let root_sectors = root_bytes.div_ceil(sector_size);
        let root_start = u64::from(reserved) + u64::from(fats) * u64::from(fat_sectors);
        let data_start = root_start + u64::from(root_sectors);
        if data_start >= u64::from(total_sectors) {
            return Err(bad("no room for data"));
        }
        let data_start = data_start as u32; // < total_sectors, a u32
        let root_start = root_start as u32;
        let mut clusters = (total_sectors - data_start) / spc;
        if clusters == 0 {
            return Err(bad("no data clusters"));
        }
        let kind = if fat32 {
            FatType::Fat32
        } else if clusters < FAT12_LIMIT {
            FatType::Fat12
        } else {
            FatType::Fat16
        };
        // A table shorter than the data area limits the clusters, as Linux does.
        let entry_bits = match kind {
            FatType::Fat12 => 12u64,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        let table_entries = u64::from(fat_sectors) * u64::from(sector_size) * 8 / entry_bits;
        let max = match kind {
            FatType::Fat12 => u64::from(FAT12_LIMIT - 1),
            FatType::Fat16 => 0xFFF4,
            FatType::Fat32 => u64::from(FAT32_MAX_CLUSTERS),
        };
        let usable = table_entries.saturating_sub(2).min(max);
        if u64::from(clusters) > usable {
            clusters = usable as u32;
        }
        if clusters == 0 {
            return Err(bad("no data clusters"));
        }
        let used_bytes = (u64::from(clusters) + 2) * entry_bits / 8 + 1;
        if used_bytes > MAX_TABLE_BYTES {
            return Err(Error::TooLarge { what: "FAT table" });
        }
        let mut g = Geometry {
            kind,
            sector_size,
            sectors_per_cluster: spc,
            reserved,
            fats,
            fat_sectors,
            active_fat: None,
            root_entries,
            root_start,
            root_sectors,
            root_cluster: 0,
            data_start,
            clusters,
            total_sectors,
            fsinfo: 0,
            volume_id: 0,
            label: [b' '; 11],
            oem: [0; 8],
        };
        g.oem.copy_from_slice(&b[3..11]);
        if fat32 {
            let flags = le16(b, 40);
            if flags & 0x80 != 0 {
                let active = flags & 0xF;
                if active >= fats {
                    return Err(bad("active FAT"));
                }
                g.active_fat = Some(active);
            }
            if le16(b, 42) != 0 {
                return Err(bad("FAT32 version"));
            }
            g.root_cluster = le32(b, 44);
            if g.root_cluster < 2 || g.root_cluster >= clusters + 2 {
                return Err(bad("root cluster"));
            }
            let fsinfo = le16(b, 48);
            if fsinfo != 0 && fsinfo != 0xFFFF && fsinfo < reserved {
                g.fsinfo = fsinfo;
            }
            if b[66] == 0x29 {
                g.volume_id = le32(b, 67);
                g.label.copy_from_slice(&b[71..82]);
            }
        } else if b[38] == 0x29 {
            g.volume_id = le32(b, 39);
            g.label.copy_from_slice(&b[43..54]);
        }
        Ok(g)
    }
}

/// FSInfo signatures (FAT32).
const FSINFO_LEAD: u32 = 0x4161_5252;
const FSINFO_STRUCT: u32 = 0x6141_7272;
const FSINFO_TRAIL: u32 = 0xAA55_0000;
/// The free count FSInfo uses for "not known".
pub const FSINFO_UNKNOWN: u32 = 0xFFFF_FFFF;

/// Whether `b` (a whole sector) is a valid FSInfo sector.
pub fn fsinfo_valid(b: &[u8]) -> bool {
    b.len() >= 512
        && le32(b, 0) == FSINFO_LEAD
        && le32(b, 484) == FSINFO_STRUCT
        && le32(b, 508) == FSINFO_TRAIL
}

/// The free count and next-free hint of a valid FSInfo sector.
pub fn fsinfo_counts(b: &[u8]) -> (u32, u32) {
    (le32(b, 488), le32(b, 492))
}

/// Stores the free count and next-free hint into an FSInfo sector.
pub fn fsinfo_set(b: &mut [u8], free: u32, next: u32) {
    b[488..492].copy_from_slice(&free.to_le_bytes());
    b[492..496].copy_from_slice(&next.to_le_bytes());
}
