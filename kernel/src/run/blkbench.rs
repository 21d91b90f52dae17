//! A raw sequential-read benchmark through blkfront.

use crate::{kprint, xen};
use alloc::vec::Vec;

/// Raw sequential read through blkfront, 1 MiB per request, several requests per batch.
pub(super) fn blkbench(dev: &mut crate::blkfront::Blkfront, mib: u32) {
    use pvfs_fs::block::{BlockDevice, Request};
    let total = (u64::from(mib) << 20).min(dev.size_bytes());
    let ss = u64::from(dev.sector_size());
    let mut bufs: Vec<Vec<u8>> = (0..4).map(|_| alloc::vec![0u8; 1 << 20]).collect();
    let t0 = xen::time::now_ns();
    let mut pos = 0u64;
    let crc32c = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut crc = crc32c.digest();
    while pos < total {
        let mut reqs: Vec<Request<'_>> = Vec::new();
        let mut at = pos;
        for b in bufs.iter_mut() {
            if at >= total {
                break;
            }
            let n = (total - at).min(1 << 20) as usize;
            let (head, _) = b.split_at_mut(n);
            reqs.push(Request::Read {
                lba: at / ss,
                buf: head,
            });
            at += n as u64;
        }
        if let Err(e) = dev.submit(&mut reqs) {
            log::error!("blkbench: read at {pos}: {e}");
            return;
        }
        for r in &reqs {
            if let Request::Read { buf, .. } = r {
                crc.update(buf);
            }
        }
        pos = at;
    }
    let ns = xen::time::now_ns().saturating_sub(t0).max(1);
    let mibps = (total as f64 / (1u64 << 20) as f64) / (ns as f64 / 1e9);
    kprint!(
        "pvfs: blkbench read {} MiB in {:.3} s = {mibps:.1} MiB/s ({} requests completed, crc32c={:#010x})\n",
        total >> 20,
        ns as f64 / 1e9,
        dev.completed(),
        crc.finalize()
    );
}
