//! Template shares (`pvfs_9p::overlay`): the model-based random test
//! (`pvfs_tests::overlay_model`) on the in-memory filesystem. Each sequence starts from the
//! template tree, runs random operations on the merged view and on a copy of the template,
//! compares the two after every operation, reopens the view (a restart: only the
//! filesystem's state carries over) every 25 operations, and checks that the template's
//! tree is unchanged at the end.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_9p::fs::{mode, Filesystem, NewInode};
use pvfs_9p::memfs::MemFs;
use pvfs_9p::overlay::OverlayFs;
use pvfs_tests::overlay_model::{build_template, dump, run};
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
