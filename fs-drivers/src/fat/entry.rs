//! The 32-byte directory entry: short entries and VFAT long-name slots.

use super::name;
use alloc::vec::Vec;

/// Entry size.
pub const ENTRY: usize = 32;
/// Attribute bits.
pub mod attr {
    /// Read-only.
    pub const READ_ONLY: u8 = 0x01;
    /// Hidden.
    pub const HIDDEN: u8 = 0x02;
    /// System.
    pub const SYSTEM: u8 = 0x04;
    /// Volume label.
    pub const VOLUME: u8 = 0x08;
    /// Directory.
    pub const DIR: u8 = 0x10;
    /// Archive (changed since backed up).
    pub const ARCHIVE: u8 = 0x20;
    /// The combination that marks a long-name slot.
    pub const LFN: u8 = 0x0F;
}
/// First byte of a deleted entry.
pub const DELETED: u8 = 0xE5;
/// Long-name characters per slot.
pub const LFN_UNITS: usize = 13;
/// Offsets of the 13 UTF-16 units in a long-name slot.
const LFN_OFFSETS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// A short directory entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs, reason = "on-disk field names")]
pub struct Short {
    pub name: [u8; 11],
    pub attr: u8,
    /// Case bits (0x08 base, 0x10 extension in lower case).
    pub case: u8,
    pub ctime_cs: u8,
    pub ctime: u16,
    pub cdate: u16,
    pub adate: u16,
    pub mtime: u16,
    pub mdate: u16,
    pub cluster: u32,
    pub size: u32,
}

impl Short {
    /// Decodes 32 bytes (a short entry; the caller has checked it is one).
    pub fn decode(b: &[u8]) -> Short {
        let w = |a: usize| u16::from_le_bytes([b[a], b[a + 1]]);
        let mut name = [0u8; 11];
        name.copy_from_slice(&b[..11]);
        Short {
            name,
            attr: b[11],
            case: b[12],
            ctime_cs: b[13],
            ctime: w(14),
            cdate: w(16),
            adate: w(18),
            cluster: (u32::from(w(20)) << 16) | u32::from(w(26)),
            mtime: w(22),
            mdate: w(24),
            size: u32::from_le_bytes([b[28], b[29], b[30], b[31]]),
        }
    }

    /// Encodes into 32 bytes.
    pub fn encode(&self, b: &mut [u8]) {
        b[..11].copy_from_slice(&self.name);
        b[11] = self.attr;
        b[12] = self.case;
        b[13] = self.ctime_cs;
        b[14..16].copy_from_slice(&self.ctime.to_le_bytes());
        b[16..18].copy_from_slice(&self.cdate.to_le_bytes());
        b[18..20].copy_from_slice(&self.adate.to_le_bytes());
        b[20..22].copy_from_slice(&((self.cluster >> 16) as u16).to_le_bytes());
        b[22..24].copy_from_slice(&self.mtime.to_le_bytes());
        b[24..26].copy_from_slice(&self.mdate.to_le_bytes());
        b[26..28].copy_from_slice(&(self.cluster as u16).to_le_bytes());
        b[28..32].copy_from_slice(&self.size.to_le_bytes());
    }

    /// Whether this entry is a directory.
    pub fn is_dir(&self) -> bool {
        self.attr & attr::DIR != 0
    }
}

/// The long-name slots for `units` and the short name they belong to, in on-disk order (the
/// last part first), 32 bytes each.
pub fn lfn_slots(units: &[u16], short: &[u8; 11]) -> Vec<[u8; ENTRY]> {
    let sum = name::checksum(short);
    let n = units.len().div_ceil(LFN_UNITS);
    let mut out = Vec::with_capacity(n);
    for k in (1..=n).rev() {
        let mut s = [0u8; ENTRY];
        s[0] = k as u8 | if k == n { 0x40 } else { 0 };
        s[11] = attr::LFN;
        s[13] = sum;
        for (i, &off) in LFN_OFFSETS.iter().enumerate() {
            let idx = (k - 1) * LFN_UNITS + i;
            let u = match idx.cmp(&units.len()) {
                core::cmp::Ordering::Less => units[idx],
                core::cmp::Ordering::Equal => 0,
                core::cmp::Ordering::Greater => 0xFFFF,
            };
            s[off..off + 2].copy_from_slice(&u.to_le_bytes());
        }
        out.push(s);
    }
    out
}

/// One directory entry found by [`scan`]: its name, where its slots are and its short entry.
#[derive(Debug, Clone)]
pub struct Found {
    /// The long name if a valid one precedes the entry, else the short name as shown.
    pub name: Vec<u8>,
    /// The short name as shown (also matched by lookups, as Linux does).
    pub short_name: Vec<u8>,
    /// Index of the first slot (the first long-name slot, or the short entry).
    pub first: u32,
    /// Index of the short entry.
    pub slot: u32,
    /// The short entry.
    pub entry: Short,
}

/// Decodes the entries of a directory's bytes, skipping `.`, `..`, volume labels and deleted
/// slots; stops at the end marker. `f` returns false to stop.
pub fn scan(bytes: &[u8], mut f: impl FnMut(Found) -> bool) {
    let mut units = [0u16; 20 * LFN_UNITS];
    // (expected next order, checksum, parts, first slot) of the long name being collected.
    let mut lfn: Option<(u8, u8, usize, u32)> = None;
    for (i, b) in bytes.chunks_exact(ENTRY).enumerate() {
        let i = i as u32;
        match b[0] {
            0 => return,
            DELETED => {
                lfn = None;
                continue;
            }
            _ => {}
        }
        if b[11] & 0x3F == attr::LFN {
            let ord = b[0];
            let k = usize::from(ord & 0x1F);
            if ord & 0x40 != 0 {
                lfn = (1..=20).contains(&k).then_some((ord & 0x1F, b[13], k, i));
                if lfn.is_some() {
                    units[k * LFN_UNITS..].iter_mut().for_each(|u| *u = 0);
                }
            } else if k == 0 || !matches!(lfn, Some((e, s, _, _)) if e == ord && s == b[13]) {
                lfn = None;
            }
            if let Some((e, _, _, _)) = lfn.as_mut() {
                for (j, &off) in LFN_OFFSETS.iter().enumerate() {
                    units[(k - 1) * LFN_UNITS + j] = u16::from_le_bytes([b[off], b[off + 1]]);
                }
                *e -= 1;
            }
            continue;
        }
        let taken = lfn.take();
        let e = Short::decode(b);
        if e.attr & attr::VOLUME != 0 || e.name[0] == b'.' {
            continue;
        }
        let short_name = name::short_display(&e.name, e.case);
        let (name, first) = match taken {
            Some((0, sum, n, first)) if sum == name::checksum(&e.name) => {
                let n = name::from_units(&units[..n * LFN_UNITS]);
                if n.is_empty() {
                    (short_name.clone(), i)
                } else {
                    (n, first)
                }
            }
            _ => (short_name.clone(), i),
        };
        if !f(Found {
            name,
            short_name,
            first,
            slot: i,
            entry: e,
        }) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_round_trip_through_slots() {
        let name = "A long name, with ünïcödé — and more than 26 units".as_bytes();
        let units = name::long_units(name).unwrap();
        let short = *b"ALONGN~1   ";
        let mut dir = Vec::new();
        for s in lfn_slots(&units, &short) {
            dir.extend_from_slice(&s);
        }
        let mut e = [0u8; ENTRY];
        Short {
            name: short,
            attr: attr::ARCHIVE,
            cluster: 0x12345,
            size: 77,
            ..Short::default()
        }
        .encode(&mut e);
        dir.extend_from_slice(&e);
        let mut got = Vec::new();
        scan(&dir, |f| {
            got.push(f);
            true
        });
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, name);
        assert_eq!(got[0].first, 0);
        assert_eq!(got[0].slot, units.len().div_ceil(13) as u32);
        assert_eq!(got[0].entry.cluster, 0x12345);
        assert_eq!(got[0].entry.size, 77);
        // A wrong checksum leaves the short name.
        let n = dir.len();
        dir[n - ENTRY] = b'B';
        let mut names = Vec::new();
        scan(&dir, |f| {
            names.push(f.name);
            true
        });
        assert_eq!(names, [b"BLONGN~1".to_vec()]);
    }
}
