//! `cargo xtask`: builds, boots and tests pvfs.
//!
//! ```text
//! cargo xtask build                 the kernel ELF (target/x86_64-unknown-none/release/pvfs-kernel)
//! cargo xtask qemu [-- CMDLINE]     boot it under plain QEMU (self-test), exit 33 = pass
//! cargo xtask xen-e2e [SCENARIOS]   the real-Xen test bed (default: boot+fault+blk)
//! cargo xtask test                  everything CI runs: fmt, clippy, host tests, QEMU boot
//!                                   tests, bounded fuzzing, Xen e2e (incl. Linux guests on 9pfs)
//! cargo xtask demo                  Xen + dom0 in QEMU, pvfs on an ext4 volume, two guests mount it
//! cargo xtask fuzz [SECONDS]        run every fuzz target for SECONDS each (default 20)
//! cargo xtask bench NAME            run a benchmark (ext4-read, ext4-write, ext4-dedup, 9p, 9p-path, 9pfs-xen, fairness, scale, guests,
//!                                   baselines)
//! cargo xtask posix                 pjdfstest in a guest on pvfs and on QEMU's 9pfs backend, by test (Debian 12 by default)
//! cargo xtask soak [SEQS]           the ext4 write path's random model test at scale
//! cargo xtask deps                  install missing host packages (root) or print how
//! ```
//!
//! Missing Debian packages are installed through `ci/host-deps.sh` when running as root;
//! otherwise the exact commands are printed. Downloads and images are cached under `target/`.

mod posix;
mod qemu;
mod util;

use std::process::ExitCode;
use util::{cargo, repo_root, run, step, Fail};

const KERNEL_TARGET: &str = "x86_64-unknown-none";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let res = match cmd {
        "build" => build_kernel().map(|p| println!("{p}")),
        "qemu" => qemu::interactive(rest),
        "qemu-test" => qemu::boot_tests(),
        "xen-e2e" => xen_e2e(rest.first().map(String::as_str).unwrap_or("boot+fault+blk")),
        "test" => test(),
        "demo" => demo(),
        "fuzz" => fuzz(rest.first().and_then(|s| s.parse().ok()).unwrap_or(20)),
        "bench" => bench(rest),
        "soak" => soak(rest.first().and_then(|s| s.parse().ok()).unwrap_or(500)),
        "posix" => util::ensure_host_deps(false)
            .and_then(|()| build_kernel())
            .and_then(|elf| posix::run(&elf)),
        "deps" => util::ensure_host_deps(true),
        "help" | "-h" | "--help" => {
            print!("{}", include_str!("usage.txt"));
            Ok(())
        }
        other => Err(Fail::new(format!(
            "unknown command {other:?}; see `cargo xtask help`"
        ))),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the kernel and returns the path of the ELF.
pub fn build_kernel() -> Result<String, Fail> {
    cargo(&[
        "build",
        "--release",
        "-p",
        "pvfs-kernel",
        "--target",
        KERNEL_TARGET,
    ])?;
    let p = repo_root()
        .join("target")
        .join(KERNEL_TARGET)
        .join("release")
        .join("pvfs-kernel");
    if !p.exists() {
        return Err(Fail::new(format!(
            "kernel build produced no {}",
            p.display()
        )));
    }
    Ok(p.display().to_string())
}

fn xen_e2e(scenarios: &str) -> Result<(), Fail> {
    // Several Linux guests under nested TCG: generous limits, still far below CI's.
    xen_e2e_with(scenarios, 1200, 600, None, &[])
}

/// Runs `scenarios` in one boot of the test bed; `total` and `per_scenario` are the limits in
/// seconds (QEMU start to result, and per scenario inside dom0); `debian` picks the release
/// (`XE2E_DEBIAN`, default the test bed's: 13); `dom0_args` are added to dom0's command line
/// (`XE2E_DOM0_ARGS`, after any the caller's environment sets).
fn xen_e2e_with(
    scenarios: &str,
    total: u32,
    per_scenario: u32,
    debian: Option<&str>,
    dom0_args: &[&str],
) -> Result<(), Fail> {
    util::ensure_host_deps(false)?;
    let elf = build_kernel()?;
    // the dom0 binaries the scenarios use: /usr/sbin/pvfs, and p9-hostile's /usr/sbin/xfront
    cargo(&["build", "--release", "-p", "pvfs-cli", "-p", "pvfs-xfront"])?;
    let script = repo_root().join("ci/xen/run.sh");
    let mut c = std::process::Command::new(script);
    c.arg(scenarios)
        .arg(&elf)
        .env("XE2E_TIMEOUT", total.to_string())
        .env("XE2E_SCENARIO_TIMEOUT", per_scenario.to_string());
    if let Some(d) = debian {
        c.env("XE2E_DEBIAN", d);
    }
    if !dom0_args.is_empty() {
        let mut words: Vec<String> = std::env::var("XE2E_DOM0_ARGS").into_iter().collect();
        words.extend(dom0_args.iter().map(|w| w.to_string()));
        c.env("XE2E_DOM0_ARGS", words.join(" "));
    }
    run(&mut c).map_err(|e| Fail::new(format!("Xen e2e ({scenarios}) failed: {e}")))
}

fn test() -> Result<(), Fail> {
    let t0 = std::time::Instant::now();
    util::ensure_host_deps(false)?;
    step("rustfmt", || cargo(&["fmt", "--all", "--check"]))?;
    step("clippy (host crates)", || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    step("clippy (kernel target)", || {
        cargo(&[
            "clippy",
            "-p",
            "pvfs-kernel",
            "-p",
            "pvfs-boot",
            "--target",
            KERNEL_TARGET,
            "--",
            "-D",
            "warnings",
        ])
    })?;
    step("host tests", || cargo(&["test", "--workspace"]))?;
    step("QEMU boot tests", qemu::boot_tests)?;
    step("fuzzing (bounded)", || fuzz(15))?;
    step("Xen e2e (Debian 13: Xen 4.20, Linux 6.12)", || {
        xen_e2e_with("boot+fault+blk+exit-storm", 1200, 600, Some("13"), &[])
    })?;
    // Linux PV guests over 9pfs, on Debian 13 and then on Debian 12 (Xen 4.17, Linux 6.1):
    // two guests at once with a stock-xl p9 share and no process in dom0 for them on Xen 4.20
    // (p9), a quota changed while a guest is mounted (p9-quota; Linux 6.12 reports pvfs's
    // EDQUOT as EIO, README "Known client differences"), a guest destroyed mid-I/O next to a
    // bystander (p9-destroy), 20 attach/detach cycles (p9-cycle), the dom0 commands: a share
    // attached to a running guest without a p9 device, dom0's own live mount, the error
    // cases, rm refused while mounted and clean after umount (p9-attach); two guests with
    // disjoint id ranges on one volume, read-only and root squash set live (p9-idmap); the
    // POSIX suite pjdfstest (the CI groups), fsx with and without mmap and fsstress in a guest
    // (p9-posix, docs/posix.md). To keep CI near its 30-minute budget, the two longest
    // scenarios that test pvfs rather than the client run on one release each: p9-destroy on
    // Debian 13, p9-cycle (20 guests built and torn down) on Debian 12, where guests come up
    // faster. The hostile frontend (p9-hostile: tools/xfront next to a reading guest, judged on
    // a quiet host in ci/xen/README.md, "The hostile frontend") runs on Debian 13. pvfs's vCPU
    // is pinned to the test bed's second CPU (PVFS_CPUS=1; guests and dom0 still use both):
    // under the emulator, fsx with mmap then runs about a quarter faster than when Xen moves
    // pvfs between CPUs (docs/posix.md), and the emulator's state-swap fault (ci/xen/README.md,
    // "pvfs's triple faults") was not seen in 33 minutes of fsx pinned, which proves nothing
    // yet; benchmarks stay unpinned.
    // fsstress (1,000 operations compared with Linux's ext4, then 4 × 1,000 at once: about
    // 2.5 minutes) runs in p9-posix on Debian 13; on Debian 12 it runs in `cargo xtask posix`.
    // The volume grown online under a writing guest (p9-grow) runs on Debian 13. Sixteen
    // guests at once, each on its own share of one pvfs domain (p9-many), run on
    // Debian 13 with one round of mixed work each (100 files; three rounds of 300 with
    // `cargo xtask xen-e2e p9-many`). Eight guests booted from template shares, their root
    // file system on pvfs (p9-template), and a live dedup while one guest writes and another
    // reads (p9-dedup), and a guest on a FAT volume (p9-fat), run on Debian 13.
    for (name, debian, list, extra) in [
        (
            "Debian 13",
            "13",
            "p9+p9-quota+p9-grow+p9-destroy+p9-attach+p9-idmap+p9-hostile+p9-posix+p9-many+p9-template+p9-dedup+p9-fat",
            &[
                "xe2e.env.POSIX_FSSTRESS=1000",
                "xe2e.env.MANY_ROUNDS=1",
                "xe2e.env.MANY_META=100",
            ][..],
        ),
        (
            "Debian 12",
            "12",
            "p9+p9-quota+p9-cycle+p9-attach+p9-idmap+p9-posix",
            &["xe2e.env.POSIX_FSSTRESS=0"][..],
        ),
    ] {
        step(&format!("Xen e2e, Linux guests over 9pfs ({name})"), || {
            let mut args = vec!["xe2e.env.PVFS_CPUS=1"];
            args.extend_from_slice(extra);
            xen_e2e_with(list, 3600, 1500, Some(debian), &args)
        })?;
    }
    println!(
        "xtask: all checks passed in {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn demo() -> Result<(), Fail> {
    util::ensure_host_deps(false)?;
    println!(
        "pvfs demo: boot Xen 4.20 and a Debian 13 dom0 inside QEMU (TCG), then start the pvfs"
    );
    println!("service domain with `xl create pvfs-stubdom.cfg`. Every step prints its duration.\n");
    let t0 = std::time::Instant::now();
    let elf = step("build the pvfs kernel", build_kernel)?;
    let script = repo_root().join("ci/xen/run.sh");
    // Two Xen boots: pvfs on its disk (blk ends by detaching it), then the guests over 9pfs.
    for scenarios in ["boot+blk", "p9"] {
        println!("\n== test bed: {scenarios} ==");
        run(std::process::Command::new(&script)
            .arg(scenarios)
            .arg(&elf)
            .env("XE2E_TIMEOUT", "1200")
            .env("XE2E_SCENARIO_TIMEOUT", "600"))?;
    }
    println!(
        "\npvfs demo finished in {:.0} s (log under target/xen-testbed/logs/)",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn fuzz(secs: u32) -> Result<(), Fail> {
    let fuzz_dir = repo_root().join("fuzz");
    let targets = [
        "ext4_image",
        "p9_decode",
        "p9_session",
        "xenstore_wire",
        "ring_9pfs",
        "blkif_engine",
        "ring_9pfs_serve",
        "ext4_write",
        "fat_image",
    ];
    // libFuzzer instrumentation on the pinned stable toolchain: the flags cargo-fuzz passes,
    // with RUSTC_BOOTSTRAP allowing the -Z options.
    let flags = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
                 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
                 -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
                 --cfg fuzzing -Cdebug-assertions -Coverflow-checks";
    let mut c = std::process::Command::new("cargo");
    c.current_dir(&fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", flags)
        .env("CARGO_TARGET_DIR", repo_root().join("target/fuzz"))
        // An explicit --target keeps RUSTFLAGS away from build scripts.
        .args([
            "build",
            "--release",
            "--bins",
            "--target",
            "x86_64-unknown-linux-gnu",
        ]);
    run(&mut c)?;
    for t in targets {
        let bin = repo_root()
            .join("target/fuzz/x86_64-unknown-linux-gnu/release")
            .join(t);
        let corpus = fuzz_dir.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)
            .map_err(|e| Fail::new(format!("{}: {e}", corpus.display())))?;
        // Work on a scratch copy so the checked-in seeds stay small.
        let work = repo_root().join("target/fuzz/corpus").join(t);
        std::fs::create_dir_all(&work)
            .map_err(|e| Fail::new(format!("{}: {e}", work.display())))?;
        println!("xtask: fuzzing {t} for {secs} s");
        run(std::process::Command::new(&bin)
            .arg(&work)
            .arg(&corpus)
            .arg(format!("-max_total_time={secs}"))
            .arg("-rss_limit_mb=2048")
            .arg("-max_len=1048576")
            .arg("-print_final_stats=1"))
        .map_err(|e| Fail::new(format!("fuzz target {t} found a failure: {e}")))?;
    }
    Ok(())
}

/// The ext4 write path at scale (release build): `seqs` random model sequences per block
/// size (1 KiB and 4 KiB; default 500, so 1000 in all) of 50 operations, then 50 per block
/// size of 1000 operations, the loop-mount cross-check with 100 sequences per block size
/// (scales read from `PVFS_MODEL_SEQS`, `PVFS_MODEL_OPS`, `PVFS_LOOP_SEQS`), the power cuts
/// at every write of grows (`ext4_grow_cut`) and the crash tests (`ext4_crash`), which cut
/// the power at every write index of their workload already, run in release mode
/// (`PVFS_SOAK=1` is set for any larger setting a test offers), and the template shares'
/// model test (`PVFS_TEMPLATE_SEEDS`, `PVFS_TEMPLATE_EXT4_SEEDS`).
fn soak(seqs: u64) -> Result<(), Fail> {
    let t0 = std::time::Instant::now();
    util::ensure_host_deps(false)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let test = |name: &str, filter: &str, env: &[(&str, String)]| -> Result<(), Fail> {
        let mut c = std::process::Command::new(&cargo);
        c.args([
            "test",
            "--release",
            "-p",
            "pvfs-tests",
            "--test",
            name,
            filter,
        ])
        .args(["--", "--nocapture"])
        .env("PVFS_SOAK", "1");
        for (k, v) in env {
            c.env(k, v);
        }
        run(&mut c)
    };
    step(
        &format!("model: {seqs} sequences × 2 block sizes, 50 ops"),
        || {
            test(
                "ext4_write",
                "model_",
                &[
                    ("PVFS_MODEL_SEQS", seqs.to_string()),
                    ("PVFS_MODEL_OPS", "50".into()),
                ],
            )
        },
    )?;
    step(
        "model: 50 long sequences × 2 block sizes, 1000 ops",
        || {
            test(
                "ext4_write",
                "model_",
                &[
                    ("PVFS_MODEL_SEQS", "50".into()),
                    ("PVFS_MODEL_OPS", "1000".into()),
                ],
            )
        },
    )?;
    step(
        "loop-mount cross-check: 100 sequences × 2 block sizes",
        || test("ext4_loopmount", "", &[("PVFS_LOOP_SEQS", "100".into())]),
    )?;
    step("grows: a power cut at every write", || {
        test("ext4_grow_cut", "", &[])
    })?;
    step(
        &format!(
            "template shares: {seqs} sequences on memory, {} on ext4",
            seqs / 5
        ),
        || {
            test(
                "p9_template",
                "merged",
                &[("PVFS_TEMPLATE_SEEDS", seqs.to_string())],
            )?;
            test(
                "p9_template_ext4",
                "merged",
                &[("PVFS_TEMPLATE_EXT4_SEEDS", (seqs / 5).max(1).to_string())],
            )
        },
    )?;
    if repo_root().join("tests/tests/ext4_crash.rs").exists() {
        step("crash tests (PVFS_SOAK=1)", || test("ext4_crash", "", &[]))?;
    }
    step("FAT model: 5,000 operations per FAT type", || {
        test("fat_model", "", &[("PVFS_FAT_MODEL_OPS", "5000".into())])
    })?;
    step("FAT power cuts: 600 operations per FAT type", || {
        test("fat_crash", "", &[("PVFS_FAT_CRASH_OPS", "600".into())])
    })?;
    println!("xtask: soak passed in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}

fn bench(args: &[String]) -> Result<(), Fail> {
    let name = args.first().map(String::as_str).unwrap_or("");
    let bench =
        match name {
            "ext4-read" => "ext4_read",
            "ext4-write" => "ext4_write",
            "9p" => "p9",
            "9p-path" => "p9_path",
            "ext4-dedup" => "ext4_dedup",
            // pvfs against QEMU's 9pfs backend in one run of the real-Xen test bed (a Linux guest
            // runs the workload against each); the figures and ratios are printed at the end.
            "9pfs-xen" => {
                util::ensure_host_deps(false)?;
                let elf = build_kernel()?;
                let script = repo_root().join("ci/xen/run.sh");
                return run(std::process::Command::new(script)
                    .arg("p9-bench")
                    .arg(&elf)
                    .env("XEN_QEMU", "1")
                    .env("XE2E_TIMEOUT", "2400")
                    .env("XE2E_SCENARIO_TIMEOUT", "2200"))
                .map_err(|e| Fail::new(format!("9pfs benchmark failed: {e}")));
            }
            // Whether a guest streaming large writes slows another guest's stats (p9-fair): the
            // ratio of the small guest's median stat latency with and without the neighbour.
            "fairness" => return xen_e2e_with("p9-fair", 2400, 2200, None, &[]),
            // 1000 devices on one pvfs domain of 128 MiB (p9-scale): dom0 attaches them to itself
            // and tools/xfront connects and reads through every one.
            "scale" => return xen_e2e_with("p9-scale", 6000, 5800, Some("13"), &[]),
            // Aggregate throughput and metadata rate of 1, 4 and 16 guests at once, pvfs against
            // one QEMU process a guest (p9-multi), on Debian 12, where its figures were measured
            // (on Debian 13 QEMU's backend needs the test bed's restart of it, docs/posix.md).
            "guests" => return xen_e2e_with("p9-multi", 5400, 5200, Some("12"), &[]),
            // pvfs against what a user would pick instead (p9-baselines): QEMU's backend, NFS
            // from dom0 (Debian 13) and the guest's own ext4 on a vbd, each column's volume
            // on a RAM disk of dom0's, which gets 1.5 GiB for them; xen-9pfsd's column on Xen
            // 4.19 and later reports the daemon's crash at a Linux guest's mount. QEMU's guest
            // takes about 15 minutes a round on Debian 13 (docs/benchmarks.md): one round by
            // default (xe2e.env.QEMU_ROUNDS).
            "baselines" => {
                let mut xen_args: Vec<String> = std::env::var("XE2E_XEN_ARGS").into_iter().collect();
                xen_args.push("dom0_mem=1536M,max:1536M".into());
                std::env::set_var("XE2E_XEN_ARGS", xen_args.join(" "));
                return xen_e2e_with("p9-baselines", 9000, 8800, None, &[]);
            }
            _ => return Err(Fail::new(
                "usage: cargo xtask bench ext4-read|ext4-write|ext4-dedup|9p|9p-path|9pfs-xen|fairness|scale|guests|baselines",
            )),
        };
    util::ensure_host_deps(false)?;
    cargo(&["bench", "-p", "pvfs-tests", "--bench", bench])
}
