//! The systemd unit and helpers in `dist/`: `systemd-analyze verify` accepts the unit and the
//! xendomains drop-in without a word (Xen's own units are stubbed, as this host has no Xen),
//! and `pvfs-domain` runs the right `xl` and `pvfs` commands, against stand-ins for both.
//!
//! Without `systemd-analyze` the verify test prints `skipped: …` and passes, unless
//! `PVFS_REQUIRE_ALL=1`, where it fails.

#![allow(clippy::unwrap_used)] // reason: a test crate

use std::path::{Path, PathBuf};
use std::process::Command;

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist")
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pvfs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_exec(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn have(cmd: &str) -> bool {
    Command::new(cmd).arg("--version").output().is_ok()
}

#[test]
fn systemd_analyze_verifies_the_unit_and_the_drop_in() {
    if !have("systemd-analyze") {
        assert!(
            std::env::var("PVFS_REQUIRE_ALL").as_deref() != Ok("1"),
            "PVFS_REQUIRE_ALL=1 but systemd-analyze is missing (apt-get install systemd)"
        );
        println!("skipped: systemd-analyze not found");
        return;
    }
    // The unit as installed, with its helpers where verify can check they are executable:
    // the only change is the directory /usr/lib/pvfs/.
    let d = tempdir("units");
    let lib = d.join("lib");
    let units = d.join("units");
    std::fs::create_dir_all(units.join("xendomains.service.d")).unwrap();
    std::fs::create_dir_all(&lib).unwrap();
    for f in ["pvfs-domain", "xen-init-list"] {
        copy_exec(&dist().join(f), &lib.join(f));
    }
    let relocate = |from: &Path, to: &Path| {
        let text = std::fs::read_to_string(from).unwrap();
        assert!(text.contains("/usr/lib/pvfs/"), "{}", from.display());
        let lib = format!("{}/", lib.display());
        std::fs::write(to, text.replace("/usr/lib/pvfs/", &lib)).unwrap();
    };
    relocate(&dist().join("pvfs.service"), &units.join("pvfs.service"));
    relocate(
        &dist().join("xendomains.service.d/pvfs.conf"),
        &units.join("xendomains.service.d/pvfs.conf"),
    );
    // This host has no Xen: a stand-in for Debian's xendomains.service, for the drop-in.
    std::fs::write(
        units.join("xendomains.service"),
        "[Unit]\nDescription=stand-in for Debian's xendomains\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("pvfs.service"))
        .arg(units.join("xendomains.service"))
        // The trailing ':' keeps systemd's own directories (multi-user.target, …).
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    // verify exits 0 on unknown keys and the like, with a warning: none is allowed.
    assert!(said.trim().is_empty(), "systemd-analyze verify: {said}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_unit_starts_pvfs_before_xendomains_and_stops_it_after() {
    let unit = std::fs::read_to_string(dist().join("pvfs.service")).unwrap();
    // systemd stops units in the reverse order of their start: Before= at boot is after at
    // shutdown.
    assert!(unit.contains("\nBefore=xendomains.service\n"), "{unit}");
    assert!(unit.contains("\nExecStart=/usr/lib/pvfs/pvfs-domain start\n"));
    assert!(unit.contains("\nExecStop=/usr/lib/pvfs/pvfs-domain stop\n"));
    let drop_in = std::fs::read_to_string(dist().join("xendomains.service.d/pvfs.conf")).unwrap();
    assert!(drop_in.contains("\nAfter=pvfs.service\n"), "{drop_in}");
}

/// Stand-ins for `xl` and `pvfs` that log their arguments; `xl domid` succeeds while the
/// file `running` exists, `xl create` creates it, `xl shutdown -w` removes it (after
/// or, with `$SHUTDOWN_SECS`, hangs that long), `xl destroy` removes it.
fn fake_tools(d: &Path) {
    let xl = r#"#!/bin/sh
echo "xl $*" >> "$LOG"
case "$1" in
domid) [ -e "$STATE/running" ] ;;
create) touch "$STATE/running" ;;
shutdown) if [ -n "${SHUTDOWN_SECS:-}" ]; then exec sleep "$SHUTDOWN_SECS"; fi; rm -f "$STATE/running" ;;
destroy) rm -f "$STATE/running" ;;
list) printf 'Name ID Mem VCPUs State Time(s)\nDomain-0 0 1024 2 r----- 10.0\npvfs 1 256 1 -b---- 1.0\nvm1 2 512 1 -b---- 2.0\nweb 5 512 1 -b---- 2.0\n' ;;
esac
"#;
    std::fs::write(d.join("xl"), xl).unwrap();
    std::fs::write(d.join("pvfs"), "#!/bin/sh\necho \"pvfs $*\" >> \"$LOG\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in ["xl", "pvfs"] {
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn run_helper(d: &Path, script: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let log = d.join("log");
    let _ = std::fs::remove_file(&log);
    let path = format!("{}:{}", d.display(), std::env::var("PATH").unwrap());
    let out = Command::new("sh")
        .arg(dist().join(script))
        .args(args)
        .env("PATH", path)
        .env("LOG", &log)
        .env("STATE", d)
        .env("PVFS", d.join("pvfs"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let mut said = std::fs::read_to_string(&log).unwrap_or_default();
    said.push_str(&String::from_utf8_lossy(&out.stdout));
    (out.status.code().unwrap_or(-1), said)
}

#[test]
fn pvfs_domain_starts_waits_and_stops() {
    let d = tempdir("helper");
    fake_tools(&d);
    let (rc, log) = run_helper(&d, "pvfs-domain", &["start"], &[]);
    assert_eq!(rc, 0, "{log}");
    assert_eq!(
        log,
        "xl domid pvfs\nxl create /etc/xen/pvfs-stubdom.cfg\npvfs status --wait 60 --backend pvfs\n"
    );
    // Running already: no second domain.
    let (rc, log) = run_helper(&d, "pvfs-domain", &["start"], &[("PVFS_START_WAIT", "5")]);
    assert_eq!(rc, 0, "{log}");
    assert_eq!(
        log,
        "xl domid pvfs\npvfs status --wait 5 --backend pvfs\npvfs-domain: domain pvfs is running already\n"
    );
    let (rc, log) = run_helper(&d, "pvfs-domain", &["stop"], &[]);
    assert_eq!(rc, 0, "{log}");
    assert_eq!(log, "xl domid pvfs\nxl shutdown -w pvfs\n");
    let (rc, log) = run_helper(&d, "pvfs-domain", &["stop"], &[]);
    assert_eq!(rc, 0, "{log}");
    assert_eq!(
        log,
        "xl domid pvfs\npvfs-domain: domain pvfs is not running\n"
    );
    // A shutdown that takes longer than PVFS_STOP_WAIT: destroyed, and the stop fails.
    std::fs::write(d.join("running"), "").unwrap();
    let (rc, log) = run_helper(
        &d,
        "pvfs-domain",
        &["stop"],
        &[("PVFS_STOP_WAIT", "1"), ("SHUTDOWN_SECS", "3")],
    );
    assert_eq!(rc, 1, "{log}");
    assert!(log.ends_with("xl domid pvfs\nxl destroy pvfs\n"), "{log}");
    let (rc, _) = run_helper(&d, "pvfs-domain", &["restart"], &[]);
    assert_eq!(rc, 2);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn xen_init_list_leaves_out_dom0_and_pvfs() {
    let d = tempdir("initlist");
    fake_tools(&d);
    let (rc, log) = run_helper(&d, "xen-init-list", &[], &[]);
    assert_eq!(rc, 0, "{log}");
    assert_eq!(log, "xl list\n2 vm1\n5 web\n");
    std::fs::remove_dir_all(&d).unwrap();
}
