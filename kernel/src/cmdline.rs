//! The kernel command line (`hvm_start_info.cmdline_paddr`, xl's `cmdline=`), parsed into typed
//! options.
//!
//! Options are `pvfs.<key>=<value>` words separated by spaces. Words without the `pvfs.` prefix
//! belong to someone else and are ignored. Unknown `pvfs.*` keys and bad values are collected
//! as warnings, not fatal: a typo must not keep the file service from booting, but it is
//! reported on the console.

use heapless::{String, Vec};

/// A CPU exception to raise on purpose, to test the exception path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ud2`: invalid opcode (#UD, vector 6).
    InvalidOpcode,
    /// A non-canonical load: general protection (#GP, vector 13).
    GeneralProtection,
    /// A write to an unmapped address: page fault (#PF, vector 14).
    PageFault,
    /// `div` by zero (#DE, vector 0).
    DivideError,
    /// A Rust panic.
    Panic,
    /// Unbounded recursion: the boot stack overflows into its guard page (#DF, vector 8).
    StackOverflow,
    /// A write into a watched interrupt table (the reserved word of IDT gate 0), which the
    /// integrity check must report.
    Tables,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    Info,
    /// Debug output.
    Debug,
    /// Everything.
    Trace,
}

/// Longest path accepted for `pvfs.selftest.file`.
pub const PATH_MAX: usize = 256;

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `pvfs.fault=ud|gp|pf|de|panic`: raise an exception after boot.
    pub fault: Option<Fault>,
    /// `pvfs.log=error|warn|info|debug|trace`.
    pub log: LogLevel,
    /// `pvfs.selftest.file=/path`: under plain QEMU, read this file from the ext4 module and
    /// log its checksum.
    pub selftest_file: Option<String<PATH_MAX>>,
    /// `pvfs.heap_mib=N`: cap the heap (MiB); 0 or absent means all free RAM.
    pub heap_mib: u32,
    /// `pvfs.cache_mib=N`: size of the volume's block cache (MiB); 0 or absent means half of
    /// the heap that is free when the volume is mounted.
    pub cache_mib: u32,
    /// `pvfs.checksum_dir=/dir`: after mounting the volume, log the SHA-256 of every regular
    /// file under this directory (used by the test bed to check the block path end to end).
    pub checksum_dir: Option<String<PATH_MAX>>,
    /// `pvfs.blkbench=MIB`: after connecting the data disk, time a raw sequential read of
    /// this many MiB through blkfront (1 MiB requests) and log the throughput.
    pub blkbench_mib: u32,
    /// `pvfs.ro` (or `pvfs.ro=1`): mount the volume read-only, so every export is read-only.
    /// Without it the volume is mounted read-write when the engine can maintain it.
    pub read_only: bool,
    /// `pvfs.ro_exports=/exports/a,/exports/b`: exports served read-only to every guest even
    /// on a read-write volume (paths as in the guests' `path=` keys).
    pub ro_exports: Option<String<PATH_MAX>>,
    /// `pvfs.poll_us=N`: after the last request from a guest, keep polling the rings for N µs
    /// before halting the vCPU (0: halt at once). Default [`DEFAULT_POLL_US`], at most
    /// [`MAX_POLL_US`].
    pub poll_us: u32,
    /// `pvfs.writeback_kib=N`: dirty file data (KiB) from which pvfs starts writing it back
    /// while idle (0: only on fsync, the periodic commit and when the cache fills). Default
    /// [`DEFAULT_WRITEBACK_KIB`].
    pub writeback_kib: u32,
    /// `pvfs.poll_disk=0|1`: whether the serve loop keeps polling the rings (see `poll_us`)
    /// while the volume's disk has requests in flight. With 0 (the default) it halts then, so
    /// the disk's backend, which needs a physical CPU to finish them, is not kept from one by
    /// pvfs spinning.
    pub poll_disk: bool,
    /// `pvfs.early_writes=0|1`: whether a `Twrite` that can only fail with a disk error (the
    /// file is writable and the volume has room for it) is answered before it runs, so the
    /// guest prepares its next request while pvfs writes (default 1). A write that then
    /// fails anyway is reported by the file's next fsync. With 0 every write's reply waits
    /// for the write.
    pub early_writes: bool,
    /// `pvfs.trace9p=0|1`: log every 9P message taken off a ring and every reply written to
    /// one, decoded on one line (default 0). For showing what a client sends; slow.
    pub trace9p: bool,
    /// `pvfs.exitstorm=SECS`: under Xen, before serving, spend SECS seconds in rounds of
    /// signalling an event channel bound to pvfs's own vCPU (every hypercall returns with an
    /// upcall to deliver) and of halting until a timer a few microseconds ahead, checking the
    /// CPU tables between rounds (`run::storm`; a test of the platform: the hypervisor, or the
    /// emulator it runs in). 0 or absent: no storm.
    pub exit_storm_secs: u32,
}

/// Default of `pvfs.poll_us`: 1 ms, longer than a guest's turnaround between two metadata
/// requests in the test bed (docs/benchmarks.md, run S).
pub const DEFAULT_POLL_US: u32 = 1000;
/// Largest `pvfs.poll_us` accepted (100 ms).
pub const MAX_POLL_US: u32 = 100_000;
/// Default of `pvfs.writeback_kib`: 1 MiB.
pub const DEFAULT_WRITEBACK_KIB: u32 = 1024;
/// Largest `pvfs.writeback_kib` accepted (1 GiB).
pub const MAX_WRITEBACK_KIB: u32 = 1 << 20;

impl Options {
    /// Whether export `path` (a guest's `path=` key) is on the read-only list.
    pub fn export_is_read_only(&self, path: &str) -> bool {
        let norm = |p: &str| -> alloc::string::String {
            let mut out = alloc::string::String::new();
            for c in p.split('/').filter(|c| !c.is_empty() && *c != ".") {
                out.push('/');
                out.push_str(c);
            }
            if out.is_empty() {
                out.push('/');
            }
            out
        };
        let want = norm(path);
        self.ro_exports
            .as_deref()
            .is_some_and(|l| l.split(',').any(|e| !e.is_empty() && norm(e) == want))
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            fault: None,
            log: LogLevel::Info,
            selftest_file: None,
            heap_mib: 0,
            cache_mib: 0,
            checksum_dir: None,
            blkbench_mib: 0,
            exit_storm_secs: 0,
            read_only: false,
            ro_exports: None,
            poll_us: DEFAULT_POLL_US,
            writeback_kib: DEFAULT_WRITEBACK_KIB,
            poll_disk: false,
            early_writes: true,
            trace9p: false,
        }
    }
}

/// A problem with one word of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning<'a> {
    /// `pvfs.<key>` is not an option.
    UnknownKey(&'a str),
    /// The option exists but its value is not valid.
    BadValue {
        /// The key.
        key: &'a str,
        /// The rejected value.
        value: &'a str,
    },
    /// More warnings than could be kept.
    TooMany,
}

/// Most warnings kept from one command line.
pub const MAX_WARNINGS: usize = 8;

/// Parses a command line. Never fails: problems come back as warnings.
pub fn parse(line: &str) -> (Options, Vec<Warning<'_>, MAX_WARNINGS>) {
    let mut o = Options::default();
    let mut warnings: Vec<Warning<'_>, MAX_WARNINGS> = Vec::new();
    for word in line.split_ascii_whitespace() {
        let Some(opt) = word.strip_prefix("pvfs.") else {
            continue;
        };
        let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
        let bad = Warning::BadValue { key, value };
        let w = &mut warnings;
        match key {
            "fault" => match value {
                "ud" => o.fault = Some(Fault::InvalidOpcode),
                "gp" => o.fault = Some(Fault::GeneralProtection),
                "pf" => o.fault = Some(Fault::PageFault),
                "de" => o.fault = Some(Fault::DivideError),
                "panic" => o.fault = Some(Fault::Panic),
                "stack" => o.fault = Some(Fault::StackOverflow),
                "tables" => o.fault = Some(Fault::Tables),
                _ => warn(bad, w),
            },
            "log" => match value {
                "error" => o.log = LogLevel::Error,
                "warn" => o.log = LogLevel::Warn,
                "info" => o.log = LogLevel::Info,
                "debug" => o.log = LogLevel::Debug,
                "trace" => o.log = LogLevel::Trace,
                _ => warn(bad, w),
            },
            "selftest.file" => set(&mut o.selftest_file, path(value).map(Some), bad, w),
            "checksum_dir" => set(&mut o.checksum_dir, path(value).map(Some), bad, w),
            "exitstorm" => set(&mut o.exit_storm_secs, value.parse().ok(), bad, w),
            "blkbench" => set(&mut o.blkbench_mib, value.parse().ok(), bad, w),
            "ro" => set(&mut o.read_only, flag(value), bad, w),
            "poll_disk" => set(&mut o.poll_disk, flag(value), bad, w),
            "early_writes" => set(&mut o.early_writes, flag(value), bad, w),
            "trace9p" => set(&mut o.trace9p, flag(value), bad, w),
            "ro_exports" => {
                let all_paths = value.split(',').all(|e| e.starts_with('/'));
                let exports = String::try_from(value).ok().filter(|_| all_paths);
                set(&mut o.ro_exports, exports.map(Some), bad, w)
            }
            "heap_mib" => set(&mut o.heap_mib, value.parse().ok(), bad, w),
            "cache_mib" => set(&mut o.cache_mib, value.parse().ok(), bad, w),
            "poll_us" => {
                let n = value.parse().ok().filter(|&n| n <= MAX_POLL_US);
                set(&mut o.poll_us, n, bad, w)
            }
            "writeback_kib" => {
                let n = value.parse().ok().filter(|&n| n <= MAX_WRITEBACK_KIB);
                set(&mut o.writeback_kib, n, bad, w)
            }
            _ => warn(Warning::UnknownKey(key), w),
        }
    }
    (o, warnings)
}

/// Stores the value that parsed in `field`; warns `bad` (and keeps the field) if none did.
fn set<'a, T>(
    field: &mut T,
    parsed: Option<T>,
    bad: Warning<'a>,
    ws: &mut Vec<Warning<'a>, MAX_WARNINGS>,
) {
    match parsed {
        Some(v) => *field = v,
        None => warn(bad, ws),
    }
}

/// A switch: empty, `1` or `yes` is on, `0` or `no` off.
fn flag(value: &str) -> Option<bool> {
    match value {
        "" | "1" | "yes" => Some(true),
        "0" | "no" => Some(false),
        _ => None,
    }
}

/// An absolute path that fits.
fn path(value: &str) -> Option<String<PATH_MAX>> {
    String::try_from(value)
        .ok()
        .filter(|_| value.starts_with('/'))
}

fn warn<'a>(w: Warning<'a>, ws: &mut Vec<Warning<'a>, MAX_WARNINGS>) {
    if ws.is_full() {
        if let Some(last) = ws.last_mut() {
            *last = Warning::TooMany;
        }
    } else {
        let _ = ws.push(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_on_empty_line() {
        let (o, w) = parse("");
        assert_eq!(o, Options::default());
        assert!(w.is_empty());
    }

    #[test]
    fn parses_all_options_and_ignores_foreign_words() {
        let (o, w) = parse("console=hvc0  pvfs.fault=gp pvfs.log=debug pvfs.selftest.file=/a/b.txt pvfs.heap_mib=64 quiet pvfs.checksum_dir=/data pvfs.cache_mib=32");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(o.fault, Some(Fault::GeneralProtection));
        assert_eq!(o.log, LogLevel::Debug);
        assert_eq!(o.selftest_file.as_deref(), Some("/a/b.txt"));
        assert_eq!(o.heap_mib, 64);
        assert_eq!(o.cache_mib, 32);
        assert_eq!(o.checksum_dir.as_deref(), Some("/data"));
    }

    #[test]
    fn exit_storm_seconds() {
        assert_eq!(parse("").0.exit_storm_secs, 0);
        assert_eq!(parse("pvfs.exitstorm=300").0.exit_storm_secs, 300);
        let (o, w) = parse("pvfs.exitstorm=long");
        assert_eq!(o.exit_storm_secs, 0);
        assert_eq!(
            w.as_slice(),
            [Warning::BadValue {
                key: "exitstorm",
                value: "long"
            }]
        );
    }

    #[test]
    fn poll_window_default_bounds_and_off() {
        assert_eq!(parse("").0.poll_us, DEFAULT_POLL_US);
        assert_eq!(parse("pvfs.poll_us=0").0.poll_us, 0);
        assert_eq!(parse("pvfs.poll_us=250").0.poll_us, 250);
        assert!(!parse("").0.poll_disk);
        assert!(parse("pvfs.poll_disk").0.poll_disk);
        assert!(parse("pvfs.poll_disk=1").0.poll_disk);
        assert!(!parse("pvfs.poll_disk=1 pvfs.poll_disk=0").0.poll_disk);
        assert!(parse("").0.early_writes);
        assert!(!parse("").0.trace9p);
        assert!(parse("pvfs.trace9p=1").0.trace9p);
        assert!(!parse("pvfs.trace9p pvfs.trace9p=0").0.trace9p);
        assert!(!parse("pvfs.early_writes=0").0.early_writes);
        assert!(
            parse("pvfs.early_writes=0 pvfs.early_writes")
                .0
                .early_writes
        );
        assert_eq!(
            parse("pvfs.early_writes=later").1.as_slice(),
            [Warning::BadValue {
                key: "early_writes",
                value: "later"
            }]
        );
        assert_eq!(
            parse("pvfs.poll_disk=maybe").1.as_slice(),
            [Warning::BadValue {
                key: "poll_disk",
                value: "maybe"
            }]
        );
        let (o, w) = parse("pvfs.poll_us=100001 pvfs.poll_us=x");
        assert_eq!(o.poll_us, DEFAULT_POLL_US);
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn write_back_threshold_default_bounds_and_off() {
        assert_eq!(parse("").0.writeback_kib, DEFAULT_WRITEBACK_KIB);
        let (o, w) = parse("pvfs.writeback_kib=0");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(o.writeback_kib, 0);
        assert_eq!(parse("pvfs.writeback_kib=4096").0.writeback_kib, 4096);
        let (o, w) = parse("pvfs.writeback_kib=1048577 pvfs.writeback_kib=-1");
        assert_eq!(o.writeback_kib, DEFAULT_WRITEBACK_KIB);
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn read_only_volume_and_exports() {
        let (o, w) = parse("pvfs.ro pvfs.ro_exports=/exports/a,/srv//b/");
        assert!(w.is_empty(), "{w:?}");
        assert!(o.read_only);
        assert!(o.export_is_read_only("/exports/a"));
        assert!(o.export_is_read_only("/srv/b"));
        assert!(o.export_is_read_only("srv/./b/"));
        assert!(!o.export_is_read_only("/exports/ab"));
        assert!(!o.export_is_read_only("/exports"));
        let (o, w) = parse("pvfs.ro=0 pvfs.ro_exports=relative");
        assert!(!o.read_only && o.ro_exports.is_none());
        assert_eq!(w.len(), 1);
        assert!(!Options::default().export_is_read_only("/"));
    }

    #[test]
    fn every_fault_kind() {
        for (v, f) in [
            ("ud", Fault::InvalidOpcode),
            ("pf", Fault::PageFault),
            ("de", Fault::DivideError),
            ("panic", Fault::Panic),
            ("stack", Fault::StackOverflow),
            ("tables", Fault::Tables),
        ] {
            let line = std::format!("pvfs.fault={v}");
            assert_eq!(parse(&line).0.fault, Some(f));
        }
    }

    #[test]
    fn bad_values_and_unknown_keys_are_warnings() {
        let (o, w) = parse(
            "pvfs.fault=nope pvfs.colour=red pvfs.heap_mib=-1 pvfs.selftest.file=relative pvfs.log",
        );
        assert_eq!(o, Options::default());
        assert_eq!(
            w.as_slice(),
            &[
                Warning::BadValue {
                    key: "fault",
                    value: "nope"
                },
                Warning::UnknownKey("colour"),
                Warning::BadValue {
                    key: "heap_mib",
                    value: "-1"
                },
                Warning::BadValue {
                    key: "selftest.file",
                    value: "relative"
                },
                Warning::BadValue {
                    key: "log",
                    value: ""
                },
            ]
        );
    }

    #[test]
    fn warnings_are_bounded() {
        let line = "pvfs.x ".repeat(100);
        let (_, w) = parse(&line);
        assert_eq!(w.len(), MAX_WARNINGS);
        assert_eq!(w.last(), Some(&Warning::TooMany));
    }

    #[test]
    fn overlong_path_is_rejected() {
        let line = std::format!("pvfs.selftest.file=/{}", "a".repeat(PATH_MAX));
        let (o, w) = parse(&line);
        assert!(o.selftest_file.is_none());
        assert_eq!(w.len(), 1);
    }
}
