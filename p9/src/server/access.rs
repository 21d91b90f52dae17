//! The share's identity policy on a connection: the policy in force (replaced at run time by
//! [`Connection::set_policy`], taking effect at the next request), and the permission checks
//! the server makes for a mapped or squashed share ([`crate::perm`]). On a share whose maps
//! are both the identity these checks are skipped: the guest's kernel makes them, as before.

use super::connection::Connection;
use crate::fs::{Attr, Errno, Filesystem, Ino};
use crate::idpolicy::SharePolicy;
use crate::perm::{parse_acl, AclEntry, Who, ACL_ACCESS};
use alloc::sync::Arc;
use alloc::vec::Vec;

impl<F: Filesystem> Connection<F> {
    /// The policy in force.
    pub fn policy(&self) -> Arc<SharePolicy> {
        self.policy.lock().clone()
    }

    /// Replaces the policy: read-only or not and the id maps. The connection's next request
    /// runs under it (fids keep their guest user, mapped again at each use).
    pub fn set_policy(&self, p: SharePolicy) {
        *self.policy.lock() = Arc::new(p);
    }

    /// Whether the server checks permissions (the share's maps are not both the identity).
    pub(super) fn checking(&self) -> bool {
        !self.policy.lock().is_identity()
    }

    /// The access ACL of `ino`, if it has a well-formed one.
    fn access_acl(&self, ino: Ino) -> Option<Vec<AclEntry>> {
        let v = self.fs().getxattr(ino, ACL_ACCESS).ok()?;
        parse_acl(&v)
    }

    /// Fails with `EACCES` unless guest user `guest_uid` may access `a` for `want`
    /// (`perm::MAY_*`).
    pub(super) fn need(&self, guest_uid: u32, a: &Attr, want: u32) -> Result<(), Errno> {
        let pol = self.policy();
        if pol.is_identity() {
            return Ok(());
        }
        let who = Who::new(&pol, guest_uid);
        let acl = if a.uid == who.uid {
            None
        } else {
            self.access_acl(a.ino)
        };
        if who.permits(a, acl.as_deref(), want) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// [`Self::need`] on inode `ino`; returns its attributes.
    pub(super) fn need_ino(&self, guest_uid: u32, ino: Ino, want: u32) -> Result<Attr, Errno> {
        let a = self.fs().getattr(ino)?;
        self.need(guest_uid, &a, want)?;
        Ok(a)
    }

    /// Fails with `EPERM` unless guest user `guest_uid` owns `a` or is privileged over it.
    pub(super) fn need_owner(&self, guest_uid: u32, a: &Attr) -> Result<(), Errno> {
        let pol = self.policy();
        if pol.is_identity() || Who::new(&pol, guest_uid).owns(a) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// Fails with `EPERM` unless guest user `guest_uid` is privileged over `a`.
    pub(super) fn need_capable(&self, guest_uid: u32, a: &Attr) -> Result<(), Errno> {
        let pol = self.policy();
        if pol.is_identity() || Who::new(&pol, guest_uid).capable(a) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// Fails unless guest user `guest_uid` may remove or replace `name` in `dir` (if it
    /// exists): `EACCES` without write and search permission on `dir`, `EPERM` for the sticky
    /// bit.
    pub(super) fn need_delete(&self, guest_uid: u32, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        let pol = self.policy();
        if pol.is_identity() {
            return Ok(());
        }
        let d = self.need_ino(
            guest_uid,
            dir,
            crate::perm::MAY_WRITE | crate::perm::MAY_EXEC,
        )?;
        let victim = match self.fs().lookup(dir, name) {
            Ok(v) => v,
            Err(_) => return Ok(()),
        };
        let who = Who::new(&pol, guest_uid);
        let acl = self.access_acl(dir);
        if who.may_delete(&d, acl.as_deref(), &victim) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// Whether guest user `guest_uid` keeps set-user-ID and set-group-ID bits of `a` when it
    /// writes, truncates or chowns it (Linux's `CAP_FSETID` over the file).
    pub(super) fn keeps_privs(&self, guest_uid: u32, a: &Attr) -> bool {
        Who::new(&self.policy(), guest_uid).capable(a)
    }
}
