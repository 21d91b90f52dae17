//! Export policy: uid/gid translation, quota hooks and POSIX byte-range locks.

use crate::fs::{Errno, FsStat};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;

/// The id reported for host ids that have no guest mapping (and used by squash defaults).
pub const NOBODY: u32 = 65534;

/// One rule of an [`IdMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRule {
    /// Guest ids `guest..guest+count` are host ids `host..host+count`, both ways.
    Map {
        /// First guest id.
        guest: u32,
        /// First host id.
        host: u32,
        /// Number of ids (up to 2^32).
        count: u64,
    },
    /// Guest ids `guest..guest+count` all become host id `host` (guest to host only).
    Squash {
        /// First guest id.
        guest: u32,
        /// The host id they become.
        host: u32,
        /// Number of ids.
        count: u64,
    },
}

/// Translation between guest ids (untrusted, from the wire) and host ids (in the filesystem),
/// in the spirit of virtiofsd's `--translate-uid`. Rules are tried in order; a guest id no
/// rule covers becomes `unmapped_host`, a host id no `Map` rule covers is reported as
/// `unmapped_guest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    /// Rules, first match wins.
    pub rules: Vec<IdRule>,
    /// Host id for guest ids no rule covers.
    pub unmapped_host: u32,
    /// Guest id reported for host ids no `Map` rule covers.
    pub unmapped_guest: u32,
}

impl IdMap {
    /// Every id maps to itself.
    pub fn identity() -> Self {
        IdMap {
            rules: alloc::vec![IdRule::Map {
                guest: 0,
                host: 0,
                count: 1 << 32
            }],
            unmapped_host: NOBODY,
            unmapped_guest: NOBODY,
        }
    }

    /// Every guest id becomes `host`; host ids are reported as `host` too.
    pub fn squash_all(host: u32) -> Self {
        IdMap {
            rules: alloc::vec![IdRule::Squash {
                guest: 0,
                host,
                count: 1 << 32
            }],
            unmapped_host: host,
            unmapped_guest: host,
        }
    }

    /// Guest id to host id.
    pub fn to_host(&self, guest_id: u32) -> u32 {
        for r in &self.rules {
            match *r {
                IdRule::Map { guest, host, count } | IdRule::Squash { guest, host, count } => {
                    let off = u64::from(guest_id).wrapping_sub(u64::from(guest));
                    if guest_id >= guest && off < count {
                        return match r {
                            IdRule::Map { .. } => host.wrapping_add(off as u32),
                            IdRule::Squash { .. } => host,
                        };
                    }
                }
            }
        }
        self.unmapped_host
    }

    /// Host id to the id the guest sees.
    pub fn to_guest(&self, host_id: u32) -> u32 {
        for r in &self.rules {
            if let IdRule::Map { guest, host, count } = *r {
                let off = u64::from(host_id).wrapping_sub(u64::from(host));
                if host_id >= host && off < count {
                    return guest.wrapping_add(off as u32);
                }
            }
        }
        self.unmapped_guest
    }

    /// Parses virtiofsd-like rules separated by `;`: `map:GUEST:HOST:COUNT`,
    /// `squash:GUEST:HOST:COUNT`, or the words `identity` / `squash-all:HOST`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "identity" {
            return Some(Self::identity());
        }
        if let Some(h) = s.strip_prefix("squash-all:") {
            return Some(Self::squash_all(h.parse().ok()?));
        }
        let mut rules = Vec::new();
        for part in s.split(';').filter(|p| !p.is_empty()) {
            let mut it = part.split(':');
            let kind = it.next()?;
            let guest: u32 = it.next()?.parse().ok()?;
            let host: u32 = it.next()?.parse().ok()?;
            let count: u64 = it.next()?.parse().ok()?;
            if it.next().is_some() || count > 1 << 32 {
                return None;
            }
            rules.push(match kind {
                "map" => IdRule::Map { guest, host, count },
                "squash" => IdRule::Squash { guest, host, count },
                _ => return None,
            });
        }
        Some(IdMap {
            rules,
            unmapped_host: NOBODY,
            unmapped_guest: NOBODY,
        })
    }
}

/// Quota limits of an export (`None` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaLimits {
    /// Bytes of file data.
    pub max_bytes: Option<u64>,
    /// Number of files (inodes).
    pub max_files: Option<u64>,
    /// Number of files open at once (over all connections).
    pub max_open_files: Option<u64>,
}

/// Quota accounting of an export. The server charges before an operation and refunds after
/// a failure or a removal; exceeding a limit fails the operation with `EDQUOT`. The embedder
/// (e.g. the Xen backend, from xenstore `max-files`, `max-open-files`, `max-space`) sets the
/// limits and may seed the usage.
#[derive(Debug, Default)]
pub struct Quota {
    limits: Mutex<QuotaLimits>,
    bytes: AtomicU64,
    files: AtomicU64,
    open_files: AtomicU64,
    /// The usage was measured from the filesystem (see `crate::server::Server::seed_quota`).
    seeded: AtomicBool,
}

/// Current quota usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaUsage {
    /// Bytes charged.
    pub bytes: u64,
    /// Files charged.
    pub files: u64,
    /// Files open now.
    pub open_files: u64,
}

fn charge(counter: &AtomicU64, n: u64, limit: Option<u64>) -> Result<(), Errno> {
    let mut cur = counter.load(Ordering::Relaxed);
    loop {
        let next = cur.checked_add(n).ok_or(Errno::EDQUOT)?;
        if let Some(l) = limit {
            if next > l {
                return Err(Errno::EDQUOT);
            }
        }
        match counter.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Ok(()),
            Err(c) => cur = c,
        }
    }
}

fn refund(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
        Some(c.saturating_sub(n))
    });
}

impl Quota {
    /// A quota with the given limits and zero usage.
    pub fn new(limits: QuotaLimits) -> Self {
        Quota {
            limits: Mutex::new(limits),
            ..Default::default()
        }
    }
    /// Replaces the limits.
    pub fn set_limits(&self, l: QuotaLimits) {
        *self.limits.lock() = l;
    }
    /// The limits.
    pub fn limits(&self) -> QuotaLimits {
        *self.limits.lock()
    }
    /// What `statfs` reports to a guest: the volume's figures `vol`, within the export's
    /// limits, so that `df` in the guest shows its quota as the size of the file system
    /// (free space and files are what is left of the quota, or of the volume if that is less).
    pub fn clamp_statfs(&self, vol: FsStat) -> FsStat {
        let l = self.limits();
        let u = self.usage();
        let mut s = vol;
        if let Some(max) = l.max_bytes {
            let bs = u64::from(vol.bsize.max(1));
            let blocks = max / bs;
            let left = max.saturating_sub(u.bytes) / bs;
            s.blocks = s.blocks.min(blocks);
            s.bfree = s.bfree.min(left);
            s.bavail = s.bavail.min(left);
        }
        if let Some(max) = l.max_files {
            s.files = s.files.min(max);
            s.ffree = s.ffree.min(max.saturating_sub(u.files));
        }
        s
    }
    /// Sets usage (e.g. measured from the filesystem at export time).
    pub fn seed(&self, bytes: u64, files: u64) {
        self.bytes.store(bytes, Ordering::Relaxed);
        self.files.store(files, Ordering::Relaxed);
        self.seeded.store(true, Ordering::Relaxed);
    }
    /// Whether the usage was set with [`seed`](Self::seed) (it is kept up to date from then on,
    /// limits or not).
    pub fn seeded(&self) -> bool {
        self.seeded.load(Ordering::Relaxed)
    }
    /// Whether a byte or file limit is set (the limits that need the usage measured).
    pub fn limits_usage(&self) -> bool {
        let l = self.limits();
        l.max_bytes.is_some() || l.max_files.is_some()
    }
    /// Current usage.
    pub fn usage(&self) -> QuotaUsage {
        QuotaUsage {
            bytes: self.bytes.load(Ordering::Relaxed),
            files: self.files.load(Ordering::Relaxed),
            open_files: self.open_files.load(Ordering::Relaxed),
        }
    }
    /// Charges `n` bytes (EDQUOT over the limit).
    pub fn charge_bytes(&self, n: u64) -> Result<(), Errno> {
        charge(&self.bytes, n, self.limits().max_bytes)
    }
    /// Refunds bytes.
    pub fn refund_bytes(&self, n: u64) {
        refund(&self.bytes, n)
    }
    /// Charges one file.
    pub fn charge_file(&self) -> Result<(), Errno> {
        charge(&self.files, 1, self.limits().max_files)
    }
    /// Refunds one file.
    pub fn refund_file(&self) {
        refund(&self.files, 1)
    }
    /// Charges one open file.
    pub fn charge_open(&self) -> Result<(), Errno> {
        charge(&self.open_files, 1, self.limits().max_open_files)
    }
    /// Refunds one open file.
    pub fn refund_open(&self) {
        refund(&self.open_files, 1)
    }
}

/// Kind of a byte-range lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Shared.
    Read,
    /// Exclusive.
    Write,
}

/// Who holds a lock: the connection, and the client's process id and client id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockOwner {
    /// Connection id (unique per server).
    pub conn: u64,
    /// Client process id.
    pub proc_id: u32,
    /// Client id string (usually the client host name), at most [`MAX_CLIENT_ID`] bytes.
    /// Shared: the records of one client id in a [`LockTable`] hold one copy.
    pub client_id: Arc<[u8]>,
}

impl LockOwner {
    /// An owner; `EINVAL` if `client_id` is longer than [`MAX_CLIENT_ID`].
    pub fn new(conn: u64, proc_id: u32, client_id: &[u8]) -> Result<Self, Errno> {
        if client_id.len() > MAX_CLIENT_ID {
            return Err(Errno::EINVAL);
        }
        Ok(LockOwner {
            conn,
            proc_id,
            client_id: Arc::from(client_id),
        })
    }
}

/// A held lock over `start..=end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive; `u64::MAX` = to end of file).
    pub end: u64,
    /// Read or write.
    pub kind: LockKind,
    /// Holder.
    pub owner: LockOwner,
}

/// Lock records per export, at most, counting the pieces an unlock in the middle of a range
/// splits it into: a request that would go past it fails with `ENOLCK` and changes nothing
/// (as Linux's `fcntl` does when its lock table is full).
pub const MAX_LOCKS: usize = 65536;
/// Longest client id a lock request may carry (Linux sends its host name, at most 64 bytes);
/// a longer one is refused with `EINVAL`.
pub const MAX_CLIENT_ID: usize = 255;
/// Distinct client ids holding locks in one export, at most (`ENOLCK` beyond): each is kept
/// once, however many records it holds.
pub const MAX_CLIENT_IDS: usize = 256;

/// POSIX byte-range locks of one export, shared by all its connections. Its memory is
/// bounded by [`MAX_LOCKS`] records and [`MAX_CLIENT_IDS`] ids of up to [`MAX_CLIENT_ID`]
/// bytes ([`LockTable::memory`]).
#[derive(Debug)]
pub struct LockTable {
    inner: Mutex<Locks>,
}

#[derive(Debug, Default)]
struct Locks {
    files: BTreeMap<u64, Vec<HeldLock>>,
    /// Records in `files`.
    records: usize,
    /// Most records allowed.
    max_records: usize,
    /// The client ids records hold, each once.
    ids: BTreeSet<Arc<[u8]>>,
}

impl Locks {
    /// `owner` with its client id shared with the table's copy, which is added if new;
    /// `ENOLCK` if the table holds [`MAX_CLIENT_IDS`] ids in use.
    fn intern(&mut self, owner: &LockOwner) -> Result<LockOwner, Errno> {
        if let Some(id) = self.ids.get(&*owner.client_id) {
            return Ok(LockOwner {
                client_id: id.clone(),
                ..owner.clone()
            });
        }
        if self.ids.len() >= MAX_CLIENT_IDS {
            // Ids no record holds any more (only the set has them).
            self.ids.retain(|id| Arc::strong_count(id) > 1);
            if self.ids.len() >= MAX_CLIENT_IDS {
                return Err(Errno::ENOLCK);
            }
        }
        self.ids.insert(owner.client_id.clone());
        Ok(owner.clone())
    }
}

impl Default for LockTable {
    fn default() -> Self {
        Self::with_limit(MAX_LOCKS)
    }
}

/// Converts a 9P (start, length) pair to an inclusive range; length 0 means to end of file.
pub fn lock_range(start: u64, length: u64) -> Result<(u64, u64), Errno> {
    if length == 0 {
        return Ok((start, u64::MAX));
    }
    let end = start.checked_add(length - 1).ok_or(Errno::EINVAL)?;
    Ok((start, end))
}

impl LockTable {
    /// A table of at most `max_records` records (the server uses [`MAX_LOCKS`]).
    pub fn with_limit(max_records: usize) -> Self {
        LockTable {
            inner: Mutex::new(Locks {
                max_records,
                ..Locks::default()
            }),
        }
    }

    /// `owner` with its client id shared with the table's copy of it (added if new), for a
    /// holder that keeps the owner (a fid remembers the owners that locked through it);
    /// `ENOLCK` if [`MAX_CLIENT_IDS`] ids are in use.
    pub fn intern(&self, owner: &LockOwner) -> Result<LockOwner, Errno> {
        self.inner.lock().intern(owner)
    }

    /// First lock of another owner that conflicts with `kind` over `start..=end`.
    pub fn conflict(
        &self,
        file: u64,
        owner: &LockOwner,
        kind: LockKind,
        start: u64,
        end: u64,
    ) -> Option<HeldLock> {
        let g = self.inner.lock();
        g.files
            .get(&file)?
            .iter()
            .find(|l| {
                l.owner != *owner
                    && l.start <= end
                    && start <= l.end
                    && (kind == LockKind::Write || l.kind == LockKind::Write)
            })
            .cloned()
    }

    /// Sets (`Some(kind)`) or clears (`None`) `owner`'s lock over `start..=end`. Returns
    /// `Ok(false)` if another owner's lock conflicts (nothing changed), `ENOLCK` (nothing
    /// changed) if the table would hold more than its limit of records or client ids.
    pub fn set(
        &self,
        file: u64,
        owner: &LockOwner,
        kind: Option<LockKind>,
        start: u64,
        end: u64,
    ) -> Result<bool, Errno> {
        let mut g = self.inner.lock();
        let locks: &[HeldLock] = g.files.get(&file).map_or(&[], Vec::as_slice);
        if let Some(k) = kind {
            let conflict = locks.iter().any(|l| {
                l.owner != *owner
                    && l.start <= end
                    && start <= l.end
                    && (k == LockKind::Write || l.kind == LockKind::Write)
            });
            if conflict {
                return Ok(false);
            }
        }
        let before = locks.len();
        // Remove `owner`'s coverage of start..=end, splitting ranges that stick out (the
        // pieces share the owner's client id).
        let mut out = Vec::with_capacity(before + 2);
        for l in locks {
            if l.owner != *owner || l.end < start || l.start > end {
                out.push(l.clone());
                continue;
            }
            if l.start < start {
                out.push(HeldLock {
                    end: start - 1,
                    ..l.clone()
                });
            }
            if l.end > end {
                out.push(HeldLock {
                    start: end + 1,
                    ..l.clone()
                });
            }
        }
        if let Some(k) = kind {
            // Merge with adjacent ranges of the same owner and kind.
            let (mut s, mut e) = (start, end);
            out.retain(|l| {
                let adjacent = l.owner == *owner
                    && l.kind == k
                    && (l.end.checked_add(1) == Some(s) || e.checked_add(1) == Some(l.start));
                if adjacent {
                    s = s.min(l.start);
                    e = e.max(l.end);
                }
                !adjacent
            });
            out.push(HeldLock {
                start: s,
                end: e,
                kind: k,
                owner: owner.clone(),
            });
            out.sort_by_key(|l| l.start);
        }
        let records = g.records - before + out.len();
        if records > g.records && records > g.max_records {
            return Err(Errno::ENOLCK);
        }
        if kind.is_some() {
            let shared = g.intern(owner)?;
            for l in out.iter_mut().filter(|l| l.owner == shared) {
                l.owner.client_id = shared.client_id.clone();
            }
        }
        g.records = records;
        if out.is_empty() {
            g.files.remove(&file);
        } else {
            g.files.insert(file, out);
        }
        Ok(true)
    }

    /// Releases every lock `owner` holds on `file`.
    pub fn release_owner(&self, file: u64, owner: &LockOwner) {
        let mut g = self.inner.lock();
        let Locks { files, records, .. } = &mut *g;
        if let Some(v) = files.get_mut(&file) {
            let before = v.len();
            v.retain(|l| l.owner != *owner);
            *records -= before - v.len();
            if v.is_empty() {
                files.remove(&file);
            }
        }
    }

    /// Releases every lock held through connection `conn`.
    pub fn release_conn(&self, conn: u64) {
        let mut g = self.inner.lock();
        let Locks { files, records, .. } = &mut *g;
        for v in files.values_mut() {
            let before = v.len();
            v.retain(|l| l.owner.conn != conn);
            *records -= before - v.len();
        }
        files.retain(|_, v| !v.is_empty());
    }

    /// The locks held on `file`, sorted by start.
    pub fn held(&self, file: u64) -> Vec<HeldLock> {
        self.inner
            .lock()
            .files
            .get(&file)
            .cloned()
            .unwrap_or_default()
    }

    /// Lock records held, and the bytes the table holds for them: the records and one copy
    /// of each client id (at most `MAX_LOCKS * size_of::<HeldLock>() + MAX_CLIENT_IDS *
    /// MAX_CLIENT_ID`, plus the maps' own nodes).
    pub fn memory(&self) -> (usize, usize) {
        let g = self.inner.lock();
        let ids: usize = g.ids.iter().map(|id| id.len()).sum();
        (
            g.records,
            g.records * core::mem::size_of::<HeldLock>() + ids,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idmap() {
        let m = IdMap::parse("map:0:100000:1000;squash:1000:5000:10").unwrap();
        assert_eq!(m.to_host(0), 100000);
        assert_eq!(m.to_host(999), 100999);
        assert_eq!(m.to_host(1005), 5000);
        assert_eq!(m.to_host(2000), NOBODY);
        assert_eq!(m.to_guest(100005), 5);
        assert_eq!(m.to_guest(5000), NOBODY);
        assert_eq!(IdMap::identity().to_host(u32::MAX), u32::MAX);
        assert_eq!(IdMap::squash_all(7).to_host(0), 7);
        assert!(IdMap::parse("map:1:2").is_none());
    }

    #[test]
    fn statfs_shows_the_quota_as_the_size() {
        let vol = FsStat {
            ty: 0xEF53,
            bsize: 4096,
            blocks: 65536,
            bfree: 60000,
            bavail: 59000,
            files: 16384,
            ffree: 16000,
            fsid: 7,
            namelen: 255,
        };
        let q = Quota::new(QuotaLimits::default());
        assert_eq!(q.clamp_statfs(vol), vol, "no limits: the volume's figures");
        q.set_limits(QuotaLimits {
            max_bytes: Some(8 << 20),
            max_files: Some(100),
            max_open_files: None,
        });
        q.seed(3 << 20, 40);
        let s = q.clamp_statfs(vol);
        assert_eq!((s.blocks, s.bfree, s.bavail), (2048, 1280, 1280));
        assert_eq!((s.files, s.ffree), (100, 60));
        assert_eq!((s.bsize, s.fsid, s.namelen), (4096, 7, 255));
        // Over the limit (lowered at run time): nothing left, not an underflow.
        q.seed(9 << 20, 120);
        let s = q.clamp_statfs(vol);
        assert_eq!(
            (s.blocks, s.bfree, s.bavail, s.files, s.ffree),
            (2048, 0, 0, 100, 0)
        );
        // A quota larger than the volume leaves the volume's figures.
        q.set_limits(QuotaLimits {
            max_bytes: Some(1 << 40),
            max_files: Some(1 << 40),
            max_open_files: None,
        });
        q.seed(0, 0);
        assert_eq!(q.clamp_statfs(vol), vol);
    }

    #[test]
    fn quota() {
        let q = Quota::new(QuotaLimits {
            max_bytes: Some(10),
            max_files: Some(1),
            max_open_files: Some(1),
        });
        q.charge_bytes(10).unwrap();
        assert_eq!(q.charge_bytes(1), Err(Errno::EDQUOT));
        q.refund_bytes(5);
        q.charge_bytes(5).unwrap();
        q.charge_file().unwrap();
        assert_eq!(q.charge_file(), Err(Errno::EDQUOT));
        q.charge_open().unwrap();
        assert_eq!(q.charge_open(), Err(Errno::EDQUOT));
        assert_eq!(
            q.usage(),
            QuotaUsage {
                bytes: 10,
                files: 1,
                open_files: 1
            }
        );
    }

    #[test]
    fn locks_split_merge() {
        let t = LockTable::default();
        let a = LockOwner {
            conn: 1,
            proc_id: 1,
            client_id: Arc::from(&b"a"[..]),
        };
        let b = LockOwner {
            conn: 2,
            proc_id: 1,
            client_id: Arc::from(&b"b"[..]),
        };
        assert!(t.set(9, &a, Some(LockKind::Write), 0, 99).unwrap());
        // Unlock the middle: splits into two.
        assert!(t.set(9, &a, None, 10, 19).unwrap());
        let h = t.held(9);
        assert_eq!(
            h.iter().map(|l| (l.start, l.end)).collect::<Vec<_>>(),
            [(0, 9), (20, 99)]
        );
        assert!(!t.set(9, &b, Some(LockKind::Read), 5, 5).unwrap());
        assert!(t.set(9, &b, Some(LockKind::Read), 10, 19).unwrap());
        assert!(t.conflict(9, &b, LockKind::Read, 0, 0).is_some());
        // Re-lock the hole as a: conflicts with b's read lock.
        assert!(!t.set(9, &a, Some(LockKind::Write), 10, 19).unwrap());
        t.release_owner(9, &b);
        assert!(t.set(9, &a, Some(LockKind::Write), 10, 19).unwrap());
        assert_eq!(t.held(9).len(), 1, "merged back into one range");
        t.release_conn(1);
        assert!(t.held(9).is_empty());
        assert_eq!(lock_range(5, 0).unwrap(), (5, u64::MAX));
        assert_eq!(lock_range(u64::MAX, 2), Err(Errno::EINVAL));
    }

    /// Unlocking the middle of held ranges splits them; past the table's limit the unlock
    /// fails with ENOLCK and changes nothing, and the records share one copy of the client
    /// id, so the table's memory stays within its bound.
    #[test]
    fn lock_splits_count_against_the_limit() {
        const LIMIT: usize = 100;
        let t = LockTable::with_limit(LIMIT);
        let id = [b'x'; MAX_CLIENT_ID];
        let a = LockOwner::new(1, 1, &id).unwrap();
        assert!(t.set(7, &a, Some(LockKind::Write), 0, 1_000_000).unwrap());
        let mut refused = None;
        for i in 0..2 * LIMIT as u64 {
            match t.set(7, &a, None, 10 + 2 * i, 10 + 2 * i) {
                Ok(true) => {}
                Ok(false) => panic!("own lock conflicts"),
                Err(e) => {
                    refused = Some((i, e));
                    break;
                }
            }
        }
        assert_eq!(refused, Some((LIMIT as u64 - 1, Errno::ENOLCK)));
        let held = t.held(7);
        assert_eq!(held.len(), LIMIT);
        assert!(held
            .iter()
            .all(|l| Arc::ptr_eq(&l.owner.client_id, &held[0].owner.client_id)));
        let (records, bytes) = t.memory();
        assert_eq!(records, LIMIT);
        assert!(bytes <= LIMIT * core::mem::size_of::<HeldLock>() + MAX_CLIENT_ID);
        // A holder that keeps the owner (a fid) gets the table's copy of the id.
        let kept = t.intern(&LockOwner::new(1, 1, &id).unwrap()).unwrap();
        assert!(Arc::ptr_eq(&kept.client_id, &held[0].owner.client_id));
        // A new lock of another file is refused too; unlocking a whole range still works
        // and frees records.
        let b = LockOwner::new(2, 1, b"b").unwrap();
        assert_eq!(t.set(8, &b, Some(LockKind::Read), 0, 0), Err(Errno::ENOLCK));
        assert!(t.set(7, &a, None, 0, u64::MAX).unwrap());
        assert_eq!(t.memory().0, 0);
        assert!(t.set(8, &b, Some(LockKind::Read), 0, 0).unwrap());
    }

    /// Client ids are bounded in length and in number.
    #[test]
    fn client_ids_are_bounded() {
        assert_eq!(
            LockOwner::new(1, 1, &[0; MAX_CLIENT_ID + 1]),
            Err(Errno::EINVAL)
        );
        let t = LockTable::default();
        let owner = |i: usize| LockOwner::new(1, 1, format!("host{i}").as_bytes()).unwrap();
        for i in 0..MAX_CLIENT_IDS {
            assert!(t.set(1, &owner(i), Some(LockKind::Read), 0, 0).unwrap());
        }
        let extra = owner(MAX_CLIENT_IDS);
        assert_eq!(
            t.set(1, &extra, Some(LockKind::Read), 0, 0),
            Err(Errno::ENOLCK)
        );
        // Once an id holds no lock, its place is free again.
        assert!(t.set(1, &owner(0), None, 0, 0).unwrap());
        assert!(t.set(1, &extra, Some(LockKind::Read), 0, 0).unwrap());
        let (records, bytes) = t.memory();
        assert_eq!(records, MAX_CLIENT_IDS);
        assert!(
            bytes <= MAX_CLIENT_IDS * (core::mem::size_of::<HeldLock>() + MAX_CLIENT_ID),
            "{bytes}"
        );
    }
}
