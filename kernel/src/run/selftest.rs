//! The plain-QEMU self-test: memory map, heap and modules.

use super::boot::Identity;
use crate::heap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use pvfs_kernel::cmdline::Options;
use pvfs_kernel::startinfo::{self, MemType, PhysRead, StartInfo};

/// The plain-QEMU self-test: memory map, heap, modules.
pub(super) fn selftest(si: &StartInfo, opts: &Options) -> Result<(), String> {
    let ram: u64 = si
        .memmap
        .iter()
        .filter(|e| e.kind == MemType::Ram)
        .map(|e| e.size)
        .sum();
    log::info!(
        "selftest: memory map has {} entries, {} MiB RAM",
        si.memmap.len(),
        ram >> 20
    );
    if si.memmap.is_empty() || ram < (16 << 20) {
        return Err(format!(
            "implausible memory map ({} entries, {ram} bytes of RAM)",
            si.memmap.len()
        ));
    }

    let before = heap::stats();
    {
        let mut boxes: Vec<Vec<u8>> = Vec::new();
        for i in 0..512usize {
            let n = 1 + (i * 7919) % 8192;
            boxes.push(alloc::vec![(i % 251) as u8; n]);
        }
        let big: Vec<u64> = (0..(1u64 << 19)).collect(); // 4 MiB
        if big.iter().enumerate().any(|(i, &v)| v != i as u64) {
            return Err("heap: 4 MiB vector readback mismatch".into());
        }
        for (i, b) in boxes.iter().enumerate() {
            if b.iter().any(|&x| x != (i % 251) as u8) {
                return Err(format!("heap: allocation {i} corrupted"));
            }
        }
        let during = heap::stats();
        if during.live_bytes < before.live_bytes + (4 << 20) {
            return Err(format!("heap: bookkeeping missed allocations ({during:?})"));
        }
    }
    let after = heap::stats();
    if after.live_bytes != before.live_bytes || after.live_allocs != before.live_allocs {
        return Err(format!(
            "heap: leak after free: before {before:?} after {after:?}"
        ));
    }
    log::info!(
        "selftest: heap ok (peak {} KiB, {} allocations)",
        after.peak_bytes >> 10,
        after.total_allocs
    );

    log::info!("selftest: {} module(s)", si.modules.len());
    for (i, m) in si.modules.iter().enumerate() {
        let crc32c = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
        let mut digest = crc32c.digest();
        let mut off = 0u64;
        let mut buf = alloc::vec![0u8; 64 * 1024];
        while off < m.size {
            let n = (m.size - off).min(buf.len() as u64) as usize;
            let chunk = buf.get_mut(..n).ok_or("module chunk")?;
            if !Identity.read(m.paddr + off, chunk) {
                return Err(format!(
                    "module {i} at {:#x} (+{off}) is not readable",
                    m.paddr
                ));
            }
            digest.update(chunk);
            off += n as u64;
        }
        let crc = digest.finalize();
        log::info!(
            "selftest: module {i}: paddr={:#x} size={} crc32c={crc:#010x}",
            m.paddr,
            m.size
        );
    }
    if let Some(m) = si.modules.first() {
        selftest_ext4_module(m, opts)?;
    }
    Ok(())
}

/// Mounts module 0 as ext4 (read-only, straight from memory) and checksums the file named by
/// `pvfs.selftest.file`. A module that is not ext4 is only reported.
fn selftest_ext4_module(m: &startinfo::Module, opts: &Options) -> Result<(), String> {
    let len = usize::try_from(m.size).map_err(|_| "module too large")?;
    let end = m
        .paddr
        .checked_add(m.size)
        .ok_or("module range overflows")?;
    if m.paddr == 0 || end > (1 << 32) {
        return Err(format!(
            "module at {:#x}+{} is outside the identity map",
            m.paddr, m.size
        ));
    }
    // SAFETY: the module lies inside the identity-mapped first 4 GiB (checked above), was
    // placed there by the loader, and is carved out of the heap (`init_memory`), so nothing
    // else writes it; the slice is only read.
    let bytes: &'static [u8] =
        unsafe { core::slice::from_raw_parts(m.paddr as usize as *const u8, len) };
    let disk = pvfs_fs::block::MemDisk::borrowed(bytes);
    let mut fs = match pvfs_fs::ext4::Ext4::open(disk) {
        Ok(fs) => fs,
        Err(e) => {
            if opts.selftest_file.is_some() {
                return Err(format!("module 0 is not a usable ext4 image: {e}"));
            }
            log::info!("selftest: module 0 is not ext4 ({e}); skipping the file-system check");
            return Ok(());
        }
    };
    log::info!(
        "selftest: module 0 is ext4: {}",
        crate::volume::describe(&fs)
    );
    if let Some(path) = &opts.selftest_file {
        let ino = fs
            .lookup_path(path.as_bytes())
            .map_err(|e| format!("{path}: {e}"))?;
        let (sum, size) =
            crate::volume::checksum(&mut fs, ino).map_err(|e| format!("{path}: {e}"))?;
        log::info!("selftest: file {path} sha256={sum} size={size}");
    }
    Ok(())
}
