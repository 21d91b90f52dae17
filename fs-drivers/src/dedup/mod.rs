//! File-level deduplication of an ext4 volume: walk the given directories, group regular
//! files by size, then by SHA-256 of their content, compare the bytes, and merge each group
//! of identical files into one shared store file ([`Ext4::share_new`], [`Ext4::share_add`];
//! the on-disk form is described in [`crate::ext4::shared`]). Files already shared join the
//! store of their group's first stub.
//!
//! Only regular extent-mapped files with data blocks are considered: empty files,
//! inline-data, encrypted and block-mapped (ext2/ext3-style) files and files with no blocks
//! (all holes) are left alone, and an inode with several links is one file. The hidden
//! `/.pvfs` directory is never walked, even when named.
//!
//! [`dedup`] runs it at once (`pvfs image dedup`); [`Job`] runs it in paced steps, for a
//! server that goes on serving between them: every merge follows a byte compare in the same
//! step, so a file that changes during the run is never merged with stale contents. no_std:
//! the same code runs in the domain.

pub mod control;
mod job;

use crate::block::BlockDevice;
use crate::ext4::{Ext4, Ino, Result};
pub use job::Job;
use sha2::{Digest, Sha256};

/// Bytes read per call while hashing and comparing.
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

/// Deduplicate the regular files under `roots` (paths in the image; `/` for everything), in
/// one go. Changes are left in the engine's current transaction; the caller syncs or closes.
pub fn dedup<D: BlockDevice>(fs: &mut Ext4<D>, roots: &[&[u8]]) -> Result<DedupReport> {
    let mut job = Job::new(roots);
    while !job.step(fs, u64::MAX)? {}
    Ok(job.report())
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
