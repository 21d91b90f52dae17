//! [`Who`] against a model of Linux's rules (`generic_permission`, `acl_permission_check`,
//! `posix_acl_permission`, `capable_wrt_inode_uidgid`, `may_delete`), written from Linux's
//! source for a caller whose groups are known. The server does not know the caller's groups:
//! for a group some guest gid reaches, it must allow exactly what Linux allows for a member or
//! for a non-member; for any other group, what Linux allows for a non-member.

use super::*;
use crate::fs::mode;
use crate::idpolicy::PolicyKeys;
use alloc::string::ToString;
use alloc::vec;

/// Guest 0..65536 are host 100000.., both uids and gids.
fn ranged() -> SharePolicy {
    PolicyKeys {
        uid_map: Some("0:100000:65536".to_string()),
        gid_map: Some("0:100000:65536".to_string()),
        ..Default::default()
    }
    .policy(false)
    .unwrap()
}

fn attr(m: u32, uid: u32, gid: u32) -> Attr {
    Attr {
        mode: m,
        uid,
        gid,
        ..Attr::default()
    }
}

/// Linux: the caller `uid` in `groups`, with CAP_DAC_OVERRIDE over the file if `cap`.
fn linux_mode(a: &Attr, uid: u32, groups: &[u32], cap: bool, want: u32) -> bool {
    let bits = if a.uid == uid {
        a.mode >> 6
    } else if groups.contains(&a.gid) {
        a.mode >> 3
    } else {
        a.mode
    };
    bits & want == want || linux_cap(a, cap, want)
}

fn linux_cap(a: &Attr, cap: bool, want: u32) -> bool {
    cap && (a.is_dir() || want & MAY_EXEC == 0 || a.mode & 0o111 != 0)
}

/// Linux's `posix_acl_permission` (the owner is handled by the mode bits, as the server does,
/// USER_OBJ being the owner bits).
fn linux_acl(a: &Attr, acl: &[AclEntry], uid: u32, groups: &[u32], want: u32) -> bool {
    let ok = |p: u16| u32::from(p) & want == want;
    let mask = acl.iter().find(|e| e.tag == acl_tag::MASK).map(|e| e.perm);
    let masked = |p: u16| ok(p) && mask.is_none_or(ok);
    let mut found = false;
    for e in acl {
        match e.tag {
            acl_tag::USER_OBJ if a.uid == uid => return ok(e.perm),
            acl_tag::USER if e.id == uid => return masked(e.perm),
            acl_tag::GROUP_OBJ if groups.contains(&a.gid) => {
                found = true;
                if masked(e.perm) {
                    return true;
                }
            }
            acl_tag::GROUP if groups.contains(&e.id) => {
                found = true;
                if masked(e.perm) {
                    return true;
                }
            }
            _ => {}
        }
    }
    !found && acl.iter().any(|e| e.tag == acl_tag::OTHER && ok(e.perm))
}

/// Every subset of `gs`.
fn subsets(gs: &[u32]) -> Vec<Vec<u32>> {
    (0..1u32 << gs.len())
        .map(|m| {
            (0..gs.len())
                .filter(|i| m >> i & 1 == 1)
                .map(|i| gs[i])
                .collect()
        })
        .collect()
}

const OTHER_IN: u32 = 100_500; // guest 500
const OUTSIDE: u32 = 7; // no guest id

#[test]
fn mode_bits_match_linux_for_every_mode_owner_group_and_caller() {
    let pol = ranged();
    for guest in [0u32, 1000] {
        let who = Who::new(&pol, guest);
        for ty in [mode::S_IFREG, mode::S_IFDIR] {
            for m in 0..0o1000 {
                for fuid in [who.uid, OTHER_IN, OUTSIDE] {
                    for fgid in [OTHER_IN, OUTSIDE] {
                        let a = attr(ty | m, fuid, fgid);
                        let cap = guest == 0 && fuid != OUTSIDE && fgid != OUTSIDE;
                        for want in 1..=7 {
                            let reach = pol.gid_map.reaches_host(fgid);
                            let linux = linux_mode(&a, who.uid, &[], cap, want)
                                || (reach && linux_mode(&a, who.uid, &[fgid], cap, want));
                            assert_eq!(
                                who.permits(&a, None, want),
                                linux,
                                "guest {guest} mode {:o} uid {fuid} gid {fgid} want {want}",
                                a.mode
                            );
                        }
                    }
                }
            }
        }
    }
}

/// A small deterministic generator (no randomness in tests).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % u64::from(n)) as u32
    }
}

#[test]
fn acls_match_linux() {
    let pol = ranged();
    let mut r = Lcg(25);
    let ids = [OTHER_IN, OUTSIDE, 100_000, 101_000];
    for _ in 0..20_000 {
        let guest = [0u32, 1000][r.next(2) as usize];
        let who = Who::new(&pol, guest);
        let fuid = [OTHER_IN, OUTSIDE][r.next(2) as usize];
        let fgid = ids[r.next(4) as usize];
        let mut acl = vec![AclEntry {
            tag: acl_tag::USER_OBJ,
            perm: r.next(8) as u16,
            id: u32::MAX,
        }];
        let named_user = ids[r.next(4) as usize];
        if r.next(2) == 1 {
            acl.push(AclEntry {
                tag: acl_tag::USER,
                perm: r.next(8) as u16,
                id: named_user,
            });
        }
        acl.push(AclEntry {
            tag: acl_tag::GROUP_OBJ,
            perm: r.next(8) as u16,
            id: u32::MAX,
        });
        let named_group = ids[r.next(4) as usize];
        let named = r.next(2) == 1;
        if named {
            acl.push(AclEntry {
                tag: acl_tag::GROUP,
                perm: r.next(8) as u16,
                id: named_group,
            });
        }
        if acl.len() > 2 || r.next(2) == 1 {
            acl.push(AclEntry {
                tag: acl_tag::MASK,
                perm: r.next(8) as u16,
                id: u32::MAX,
            });
        }
        acl.push(AclEntry {
            tag: acl_tag::OTHER,
            perm: r.next(8) as u16,
            id: u32::MAX,
        });
        let a = attr(mode::S_IFREG | r.next(0o1000), fuid, fgid);
        let want = 1 + r.next(7);
        let mut groups = vec![fgid];
        if named && named_group != fgid {
            groups.push(named_group);
        }
        groups.retain(|g| pol.gid_map.reaches_host(*g));
        let cap = guest == 0 && fuid != OUTSIDE && fgid != OUTSIDE;
        let linux = subsets(&groups)
            .iter()
            .any(|s| linux_acl(&a, &acl, who.uid, s, want))
            || linux_cap(&a, cap, want);
        assert_eq!(
            who.permits(&a, Some(&acl), want),
            linux,
            "{acl:?} {a:?} guest {guest} want {want}"
        );
    }
}

#[test]
fn sticky_directories_and_ownership() {
    let pol = ranged();
    let user = Who::new(&pol, 1000); // host 101000
    let root = Who::new(&pol, 0);
    let tmp = attr(mode::S_IFDIR | 0o1777, 100_001, 100_000);
    let theirs = attr(mode::S_IFREG | 0o666, 102_000, 100_000);
    let mine = attr(mode::S_IFREG | 0o600, 101_000, 100_000);
    assert!(!user.may_delete(&tmp, None, &theirs));
    assert!(user.may_delete(&tmp, None, &mine));
    assert!(
        root.may_delete(&tmp, None, &theirs),
        "privileged over the file"
    );
    let host_owned = attr(mode::S_IFREG | 0o666, 0, 0);
    assert!(
        !root.may_delete(&tmp, None, &host_owned),
        "a file outside the ranges"
    );
    let own_tmp = attr(mode::S_IFDIR | 0o1777, 101_000, 100_000);
    assert!(
        user.may_delete(&own_tmp, None, &theirs),
        "owner of the directory"
    );
    let plain = attr(mode::S_IFDIR | 0o777, 0, 0);
    assert!(user.may_delete(&plain, None, &host_owned), "no sticky bit");
    let closed = attr(mode::S_IFDIR | 0o755, 0, 0);
    assert!(
        !root.may_delete(&closed, None, &mine),
        "no write permission on the directory"
    );
    assert!(user.owns(&mine) && !user.owns(&theirs) && root.owns(&theirs));
    assert!(!root.owns(&host_owned) && !root.capable(&host_owned));
}

#[test]
fn squashed_root_is_nobody() {
    let (u, g) = PolicyKeys {
        squash_root: Some("65534:65534".to_string()),
        ..Default::default()
    }
    .maps()
    .unwrap();
    let pol = SharePolicy {
        read_only: false,
        uid_map: u,
        gid_map: g,
    };
    let root = Who::new(&pol, 0);
    assert_eq!(root.uid, 65534);
    assert!(!root.root);
    let secret = attr(mode::S_IFREG | 0o600, 1000, 1000);
    assert!(!root.permits(&secret, None, MAY_READ));
    assert!(!root.capable(&secret));
    let public = attr(mode::S_IFREG | 0o644, 1000, 1000);
    assert!(root.permits(&public, None, MAY_READ));
    // Identity: root keeps its privileges (what the guest's kernel assumes).
    let id = SharePolicy::default();
    assert!(Who::new(&id, 0).permits(&secret, None, MAY_READ | MAY_WRITE));
    assert!(!Who::new(&id, 0).permits(&attr(mode::S_IFREG | 0o600, 1, 1), None, MAY_EXEC));
}

#[test]
fn acl_values_map_both_ways_and_reject_malformed_ones() {
    let pol = ranged();
    let acl = [
        AclEntry {
            tag: acl_tag::USER_OBJ,
            perm: 6,
            id: u32::MAX,
        },
        AclEntry {
            tag: acl_tag::USER,
            perm: 4,
            id: 1000,
        },
        AclEntry {
            tag: acl_tag::GROUP_OBJ,
            perm: 4,
            id: u32::MAX,
        },
        AclEntry {
            tag: acl_tag::GROUP,
            perm: 4,
            id: 70_000,
        },
        AclEntry {
            tag: acl_tag::MASK,
            perm: 4,
            id: u32::MAX,
        },
        AclEntry {
            tag: acl_tag::OTHER,
            perm: 0,
            id: u32::MAX,
        },
    ];
    let v = emit_acl(&acl);
    let host = parse_acl(&acl_to_host(&v, &pol.uid_map, &pol.gid_map).unwrap()).unwrap();
    assert_eq!(host[1].id, 101_000);
    assert_eq!(
        host[3].id, 65534,
        "a guest gid outside the ranges is squashed"
    );
    assert_eq!(host[0], acl[0], "entries without ids unchanged");
    let back =
        parse_acl(&acl_to_guest(&emit_acl(&host), &pol.uid_map, &pol.gid_map).unwrap()).unwrap();
    assert_eq!(back[1].id, 1000);
    assert_eq!(
        back[3].id, 65534,
        "a host id outside the ranges is not passed through"
    );
    for bad in [
        &v[..3],
        &v[..v.len() - 1],
        &[1, 0, 0, 0][..],
        &[2, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0][..],
    ] {
        assert!(
            acl_to_host(bad, &pol.uid_map, &pol.gid_map).is_none(),
            "{bad:?}"
        );
    }
    assert_eq!(parse_acl(&[2, 0, 0, 0]), Some(Vec::new()));
    assert!(is_acl(ACL_ACCESS) && is_acl(ACL_DEFAULT) && !is_acl(b"user.x"));
}
