//! Process helpers for the xtask.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A failed step, with a message meant for people.
#[derive(Debug)]
pub struct Fail(String);

impl Fail {
    /// A failure with `msg`.
    pub fn new(msg: impl Into<String>) -> Self {
        Fail(msg.into())
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Runs a command in the repository root, inheriting stdio; fails on a non-zero exit.
pub fn run(c: &mut Command) -> Result<(), Fail> {
    if c.get_current_dir().is_none() {
        c.current_dir(repo_root());
    }
    let desc = format!("{c:?}");
    let st = c
        .status()
        .map_err(|e| Fail::new(format!("cannot run {desc}: {e}")))?;
    if st.success() {
        Ok(())
    } else {
        Err(Fail::new(format!("{desc} exited with {st}")))
    }
}

/// Runs cargo with `args` in the repository root.
pub fn cargo(args: &[&str]) -> Result<(), Fail> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).args(args))
}

/// Runs a named step, printing its start, end and duration.
pub fn step<T>(name: &str, f: impl FnOnce() -> Result<T, Fail>) -> Result<T, Fail> {
    println!("\n==> {name}");
    let t = Instant::now();
    let r = f();
    let secs = t.elapsed().as_secs_f64();
    match &r {
        Ok(_) => println!("<== {name}: ok ({secs:.1} s)"),
        Err(e) => println!("<== {name}: FAILED after {secs:.1} s: {e}"),
    }
    r
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "command -v {cmd} >/dev/null 2>&1 || [ -x /usr/sbin/{cmd} ] || [ -x /sbin/{cmd} ]"
        ))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn qemu_major() -> Option<u32> {
    let out = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.split("version ").nth(1)?;
    v.split('.').next()?.trim().parse().ok()
}

/// Makes sure the host tools the tests need are present: installs them through
/// `ci/host-deps.sh` when running as root, otherwise prints how and fails.
pub fn ensure_host_deps(force: bool) -> Result<(), Fail> {
    let tools = [
        "cpio",
        "mkfs.ext4",
        "e2fsck",
        "debugfs",
        "setfattr",
        "diod",
        "diodls",
        "diodcat",
        "xz",
        // ci/xen/suites.sh downloads e2fsprogs' source for fsstress
        "curl",
        // the FAT engine's oracles (tests/tests/fat_*.rs)
        "mkfs.vfat",
        "fsck.fat",
        "mcopy",
    ];
    let mut missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    // The test bed's guest helper (ci/xen/domu/p9meta.c) is linked statically.
    if !Path::new("/usr/lib/x86_64-linux-gnu/libc.a").exists() || !have("cc") {
        missing.push("cc + static libc (gcc, libc6-dev)");
    }
    if qemu_major().is_none_or(|m| m < 10) {
        missing.push("qemu-system-x86_64 (>= 10, bookworm-backports)");
    }
    if missing.is_empty() && !force {
        return Ok(());
    }
    if !missing.is_empty() {
        println!("xtask: missing host tools: {}", missing.join(", "));
    }
    let script = repo_root().join("ci/host-deps.sh");
    run(Command::new("bash").arg(script))
        .map_err(|e| Fail::new(format!("installing host packages failed: {e}")))?;
    // `rustup target add` is a no-op when the pinned toolchain already has the target.
    let _ = Command::new("rustup")
        .args(["target", "add", "x86_64-unknown-none"])
        .status();
    Ok(())
}
