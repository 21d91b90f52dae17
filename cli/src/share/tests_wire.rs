//! The share commands over the real xenstore wire client and a unix socket.

use super::*;

/// The commands over the real wire client (`XsConn`) and a unix socket, against the fake
/// served as xenstored would serve it.
#[test]
fn commands_over_the_wire() {
    let (client, server) = std::os::unix::net::UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        let (s, world) = setup();
        // The guest mounts the share it is given: `rm` without --force is refused.
        world.borrow_mut().fids.insert((GUEST, 0), 1);
        crate::xs_fake::serve(s, server);
    });
    let mut c = crate::xs::XsConn::new(client);
    let be_arg = || BackendArg {
        backend: "pvfs".into(),
    };
    let out = run_share(&mut c, add_vm1_data(Some(32))).unwrap();
    assert_eq!(
        out,
        "share \"data\" of vm1 (3): device 0, path /exports/vm1: connected; mount it in the guest with `mount -t 9p -o trans=xen,version=9p2000.L data /mnt`\n"
    );
    let out = run_share(
        &mut c,
        ShareCmd::Set(SetArgs {
            domain: "3".into(),
            tag: "data".into(),
            max_space: None,
            no_max_space: true,
            max_files: Some(9),
            no_max_files: false,
            max_open_files: None,
            no_max_open_files: false,
            max_iops: Some(250),
            no_max_iops: false,
            max_bps: None,
            no_max_bps: false,
            policy: PolicyArgs::default(),
            be: be_arg(),
        }),
    )
    .unwrap();
    assert_eq!(
        out,
        "share \"data\" of vm1 (3): rw max-space=none max-files=9 max-open-files=none max-iops=250 max-bps=none identity\n"
    );
    let out = run_share(
        &mut c,
        ShareCmd::Ls(LsArgs {
            domain: Some("vm1".into()),
            json: true,
            be: be_arg(),
        }),
    )
    .unwrap();
    assert!(out.contains("\"state\":\"Connected\""), "{out}");
    assert!(out.contains("\"max_files\":9"), "{out}");
    let e = run_share(
        &mut c,
        ShareCmd::Rm(RmArgs {
            domain: "vm1".into(),
            tag: "data".into(),
            force: false,
            be: be_arg(),
            timeout: 5,
        }),
    )
    .unwrap_err();
    assert_eq!(e.kind, Kind::InUse);
    run_share(
        &mut c,
        ShareCmd::Rm(RmArgs {
            domain: "vm1".into(),
            tag: "data".into(),
            force: true,
            be: be_arg(),
            timeout: 5,
        }),
    )
    .unwrap();
    let out = run_status(
        &mut c,
        StatusArgs {
            json: false,
            wait: Some(2),
            be: be_arg(),
        },
    )
    .unwrap();
    assert!(out.contains("shares:  0\n"), "{out}");
    drop(c);
    t.join().unwrap();
}

/// `XsConn::open` follows `XENSTORED_PATH` to a unix socket (the only test that opens a
/// connection itself).
#[test]
fn open_follows_xenstored_path() {
    let dir = std::env::temp_dir().join(format!("pvfs-xs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("socket");
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (s, _world) = setup();
        crate::xs_fake::serve(s, conn);
    });
    std::env::set_var("XENSTORED_PATH", &sock);
    let c = crate::xs::XsConn::open();
    std::env::remove_var("XENSTORED_PATH");
    let mut c = c.unwrap();
    let out = run_status(
        &mut c,
        StatusArgs {
            json: true,
            wait: None,
            be: BackendArg {
                backend: "7".into(),
            },
        },
    )
    .unwrap();
    assert!(
        out.starts_with("{\"domain\":{\"name\":\"pvfs\",\"domid\":7},\"status\":\"ready\""),
        "{out}"
    );
    drop(c);
    t.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
