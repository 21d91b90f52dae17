//! Template shares (`pvfs_9p::overlay`): the model-based random test
//! (`pvfs_tests::overlay_model`) on the in-memory filesystem. Each sequence starts from the
//! template tree, runs random operations on the merged view and on a copy of the template,
//! compares the two after every operation, reopens the view (a restart: only the
//! filesystem's state carries over) every 25 operations, and checks that the template's
//! tree is unchanged at the end.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_9p::fs::{mode, Filesystem, NewInode};
use pvfs_9p::host::ServeOptions;
use pvfs_9p::memfs::MemFs;
use pvfs_9p::overlay::{OverlayFs, ShareFs, WORK_NAME};
use pvfs_9p::policy::QuotaLimits;
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_tests::overlay_model::{build_template, dump, run};
use pvfs_tests::p9client::{o, Client, TestServer};
use std::collections::BTreeMap;
use std::sync::Arc;

fn dir(fs: &dyn Filesystem, name: &str) -> u64 {
    let new = NewInode {
        mode: mode::S_IFDIR | 0o755,
        uid: 0,
        gid: 0,
        rdev: 0,
    };
    fs.create(fs.root(), name.as_bytes(), &new).unwrap().ino
}

fn sequence(seed: u64, ops: usize) -> Vec<String> {
    let base = Arc::new(MemFs::new());
    let tmpl = dir(&*base, "templates");
    let guest = dir(&*base, "guest");
    build_template(&*base, tmpl);
    let model = MemFs::new();
    build_template(&model, model.root());
    let before = dump(&*base, tmpl);
    let open =
        || -> Box<dyn Filesystem> { Box::new(OverlayFs::new(base.clone(), guest, tmpl).unwrap()) };
    let mut view = open();
    let (log, _) = run(
        &model,
        model.root(),
        &mut view,
        &mut || open(),
        25,
        seed,
        ops,
    );
    assert_eq!(
        dump(&*base, tmpl),
        before,
        "seed {seed}: the template changed"
    );
    log
}

/// How many operations of each kind succeeded, on template objects (paths the template
/// has) and on the rest: every kind must have run both ways, or the test proves little.
fn tally(log: &[String]) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for l in log.iter().filter(|l| l.ends_with(": ok")) {
        let kind = l.split([' ', '#']).next().unwrap_or("").to_string();
        *t.entry(kind).or_insert(0) += 1;
    }
    t
}

#[test]
fn merged_view_matches_model_memfs() {
    let seeds: u64 = std::env::var("PVFS_TEMPLATE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut log = Vec::new();
    for seed in 1..=seeds {
        log.extend(sequence(seed, 200));
    }
    let t = tally(&log);
    println!("{} operations, succeeded by kind: {t:?}", log.len());
    for kind in [
        "create", "mkdir", "write", "truncate", "setattr", "xattr", "unlink", "rename", "link",
        "symlink", "mknod", "read",
    ] {
        assert!(
            t.get(kind).copied().unwrap_or(0) >= 10,
            "too few {kind}: {t:?}"
        );
    }
    // Template objects changed through the view: a rename of a template directory, a write
    // and a removal of template files.
    let tmpl_op = |op: &str, path: &str| {
        log.iter()
            .any(|l| l.starts_with(&format!("{op} {path}")) && l.ends_with(": ok"))
    };
    assert!(
        tmpl_op("rename", "/etc "),
        "no rename of the template's /etc"
    );
    assert!(
        tmpl_op("write", "/etc/passwd"),
        "no write to a template file"
    );
    assert!(
        tmpl_op("unlink", "/bin/sh"),
        "no removal of a template file"
    );
}

/// A 9P client on a template share (`ShareFs::Template`, as pvfs serves one): the qid of a
/// template file stays across its copy-up, the space quota is charged the whole copy on the
/// first write and nothing for template files removed or only read, the quota's first
/// measurement counts the copies only, and the work directory and `trusted.pvfs.*` stay
/// hidden.
#[test]
fn template_share_over_9p_charges_copies_only() {
    let base = Arc::new(MemFs::new());
    let tmpl = dir(&*base, "templates");
    let guest = dir(&*base, "guest");
    build_template(&*base, tmpl);
    let ov = OverlayFs::new(base.clone(), guest, tmpl).unwrap();
    let cfg = ExportConfig {
        quota: QuotaLimits {
            max_bytes: Some(1 << 20),
            ..QuotaLimits::default()
        },
        ..ExportConfig::default()
    };
    let ts = TestServer::start(
        Server::new(ShareFs::Template(Arc::new(ov)), cfg),
        2,
        ServeOptions::default(),
    );
    let mut c = Client::mount(&ts.addr, 65536, "/");
    let q0 = c.walk_path(0, 1, "etc/passwd").unwrap();
    c.lopen(1, o::RDWR).unwrap();
    assert_eq!(c.read_all(1, 8192).unwrap().len(), 70_000);
    assert_eq!(ts.server.quota().usage().bytes, 0, "a read was charged");
    assert_eq!(c.write(1, 10, b"guest").unwrap(), 5);
    let q1 = c.walk_path(0, 2, "etc/passwd").unwrap();
    assert_eq!(q0.path, q1.path, "qid.path changed across copy-up");
    assert_eq!(
        ts.server.quota().usage().bytes,
        70_000,
        "the copy was not charged"
    );
    // A template file removed gives nothing back: it was never charged.
    c.unlinkat(0, "empty", 0).unwrap();
    c.walk(0, 3, &["bin"]).unwrap();
    c.unlinkat(3, "sh", 0).unwrap();
    assert_eq!(ts.server.quota().usage().bytes, 70_000);
    // The guest's own file is charged as on any share.
    c.walk(0, 4, &[]).unwrap();
    c.lcreate(4, "mine", o::RDWR, 0o644, 0).unwrap();
    assert_eq!(c.write(4, 0, &[7; 1000]).unwrap(), 1000);
    assert_eq!(ts.server.quota().usage().bytes, 71_000);
    c.walk(0, 6, &[]).unwrap();
    c.lopen(6, o::RDONLY).unwrap();
    let names = c.readdir_names(6).unwrap();
    assert!(!names.iter().any(|n| n == WORK_NAME), "{names:?}");
    assert!(c.xattrwalk(1, 5, "trusted.pvfs.origin").is_err());
    for f in [1, 2, 3, 4, 6] {
        c.clunk(f).unwrap();
    }
    // Measured afresh: the copies and the guest's own files only.
    let u = ts.server.seed_quota(10_000).unwrap();
    assert_eq!(u.bytes, 71_000, "{u:?}");
}
