//! POSIX byte-range locks: Tlock and Tgetlock, over the export's lock table. A lock's owner
//! is the connection with the client's process id and client name; a fid remembers the
//! owners that locked through it, whose locks go when it is clunked.

use super::connection::Connection;
use super::reply;
use crate::fs::{Errno, Filesystem};
use crate::policy::{lock_range, LockKind, LockOwner};
use crate::wire::{lock as lk, LockRepr, Rmsg};
use alloc::vec::Vec;

/// Lock owners one fid remembers, at most.
const MAX_LOCK_OWNERS_PER_FID: usize = 64;

impl<F: Filesystem> Connection<F> {
    /// The owner of a lock a request describes.
    fn lock_owner(&self, lock: &LockRepr<'_>) -> Result<LockOwner, Errno> {
        LockOwner::new(self.id, lock.proc_id, lock.client_id)
    }

    /// Tlock: sets or clears a lock without waiting (a conflict answers "blocked").
    pub(super) fn lock(&self, tag: u16, fid: u32, lock: &LockRepr<'_>) -> Result<Vec<u8>, Errno> {
        let i = self.plain(fid)?;
        let kind = match lock.ty {
            lk::RDLCK => Some(LockKind::Read),
            lk::WRLCK => Some(LockKind::Write),
            lk::UNLCK => None,
            _ => return Err(Errno::EINVAL),
        };
        let (start, end) = lock_range(lock.start, lock.length)?;
        let mut owner = self.lock_owner(lock)?;
        if kind.is_some() {
            // The fid's copy shares the table's client id.
            owner = self.shared.locks.intern(&owner)?;
            let mut st = self.state.lock();
            let f = st.fids.get_mut(&fid).ok_or(Errno::EBADF)?;
            if !f.lock_owners.contains(&owner) {
                if f.lock_owners.len() >= MAX_LOCK_OWNERS_PER_FID {
                    return Err(Errno::ENOLCK);
                }
                f.lock_owners.push(owner.clone());
            }
        }
        let ok = self.shared.locks.set(i.ino, &owner, kind, start, end)?;
        let status = if ok {
            lk::STATUS_SUCCESS
        } else {
            lk::STATUS_BLOCKED
        };
        Ok(reply(tag, &Rmsg::Lock { status }))
    }

    /// Tgetlock: the first lock of another owner that conflicts with the one described, or
    /// the description with type "unlocked".
    pub(super) fn getlock(
        &self,
        tag: u16,
        fid: u32,
        lock: &LockRepr<'_>,
    ) -> Result<Vec<u8>, Errno> {
        let i = self.plain(fid)?;
        let kind = match lock.ty {
            lk::RDLCK => LockKind::Read,
            lk::WRLCK => LockKind::Write,
            _ => return Err(Errno::EINVAL),
        };
        let (start, end) = lock_range(lock.start, lock.length)?;
        let owner = self.lock_owner(lock)?;
        match self.shared.locks.conflict(i.ino, &owner, kind, start, end) {
            Some(h) => {
                let length = if h.end == u64::MAX {
                    0
                } else {
                    h.end - h.start + 1
                };
                let ty = if h.kind == LockKind::Write {
                    lk::WRLCK
                } else {
                    lk::RDLCK
                };
                Ok(reply(
                    tag,
                    &Rmsg::Getlock {
                        lock: LockRepr {
                            ty,
                            start: h.start,
                            length,
                            proc_id: h.owner.proc_id,
                            client_id: &h.owner.client_id,
                        },
                    },
                ))
            }
            None => Ok(reply(
                tag,
                &Rmsg::Getlock {
                    lock: LockRepr {
                        ty: lk::UNLCK,
                        ..*lock
                    },
                },
            )),
        }
    }
}
