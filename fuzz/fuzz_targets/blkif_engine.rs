//! blkfront's request engine against a backend whose answers come from the input: honest,
//! out of order, failing, lying about ids and operations, lying about its indices, going
//! away. The engine must never panic, never reuse an id or page the backend still owns
//! (the fake backend records that), and, while the backend is honest, return exactly the
//! disk's data for every read that succeeds.
#![no_main]

use pvfs_fs::block::{BlockDevice, Request};
use pvfs_ring::blkif::engine::fake;
use pvfs_ring::blkif::engine::{DiskConfig, FlushOp};

const DISK: usize = 512 * 1024;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let Some(c) = inp.byte() else { return };
    let sector_size = 512u32 << (c & 3);
    let cfg = DiskConfig {
        handle: 1,
        sectors: (DISK / 512) as u64,
        sector_size,
        read_only: c & 4 != 0,
        flush: match (c >> 3) & 3 {
            0 => None,
            1 => Some(FlushOp::DiskCache),
            _ => Some(FlushOp::Barrier),
        },
        max_segments: [11, 16, 64, 512][usize::from(c >> 5 & 3)],
    };
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let disk = PATTERN
        .get_or_init(|| (0..DISK).map(|i| (i / 4096 * 31 + i) as u8).collect())
        .clone();
    let indirect = if c & 0x80 != 0 { 0 } else { 4 };
    let Ok((mut e, be)) = fake::engine(cfg, (1, 32, indirect), disk) else {
        return;
    };
    // A backend that answers nothing for 64 waits in a row is gone (rather than the engine
    // waiting out its own, much longer, limit).
    be.borrow_mut().patience = Some(64);
    let ss = u64::from(sector_size);
    let sectors = DISK as u64 / ss;
    let mut honest = true;
    let mut steps = 0;
    while let Some(op) = inp.byte() {
        steps += 1;
        if steps > 200 {
            break;
        }
        match op % 10 {
            // A synchronous read or write: the backend answers (it may fail or reorder).
            0 | 1 => {
                let (Some(lba), Some(n)) = (inp.u16(), inp.byte()) else { break };
                let lba = u64::from(lba) % sectors;
                let len = (usize::from(n % 48) + 1) * sector_size as usize;
                be.borrow_mut().hold = false;
                if op % 10 == 0 {
                    let mut buf = vec![0u8; len];
                    let r = e.read(lba, &mut buf);
                    let b = be.borrow();
                    if r.is_ok() && honest && b.fail_sector.is_none() {
                        let at = (lba * ss) as usize;
                        assert_eq!(&buf[..], &b.disk[at..at + len], "read {lba}+{len}");
                    }
                } else {
                    let buf = vec![op; len];
                    let _ = e.write(lba, &buf, n & 0x80 != 0);
                }
            }
            2 => {
                be.borrow_mut().hold = false;
                let _ = e.flush();
            }
            3 => {
                let (Some(lba), Some(n)) = (inp.u16(), inp.byte()) else { break };
                let buf = vec![op; (usize::from(n % 8) + 1) * sector_size as usize];
                let lba = u64::from(lba) % sectors;
                let _ = e.post_writes(&[(lba, &buf[..]), (lba + buf.len() as u64 / ss, &buf[..])]);
            }
            4 => {
                let (Some(lba), Some(n)) = (inp.u16(), inp.byte()) else { break };
                let len = (usize::from(n % 40) + 1) * sector_size as usize;
                let _ = e.post_reads(&[(u64::from(lba) % sectors, len)]);
            }
            5 => {
                e.reap();
                e.take_reads(&mut |lba, d| {
                    assert!(d.len() as u64 % ss == 0 && lba < sectors);
                });
            }
            // A lie: any 16 bytes as the answer to a request taken.
            6 => {
                let Some(raw) = inp.bytes::<16>() else { break };
                honest = false;
                be.borrow_mut().inject(raw);
                e.reap();
            }
            // A lie about the ring: a response slot and producer index of its choosing.
            7 => {
                let (Some(idx), Some(raw), Some(prod)) = (inp.byte(), inp.bytes::<16>(), inp.byte())
                else {
                    break;
                };
                honest = false;
                be.borrow_mut().write_raw(u32::from(idx), &raw, u32::from(prod));
                e.reap();
            }
            8 => {
                let Some(k) = inp.byte() else { break };
                let mut b = be.borrow_mut();
                b.reverse = k & 1 != 0;
                b.per_wait = usize::from(k >> 1 & 3);
                b.hold = k & 8 != 0;
                b.closed = k & 16 != 0;
                b.fail_sector = (k & 32 != 0).then_some(u64::from(k));
            }
            _ => {
                let Some(n) = inp.byte() else { break };
                be.borrow_mut().answer(usize::from(n % 8) + 1);
                e.reap();
            }
        }
        assert!(be.borrow().violations.is_empty(), "{:?}", be.borrow().violations);
        assert!(e.in_flight() <= e.ring_slots());
    }
    // A batch after everything: never a panic, whatever state the engine is in.
    be.borrow_mut().hold = false;
    let mut a = vec![0u8; sector_size as usize];
    let mut reqs = [Request::Read { lba: 0, buf: &mut a }, Request::Flush];
    let _ = e.submit(&mut reqs);
    assert!(be.borrow().violations.is_empty(), "{:?}", be.borrow().violations);
});
