//! The 9pfs backend's per-ring service step (`pvfs_9p::channel::RingWork::serve`, what the
//! kernel runs for each ring) over a fake Xen ring in memory and the in-memory filesystem,
//! with a hostile frontend: it writes arbitrary bytes, lies about its indices and takes its
//! replies only when it likes. Nothing may panic, and what pvfs holds for the ring stays
//! within its bounds: accepted requests within the queue's, replies waiting for ring space
//! within the outbox's.
//!
//! Input: a control byte (bit 0: ring order 0 or 1), then operations of one byte each plus
//! their arguments: 0 append up to 255 bytes at the out producer (advancing it, as an honest
//! frontend does); 1 set the out producer (4 bytes); 2 set the in consumer (4 bytes); 3 take
//! every reply (in consumer = in producer); 4 run the service step 1 + (next byte % 8) times.
#![no_main]

use pvfs_9p::channel::{Channel, NoHooks, RingWork, MAX_PENDING_BYTES, MAX_PENDING_REPLIES};
use pvfs_9p::memfs::{MemFs, MemFsLimits};
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_ring::p9ring::{Backend9pRing, IN_CONS, IN_PROD, OUT_PROD, PAGE_SIZE};
use pvfs_ring::shmem::{LocalMem, SharedMem};

const MAX_QUEUED: usize = 64;
const MAX_QUEUED_BYTES: usize = 1 << 20;

struct Ring<'a> {
    be: &'a mut Backend9pRing,
    intf: &'a LocalMem,
    area: &'a LocalMem,
}

impl Channel for Ring<'_> {
    type Error = ();
    fn take(
        &mut self,
        buffer: &mut dyn FnMut(usize) -> Vec<u8>,
    ) -> Result<Option<Vec<u8>>, ()> {
        self.be
            .next_request_with(self.intf, self.area, buffer)
            .map_err(|_| ())
    }
    fn put(&mut self, reply: &[u8]) -> Result<bool, ()> {
        self.be
            .write_response(self.intf, self.area, reply)
            .map_err(|_| ())
    }
    fn set_msize(&mut self, msize: u32) {
        if msize != 0 {
            self.be.set_msize(msize);
        }
    }
}

fn u32_at(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&ctl, mut rest)) = data.split_first() else {
        return;
    };
    let order = u32::from(ctl & 1);
    let intf = LocalMem::new(PAGE_SIZE);
    let area = LocalMem::new(PAGE_SIZE << order);
    let Ok(mut be) = Backend9pRing::attach(&intf, &area, order, 8192) else {
        return;
    };
    // A truncate may name any size: the files are held to 1 MiB in all.
    let limits = MemFsLimits {
        max_bytes: 1 << 20,
        ..MemFsLimits::default()
    };
    let cfg = ExportConfig {
        max_fids: 64,
        max_msize: 8192,
        ..ExportConfig::default()
    };
    let server = Server::new(MemFs::with_limits(limits, Default::default), cfg);
    let conn = server.connect();
    let mut work = RingWork::new(MAX_QUEUED, MAX_QUEUED_BYTES);
    let half = be.half_size();
    let mut prod = 0u32;
    let mut ops = 0;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        ops += 1;
        if ops > 256 {
            break;
        }
        match op % 5 {
            0 => {
                let Some((&n, tail)) = rest.split_first() else {
                    break;
                };
                let n = usize::from(n).min(tail.len());
                let (bytes, tail) = tail.split_at(n);
                rest = tail;
                for (k, b) in bytes.iter().enumerate() {
                    let at = prod.wrapping_add(k as u32) % half;
                    let _ = area.write_bytes(half as usize + at as usize, &[*b]);
                }
                prod = prod.wrapping_add(n as u32);
                let _ = intf.store_u32_release(OUT_PROD, prod);
            }
            1 | 2 => {
                let Some(v) = u32_at(rest) else { break };
                rest = &rest[4..];
                if op % 5 == 1 {
                    prod = v;
                    let _ = intf.store_u32_release(OUT_PROD, v);
                } else {
                    let _ = intf.store_u32_release(IN_CONS, v);
                }
            }
            3 => {
                if let Ok(p) = intf.load_u32_acquire(IN_PROD) {
                    let _ = intf.store_u32_release(IN_CONS, p);
                }
            }
            _ => {
                let Some((&k, tail)) = rest.split_first() else {
                    break;
                };
                rest = tail;
                for _ in 0..=k % 8 {
                    let mut ring = Ring {
                        be: &mut be,
                        intf: &intf,
                        area: &area,
                    };
                    if work
                        .serve(&mut ring, &conn, (0, true), &mut NoHooks)
                        .is_err()
                    {
                        // The kernel disconnects the device here.
                        work.queue.clear(&conn);
                        return;
                    }
                    assert!(work.queue.len() <= MAX_QUEUED);
                    // The bounds, plus one request's replies (a reply and up to 16 Rflush).
                    assert!(work.outbox.len() <= MAX_PENDING_REPLIES + 17);
                    assert!(work.outbox.bytes() <= MAX_PENDING_BYTES + 2 * 8192 + 17 * 64);
                }
            }
        }
    }
});
