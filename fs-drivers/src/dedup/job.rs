//! A dedup run in paced steps ([`Job::step`]), so that a server can run it between other
//! requests: the walk goes one directory a step, hashing one file a step, merging one file a
//! step. Files may change, move or go between steps: a file is only ever merged right after
//! a byte-for-byte compare with the content it joins, in the same step, so a file that
//! changed after it was hashed is compared as it is now and never merged with stale
//! contents; a file that went is skipped.

use super::{hash, same_bytes, DedupReport, CHUNK};
use crate::block::BlockDevice;
use crate::ext4::shared::HIDDEN_DIR;
use crate::ext4::{flags, Error, Ext4, FileType, Ino, Result, ROOT_INO};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

/// Work units counted for a directory read or a file's metadata check.
const META_COST: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Walk,
    Hash,
    Merge,
    Done,
}

/// Files of one content being merged.
#[derive(Debug, Default)]
struct Group {
    members: Vec<Ino>,
    next: usize,
    /// The store the group's content lives in, once there is one.
    store: Option<Ino>,
    /// What the next file is compared with: the store, or the first private file.
    base: Option<Ino>,
    /// Whether the members were checked for a store yet.
    scanned: bool,
}

/// A dedup run over some paths, done in steps (see the module doc).
pub struct Job {
    roots: Vec<Vec<u8>>,
    next_root: usize,
    stack: Vec<Ino>,
    seen: BTreeSet<Ino>,
    dirs_seen: BTreeSet<Ino>,
    /// Candidates, (size, inode); sorted by size once the walk is done.
    files: Vec<(u64, Ino)>,
    /// The current size group is `files[pos..end]`; `hpos` is the next to hash.
    pos: usize,
    end: usize,
    hpos: usize,
    hashes: BTreeMap<[u8; 32], Vec<Ino>>,
    pending: Vec<Vec<Ino>>,
    group: Group,
    phase: Phase,
    free_before: Option<u64>,
    report: DedupReport,
    buf: Vec<u8>,
    buf2: Vec<u8>,
}

/// Whether `e` means the file went away (unlinked, or its inode reused, also as a directory).
fn gone(e: &Error) -> bool {
    matches!(
        e,
        Error::NotFound | Error::BadInode { .. } | Error::IsDir { .. }
    )
}

impl Job {
    /// A run over `roots` (paths in the volume; `/` for everything).
    pub fn new(roots: &[&[u8]]) -> Self {
        Job {
            roots: roots.iter().map(|r| r.to_vec()).collect(),
            next_root: 0,
            stack: Vec::new(),
            seen: BTreeSet::new(),
            dirs_seen: BTreeSet::new(),
            files: Vec::new(),
            pos: 0,
            end: 0,
            hpos: 0,
            hashes: BTreeMap::new(),
            pending: Vec::new(),
            group: Group::default(),
            phase: Phase::Walk,
            free_before: None,
            report: DedupReport::default(),
            buf: vec![0u8; CHUNK],
            buf2: vec![0u8; CHUNK],
        }
    }

    /// What the run has done so far (`bytes_saved` once it is done).
    pub fn report(&self) -> DedupReport {
        self.report
    }

    /// Whether the run is finished.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Do at least one unit of work and stop once about `budget` bytes were read (file data,
    /// or 4 KiB a directory or metadata check); true when the run is finished. An error of
    /// the volume stops the run (it stays where it was); a file that went is skipped.
    pub fn step<D: BlockDevice>(&mut self, fs: &mut Ext4<D>, budget: u64) -> Result<bool> {
        if self.free_before.is_none() {
            self.free_before = Some(fs.statfs().free_blocks);
            match fs.lookup(ROOT_INO, HIDDEN_DIR) {
                Ok(h) => {
                    self.dirs_seen.insert(h);
                }
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let mut used = 0u64;
        loop {
            used = used.saturating_add(match self.phase {
                Phase::Walk => self.walk_unit(fs)?,
                Phase::Hash => self.hash_unit(fs)?,
                Phase::Merge => self.merge_unit(fs)?,
                Phase::Done => return Ok(true),
            });
            if self.phase == Phase::Done {
                let bs = u64::from(fs.superblock().block_size());
                let before = self.free_before.unwrap_or(0);
                self.report.bytes_saved = fs
                    .statfs()
                    .free_blocks
                    .saturating_sub(before)
                    .saturating_mul(bs);
                return Ok(true);
            }
            if used >= budget {
                return Ok(false);
            }
        }
    }

    /// One directory (or the next root).
    fn walk_unit<D: BlockDevice>(&mut self, fs: &mut Ext4<D>) -> Result<u64> {
        let Some(dir) = self.stack.pop() else {
            let Some(root) = self.roots.get(self.next_root) else {
                self.files.sort_unstable();
                self.report.files_scanned = self.files.len() as u64;
                self.phase = Phase::Hash;
                return Ok(0);
            };
            let ino = fs.lookup_path(root)?;
            self.next_root += 1;
            self.consider(fs, ino)?;
            return Ok(META_COST);
        };
        let entries = match fs.read_dir(dir) {
            Ok(e) => e,
            Err(e) if gone(&e) => return Ok(META_COST),
            Err(e) => return Err(e),
        };
        let cost = META_COST.saturating_mul(1 + entries.len() as u64 / 16);
        for e in entries {
            if e.name != b"." && e.name != b".." {
                match self.consider(fs, e.ino) {
                    Err(e) if !gone(&e) => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(cost)
    }

    /// Queue directory `ino`, or record it as a candidate file.
    fn consider<D: BlockDevice>(&mut self, fs: &mut Ext4<D>, ino: Ino) -> Result<()> {
        let a = fs.getattr(ino)?;
        match a.kind {
            FileType::Directory if self.dirs_seen.insert(ino) => self.stack.push(ino),
            FileType::Regular
                if a.size > 0
                    && a.blocks > 0
                    && a.flags & flags::EXTENTS != 0
                    && a.flags & (flags::INLINE_DATA | flags::ENCRYPT) == 0
                    && self.seen.insert(ino) =>
            {
                self.files.push((a.size, ino));
            }
            _ => {}
        }
        Ok(())
    }

    /// Hash the next file of the current size group (or move to the next group).
    fn hash_unit<D: BlockDevice>(&mut self, fs: &mut Ext4<D>) -> Result<u64> {
        if self.hpos >= self.end {
            // The group is hashed (or there is none yet): its merges, then the next group.
            if self.end > self.pos {
                let hashes = core::mem::take(&mut self.hashes);
                self.pending = hashes.into_values().filter(|g| g.len() >= 2).collect();
                self.pos = self.end;
                if !self.pending.is_empty() {
                    self.phase = Phase::Merge;
                    return Ok(0);
                }
            }
            let Some(&(size, _)) = self.files.get(self.pos) else {
                self.phase = Phase::Done;
                return Ok(0);
            };
            let n = self.files.get(self.pos..).unwrap_or(&[]);
            let len = n.iter().take_while(|f| f.0 == size).count();
            self.end = self.pos + len;
            // A size of its own: nothing to compare with.
            self.hpos = if len < 2 { self.end } else { self.pos };
            if len < 2 {
                self.pos = self.end;
            }
            return Ok(0);
        }
        let Some(&(size, ino)) = self.files.get(self.hpos) else {
            return Ok(0);
        };
        self.hpos += 1;
        match hash(fs, ino, &mut self.buf) {
            Ok(h) => self.hashes.entry(h).or_default().push(ino),
            Err(e) if gone(&e) => {}
            Err(e) => return Err(e),
        }
        Ok(size.max(1))
    }

    /// Merge the next file of the current group (or start the next group).
    fn merge_unit<D: BlockDevice>(&mut self, fs: &mut Ext4<D>) -> Result<u64> {
        if self.group.next >= self.group.members.len() {
            match self.pending.pop() {
                Some(members) => {
                    self.group = Group {
                        members,
                        ..Group::default()
                    };
                }
                None => {
                    self.group = Group::default();
                    self.phase = Phase::Hash;
                }
            }
            return Ok(0);
        }
        if !self.group.scanned {
            // Files shared already: the group joins their store.
            self.group.scanned = true;
            for &ino in &self.group.members {
                match fs.shared_store(ino) {
                    Ok(Some(s)) => {
                        self.group.store = Some(s);
                        self.group.base = Some(s);
                        break;
                    }
                    Ok(None) => {}
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(META_COST);
        }
        let Some(&ino) = self.group.members.get(self.group.next) else {
            return Ok(0);
        };
        self.group.next += 1;
        match self.merge_one(fs, ino) {
            Ok(cost) => Ok(cost),
            Err(e) if gone(&e) => Ok(META_COST),
            Err(e) => Err(e),
        }
    }

    /// Merge `ino` into the group: compare it with the group's base now and share it if
    /// equal (or make it the base).
    fn merge_one<D: BlockDevice>(&mut self, fs: &mut Ext4<D>, ino: Ino) -> Result<u64> {
        if fs.shared_store(ino)?.is_some() {
            return Ok(META_COST);
        }
        let Some(base) = self.group.base else {
            self.group.base = Some(ino);
            return Ok(META_COST);
        };
        let size = fs.getattr(ino)?.size;
        let equal = match same_bytes(fs, ino, base, &mut self.buf, &mut self.buf2) {
            Ok(eq) => eq,
            Err(e) if gone(&e) => {
                // The base went: this file takes its place.
                self.group.base = Some(ino);
                self.group.store = None;
                return Ok(META_COST);
            }
            Err(e) => return Err(e),
        };
        if !equal {
            self.report.mismatches += 1;
            return Ok(size.saturating_mul(2));
        }
        let store = match self.group.store {
            Some(s) => s,
            None => match fs.share_new(base) {
                Ok(s) => {
                    self.report.stores_created += 1;
                    self.report.files_merged += 1;
                    self.group.store = Some(s);
                    self.group.base = Some(s);
                    s
                }
                // The base cannot hold the store (it changed kind): this file may.
                Err(Error::Invalid { .. }) => {
                    self.group.base = Some(ino);
                    return Ok(size.saturating_mul(2));
                }
                Err(e) => return Err(e),
            },
        };
        match fs.share_add(ino, store) {
            Ok(()) => self.report.files_merged += 1,
            Err(Error::Invalid { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(size.saturating_mul(2))
    }
}
