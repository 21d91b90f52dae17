//! Listing a merged directory: the upper directory's entries (without whiteouts and the work
//! directory), then the template directory's entries that the upper one neither has nor
//! whites out. Cookies of the second part carry [`LOWER`]; each part's cookies are its
//! directory's own, so both stay stable while entries come and go.

use super::{found, is_whiteout, Cx, WORK_NAME};
use crate::fs::{dt, DirEntry, DirVisitor, Errno, Filesystem, FsResult, Ino};
use alloc::vec::Vec;

/// Cookie bit of the template part.
const LOWER: u64 = 1 << 63;
/// Entries read from the filesystem at a time.
const BATCH: usize = 64;

struct Raw {
    ino: Ino,
    kind: u8,
    name: Vec<u8>,
    next: u64,
}

impl<F: Filesystem> Cx<'_, F> {
    /// Up to [`BATCH`] entries of `dir` after `cookie`.
    fn batch(&self, dir: Ino, cookie: u64) -> FsResult<Vec<Raw>> {
        let mut out = Vec::new();
        self.fs.readdir(dir, cookie, &mut |e| {
            out.push(Raw {
                ino: e.ino,
                kind: e.kind,
                name: e.name.to_vec(),
                next: e.next_cookie,
            });
            out.len() < BATCH
        })?;
        if out.iter().any(|r| r.next & LOWER != 0) {
            return Err(Errno::EOVERFLOW);
        }
        Ok(out)
    }

    /// Whether upper directory `u` (if any) has an entry `name` (a whiteout included).
    fn upper_has(&self, u: Option<Ino>, name: &[u8]) -> FsResult<bool> {
        match u {
            Some(u) => Ok(found(self.fs.lookup(u, name))?.is_some()),
            None => Ok(false),
        }
    }

    pub(super) fn readdir(&self, dir: Ino, cookie: u64, f: DirVisitor<'_>) -> FsResult<()> {
        let n = self.node(dir)?;
        if !n.dir {
            return Err(Errno::ENOTDIR);
        }
        let emit = |f: &mut dyn FnMut(DirEntry<'_>) -> bool, r: &Raw, ino: Ino, next: u64| {
            f(DirEntry {
                ino,
                kind: r.kind,
                name: &r.name,
                next_cookie: next,
            })
        };
        if cookie & LOWER == 0 {
            if let Some(u) = n.upper {
                let mut c = cookie;
                loop {
                    let b = self.batch(u, c)?;
                    if b.is_empty() {
                        break;
                    }
                    for r in &b {
                        c = r.next;
                        let ino = match r.name.as_slice() {
                            b"." => dir,
                            b".." => n.parent,
                            WORK_NAME if dir == self.upper_root => continue,
                            _ => {
                                let a = self.fs.getattr(r.ino)?;
                                if is_whiteout(&a) {
                                    continue;
                                }
                                self.reported(&a)?
                            }
                        };
                        if !emit(f, r, ino, r.next) {
                            return Ok(());
                        }
                    }
                }
            }
        }
        let Some(l) = n.lower else {
            return Ok(());
        };
        let mut c = if cookie & LOWER != 0 {
            cookie & !LOWER
        } else {
            0
        };
        loop {
            let b = self.batch(l, c)?;
            if b.is_empty() {
                return Ok(());
            }
            for r in &b {
                c = r.next;
                let ino = match r.name.as_slice() {
                    b"." | b".." if n.upper.is_some() => continue,
                    b"." => dir,
                    b".." => n.parent,
                    WORK_NAME if dir == self.upper_root => continue,
                    // Shadowed by the upper directory's entry, or whited out.
                    name if self.upper_has(n.upper, name)? => continue,
                    _ => r.ino,
                };
                let kind = if r.kind == dt::UNKNOWN {
                    found(self.fs.getattr(r.ino))?
                        .map_or(dt::UNKNOWN, |a| crate::fs::dt_of_mode(a.mode))
                } else {
                    r.kind
                };
                if !f(DirEntry {
                    ino,
                    kind,
                    name: &r.name,
                    next_cookie: r.next | LOWER,
                }) {
                    return Ok(());
                }
            }
        }
    }
}
