//! Permission checks for a guest whose ids are mapped or squashed, after Linux's rules
//! (`generic_permission`, `posix_acl_permission`, `may_delete`, `capable_wrt_inode_uidgid`),
//! and the translation of ids inside POSIX ACL xattr values.
//!
//! The caller ([`Who`]) is the fid's attach user, mapped to the host. It is:
//! - the file's owner when its host uid is the file's uid;
//! - possibly in a group when some guest gid becomes that host gid (the guest's kernel knows
//!   its users' groups; 9P2000.L does not carry them): for such a group the server grants what
//!   the group class or the other class allows, and leaves the exact choice to the guest's
//!   kernel, which checks it too. A group no guest gid reaches is never the caller's;
//! - privileged over a file (Linux's `CAP_DAC_OVERRIDE`, `CAP_FOWNER`, `CAP_CHOWN`,
//!   `CAP_FSETID` in a user namespace) when it is guest root, root is mapped by a range (not
//!   squashed), and the file's uid and gid are both inside the share's ranges.

use crate::fs::Attr;
use crate::idpolicy::SharePolicy;
use crate::policy::IdMap;
use alloc::vec;
use alloc::vec::Vec;
use byteorder::{ByteOrder, LittleEndian as LE};

/// Read permission.
pub const MAY_READ: u32 = 4;
/// Write permission.
pub const MAY_WRITE: u32 = 2;
/// Execute (search) permission.
pub const MAY_EXEC: u32 = 1;

const S_ISVTX: u32 = 0o1000;

/// The caller of a request, against one share's policy.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// Host uid.
    pub uid: u32,
    /// Guest root with a range-mapped root.
    pub root: bool,
    /// The share's policy.
    pub pol: &'a SharePolicy,
}

impl<'a> Who<'a> {
    /// Guest user `guest_uid` of a share with policy `pol`.
    pub fn new(pol: &'a SharePolicy, guest_uid: u32) -> Self {
        Who {
            uid: pol.host_uid(guest_uid),
            root: pol.privileged(guest_uid),
            pol,
        }
    }

    /// Whether the caller has the privileges of root over file `a`.
    pub fn capable(&self, a: &Attr) -> bool {
        self.root && self.pol.uid_map.covers_host(a.uid) && self.pol.gid_map.covers_host(a.gid)
    }

    /// Whether the caller owns `a` or is privileged over it (`inode_owner_or_capable`).
    pub fn owns(&self, a: &Attr) -> bool {
        a.uid == self.uid || self.capable(a)
    }

    fn may_be_in(&self, gid: u32) -> bool {
        self.pol.gid_map.reaches_host(gid)
    }

    /// Whether the caller may access `a` for `want` (`MAY_*` bits), given its access ACL
    /// (the `system.posix_acl_access` value, if it has one).
    pub fn permits(&self, a: &Attr, acl: Option<&[AclEntry]>, want: u32) -> bool {
        let granted = match acl {
            Some(acl) if a.uid != self.uid => self.acl_grants(a, acl, want),
            _ => self.mode_grants(a, want),
        };
        granted || (self.capable(a) && (want & MAY_EXEC == 0 || a.is_dir() || a.mode & 0o111 != 0))
    }

    fn mode_grants(&self, a: &Attr, want: u32) -> bool {
        let bits = |shift: u32| (a.mode >> shift) & 7 & want == want;
        if a.uid == self.uid {
            return bits(6);
        }
        bits(0) || (self.may_be_in(a.gid) && bits(3))
    }

    fn acl_grants(&self, a: &Attr, acl: &[AclEntry], want: u32) -> bool {
        let ok = |p: u16| u32::from(p) & want == want;
        let mask = acl
            .iter()
            .find(|e| e.tag == acl_tag::MASK)
            .map_or(7, |e| e.perm);
        let masked = |p: u16| ok(p) && ok(mask);
        let mut other = false;
        let mut group = false;
        for e in acl {
            match e.tag {
                acl_tag::USER if e.id == self.uid => return masked(e.perm),
                acl_tag::GROUP_OBJ if self.may_be_in(a.gid) => group |= masked(e.perm),
                acl_tag::GROUP if self.may_be_in(e.id) => group |= masked(e.perm),
                acl_tag::OTHER => other = ok(e.perm),
                _ => {}
            }
        }
        group || other
    }

    /// Whether the caller may remove or replace `victim` in directory `dir` (write and
    /// search on the directory; with the sticky bit, only the owner of the file or of the
    /// directory, or a privileged caller).
    pub fn may_delete(&self, dir: &Attr, dir_acl: Option<&[AclEntry]>, victim: &Attr) -> bool {
        if !self.permits(dir, dir_acl, MAY_WRITE | MAY_EXEC) {
            return false;
        }
        dir.mode & S_ISVTX == 0
            || victim.uid == self.uid
            || dir.uid == self.uid
            || self.capable(victim)
    }
}

/// POSIX ACL entry tags (Linux's `ACL_USER_OBJ` …).
pub mod acl_tag {
    /// The owner.
    pub const USER_OBJ: u16 = 0x01;
    /// A named user.
    pub const USER: u16 = 0x02;
    /// The owning group.
    pub const GROUP_OBJ: u16 = 0x04;
    /// A named group.
    pub const GROUP: u16 = 0x08;
    /// The mask.
    pub const MASK: u16 = 0x10;
    /// Everyone else.
    pub const OTHER: u16 = 0x20;
}

/// One entry of a POSIX ACL in Linux's xattr form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclEntry {
    /// [`acl_tag`].
    pub tag: u16,
    /// rwx bits.
    pub perm: u16,
    /// uid or gid of a `USER`/`GROUP` entry.
    pub id: u32,
}

/// The xattr names of POSIX ACLs.
pub const ACL_ACCESS: &[u8] = b"system.posix_acl_access";
/// The default ACL of a directory.
pub const ACL_DEFAULT: &[u8] = b"system.posix_acl_default";
const ACL_VERSION: u32 = 2;

/// Byte ranges of `posix_acl_xattr_header` and of each `posix_acl_xattr_entry`.
mod field {
    /// A field's bytes in its struct.
    pub(super) type Field = core::ops::Range<usize>;
    /// Size of the header.
    pub(super) const HEADER_LEN: usize = 4;
    /// `a_version`.
    pub(super) const VERSION: Field = 0..4;
    /// Size of an entry.
    pub(super) const ENTRY_LEN: usize = 8;
    /// `e_tag`.
    pub(super) const TAG: Field = 0..2;
    /// `e_perm`.
    pub(super) const PERM: Field = 2..4;
    /// `e_id`.
    pub(super) const ID: Field = 4..8;
}

/// Whether `name` is a POSIX ACL xattr.
pub fn is_acl(name: &[u8]) -> bool {
    name == ACL_ACCESS || name == ACL_DEFAULT
}

/// Parses an ACL xattr value (`posix_acl_xattr_header` and entries), or `None` if malformed.
pub fn parse_acl(v: &[u8]) -> Option<Vec<AclEntry>> {
    let (head, body) = v.split_first_chunk::<{ field::HEADER_LEN }>()?;
    if LE::read_u32(&head[field::VERSION]) != ACL_VERSION || body.len() % field::ENTRY_LEN != 0 {
        return None;
    }
    body.chunks_exact(field::ENTRY_LEN)
        .map(|c| {
            let tag = LE::read_u16(&c[field::TAG]);
            if ![1, 2, 4, 8, 0x10, 0x20].contains(&tag) {
                return None;
            }
            Some(AclEntry {
                tag,
                perm: LE::read_u16(&c[field::PERM]),
                id: LE::read_u32(&c[field::ID]),
            })
        })
        .collect()
}

fn emit_acl(acl: &[AclEntry]) -> Vec<u8> {
    let mut v = vec![0u8; field::HEADER_LEN + field::ENTRY_LEN * acl.len()];
    let (head, body) = v.split_at_mut(field::HEADER_LEN);
    LE::write_u32(&mut head[field::VERSION], ACL_VERSION);
    for (e, c) in acl.iter().zip(body.chunks_exact_mut(field::ENTRY_LEN)) {
        LE::write_u16(&mut c[field::TAG], e.tag);
        LE::write_u16(&mut c[field::PERM], e.perm);
        LE::write_u32(&mut c[field::ID], e.id);
    }
    v
}

fn map_acl(v: &[u8], uid: impl Fn(u32) -> u32, gid: impl Fn(u32) -> u32) -> Option<Vec<u8>> {
    let mut acl = parse_acl(v)?;
    for e in &mut acl {
        match e.tag {
            acl_tag::USER => e.id = uid(e.id),
            acl_tag::GROUP => e.id = gid(e.id),
            _ => {}
        }
    }
    Some(emit_acl(&acl))
}

/// An ACL value from the guest with its user and group ids made host ids; `None` if it is
/// malformed.
pub fn acl_to_host(v: &[u8], u: &IdMap, g: &IdMap) -> Option<Vec<u8>> {
    map_acl(v, |i| u.to_host(i), |i| g.to_host(i))
}

/// An ACL value from the disk with its ids as the guest sees them; `None` if malformed.
pub fn acl_to_guest(v: &[u8], u: &IdMap, g: &IdMap) -> Option<Vec<u8>> {
    map_acl(v, |i| u.to_guest(i), |i| g.to_guest(i))
}

#[cfg(test)]
#[path = "perm_tests.rs"]
mod tests;
