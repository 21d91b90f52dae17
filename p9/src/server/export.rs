//! [`Server`]: one export (a filesystem, its policy [`ExportConfig`], its quota and lock
//! table), shared by its connections; and [`Server::seed_quota`], which counts what the export
//! already holds against its quota.

use super::connection::{ConnState, Connection};
use crate::fs::{Errno, Filesystem, Ino};
use crate::idpolicy::SharePolicy;
use crate::policy::{IdMap, LockTable, Quota, QuotaLimits, QuotaUsage};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

/// Policy of one export.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// Refuse every modification with `EROFS`.
    pub read_only: bool,
    /// Guest/host uid translation of new connections ([`Connection::set_policy`] changes a
    /// connection's).
    pub uid_map: IdMap,
    /// Guest/host gid translation.
    pub gid_map: IdMap,
    /// Maximum fids per connection.
    pub max_fids: usize,
    /// Maximum msize (the transport's limit).
    pub max_msize: u32,
    /// Maximum requests in flight per connection.
    pub max_in_flight: usize,
    /// Export root inode (`None` = the filesystem root). Walks never go above it.
    pub root: Option<Ino>,
    /// Quota limits.
    pub quota: QuotaLimits,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            read_only: false,
            uid_map: IdMap::identity(),
            gid_map: IdMap::identity(),
            max_fids: 4096,
            max_msize: 1 << 20,
            max_in_flight: 64,
            root: None,
            quota: QuotaLimits::default(),
        }
    }
}
/// What an export's connections share.
pub(super) struct Shared<F> {
    pub(super) fs: F,
    pub(super) cfg: ExportConfig,
    pub(super) root: Ino,
    pub(super) quota: Quota,
    pub(super) locks: LockTable,
    pub(super) next_conn: AtomicU64,
    /// Errors of writes that failed after their Twrite was answered
    /// ([`Connection::finish_write`]), by inode: the next Tfsync of the file returns it.
    pub(super) late_errors: Mutex<BTreeMap<Ino, Errno>>,
}

/// Files with an unreported late write error kept at most (more are logged by the transport
/// only; the filesystem's own state is what it is either way).
pub(super) const MAX_LATE_ERRORS: usize = 1024;

/// A 9P2000.L export: cheap to clone, shared by its connections.
pub struct Server<F: Filesystem> {
    shared: Arc<Shared<F>>,
}

impl<F: Filesystem> Clone for Server<F> {
    fn clone(&self) -> Self {
        Server {
            shared: self.shared.clone(),
        }
    }
}

impl<F: Filesystem> Server<F> {
    /// Exports `fs` with `cfg`.
    pub fn new(fs: F, cfg: ExportConfig) -> Self {
        let root = cfg.root.unwrap_or_else(|| fs.root());
        let quota = Quota::new(cfg.quota);
        Server {
            shared: Arc::new(Shared {
                fs,
                cfg,
                root,
                quota,
                locks: LockTable::default(),
                next_conn: AtomicU64::new(1),
                late_errors: Mutex::new(BTreeMap::new()),
            }),
        }
    }
    /// Starts a connection (one per transport channel).
    pub fn connect(&self) -> Connection<F> {
        let id = self.shared.next_conn.fetch_add(1, Ordering::Relaxed);
        Connection {
            shared: self.shared.clone(),
            id,
            state: Mutex::new(ConnState {
                msize: 0,
                fids: BTreeMap::new(),
                inflight: BTreeMap::new(),
                spare: Vec::new(),
            }),
            policy: Mutex::new(Arc::new(SharePolicy {
                read_only: false,
                uid_map: self.shared.cfg.uid_map.clone(),
                gid_map: self.shared.cfg.gid_map.clone(),
            })),
        }
    }
    /// The filesystem.
    pub fn fs(&self) -> &F {
        &self.shared.fs
    }
    /// Measures what the export holds and makes it the quota's usage ([`Quota::seed`]), so
    /// that files already there count against `max-space` and `max-files` as files the
    /// guests create do: the bytes of its regular files (a file with several links once) and
    /// its inodes, the export's root not counted (of a template share's files, only the
    /// copies: [`Filesystem::owned_bytes`]). Walks at most `max_entries` directory
    /// entries; a larger tree leaves the usage alone and returns
    /// [`SeedError::TooLarge`]. The walk holds the caller for its length: call it once, when a
    /// byte or file limit is first set ([`Quota::seeded`]).
    pub fn seed_quota(&self, max_entries: u64) -> Result<QuotaUsage, SeedError> {
        seed_quota(&self.shared, max_entries)
    }

    /// The export's quota accounting.
    pub fn quota(&self) -> &Quota {
        &self.shared.quota
    }
    /// The export's lock table.
    pub fn locks(&self) -> &LockTable {
        &self.shared.locks
    }
    /// The export's policy.
    pub fn config(&self) -> &ExportConfig {
        &self.shared.cfg
    }
}

/// Why [`Server::seed_quota`] left the usage alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedError {
    /// The export has more than the allowed number of directory entries.
    TooLarge,
    /// The filesystem failed while listing or reading the tree.
    Fs(Errno),
}

pub(super) fn seed_quota<F: Filesystem>(
    sh: &Shared<F>,
    max_entries: u64,
) -> Result<QuotaUsage, SeedError> {
    let fs = &sh.fs;
    let mut bytes = 0u64;
    let mut files = 0u64;
    let mut entries = 0u64;
    let mut linked: BTreeSet<Ino> = BTreeSet::new();
    let mut dirs: Vec<Ino> = vec![sh.root];
    while let Some(dir) = dirs.pop() {
        let mut found: Vec<(Vec<u8>, u8)> = Vec::new();
        let mut over = false;
        fs.readdir(dir, 0, &mut |e| {
            if e.name == b"." || e.name == b".." {
                return true;
            }
            entries += 1;
            if entries > max_entries {
                over = true;
                return false;
            }
            found.push((e.name.to_vec(), e.kind));
            true
        })
        .map_err(SeedError::Fs)?;
        if over {
            return Err(SeedError::TooLarge);
        }
        for (name, kind) in found {
            // By name: a merged view (template shares) knows an entry once it is looked up.
            let a = fs.lookup(dir, &name).map_err(SeedError::Fs)?;
            if kind == crate::fs::dt::DIR {
                files += 1;
                dirs.push(a.ino);
                continue;
            }
            let ino = a.ino;
            if a.nlink > 1 && !linked.insert(ino) {
                continue;
            }
            files += 1;
            if a.is_file() {
                bytes = bytes.saturating_add(fs.owned_bytes(a.ino, &a));
            }
        }
    }
    sh.quota.seed(bytes, files);
    Ok(sh.quota.usage())
}
