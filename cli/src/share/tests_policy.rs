//! `pvfs share add/set/ls` with the identity-policy options, parsed as the command line does,
//! against the xenstore fake: the keys written (and what pvfs's parser makes of them), the
//! rejects with their one line and exit status 2, nothing written on a reject.

use super::*;
use clap::Parser;
use pvfs_9p::idpolicy::PolicyKeys;

#[derive(Parser)]
struct Cmd {
    #[command(subcommand)]
    share: ShareCmd,
}

fn parse(args: &[&str]) -> Result<ShareCmd, clap::Error> {
    let mut v = vec!["share"];
    v.extend_from_slice(args);
    Cmd::try_parse_from(v).map(|c| c.share)
}

fn run(s: &mut FakeStore, args: &[&str]) -> Res<String> {
    run_share(s, parse(args).unwrap())
}

/// The policy keys of `vm1`'s device 0, as pvfs reads them.
fn keys(s: &FakeStore) -> PolicyKeys {
    let bd = backend_dir(PVFS, GUEST, 0);
    let k = |n: &str| s.get(&format!("{bd}/{n}")).map(str::to_string);
    PolicyKeys {
        uid_map: k("uid-map"),
        gid_map: k("gid-map"),
        squash_root: k("squash-root"),
        unmapped_ids: k("unmapped-ids"),
    }
}

const ADD: [&str; 6] = ["add", "vm1", "--tag", "data", "--path", "/exports/vm1"];

#[test]
fn add_writes_the_maps_and_ls_shows_them() {
    let (mut s, _) = setup();
    let mut a = ADD.to_vec();
    a.extend([
        "--uid-map",
        "0:100000:65536",
        "--gid-map",
        "0:200000:65536",
        "--squash-root",
        "--ro",
    ]);
    let out = run(&mut s, &a).unwrap();
    assert!(out.contains("connected"), "{out}");
    let bd = backend_dir(PVFS, GUEST, 0);
    assert_eq!(s.get(&format!("{bd}/mode")), Some("ro"));
    assert_eq!(s.get(&format!("{bd}/uid-map")), Some("0:100000:65536"));
    assert_eq!(s.get(&format!("{bd}/gid-map")), Some("0:200000:65536"));
    assert_eq!(s.get(&format!("{bd}/squash-root")), Some("65534:65534"));
    assert!(!s.exists(&format!("{bd}/unmapped-ids")));
    // The key belongs to pvfs's domain like the rest of the directory.
    assert_eq!(perms(&s, &format!("{bd}/uid-map"))[0].domid, PVFS);
    let (u, g) = keys(&s).maps().unwrap();
    assert_eq!(
        (u.to_host(0), u.to_host(1), g.to_host(1)),
        (65534, 100001, 200001)
    );
    let t = run(&mut s, &["ls"]).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].ends_with("IDS"), "{t}");
    assert!(
        lines[1].ends_with("uid=0:100000:65536 gid=0:200000:65536 root=65534:65534"),
        "{t}"
    );
    let j = run(&mut s, &["ls", "--json"]).unwrap();
    assert!(j.contains("\"read_only\":true"), "{j}");
    assert!(
        j.contains("\"uid_map\":\"0:100000:65536\",\"gid_map\":\"0:200000:65536\",\"squash_root\":\"65534:65534\",\"unmapped_ids\":null"),
        "{j}"
    );
}

#[test]
fn set_changes_mode_and_maps_live() {
    let (mut s, _) = setup();
    run(&mut s, &ADD).unwrap();
    let bd = backend_dir(PVFS, GUEST, 0);
    let t = run(&mut s, &["ls"]).unwrap();
    assert!(t.lines().nth(1).unwrap().ends_with("identity"), "{t}");
    let out = run(&mut s, &["set", "vm1", "data", "--ro"]).unwrap();
    assert!(out.contains(": ro "), "{out}");
    assert_eq!(s.get(&format!("{bd}/mode")), Some("ro"));
    run(
        &mut s,
        &[
            "set",
            "vm1",
            "data",
            "--rw",
            "--uid-map",
            "0:100000:10,10:300000:5",
        ],
    )
    .unwrap();
    assert!(!s.exists(&format!("{bd}/mode")));
    assert_eq!(
        s.get(&format!("{bd}/uid-map")),
        Some("0:100000:10,10:300000:5")
    );
    run(&mut s, &["set", "vm1", "data", "--squash-root=0:0"]).unwrap();
    assert_eq!(s.get(&format!("{bd}/squash-root")), Some("0:0"));
    run(
        &mut s,
        &[
            "set",
            "vm1",
            "data",
            "--no-squash-root",
            "--unmapped-ids",
            "500:501",
        ],
    )
    .unwrap();
    assert!(!s.exists(&format!("{bd}/squash-root")));
    assert_eq!(s.get(&format!("{bd}/unmapped-ids")), Some("500:501"));
    let out = run(&mut s, &["set", "vm1", "data", "--squash-all", "7:8"]).unwrap();
    assert!(out.contains("uid=all:7 gid=all:8"), "{out}");
    let (u, g) = keys(&s).maps().unwrap();
    assert_eq!((u.to_host(0), g.to_host(1234)), (7, 8));
    run(
        &mut s,
        &[
            "set",
            "vm1",
            "data",
            "--uid-map",
            "identity",
            "--gid-map",
            "identity",
        ],
    )
    .unwrap();
    let (u, g) = keys(&s).maps().unwrap();
    assert_eq!((u.to_host(1234), g.to_host(0)), (1234, 0));
}

#[test]
fn bad_values_fail_with_one_line_and_exit_2_writing_nothing() {
    let (mut s, _) = setup();
    run(&mut s, &ADD).unwrap();
    let before = s.nodes.clone();
    let cases: [(&[&str], &str); 8] = [
        (
            &["--uid-map", "0:100000"],
            "--uid-map 0:100000: \"0:100000\" is not GUEST:HOST:COUNT, identity or all:ID",
        ),
        (&["--gid-map", "0:1:0"], "the count is 0"),
        (&["--uid-map", "4294967295:0:2"], "goes past 4294967295"),
        (&["--uid-map", "0:100:10,5:200:10"], "guest ids overlap"),
        (&["--uid-map", "0:100:10,20:105:10"], "host ids overlap"),
        (
            &["--squash-root=root"],
            "--squash-root root: \"root\" is not UID:GID",
        ),
        (&["--squash-all", "1:x"], "gid \"x\" is not a number"),
        (&["--unmapped-ids", "1:4294967296"], "above 4294967295"),
    ];
    for (opts, msg) in cases {
        let mut a = vec!["set", "vm1", "data"];
        a.extend_from_slice(opts);
        let e = run(&mut s, &a).unwrap_err();
        assert_eq!((e.kind, e.code()), (Kind::Usage, 2), "{a:?}");
        assert!(e.msg.contains(msg), "{a:?}: {}", e.msg);
        assert!(!e.msg.contains('\n'), "one line: {}", e.msg);
        assert_eq!(s.nodes, before, "{a:?} wrote something");
        // add checks them before it writes anything too
        let mut a = ADD.to_vec();
        a[3] = "other";
        a.extend_from_slice(opts);
        let e = run(&mut s, &a).unwrap_err();
        assert_eq!(e.code(), 2, "{a:?}");
        assert_eq!(s.nodes, before, "{a:?} wrote something");
    }
    // Contradictions are usage errors of the command line (clap's, exit 2 as well).
    for a in [
        &["set", "vm1", "data", "--ro", "--rw"][..],
        &[
            "set",
            "vm1",
            "data",
            "--squash-all",
            "1:1",
            "--uid-map",
            "identity",
        ],
        &["set", "vm1", "data", "--squash-root", "--no-squash-root"],
    ] {
        let e = parse(a).err().unwrap();
        assert_eq!(e.exit_code(), 2, "{a:?}");
    }
    // --squash-root takes its value only with '=': the next word stays the tag.
    match parse(&["set", "vm1", "--squash-root", "data"]).unwrap() {
        ShareCmd::Set(a) => {
            assert_eq!(a.tag, "data");
            assert_eq!(a.policy.squash_root.as_deref(), Some("65534:65534"));
        }
        _ => panic!("not set"),
    }
    let e = run(&mut s, &["set", "vm1", "data"]).unwrap_err();
    assert!(e.msg.contains("--uid-map"), "{}", e.msg);
}
