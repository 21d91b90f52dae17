//! Booting the kernel under plain QEMU (no Xen): the self-test and the exception tests.
//!
//! QEMU runs with `isa-debug-exit`: the kernel writes 16 for success (QEMU exits with 33) and
//! 1 for failure (exit 3). A triple fault under `-no-reboot` exits with 0, so 0 never counts as
//! a pass. Output is captured from port 0xE9 (`-debugcon file:`) and COM1 (`-serial`).

use crate::util::{repo_root, Fail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Exit status of a passing boot.
pub const EXIT_PASS: i32 = 33;
/// Exit status after the kernel reported a failure.
pub const EXIT_FAIL: i32 = 3;

/// What a QEMU boot produced.
pub struct Boot {
    /// QEMU's exit status (None if it was killed at the timeout).
    pub status: Option<i32>,
    /// Port 0xE9 output.
    pub debugcon: String,
    /// COM1 output.
    pub serial: String,
}

fn qemu_base(kernel: &str, cmdline: &str) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    c.args([
        "-machine",
        "q35",
        "-accel",
        "tcg",
        "-cpu",
        "max,-rdtscp",
        "-m",
        "256M",
        "-smp",
        "1",
    ])
    .args(["-display", "none", "-monitor", "none", "-no-reboot"])
    .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
    .args(["-kernel", kernel])
    .args(["-append", cmdline]);
    c
}

/// Boots `kernel` with `cmdline` and optional module, with a timeout.
pub fn boot(
    kernel: &str,
    cmdline: &str,
    module: Option<&Path>,
    timeout: Duration,
) -> Result<Boot, Fail> {
    let dir = repo_root().join("target/qemu-tests");
    std::fs::create_dir_all(&dir).map_err(|e| Fail::new(format!("{}: {e}", dir.display())))?;
    let tag = format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let e9 = dir.join(format!("debugcon-{tag}.log"));
    let ser = dir.join(format!("serial-{tag}.log"));
    let mut c = qemu_base(kernel, cmdline);
    c.arg("-debugcon").arg(format!("file:{}", e9.display()));
    c.arg("-serial").arg(format!("file:{}", ser.display()));
    if let Some(m) = module {
        c.arg("-initrd").arg(m);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut child = c
        .spawn()
        .map_err(|e| Fail::new(format!("cannot start qemu-system-x86_64: {e}")))?;
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code(),
            Ok(None) if t0.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Fail::new(format!("waiting for qemu: {e}"))),
        }
    };
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let b = Boot {
        status,
        debugcon: read(&e9),
        serial: read(&ser),
    };
    let _ = std::fs::remove_file(&e9);
    let _ = std::fs::remove_file(&ser);
    Ok(b)
}

/// `cargo xtask qemu [-- CMDLINE…]`: boots interactively with output on this terminal.
pub fn interactive(args: &[String]) -> Result<(), Fail> {
    let kernel = crate::build_kernel()?;
    let cmdline = args
        .iter()
        .filter(|a| *a != "--")
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = qemu_base(&kernel, &cmdline);
    c.args(["-serial", "stdio"]);
    let st = c
        .status()
        .map_err(|e| Fail::new(format!("cannot start qemu-system-x86_64: {e}")))?;
    match st.code() {
        Some(EXIT_PASS) => Ok(()),
        Some(0) => Err(Fail::new("QEMU exited with 0: the kernel triple-faulted")),
        other => Err(Fail::new(format!(
            "the kernel reported failure (QEMU exit {other:?})"
        ))),
    }
}

/// CRC-32C (Castagnoli); used to check what the kernel read from its module.
pub fn crc32c(data: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(data)
}

fn expect(cond: bool, what: &str, b: &Boot) -> Result<(), Fail> {
    if cond {
        Ok(())
    } else {
        Err(Fail::new(format!(
            "{what}\n--- QEMU exit: {:?}\n--- debugcon (port 0xE9):\n{}\n--- serial:\n{}",
            b.status, b.debugcon, b.serial
        )))
    }
}

/// The QEMU boot tests run by `cargo xtask test`.
pub fn boot_tests() -> Result<(), Fail> {
    let kernel = crate::build_kernel()?;
    let timeout = Duration::from_secs(60);

    // 1. Self-test with a module: memory map, heap, and the module's checksum as read by the
    //    kernel must equal the host's.
    let dir = repo_root().join("target/qemu-tests");
    std::fs::create_dir_all(&dir).map_err(|e| Fail::new(e.to_string()))?;
    let module = dir.join("module.bin");
    let data: Vec<u8> = (0..(300 * 1024 + 17) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&module, &data).map_err(|e| Fail::new(e.to_string()))?;
    let want = format!("size={} crc32c={:#010x}", data.len(), crc32c(&data));
    let b = boot(&kernel, "pvfs.log=debug", Some(&module), timeout)?;
    expect(
        b.status == Some(EXIT_PASS),
        "self-test did not exit with 33",
        &b,
    )?;
    expect(
        b.debugcon.contains("selftest PASS"),
        "no 'selftest PASS' on port 0xE9",
        &b,
    )?;
    expect(
        b.serial.contains("selftest PASS"),
        "no 'selftest PASS' on COM1",
        &b,
    )?;
    expect(
        b.debugcon.contains(&want),
        &format!("kernel did not report the module as '{want}'"),
        &b,
    )?;
    expect(b.debugcon.contains("heap ok"), "heap check missing", &b)?;
    println!("qemu: self-test passed (exit 33, module {want})");

    // 2. An ext4 image as the module: the kernel mounts it from memory with pvfs's own engine
    //    and checksums a file; the digest must equal the host's.
    let (img, path, want_sum) = make_ext4_module(&dir)?;
    let b = boot(
        &kernel,
        &format!("pvfs.selftest.file={path}"),
        Some(&img),
        timeout,
    )?;
    expect(
        b.status == Some(EXIT_PASS),
        "ext4 self-test did not exit with 33",
        &b,
    )?;
    expect(
        b.debugcon.contains("module 0 is ext4"),
        "kernel did not mount the ext4 module",
        &b,
    )?;
    let line = format!("file {path} sha256={want_sum}");
    expect(
        b.debugcon.contains(&line),
        &format!("kernel did not report {line:?}"),
        &b,
    )?;
    println!("qemu: ext4 module mounted in the kernel, {path} sha256 matches the host");

    // 3. Forced exceptions: a readable report and a failing exit, never 0 or 33.
    let cases: [(&str, &[&str]); 7] = [
        (
            "ud",
            &[
                "EXCEPTION #UD invalid opcode (vector 6)",
                "rip=0x",
                "error code=0x0",
            ],
        ),
        (
            "gp",
            &["EXCEPTION #GP general protection (vector 13)", "rip=0x"],
        ),
        (
            "pf",
            &[
                "EXCEPTION #PF page fault (vector 14)",
                "cr2=0x0000001000000000",
                "error code=0x2",
            ],
        ),
        ("de", &["EXCEPTION #DE divide error (vector 0)", "rip=0x"]),
        (
            "panic",
            &[
                "PANIC: panic requested with pvfs.fault=panic",
                "at kernel/src/run/fault.rs",
            ],
        ),
        (
            "stack",
            &[
                "EXCEPTION #DF double fault (vector 8)",
                "STACK OVERFLOW: rsp is at the guard page of the boot stack",
            ],
        ),
        (
            "tables",
            &[
                "CPU TABLES CHANGED: IDT gates 0-32 at +0x8: 0x0000000000000000 is now 0x00005eed00000000",
            ],
        ),
    ];
    for (fault, lines) in cases {
        let b = boot(&kernel, &format!("pvfs.fault={fault}"), None, timeout)?;
        expect(
            b.status == Some(EXIT_FAIL),
            &format!("pvfs.fault={fault}: expected exit {EXIT_FAIL}"),
            &b,
        )?;
        for l in lines.iter().chain(&["stack:", "shutting down (crash)"]) {
            expect(
                b.debugcon.contains(l),
                &format!("pvfs.fault={fault}: report lacks {l:?}"),
                &b,
            )?;
        }
        // The backtrace must name at least one return address inside the kernel image.
        let frames = b
            .debugcon
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count();
        expect(
            frames >= 2,
            &format!("pvfs.fault={fault}: backtrace has {frames} frames"),
            &b,
        )?;
        println!("qemu: pvfs.fault={fault}: report ok, exit {EXIT_FAIL}");
    }

    // 4. Bad command-line options are reported, not fatal.
    let b = boot(&kernel, "pvfs.bogus=1 pvfs.log=loud", None, timeout)?;
    expect(
        b.status == Some(EXIT_PASS),
        "bad options must not stop the boot",
        &b,
    )?;
    expect(
        b.debugcon.contains("ignored UnknownKey(\"bogus\")"),
        "unknown key not reported",
        &b,
    )?;
    println!("qemu: bad command-line options reported and ignored");
    Ok(())
}

/// Builds a small ext4 image with `mkfs.ext4 -d` from a generated tree; returns the image, the
/// path of a multi-block file inside it and that file's SHA-256 as computed by `sha256sum`.
fn make_ext4_module(dir: &Path) -> Result<(PathBuf, String, String), Fail> {
    let tree = dir.join("ext4-tree");
    let _ = std::fs::remove_dir_all(&tree);
    let sub = tree.join("data/nested");
    std::fs::create_dir_all(&sub).map_err(|e| Fail::new(format!("{}: {e}", sub.display())))?;
    std::fs::write(
        tree.join("hello.txt"),
        b"hello from the pvfs boot self-test\n",
    )
    .map_err(|e| Fail::new(e.to_string()))?;
    let big: Vec<u8> = (0..(3 * 1024 * 1024 + 123) as u32)
        .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 24) as u8)
        .collect();
    let file = sub.join("big.bin");
    std::fs::write(&file, &big).map_err(|e| Fail::new(e.to_string()))?;
    let img = dir.join("selftest-ext4.img");
    let _ = std::fs::remove_file(&img);
    crate::util::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "pvfs-selftest", "-d"])
            .arg(&tree)
            .arg(&img)
            .arg("16M"),
    )?;
    let out = Command::new("sha256sum")
        .arg(&file)
        .output()
        .map_err(|e| Fail::new(format!("sha256sum: {e}")))?;
    let sum = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    if sum.len() != 64 {
        return Err(Fail::new("sha256sum produced no digest"));
    }
    Ok((img, "/data/nested/big.bin".into(), sum))
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32c_known_vector() {
        assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
    }
}
