//! File-level deduplication of an ext4 volume (`pvfs image dedup`): walk the given
//! directories, group regular files by size, then by SHA-256 of their content, compare the
//! bytes, and merge each group of identical files into one shared store file
//! ([`Ext4::share_new`], [`Ext4::share_add`]; the on-disk form is described in
//! [`crate::ext4::shared`]). Files already shared join the store of the group's first stub.
//!
//! Only regular extent-mapped files with data blocks are considered: empty files,
//! inline-data, encrypted and block-mapped (ext2/ext3-style) files and files with no blocks
//! (all holes) are left alone, and an inode with several links is one file. The hidden
//! `/.pvfs` directory is never walked, even when named. no_std: the same code can run in the
//! domain.

use crate::block::BlockDevice;
use crate::ext4::shared::HIDDEN_DIR;
use crate::ext4::{flags, Error, Ext4, FileType, Ino, Result, ROOT_INO};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

/// Bytes read per step while hashing and comparing.
const CHUNK: usize = 256 << 10;

/// What a dedup run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DedupReport {
    /// Regular files with data blocks found under the given paths (each inode once).
    pub files_scanned: u64,
    /// Files (inodes) made stubs by this run.
    pub files_merged: u64,
    /// Store files created by this run.
    pub stores_created: u64,
    /// Files whose hash matched but whose bytes did not (left alone).
    pub mismatches: u64,
    /// Free space gained: the free blocks after the run minus those before, in bytes.
    pub bytes_saved: u64,
}

/// Deduplicate the regular files under `roots` (paths in the image; `/` for everything).
/// Changes are left in the engine's current transaction; the caller syncs or closes.
pub fn dedup<D: BlockDevice>(fs: &mut Ext4<D>, roots: &[&[u8]]) -> Result<DedupReport> {
    let mut report = DedupReport::default();
    let free_before = fs.statfs().free_blocks;
    let files = collect(fs, roots)?;
    report.files_scanned = files.len() as u64;
    let mut by_size: BTreeMap<u64, Vec<Ino>> = BTreeMap::new();
    for (ino, size) in files {
        by_size.entry(size).or_default().push(ino);
    }
    let mut buf = vec![0u8; CHUNK];
    let mut buf2 = vec![0u8; CHUNK];
    for (_, group) in by_size {
        if group.len() < 2 {
            continue;
        }
        let mut by_hash: BTreeMap<[u8; 32], Vec<Ino>> = BTreeMap::new();
        for ino in group {
            by_hash
                .entry(hash(fs, ino, &mut buf)?)
                .or_default()
                .push(ino);
        }
        for (_, same) in by_hash {
            if same.len() >= 2 {
                merge_group(fs, &same, &mut report, &mut buf, &mut buf2)?;
            }
        }
    }
    let bs = u64::from(fs.superblock().block_size());
    report.bytes_saved = fs
        .statfs()
        .free_blocks
        .saturating_sub(free_before)
        .saturating_mul(bs);
    Ok(report)
}

/// The regular files with data blocks under `roots`: (inode, size), each inode once.
fn collect<D: BlockDevice>(fs: &mut Ext4<D>, roots: &[&[u8]]) -> Result<Vec<(Ino, u64)>> {
    let mut files = Vec::new();
    let mut seen: BTreeSet<Ino> = BTreeSet::new();
    let mut dirs_seen: BTreeSet<Ino> = BTreeSet::new();
    let mut stack: Vec<Ino> = Vec::new();
    // The store directory is never walked, even when named.
    match fs.lookup(ROOT_INO, HIDDEN_DIR) {
        Ok(h) => {
            dirs_seen.insert(h);
        }
        Err(Error::NotFound) => {}
        Err(e) => return Err(e),
    }
    for root in roots {
        let ino = fs.lookup_path(root)?;
        consider(fs, ino, &mut files, &mut seen, &mut dirs_seen, &mut stack)?;
        while let Some(dir) = stack.pop() {
            for e in fs.read_dir(dir)? {
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                consider(fs, e.ino, &mut files, &mut seen, &mut dirs_seen, &mut stack)?;
            }
        }
    }
    Ok(files)
}

/// Queue directory `ino`, or record it as a candidate file.
fn consider<D: BlockDevice>(
    fs: &mut Ext4<D>,
    ino: Ino,
    files: &mut Vec<(Ino, u64)>,
    seen: &mut BTreeSet<Ino>,
    dirs_seen: &mut BTreeSet<Ino>,
    stack: &mut Vec<Ino>,
) -> Result<()> {
    let a = fs.getattr(ino)?;
    match a.kind {
        FileType::Directory if dirs_seen.insert(ino) => stack.push(ino),
        FileType::Regular
            if a.size > 0
                && a.blocks > 0
                && a.flags & flags::EXTENTS != 0
                && a.flags & (flags::INLINE_DATA | flags::ENCRYPT) == 0
                && seen.insert(ino) =>
        {
            files.push((ino, a.size));
        }
        _ => {}
    }
    Ok(())
}

/// SHA-256 of `ino`'s content.
fn hash<D: BlockDevice>(fs: &mut Ext4<D>, ino: Ino, buf: &mut [u8]) -> Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut off = 0u64;
    loop {
        let n = fs.read(ino, off, buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or(&[]));
        off = off.saturating_add(n as u64);
    }
    Ok(h.finalize().into())
}

/// Whether `a` and `b` hold the same bytes.
fn same_bytes<D: BlockDevice>(
    fs: &mut Ext4<D>,
    a: Ino,
    b: Ino,
    ba: &mut [u8],
    bb: &mut [u8],
) -> Result<bool> {
    let mut off = 0u64;
    loop {
        let n = fs.read(a, off, ba)?;
        let m = fs.read(b, off, bb)?;
        if n != m || ba.get(..n) != bb.get(..m) {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
        off = off.saturating_add(n as u64);
    }
}

/// Merge files of equal size and hash: into the store of the first stub among them, or
/// into a new store made from the first private file once a second one matches it.
fn merge_group<D: BlockDevice>(
    fs: &mut Ext4<D>,
    same: &[Ino],
    report: &mut DedupReport,
    ba: &mut [u8],
    bb: &mut [u8],
) -> Result<()> {
    let mut store = None;
    let mut private = Vec::new();
    for &ino in same {
        match fs.shared_store(ino)? {
            Some(s) => {
                store.get_or_insert(s);
            }
            None => private.push(ino),
        }
    }
    // Without a store yet, the first private file is what the others are compared with.
    let mut base = match store {
        Some(s) => s,
        None if private.is_empty() => return Ok(()),
        None => private.remove(0),
    };
    for ino in private {
        if !same_bytes(fs, ino, base, ba, bb)? {
            report.mismatches += 1;
            continue;
        }
        if store.is_none() {
            match fs.share_new(base) {
                Ok(s) => {
                    report.stores_created += 1;
                    report.files_merged += 1;
                    store = Some(s);
                    base = s;
                }
                // The first file cannot hold the store (it changed kind): the next may.
                Err(Error::Invalid { .. }) => {
                    base = ino;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        match fs.share_add(ino, base) {
            Ok(()) => report.files_merged += 1,
            // A file that cannot be a stub (it changed kind meanwhile) stays private.
            Err(Error::Invalid { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
