//! `pvfs share ls` and `pvfs status`: the table and JSON they print, and `status --wait`.

use super::*;

#[test]
fn ls_table_and_json() {
    let (mut s, _) = setup();
    let o = AddOpts {
        max_space_mib: Some(64),
        read_only: true,
        ..opts("data", "/exports/vm1")
    };
    add(&mut s, &be(), &vm1(), &o).unwrap();
    s.set(
        &format!("/local/domain/{PVFS}/backend/9pfs/{GUEST}/0/max-files"),
        "x\"y",
    );
    let list = shares(&mut s, PVFS, None).unwrap();
    assert_eq!(list.len(), 1);
    let t = ls_table(&list);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2);
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    // Written out, not taken from `ls_table`: the documented column names are what is checked.
    assert_eq!(
        cols,
        [
            "GUEST",
            "DOMID",
            "DEV",
            "TAG",
            "PATH",
            "STATE",
            "GUEST-STATE",
            "RO",
            "MAX-SPACE",
            "MAX-FILES",
            "MAX-OPEN",
            "MAX-IOPS",
            "MAX-BPS",
            "USED",
            "IDS"
        ]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row,
        [
            "vm1",
            "3",
            "0",
            "data",
            "/exports/vm1",
            "Connected",
            "Connected",
            "yes",
            "64MiB",
            "x\"y",
            "-",
            "-",
            "-",
            "-",
            "identity"
        ]
    );
    assert_eq!(
        ls_json(&list),
        "[{\"guest\":\"vm1\",\"domid\":3,\"devid\":0,\"backend\":7,\"tag\":\"data\",\"path\":\"/exports/vm1\",\"template\":null,\"state\":\"Connected\",\"guest_state\":\"Connected\",\"read_only\":true,\"max_space_mib\":64,\"max_files\":\"x\\\"y\",\"max_open_files\":null,\"max_iops\":null,\"max_bps\":null,\"space_used_mib\":null,\"files_used\":null,\"open_files_used\":null,\"uid_map\":null,\"gid_map\":null,\"squash_root\":null,\"unmapped_ids\":null,\"error\":null}]\n"
    );
    // Filtered to another guest: empty.
    assert!(shares(&mut s, PVFS, Some(0)).unwrap().is_empty());
    assert_eq!(ls_json(&[]), "[]\n");
}

#[test]
fn status_text_and_json() {
    let (mut s, _) = setup();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    let st = status(&mut s, "pvfs").unwrap();
    assert_eq!(st.shares, 1);
    assert_eq!(
        st.stats,
        [
            ("heap_live_bytes".to_string(), "4096".to_string()),
            ("devices_connected".into(), "1".into()),
            ("connects".into(), "3".into()),
            ("odd".into(), String::new()),
        ]
    );
    let t = status_text(&st);
    assert!(t.starts_with("domain:  pvfs (7)\nstatus:  ready\nversion: 0.1.0\nvolume:  label data, 64 MiB\nshares:  1\nstats:\n"), "{t}");
    assert!(t.contains("\n  heap_live_bytes    4096\n"), "{t}");
    assert_eq!(
        status_json(&st),
        "{\"domain\":{\"name\":\"pvfs\",\"domid\":7},\"status\":\"ready\",\"version\":\"0.1.0\",\"volume\":\"label data, 64 MiB\",\"shares\":1,\"stats\":{\"heap_live_bytes\":4096,\"devices_connected\":1,\"connects\":3,\"odd\":\"\"}}\n"
    );
    assert_eq!(status(&mut s, "nosuch").unwrap_err().kind, Kind::NoPvfs);
}

#[test]
fn json_strings_are_escaped() {
    assert_eq!(json_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
}

#[test]
fn status_wait_waits_for_the_domain_and_ready() {
    // No pvfs domain at first; it appears after 1 s and is ready after 2 s.
    let (mut s, _) = setup();
    let d = format!("/local/domain/{PVFS}");
    let saved = s.subtree(&d);
    s.rm(NO_TX, &d).unwrap();
    s.hook = Some(Box::new(move |s: &mut FakeStore| {
        if s.now == 1000 {
            s.set(&format!("/local/domain/{PVFS}/name"), "pvfs");
            s.set(&format!("/local/domain/{PVFS}/data/pvfs/version"), "0.1.0");
        }
        if s.now == 2000 {
            for (k, v) in &saved {
                let p = if k.is_empty() {
                    format!("/local/domain/{PVFS}")
                } else {
                    format!("/local/domain/{PVFS}/{k}")
                };
                s.set(&p, v);
            }
        }
    }));
    let st = wait_ready(&mut s, "pvfs", 5000).unwrap();
    assert_eq!(st.status.as_deref(), Some("ready"));
    assert_eq!(s.now, 2000);

    // Never ready: exit 10, saying what it saw last.
    let (mut s, _) = setup();
    s.set(
        &format!("/local/domain/{PVFS}/data/pvfs/status"),
        "starting",
    );
    let err = wait_ready(&mut s, "pvfs", 3000).unwrap_err();
    assert_eq!((err.kind, err.code()), (Kind::Timeout, 10));
    assert_eq!(
        err.msg,
        "pvfs was not ready within 3 s: pvfs (7) has status starting"
    );
    let (mut s, _) = setup();
    s.rm(NO_TX, &format!("/local/domain/{PVFS}")).unwrap();
    let err = wait_ready(&mut s, "pvfs", 1000).unwrap_err();
    assert_eq!(err.code(), 10);
    assert!(
        err.msg.contains("no domain \"pvfs\" is running"),
        "{}",
        err.msg
    );
}
