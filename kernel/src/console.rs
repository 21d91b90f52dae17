//! Kernel output: port 0xE9 always (QEMU's debugcon, Xen's hypervisor log as `(dN) …`), COM1
//! under plain QEMU, and the Xen PV console ring (`xl console`) once it is set up. Also the
//! `log` backend.

use crate::arch;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

const COM1: u16 = 0x3F8;
static COM1_READY: AtomicBool = AtomicBool::new(false);
static LEVEL: AtomicU8 = AtomicU8::new(3);

/// Initialises COM1 (115200 8n1). Only under plain QEMU: a Xen PVH domain has no UART.
pub fn init_com1() {
    arch::outb(COM1 + 1, 0x00); // no interrupts
    arch::outb(COM1 + 3, 0x80); // DLAB
    arch::outb(COM1, 0x01); // divisor 1: 115200
    arch::outb(COM1 + 1, 0x00);
    arch::outb(COM1 + 3, 0x03); // 8n1
    arch::outb(COM1 + 2, 0xC7); // FIFO
    arch::outb(COM1 + 4, 0x03);
    // An absent UART reads back 0xFF.
    if arch::inb(COM1 + 5) != 0xFF {
        COM1_READY.store(true, Ordering::Release);
    }
}

fn com1_put(b: u8) {
    let mut spins = 0u32;
    while arch::inb(COM1 + 5) & 0x20 == 0 && spins < 100_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    arch::outb(COM1, b);
}

/// Writes bytes to every available sink. Lock-free apart from a `try_lock` on the PV console,
/// so it is safe to call from exception handlers.
pub fn write_bytes(bytes: &[u8]) {
    // One string instruction for the whole buffer: under Xen every `out` to port 0xE9 is a
    // VM exit, and one exit per byte made each log line cost dozens of them.
    arch::outsb(0xE9, bytes);
    if COM1_READY.load(Ordering::Acquire) {
        for &b in bytes {
            if b == b'\n' {
                com1_put(b'\r');
            }
            com1_put(b);
        }
    }
    crate::xen::console::write(bytes);
}

/// A `fmt::Write` sink over [`write_bytes`].
pub struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints formatted text to every sink.
#[macro_export]
macro_rules! kprint {
    ($($t:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut $crate::console::Raw, format_args!($($t)*));
    }};
}

struct Logger;

static LOGGER: Logger = Logger;

fn level_num(l: log::Level) -> u8 {
    match l {
        log::Level::Error => 1,
        log::Level::Warn => 2,
        log::Level::Info => 3,
        log::Level::Debug => 4,
        log::Level::Trace => 5,
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        level_num(m.level()) <= LEVEL.load(Ordering::Relaxed)
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        // Format into a bounded line buffer so each line reaches the sinks in one piece.
        let mut line = heapless::String::<512>::new();
        let lvl = match r.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARN",
            log::Level::Info => "INFO",
            log::Level::Debug => "DEBUG",
            log::Level::Trace => "TRACE",
        };
        let _ = write!(line, "pvfs: [{lvl}] {}", r.args());
        if line.len() >= 511 {
            let _ = line.pop();
            let _ = line.push('~');
        }
        let _ = line.push('\n');
        write_bytes(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger at the given level (1 = error … 5 = trace).
pub fn init_log(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(match level {
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    });
}
