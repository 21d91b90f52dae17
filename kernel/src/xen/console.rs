//! The PV console ring (`io/console.h`), fed by the kernel log so `xl console` shows it.
//! Output only. Writes never block for long: when xenconsoled does not drain the ring, bytes
//! are dropped and counted rather than stalling the file service.

use super::shmem::PageMem;
use pvfs_ring::byte_ring::{Layout, Producer};
use spin::Mutex;

/// `out` direction of `struct xencons_interface`.
const OUT: Layout = Layout {
    data_off: 1024,
    size: 2048,
    cons_off: 3080,
    prod_off: 3084,
};

struct Console {
    mem: PageMem,
    out: Producer,
    port: u32,
    dropped: u64,
}

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);

/// Attaches to the console page at `pfn` with event channel `port`.
pub fn init(pfn: u64, port: u32) -> bool {
    // SAFETY: the console page is a Xen-provided magic page at `pfn`, identity-mapped, that the
    // kernel uses only through this PageMem.
    let mem = unsafe { PageMem::new((pfn << 12) as usize, 4096) };
    let Ok(out) = Producer::attach(OUT, &mem) else {
        return false;
    };
    *CONSOLE.lock() = Some(Console {
        mem,
        out,
        port,
        dropped: 0,
    });
    // xenconsoled signals when it has drained output; output-only, so the handler only
    // consumes the wake flag.
    super::events::register(port, |_| {});
    true
}

/// Writes bytes to the console, best effort. Safe to call from any context: it gives up
/// instead of waiting on the lock.
pub fn write(bytes: &[u8]) {
    let Some(mut g) = CONSOLE.try_lock() else {
        return;
    };
    let Some(c) = g.as_mut() else { return };
    let mut rest = bytes;
    let mut tries = 0;
    while !rest.is_empty() {
        match c.out.write(&c.mem, rest) {
            Ok(0) => {
                let _ = super::evtchn_send(c.port);
                tries += 1;
                if tries > 1000 {
                    c.dropped += rest.len() as u64;
                    break;
                }
                core::hint::spin_loop();
            }
            Ok(n) => rest = rest.get(n..).unwrap_or(&[]),
            Err(_) => {
                // A console backend that corrupts the indices loses its console.
                c.dropped += rest.len() as u64;
                break;
            }
        }
    }
    let _ = super::evtchn_send(c.port);
}
