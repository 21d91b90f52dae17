//! Linux's rule for the set-user-ID and set-group-ID bits when a file changes hands or
//! contents: a write, a truncate or a change of owner or group by a caller without
//! `CAP_FSETID` clears them (`setattr_should_drop_suidgid` in Linux's `fs/attr.c`, applied by
//! `file_remove_privs` on write and by `notify_change` on truncate and chown).
//!
//! The server applies it itself because Linux's 9p client does not on every path (a write
//! through a `cache=none` mount leaves it to the server). 9P carries the caller's identity
//! as the fid's attach uid; guest root privileged over the file stands for a caller with
//! `CAP_FSETID`. 9P2000.L does not
//! carry the caller's supplementary groups, so a set-group-ID bit is cleared when group
//! execute is set, as in Linux's rule for a caller outside the file's group; a set-group-ID
//! file without group execute (the mandatory-locking mark) keeps it.

use crate::fs::{mode, Attr};

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o0010;

/// The permission bits `a` should have after a caller writes, truncates or changes the owner
/// of the file, or `None` if they stay as they are. `fsetid`: the caller has `CAP_FSETID`
/// over the file (guest root of an identity-mapped share, or of a share whose ranges hold the
/// file's ids and map root: [`crate::perm::Who::capable`]).
pub fn after_change(a: &Attr, fsetid: bool) -> Option<u32> {
    if fsetid || a.mode & mode::S_IFMT != mode::S_IFREG {
        return None;
    }
    let mut kill = a.mode & S_ISUID;
    if a.mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP {
        kill |= S_ISGID;
    }
    (kill != 0).then_some(a.mode & 0o7777 & !kill)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(m: u32) -> Attr {
        Attr {
            mode: mode::S_IFREG | m,
            ..Attr::default()
        }
    }

    /// Linux's behaviour, written out case by case: (mode before, caller, mode after).
    #[test]
    fn matches_linux_for_each_bit_and_caller() {
        let cases = [
            (0o4777, 65534, Some(0o777)),
            (0o2777, 65534, Some(0o777)),
            (0o6777, 65534, Some(0o777)),
            (0o6755, 1000, Some(0o755)),
            (0o4700, 1000, Some(0o700)),
            // set-group-ID without group execute: a locking mark, kept
            (0o2745, 1000, None),
            (0o6745, 1000, Some(0o2745)),
            // nothing to clear
            (0o777, 1000, None),
            (0o1777, 1000, None),
            // a caller with CAP_FSETID (root) keeps them
            (0o6777, 0, None),
        ];
        for (before, uid, after) in cases {
            assert_eq!(
                after_change(&file(before), uid == 0),
                after,
                "{before:o} by {uid}"
            );
        }
    }

    #[test]
    fn only_regular_files() {
        for ty in [mode::S_IFDIR, mode::S_IFLNK, mode::S_IFCHR, mode::S_IFIFO] {
            let a = Attr {
                mode: ty | 0o6777,
                ..Attr::default()
            };
            assert_eq!(after_change(&a, false), None);
        }
    }
}
