//! `pvfs share set`: setting and lifting a share's quotas, and its refusals.

use super::*;

#[test]
fn set_and_lift_quotas() {
    let (mut s, _) = setup();
    let o = AddOpts {
        max_files: Some(10),
        ..opts("data", "/exports/vm1")
    };
    add(&mut s, &be(), &vm1(), &o).unwrap();
    let bd = backend_dir(PVFS, GUEST, 0);
    let sh = set(
        &mut s,
        &be(),
        &vm1(),
        "data",
        [Some(Some(128)), Some(None), None, None, None],
        &[],
    )
    .unwrap();
    assert_eq!(s.get(&format!("{bd}/max-space")), Some("128"));
    assert!(!s.exists(&format!("{bd}/max-files")));
    assert!(!s.exists(&format!("{bd}/max-open-files")));
    assert_eq!(sh.quota, [Some("128".into()), None, None, None, None]);
    // The key belongs to pvfs's domain like the rest of the directory.
    assert_eq!(perms(&s, &format!("{bd}/max-space"))[0].domid, PVFS);
    set(
        &mut s,
        &be(),
        &vm1(),
        "data",
        [
            None,
            None,
            Some(Some(5)),
            Some(Some(300)),
            Some(Some(1 << 20)),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(s.get(&format!("{bd}/max-space")), Some("128"));
    assert_eq!(s.get(&format!("{bd}/max-open-files")), Some("5"));
    assert_eq!(s.get(&format!("{bd}/max-iops")), Some("300"));
    assert_eq!(s.get(&format!("{bd}/max-bps")), Some("1048576"));
    // lifted again
    set(
        &mut s,
        &be(),
        &vm1(),
        "data",
        [None, None, None, Some(None), Some(None)],
        &[],
    )
    .unwrap();
    assert!(!s.exists(&format!("{bd}/max-iops")));
    assert!(!s.exists(&format!("{bd}/max-bps")));
    let e = set(&mut s, &be(), &vm1(), "data", [None; 5], &[]).unwrap_err();
    assert_eq!(e.kind, Kind::Usage);
    let e = set(
        &mut s,
        &be(),
        &vm1(),
        "nosuch",
        [Some(None), None, None, None, None],
        &[],
    )
    .unwrap_err();
    assert_eq!(e.kind, Kind::NoSuchShare);
}
