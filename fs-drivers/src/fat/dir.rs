//! Directories: loading one whole (at most 65,536 entries, as Linux allows), finding names,
//! writing slots back sector by sector in the order the write scheme needs, adding entries
//! (with long-name slots and a short alias) and clearing them.

use super::entry::{self, attr, Found, Short, DELETED, ENTRY};
use super::name;
use super::{Error, Fat, Ino, MAX_DIR_ENTRIES, ROOT_INO};
use crate::block::BlockDevice;
use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

/// A directory's bytes and the sector each of its sectors lives in.
pub(super) struct DirBuf {
    pub bytes: Vec<u8>,
    pub sectors: Vec<u64>,
    /// The directory's clusters (empty for the fixed FAT12/16 root).
    pub chain: Vec<u32>,
}

impl<D: BlockDevice> Fat<D> {
    /// First cluster of directory `ino`, `None` for the fixed root of FAT12/16.
    pub(super) fn dir_cluster(&self, ino: Ino) -> Result<Option<u32>, Error> {
        let n = self.nodes.get(ino).ok_or(Error::NotFound)?;
        if !n.entry.is_dir() {
            return Err(Error::NotDir);
        }
        if ino == ROOT_INO && self.geo.root_cluster == 0 {
            return Ok(None);
        }
        if n.entry.cluster == 0 {
            return Err(Error::Corrupt {
                what: "directory without a cluster",
                at: ino,
            });
        }
        Ok(Some(n.entry.cluster))
    }

    /// Reads directory `ino` whole.
    pub(super) fn load_dir(&mut self, ino: Ino) -> Result<DirBuf, Error> {
        let ss = u64::from(self.geo.sector_size);
        match self.dir_cluster(ino)? {
            None => {
                let n = u64::from(self.geo.root_sectors);
                let mut bytes = vec![0u8; (n * ss) as usize];
                let start = u64::from(self.geo.root_start);
                self.read_sectors(start, &mut bytes)?;
                bytes.truncate(self.geo.root_entries as usize * ENTRY);
                Ok(DirBuf {
                    bytes,
                    sectors: (start..start + n).collect(),
                    chain: Vec::new(),
                })
            }
            Some(first) => {
                let cb = self.geo.cluster_bytes() as usize;
                let max = (MAX_DIR_ENTRIES * ENTRY).div_ceil(cb);
                let chain = self.table.chain(first, max + 1)?;
                if chain.len() > max {
                    return Err(Error::Corrupt {
                        what: "directory larger than 65536 entries",
                        at: u64::from(first),
                    });
                }
                let mut bytes = vec![0u8; chain.len() * cb];
                let mut sectors =
                    Vec::with_capacity(chain.len() * self.geo.sectors_per_cluster as usize);
                for (i, &c) in chain.iter().enumerate() {
                    let s = self.geo.cluster_sector(c);
                    self.read_sectors(s, &mut bytes[i * cb..(i + 1) * cb])?;
                    sectors.extend(s..s + u64::from(self.geo.sectors_per_cluster));
                }
                Ok(DirBuf {
                    bytes,
                    sectors,
                    chain,
                })
            }
        }
    }

    /// Writes the sectors of `d` that hold slots `from..to`, in order (last first with
    /// `backwards`), skipping sector `except` (an index into `d.sectors`).
    pub(super) fn write_slots(
        &mut self,
        d: &DirBuf,
        from: u32,
        to: u32,
        except: Option<usize>,
        backwards: bool,
    ) -> Result<(), Error> {
        if from >= to {
            return Ok(());
        }
        let ss = self.geo.sector_size as usize;
        let a = from as usize * ENTRY / ss;
        let b = (to as usize * ENTRY - 1) / ss;
        let order: Vec<usize> = if backwards {
            (a..=b).rev().collect()
        } else {
            (a..=b).collect()
        };
        for i in order {
            if Some(i) == except {
                continue;
            }
            let s = *d.sectors.get(i).ok_or(Error::Corrupt {
                what: "slot beyond its directory",
                at: u64::from(to),
            })?;
            let end = ((i + 1) * ss).min(d.bytes.len());
            let mut buf = vec![0u8; ss];
            buf[..end - i * ss].copy_from_slice(&d.bytes[i * ss..end]);
            self.write_sectors(s, &buf)?;
        }
        Ok(())
    }

    /// Index in `d.sectors` of the sector holding `slot`.
    pub(super) fn sector_of(&self, slot: u32) -> usize {
        slot as usize * ENTRY / self.geo.sector_size as usize
    }

    /// The entry named `name` in directory `dir` (its long name or its short name, letters
    /// compared without case, as vfat does).
    pub(super) fn find(&mut self, dir: Ino, name: &[u8]) -> Result<Option<Found>, Error> {
        let d = self.load_dir(dir)?;
        let want = name::stored_form(name);
        let mut hit = None;
        entry::scan(&d.bytes, |f| {
            if name::same_name(&f.name, want) || name::same_name(&f.short_name, name) {
                hit = Some(f);
                false
            } else {
                true
            }
        });
        Ok(hit)
    }

    /// Whether directory `dir` holds nothing but `.` and `..`.
    pub(super) fn dir_empty(&mut self, dir: Ino) -> Result<bool, Error> {
        let d = self.load_dir(dir)?;
        let mut empty = true;
        entry::scan(&d.bytes, |_| {
            empty = false;
            false
        });
        Ok(empty)
    }

    /// Adds an entry named `name` (checked by the caller with [`name::long_units`]) for
    /// `short` (its name field is replaced by the alias) to `dir`; returns (first slot,
    /// short slot) and the entry as written. Long-name slots are written before the short
    /// entry.
    pub(super) fn add_entry(
        &mut self,
        dir: Ino,
        name_bytes: &[u8],
        mut short: Short,
    ) -> Result<(u32, u32, Short), Error> {
        let stored = name::stored_form(name_bytes);
        let units = name::long_units(name_bytes)?;
        let mut d = self.load_dir(dir)?;
        let (alias, long) = match name::exact_short(stored) {
            Some(s) => (s, false),
            None => {
                let mut taken = BTreeSet::new();
                scan_raw_names(&d.bytes, &mut taken);
                (name::make_alias(stored, &|s| taken.contains(s))?, true)
            }
        };
        short.name = alias;
        short.case = 0;
        let slots = if long {
            entry::lfn_slots(&units, &alias)
        } else {
            Vec::new()
        };
        let need = slots.len() + 1;
        let start = match free_run(&d.bytes, need) {
            Some(s) => s,
            None => {
                self.extend_dir(dir, &d, need)?;
                d = self.load_dir(dir)?;
                free_run(&d.bytes, need).ok_or(Error::NoSpace)?
            }
        };
        let first = start as u32;
        let slot = first + slots.len() as u32;
        for (i, s) in slots.iter().enumerate() {
            let a = (start + i) * ENTRY;
            d.bytes[a..a + ENTRY].copy_from_slice(s);
        }
        let a = slot as usize * ENTRY;
        short.encode(&mut d.bytes[a..a + ENTRY]);
        let short_sector = self.sector_of(slot);
        self.write_slots(&d, first, slot, Some(short_sector), false)?;
        if first < slot && self.sector_of(first) != short_sector {
            self.barrier()?;
        }
        self.write_slots(&d, slot, slot + 1, None, false)?;
        Ok((first, slot, short))
    }

    /// Grows chained directory `dir` so that it has a free run of `need` slots at its end: new
    /// zeroed clusters are allocated (written to every FAT copy as a chain of their own), then
    /// linked to the directory's last cluster.
    fn extend_dir(&mut self, dir: Ino, d: &DirBuf, need: usize) -> Result<(), Error> {
        let Some(&last) = d.chain.last() else {
            return Err(Error::NoSpace); // the fixed root is full
        };
        let total = d.bytes.len() / ENTRY;
        let tail = d
            .bytes
            .chunks_exact(ENTRY)
            .rev()
            .take_while(|e| e[0] == 0 || e[0] == DELETED)
            .count();
        let more = need.saturating_sub(tail);
        if total + more > MAX_DIR_ENTRIES {
            return Err(Error::NoSpace);
        }
        let cb = self.geo.cluster_bytes() as usize;
        let clusters = (more * ENTRY).div_ceil(cb).max(1);
        let new = self.table.allocate(clusters)?;
        let zero = vec![0u8; cb];
        for &c in &new {
            let s = self.geo.cluster_sector(c);
            if let Err(e) = self.write_sectors(s, &zero) {
                self.table.release(&new);
                return Err(e);
            }
        }
        self.flush_table()?;
        self.barrier()?;
        self.table.set(last, new[0]);
        self.flush_table()?;
        self.barrier()?;
        let _ = dir;
        Ok(())
    }

    /// Clears the entry at `first..=slot` of `dir`: the short entry first (the name is gone
    /// at once, as Linux removes it), then its long-name slots.
    pub(super) fn clear_entry(&mut self, dir: Ino, first: u32, slot: u32) -> Result<(), Error> {
        let mut d = self.load_dir(dir)?;
        let end = (slot as usize + 1) * ENTRY;
        if end > d.bytes.len() || first > slot {
            return Err(Error::Corrupt {
                what: "entry beyond its directory",
                at: u64::from(slot),
            });
        }
        d.bytes[slot as usize * ENTRY] = DELETED;
        self.write_slots(&d, slot, slot + 1, None, false)?;
        if first < slot && self.sector_of(first) != self.sector_of(slot) {
            self.barrier()?;
        }
        for s in first..slot {
            d.bytes[s as usize * ENTRY] = DELETED;
        }
        // Last sector first: a cut leaves the leading slots, which still begin with the
        // start bit, so fsck.fat sees an orphaned name it removes, not stray fragments.
        self.write_slots(&d, first, slot, None, true)
    }

    /// Rewrites the short entry at `slot` of `dir` with `e`.
    pub(super) fn write_entry(&mut self, dir: Ino, slot: u32, e: &Short) -> Result<(), Error> {
        let mut d = self.load_dir(dir)?;
        let a = slot as usize * ENTRY;
        if a + ENTRY > d.bytes.len() {
            return Err(Error::Corrupt {
                what: "entry beyond its directory",
                at: u64::from(slot),
            });
        }
        // Keep the name and case bits on disk; everything else comes from `e`.
        let mut cur = Short::decode(&d.bytes[a..a + ENTRY]);
        let (n, c) = (cur.name, cur.case);
        cur = *e;
        cur.name = n;
        cur.case = c;
        cur.encode(&mut d.bytes[a..a + ENTRY]);
        self.write_slots(&d, slot, slot + 1, None, false)
    }

    /// Points the `..` entry of directory cluster `dir_cluster` at `parent_cluster`.
    pub(super) fn set_dotdot(
        &mut self,
        dir_cluster: u32,
        parent_cluster: u32,
    ) -> Result<(), Error> {
        let s = self.geo.cluster_sector(dir_cluster);
        let mut buf = vec![0u8; self.geo.sector_size as usize];
        self.read_sectors(s, &mut buf)?;
        let e = &mut buf[ENTRY..2 * ENTRY];
        if e[..2] != *b".." || e[11] & attr::DIR == 0 {
            return Ok(()); // no `..` where it belongs: nothing to keep current
        }
        let mut d = Short::decode(e);
        d.cluster = parent_cluster;
        d.encode(e);
        self.write_sectors(s, &buf)
    }
}

/// The 11-byte names of every live short entry (for alias collisions; a set, so that finding
/// a free `~N` in a full directory stays fast).
fn scan_raw_names(bytes: &[u8], out: &mut BTreeSet<[u8; 11]>) {
    for e in bytes.chunks_exact(ENTRY) {
        if e[0] == 0 {
            break;
        }
        if e[0] == DELETED || e[11] & 0x3F == attr::LFN {
            continue;
        }
        let mut n = [0u8; 11];
        n.copy_from_slice(&e[..11]);
        out.insert(n);
    }
}

/// The first run of `need` free slots (deleted, or at or after the end marker).
fn free_run(bytes: &[u8], need: usize) -> Option<usize> {
    let mut run = 0;
    for (i, e) in bytes.chunks_exact(ENTRY).enumerate() {
        if e[0] == 0 {
            let left = bytes.len() / ENTRY - i;
            return (run + left >= need).then_some(i - run);
        }
        if e[0] == DELETED {
            run += 1;
            if run == need {
                return Some(i + 1 - need);
            }
        } else {
            run = 0;
        }
    }
    None
}
