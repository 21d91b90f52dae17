//! `cargo xtask posix`: the POSIX suite (pjdfstest, ci/xen/suites.sh) in a Linux guest of the
//! real-Xen test bed, on a pvfs share and then on QEMU's 9pfs backend in the same boot
//! (scenarios p9-posix and p9-posix-qemu), with both sides printed by test.

use crate::util::{repo_root, Fail};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// What the scenarios printed of one backend's run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Side {
    /// The guest's summary (`ok=… failed=… skipped=… rc=…`).
    pub summary: Option<String>,
    /// Names of the tests that failed.
    pub failed: Vec<String>,
}

/// Collects the `XE2E INFO pjdfstest …` lines of a test-bed run, by backend.
pub fn collect(lines: impl IntoIterator<Item = String>) -> BTreeMap<String, Side> {
    let mut sides: BTreeMap<String, Side> = BTreeMap::new();
    for l in lines {
        let Some(rest) = l.strip_prefix("XE2E INFO pjdfstest ") else {
            continue;
        };
        if let Some(r) = rest.strip_prefix("on ") {
            if let Some((backend, summary)) = r.split_once(": ") {
                sides.entry(backend.to_string()).or_default().summary = Some(summary.to_string());
            }
        } else if let Some((backend, name)) = rest.split_once(" FAILED ") {
            sides
                .entry(backend.to_string())
                .or_default()
                .failed
                .push(name.trim().to_string());
        }
    }
    sides
}

/// The lines that start with `prefix`, without it.
fn lines_with<'a>(lines: &'a [String], prefix: &'a str) -> impl Iterator<Item = &'a str> {
    lines.iter().filter_map(move |l| l.strip_prefix(prefix))
}

/// The table of every test that failed on either side.
pub fn table(sides: &BTreeMap<String, Side>) -> String {
    let backends: Vec<&String> = sides.keys().collect();
    let mut tests: Vec<&String> = sides.values().flat_map(|s| s.failed.iter()).collect();
    tests.sort();
    tests.dedup();
    let mut out = String::new();
    for (b, s) in sides {
        out.push_str(&format!(
            "{b:>5}: {}\n",
            s.summary
                .as_deref()
                .unwrap_or("no summary (the run did not finish)")
        ));
    }
    out.push_str(&format!("\n{:<64}", "test"));
    for b in &backends {
        out.push_str(&format!(" {b:>6}"));
    }
    out.push('\n');
    for t in tests {
        out.push_str(&format!("{t:<64}"));
        for b in &backends {
            let failed = sides[*b].failed.iter().any(|f| f == t);
            out.push_str(&format!(" {:>6}", if failed { "FAILED" } else { "ok" }));
        }
        out.push('\n');
    }
    out
}

/// Runs both scenarios in one boot and prints the comparison.
pub fn run(elf: &str) -> Result<(), Fail> {
    let script = repo_root().join("ci/xen/run.sh");
    // Debian 12 unless XE2E_DEBIAN says otherwise, where the comparison's figures were
    // measured: on Debian 13 (Xen 4.20, QEMU 10) QEMU's 9pfs backend comes up only through the
    // test bed's restart of it (xl_create_qemu, docs/posix.md).
    let debian = std::env::var("XE2E_DEBIAN").unwrap_or_else(|_| "12".to_string());
    let started = std::time::Instant::now();
    let mut child = Command::new(script)
        .arg("p9-posix-full+p9-posix-qemu")
        .arg(elf)
        .current_dir(repo_root())
        .env("XE2E_DEBIAN", debian)
        .env("XEN_QEMU", "1")
        // each side: the suite (up to 90 minutes, most of it link::link_count_max), fsx and
        // fsstress
        .env("XE2E_TIMEOUT", "15000")
        .env("XE2E_SCENARIO_TIMEOUT", "7000")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Fail::new(format!("cannot start ci/xen/run.sh: {e}")))?;
    let mut lines = Vec::new();
    if let Some(out) = child.stdout.take() {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{l}");
            lines.push(l);
        }
    }
    let st = child
        .wait()
        .map_err(|e| Fail::new(format!("ci/xen/run.sh: {e}")))?;
    let sides = collect(lines.iter().cloned());
    println!("\n== pjdfstest by test (pvfs and QEMU's 9pfs backend, one boot) ==");
    print!("{}", table(&sides));
    println!("\n== fsx (10,000 operations a run) ==");
    for l in lines_with(&lines, "XE2E INFO fsx on ") {
        println!("{l}");
    }
    println!("\n== fsstress (compared with Linux's ext4; four processes at once) ==");
    for l in lines_with(&lines, "XE2E INFO fsstress on ") {
        println!("{l}");
    }
    println!(
        "\ncargo xtask posix: both sides in {} s",
        started.elapsed().as_secs()
    );
    if st.success() {
        Ok(())
    } else {
        Err(Fail::new(format!(
            "the POSIX run failed ({st}); pvfs's failures are listed above"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_both_sides_and_tabulates_every_failure() {
        let lines = [
            "XE2E INFO pjdfstest on pvfs: ok=400 failed=1 skipped=0 rc=1",
            "XE2E INFO pjdfstest pvfs FAILED chmod::clear_isgid",
            "XE2E INFO pjdfstest on qemu: ok=300 failed=2 skipped=0 rc=1",
            "XE2E INFO pjdfstest qemu FAILED mkfifo::eexist",
            "XE2E INFO pjdfstest qemu FAILED chmod::clear_isgid",
            "XE2E PASS p9-posix/e2fsck",
        ]
        .map(String::from);
        let sides = collect(lines);
        assert_eq!(sides.len(), 2);
        assert_eq!(sides["pvfs"].failed, ["chmod::clear_isgid"]);
        assert_eq!(
            sides["qemu"].summary.as_deref(),
            Some("ok=300 failed=2 skipped=0 rc=1")
        );
        let t = table(&sides);
        let row = |name: &str| t.lines().find(|l| l.starts_with(name)).unwrap().to_string();
        assert!(row("chmod::clear_isgid").ends_with("FAILED FAILED"));
        assert!(row("mkfifo::eexist").ends_with("    ok FAILED"));
    }
}
