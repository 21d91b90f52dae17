//! Identity per share through whole messages: every message that carries an id, mapped
//! between guest and host (and squashed outside the ranges, both ways), the permission checks
//! of mapped and squashed shares, setuid/setgid clearing, and policy changes that apply to
//! the next request.

use super::*;
use crate::fs::{mode, Filesystem, NewInode, SetAttr};
use crate::idpolicy::{PolicyKeys, SharePolicy};
use crate::memfs::MemFs;
use crate::perm::{acl_tag, parse_acl, AclEntry};
use crate::wire::{setattr as sa, Frame, Getattr, Rmsg, SetattrReq, Tmsg, NOFID, NOTAG};
use alloc::string::ToString;
use alloc::vec::Vec;

const EACCES: u32 = 13;
const EPERM: u32 = 1;
const EROFS: u32 = 30;
const EINVAL: u32 = 22;

fn policy(uid: &str, gid: &str, squash_root: Option<&str>) -> SharePolicy {
    PolicyKeys {
        uid_map: Some(uid.to_string()),
        gid_map: Some(gid.to_string()),
        squash_root: squash_root.map(str::to_string),
        unmapped_ids: None,
    }
    .policy(false)
    .unwrap()
}

/// One connection to a MemFs export whose root is owned by host `root_owner`.
struct T {
    s: Server<MemFs>,
    c: Connection<MemFs>,
}

impl T {
    fn new(p: SharePolicy, root_owner: u32, root_mode: u32) -> T {
        let fs = MemFs::new();
        let set = SetAttr {
            mode: Some(root_mode),
            uid: Some(root_owner),
            gid: Some(root_owner),
            ..Default::default()
        };
        fs.setattr(fs.root(), &set).unwrap();
        let s = Server::new(fs, ExportConfig::default());
        let c = s.connect();
        c.set_policy(p);
        let t = T { s, c };
        let v = Tmsg::Version {
            msize: 65536,
            version: VERSION,
        };
        assert_eq!(t.c.handle(enc(NOTAG, &v)).len(), 1);
        t
    }
    fn call(&self, m: &Tmsg<'_>) -> Result<Vec<u8>, u32> {
        let mut v = Vec::new();
        m.emit(1, &mut v).unwrap();
        let r = self.c.handle(v).pop().unwrap();
        let f = Frame::new_checked(&r[..]).unwrap();
        match Rmsg::parse(&f).unwrap() {
            Rmsg::Lerror { ecode } => Err(ecode),
            _ => Ok(r.clone()),
        }
    }
    fn attach(&self, fid: u32, uid: u32) {
        let m = Tmsg::Attach {
            fid,
            afid: NOFID,
            uname: b"",
            aname: b"",
            n_uname: uid,
        };
        self.call(&m).unwrap();
    }
    fn walk(&self, fid: u32, newfid: u32, names: &[&str]) -> Result<(), u32> {
        let names = names.iter().map(|n| n.as_bytes()).collect();
        let m = Tmsg::Walk { fid, newfid, names };
        self.call(&m).map(|_| ())
    }
    fn create(&self, dfid: u32, name: &str, m: u32, gid: u32) -> Result<(), u32> {
        self.walk(dfid, 900, &[])?;
        let r = self.call(&Tmsg::Lcreate {
            fid: 900,
            name: name.as_bytes(),
            flags: 2,
            mode: m,
            gid,
        });
        self.clunk(900);
        r.map(|_| ())
    }
    fn mkdir(&self, dfid: u32, name: &str, m: u32, gid: u32) -> Result<(), u32> {
        let r = self.call(&Tmsg::Mkdir {
            dfid,
            name: name.as_bytes(),
            mode: m,
            gid,
        });
        r.map(|_| ())
    }
    fn clunk(&self, fid: u32) {
        let _ = self.call(&Tmsg::Clunk { fid });
    }
    fn open(&self, fid: u32, flags: u32) -> Result<(), u32> {
        self.call(&Tmsg::Lopen { fid, flags }).map(|_| ())
    }
    fn write(&self, fid: u32, data: &[u8]) -> Result<(), u32> {
        let m = Tmsg::Write {
            fid,
            offset: 0,
            data,
        };
        self.call(&m).map(|_| ())
    }
    fn getattr(&self, fid: u32) -> Getattr {
        let r = self.call(&Tmsg::Getattr { fid, mask: !0 }).unwrap();
        match Rmsg::parse(&Frame::new_checked(&r[..]).unwrap()).unwrap() {
            Rmsg::Getattr(g) => g,
            m => panic!("{m:?}"),
        }
    }
    fn setattr(&self, fid: u32, attr: SetattrReq) -> Result<(), u32> {
        self.call(&Tmsg::Setattr { fid, attr }).map(|_| ())
    }
    fn chmod(&self, fid: u32, mode: u32) -> Result<(), u32> {
        let attr = SetattrReq {
            valid: sa::MODE,
            mode,
            ..Default::default()
        };
        self.setattr(fid, attr)
    }
    /// Host uid and gid of `name` in the export root.
    fn host_ids(&self, name: &str) -> (u32, u32) {
        let fs = self.s.fs();
        let a = fs.lookup(fs.root(), name.as_bytes()).unwrap();
        (a.uid, a.gid)
    }
    /// A file `name` in the root made on the host, with `m` and host ids.
    fn host_file(&self, name: &str, m: u32, uid: u32, gid: u32) {
        let fs = self.s.fs();
        let n = NewInode {
            mode: mode::S_IFREG | m,
            uid,
            gid,
            rdev: 0,
        };
        fs.create(fs.root(), name.as_bytes(), &n).unwrap();
    }
    fn set_xattr(&self, fid: u32, name: &str, v: &[u8]) -> Result<(), u32> {
        self.walk(fid, 901, &[])?;
        let m = Tmsg::Xattrcreate {
            fid: 901,
            name: name.as_bytes(),
            size: v.len() as u64,
            flags: 0,
        };
        if let Err(e) = self.call(&m) {
            self.clunk(901);
            return Err(e);
        }
        self.call(&Tmsg::Write {
            fid: 901,
            offset: 0,
            data: v,
        })?;
        self.call(&Tmsg::Clunk { fid: 901 }).map(|_| ())
    }
    fn get_xattr(&self, fid: u32, name: &str) -> Result<Vec<u8>, u32> {
        let m = Tmsg::Xattrwalk {
            fid,
            newfid: 902,
            name: name.as_bytes(),
        };
        self.call(&m)?;
        let r = self.call(&Tmsg::Read {
            fid: 902,
            offset: 0,
            count: 4096,
        });
        self.clunk(902);
        let r = r?;
        match Rmsg::parse(&Frame::new_checked(&r[..]).unwrap()).unwrap() {
            Rmsg::Read { data } => Ok(data.to_vec()),
            m => panic!("{m:?}"),
        }
    }
}

fn enc(tag: u16, m: &Tmsg<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    m.emit(tag, &mut v).unwrap();
    v
}

fn acl_value(acl: &[AclEntry]) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for e in acl {
        v.extend_from_slice(&e.tag.to_le_bytes());
        v.extend_from_slice(&e.perm.to_le_bytes());
        v.extend_from_slice(&e.id.to_le_bytes());
    }
    v
}

fn ranged() -> T {
    T::new(
        policy("0:100000:65536", "0:200000:65536", None),
        100_000,
        0o755,
    )
}

#[test]
fn every_creating_message_stores_host_ids_and_getattr_shows_guest_ids() {
    let t = ranged();
    t.attach(0, 0);
    t.create(0, "f", 0o644, 0).unwrap();
    t.mkdir(0, "d", 0o777, 5).unwrap();
    t.call(&Tmsg::Mknod {
        dfid: 0,
        name: b"p",
        mode: mode::S_IFIFO | 0o644,
        major: 0,
        minor: 0,
        gid: 6,
    })
    .unwrap();
    t.call(&Tmsg::Symlink {
        fid: 0,
        name: b"l",
        target: b"f",
        gid: 7,
    })
    .unwrap();
    assert_eq!(t.host_ids("f"), (100_000, 200_000));
    assert_eq!(t.host_ids("d"), (100_000, 200_005));
    assert_eq!(t.host_ids("p"), (100_000, 200_006));
    assert_eq!(t.host_ids("l"), (100_000, 200_007));
    let dev = Tmsg::Mknod {
        dfid: 0,
        name: b"null",
        mode: mode::S_IFCHR | 0o666,
        major: 1,
        minor: 3,
        gid: 0,
    };
    assert_eq!(
        t.call(&dev).map(|_| ()),
        Err(EPERM),
        "no device nodes on a mapped share"
    );
    // A guest user (attach n_uname 1000) creates as host 101000.
    t.attach(1, 1000);
    t.walk(1, 2, &["d"]).unwrap();
    t.create(2, "u", 0o644, 1000).unwrap();
    let fs = t.s.fs();
    let d = fs.lookup(fs.root(), b"d").unwrap();
    let u = fs.lookup(d.ino, b"u").unwrap();
    assert_eq!((u.uid, u.gid), (101_000, 201_000));
    t.walk(0, 3, &["d", "u"]).unwrap();
    let g = t.getattr(3);
    assert_eq!((g.uid, g.gid), (1000, 1000));
    t.walk(0, 4, &[]).unwrap();
    let g = t.getattr(4);
    assert_eq!(
        (g.uid, g.gid),
        (0, 65534),
        "root dir's gid 100000 is outside the gid range"
    );
}

#[test]
fn ids_outside_the_ranges_are_squashed_both_ways() {
    let t = ranged();
    t.host_file("hosts", 0o644, 0, 0);
    t.attach(0, 0);
    t.walk(0, 1, &["hosts"]).unwrap();
    let g = t.getattr(1);
    assert_eq!(
        (g.uid, g.gid),
        (65534, 65534),
        "host root is not shown as guest root"
    );
    // Guest ids above the range fall to the unmapped ids, on attach and in every message.
    t.attach(2, 70_000);
    t.walk(0, 3, &[]).unwrap();
    t.chmod(3, 0o777).unwrap();
    t.create(2, "far", 0o644, 70_000).unwrap();
    assert_eq!(t.host_ids("far"), (65534, 65534));
    t.create(0, "own", 0o644, 0).unwrap();
    t.walk(0, 4, &["own"]).unwrap();
    let chown = |uid, gid| SetattrReq {
        valid: sa::UID | sa::GID,
        uid,
        gid,
        ..Default::default()
    };
    t.setattr(4, chown(42, 43)).unwrap();
    assert_eq!(t.host_ids("own"), (100_042, 200_043));
    t.setattr(4, chown(u32::MAX - 1, 65_536)).unwrap();
    assert_eq!(t.host_ids("own"), (65534, 65534));
}

#[test]
fn acl_owner_ids_are_mapped_in_both_directions() {
    let t = ranged();
    t.attach(0, 0);
    t.create(0, "f", 0o640, 0).unwrap();
    t.walk(0, 1, &["f"]).unwrap();
    let e = |tag, perm, id| AclEntry { tag, perm, id };
    let acl = [
        e(acl_tag::USER_OBJ, 6, u32::MAX),
        e(acl_tag::USER, 4, 1000),
        e(acl_tag::GROUP_OBJ, 4, u32::MAX),
        e(acl_tag::GROUP, 4, 2000),
        e(acl_tag::MASK, 4, u32::MAX),
        e(acl_tag::OTHER, 0, u32::MAX),
    ];
    for name in ["system.posix_acl_access", "system.posix_acl_default"] {
        let (fid, target) = if name.ends_with("default") {
            t.mkdir(0, "d", 0o755, 0).unwrap();
            t.walk(0, 5, &["d"]).unwrap();
            (5, "d")
        } else {
            (1, "f")
        };
        t.set_xattr(fid, name, &acl_value(&acl)).unwrap();
        let fs = t.s.fs();
        let ino = fs.lookup(fs.root(), target.as_bytes()).unwrap().ino;
        let disk = parse_acl(&fs.getxattr(ino, name.as_bytes()).unwrap()).unwrap();
        assert_eq!((disk[1].id, disk[3].id), (101_000, 202_000), "{name}");
        let seen = parse_acl(&t.get_xattr(fid, name).unwrap()).unwrap();
        assert_eq!(seen, acl.to_vec(), "{name}");
        // A host id outside the ranges reads as the overflow id.
        let host = acl_value(&[e(acl_tag::USER_OBJ, 6, u32::MAX), e(acl_tag::USER, 4, 5)]);
        fs.setxattr(ino, name.as_bytes(), &host, 0).unwrap();
        let seen = parse_acl(&t.get_xattr(fid, name).unwrap()).unwrap();
        assert_eq!(seen[1].id, 65534);
    }
    // A malformed ACL is refused when the value is committed.
    assert_eq!(
        t.set_xattr(1, "system.posix_acl_access", &[2, 0, 0, 0, 1]),
        Err(EINVAL)
    );
}

#[test]
fn squashed_root_cannot_read_another_ids_private_file() {
    let t = T::new(
        policy("identity", "identity", Some("65534:65534")),
        0,
        0o755,
    );
    t.host_file("secret", 0o600, 1000, 1000);
    t.host_file("public", 0o644, 1000, 1000);
    t.attach(0, 0);
    t.walk(0, 1, &["secret"]).unwrap();
    assert_eq!(t.open(1, 0), Err(EACCES));
    t.walk(0, 2, &["public"]).unwrap();
    t.open(2, 0).unwrap();
    t.walk(0, 3, &["public"]).unwrap();
    assert_eq!(t.open(3, 2), Err(EACCES), "no write permission");
    // Nor create in a root-owned 0755 directory, nor chown, nor chmod another's file.
    assert_eq!(t.create(0, "new", 0o644, 0), Err(EACCES));
    assert_eq!(t.chmod(2, 0o777), Err(EPERM));
    let own = SetattrReq {
        valid: sa::UID,
        uid: 0,
        ..Default::default()
    };
    assert_eq!(t.setattr(2, own), Err(EPERM));
    // Guest users other than root keep their ids.
    t.attach(4, 1000);
    t.walk(4, 5, &["secret"]).unwrap();
    t.open(5, 2).unwrap();
    // Walks need search permission on the directories passed.
    let fs = t.s.fs();
    let n = NewInode {
        mode: mode::S_IFDIR | 0o700,
        uid: 1000,
        gid: 1000,
        rdev: 0,
    };
    let d = fs.create(fs.root(), b"closed", &n).unwrap();
    fs.create(
        d.ino,
        b"x",
        &NewInode {
            mode: mode::S_IFREG | 0o644,
            ..n
        },
    )
    .unwrap();
    t.walk(0, 6, &["closed"]).unwrap();
    assert_eq!(t.walk(6, 7, &["x"]), Err(EACCES));
    t.walk(4, 7, &["closed", "x"]).unwrap();
    t.getattr(7);
}

#[test]
fn mapped_root_is_privileged_over_its_own_ranges_only() {
    let t = ranged();
    t.host_file("host_secret", 0o600, 0, 0);
    t.host_file("guest_secret", 0o600, 100_005, 200_005);
    t.attach(0, 0);
    t.walk(0, 1, &["host_secret"]).unwrap();
    assert_eq!(t.open(1, 0), Err(EACCES));
    let own = SetattrReq {
        valid: sa::UID,
        uid: 0,
        ..Default::default()
    };
    assert_eq!(t.setattr(1, own), Err(EPERM));
    t.walk(0, 2, &["guest_secret"]).unwrap();
    t.open(2, 2).unwrap();
    t.walk(0, 3, &["guest_secret"]).unwrap();
    t.setattr(3, own).unwrap();
    assert_eq!(t.host_ids("guest_secret"), (100_000, 200_005));
    // A guest user cannot give its file away, only change its group.
    t.attach(4, 1000);
    let give = SetattrReq {
        valid: sa::UID,
        uid: 1001,
        ..Default::default()
    };
    t.walk(0, 5, &[]).unwrap();
    t.chmod(5, 0o1777).unwrap();
    t.create(4, "users", 0o644, 1000).unwrap();
    t.walk(4, 6, &["users"]).unwrap();
    assert_eq!(t.setattr(6, give), Err(EPERM));
    let grp = SetattrReq {
        valid: sa::GID,
        gid: 1001,
        ..Default::default()
    };
    t.setattr(6, grp).unwrap();
    assert_eq!(t.host_ids("users"), (101_000, 201_001));
    // Sticky root directory: another user cannot remove it, its owner and root can.
    t.attach(7, 1001);
    let rm = |fid| Tmsg::Unlinkat {
        dirfid: fid,
        name: b"users",
        flags: 0,
    };
    assert_eq!(t.call(&rm(7)).map(|_| ()), Err(EPERM));
    t.call(&rm(4)).unwrap();
}

#[test]
fn setuid_and_setgid_cleared_by_writes_of_unprivileged_callers() {
    let t = ranged();
    t.host_file("su", 0o6777, 100_000, 200_000);
    t.host_file("su_root", 0o6777, 100_000, 200_000);
    t.attach(0, 0);
    t.attach(1, 1000);
    t.walk(1, 2, &["su"]).unwrap();
    t.open(2, 1).unwrap();
    t.write(2, b"x").unwrap();
    t.walk(0, 3, &["su"]).unwrap();
    assert_eq!(t.getattr(3).mode & 0o7777, 0o777);
    // Guest root over a file of its ranges keeps them (CAP_FSETID).
    t.walk(0, 4, &["su_root"]).unwrap();
    t.open(4, 1).unwrap();
    t.write(4, b"x").unwrap();
    t.walk(0, 5, &["su_root"]).unwrap();
    assert_eq!(t.getattr(5).mode & 0o7777, 0o6777);
}

#[test]
fn policy_changes_apply_to_the_next_request() {
    let t = ranged();
    t.attach(0, 0);
    t.create(0, "f", 0o644, 0).unwrap();
    t.walk(0, 1, &["f"]).unwrap();
    t.open(1, 2).unwrap();
    t.write(1, b"before").unwrap();
    // Read-only, live: the open fid's next write fails, and so does every change.
    let mut ro = policy("0:100000:65536", "0:200000:65536", None);
    ro.read_only = true;
    t.c.set_policy(ro);
    assert_eq!(t.write(1, b"after"), Err(EROFS));
    assert_eq!(t.create(0, "g", 0o644, 0), Err(EROFS));
    t.walk(0, 2, &["f"]).unwrap();
    assert_eq!(t.open(2, 0), Ok(()), "reads go on");
    // Back to read-write, with another range: the same fids, the new ids.
    t.c.set_policy(policy("0:300000:65536", "0:200000:65536", None));
    t.write(1, b"again").unwrap();
    t.walk(0, 3, &["f"]).unwrap();
    assert_eq!(
        t.getattr(3).uid,
        65534,
        "host 100000 is outside the new range"
    );
    t.walk(0, 4, &[]).unwrap();
    t.chmod(4, 0o777).unwrap_err();
    t.s.fs()
        .setattr(
            t.s.fs().root(),
            &SetAttr {
                mode: Some(0o777),
                ..Default::default()
            },
        )
        .unwrap();
    t.create(0, "g", 0o644, 0).unwrap();
    assert_eq!(t.host_ids("g"), (300_000, 200_000));
}

#[test]
fn identity_shares_leave_the_checks_to_the_guest_kernel() {
    let t = T::new(SharePolicy::default(), 0, 0o755);
    t.host_file("secret", 0o600, 0, 0);
    t.attach(0, 1000);
    t.walk(0, 1, &["secret"]).unwrap();
    t.open(1, 2).unwrap();
    t.create(0, "x", 0o644, 1000).unwrap();
    assert_eq!(t.host_ids("x"), (1000, 1000));
    let v = acl_value(&[AclEntry {
        tag: acl_tag::USER,
        perm: 4,
        id: 7,
    }]);
    t.walk(0, 2, &["x"]).unwrap();
    t.set_xattr(2, "system.posix_acl_access", &v).unwrap();
    assert_eq!(
        t.get_xattr(2, "system.posix_acl_access").unwrap(),
        v,
        "unchanged"
    );
}

#[test]
fn renames_removals_and_xattrs_follow_linux_rules() {
    let t = ranged();
    t.attach(0, 0);
    t.attach(1, 1000);
    // A directory of guest root's, 0755: guest user 1000 may look but not change it.
    t.mkdir(0, "d", 0o755, 0).unwrap();
    t.walk(0, 2, &["d"]).unwrap();
    t.create(2, "f", 0o644, 0).unwrap();
    t.walk(1, 3, &["d"]).unwrap();
    let mv = |fid| Tmsg::Renameat {
        olddirfid: fid,
        oldname: b"f",
        newdirfid: fid,
        newname: b"g",
    };
    assert_eq!(t.call(&mv(3)).map(|_| ()), Err(EACCES));
    let rm = Tmsg::Unlinkat {
        dirfid: 3,
        name: b"f",
        flags: 0,
    };
    assert_eq!(t.call(&rm).map(|_| ()), Err(EACCES));
    assert_eq!(t.create(3, "mine", 0o644, 1000), Err(EACCES));
    t.call(&mv(2)).unwrap();
    // xattrs: user.* needs write permission, trusted.* a privileged caller.
    t.walk(1, 4, &["d", "g"]).unwrap();
    assert_eq!(t.set_xattr(4, "user.note", b"x"), Err(EACCES));
    assert_eq!(t.set_xattr(4, "trusted.x", b"x"), Err(EPERM));
    assert_eq!(
        t.set_xattr(4, "system.posix_acl_access", &acl_value(&[])),
        Err(EPERM)
    );
    t.walk(0, 5, &["d", "g"]).unwrap();
    t.set_xattr(5, "user.note", b"x").unwrap();
    t.set_xattr(5, "trusted.x", b"y").unwrap();
    assert_eq!(
        t.get_xattr(4, "user.note").unwrap(),
        b"x",
        "readable: mode 0644"
    );
    assert_eq!(t.get_xattr(4, "trusted.x"), Err(EPERM));
    // Guest root removes it.
    t.call(&Tmsg::Unlinkat {
        dirfid: 2,
        name: b"g",
        flags: 0,
    })
    .unwrap();
}
