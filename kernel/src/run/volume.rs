//! The data volume: connecting the first virtual block device and opening ext4 on it.

use super::blkbench::blkbench;
use super::boot::Platform;
use crate::{heap, kprint, xen};
use alloc::format;
use pvfs_kernel::cmdline::Options;

/// The mounted data volume.
pub(super) type Volume = pvfs_fs::ext4::Ext4<crate::blkfront::Blkfront>;

/// Connects the first virtual block device and mounts ext4 from it; publishes
/// `data/pvfs/volume`. Without a disk pvfs still runs (and says so).
pub(super) fn mount_volume(p: &Platform, opts: &Options) -> Option<Volume> {
    let key = format!("/local/domain/{}/data/pvfs/volume", p.domid);
    let ids = crate::blkfront::discover();
    let Some(&devid) = ids.first() else {
        log::warn!("no virtual block device: add disk=[...] to pvfs-stubdom.cfg to serve a volume");
        let _ = xen::store::write(&key, "none");
        return None;
    };
    let dev = match crate::blkfront::Blkfront::connect(devid) {
        Ok(d) => d,
        Err(e) => {
            log::error!("vbd {devid}: {}", e.0);
            let _ = xen::store::write(&key, &format!("error: vbd {devid}: {}", e.0));
            return None;
        }
    };
    let mut dev = dev;
    if opts.blkbench_mib > 0 {
        blkbench(&mut dev, opts.blkbench_mib);
    }
    let mut fs = match open_volume(dev, opts) {
        Ok(fs) => fs,
        Err(e) => {
            log::error!("vbd {devid}: cannot mount ext4: {e}");
            let _ = xen::store::write(&key, &format!("error: vbd {devid}: {e}"));
            return None;
        }
    };
    let desc = crate::volume::describe(&fs);
    log::info!("volume: vbd {devid}: {desc}");
    let _ = xen::store::write(&key, &desc);
    if let Some(dir) = &opts.checksum_dir {
        match crate::volume::checksum_tree(&mut fs, dir, 4096) {
            Ok(list) => {
                for (path, sum, size) in &list {
                    kprint!("pvfs: checksum {sum} {size} {path}\n");
                }
                kprint!("pvfs: checksums done: {} files under {dir}\n", list.len());
            }
            Err(e) => kprint!("pvfs: checksums failed: {e}\n"),
        }
    }
    Some(fs)
}

/// Mounts the volume read-write unless `pvfs.ro` is given, the disk is read-only, or the
/// engine refuses (a feature it cannot maintain, a file system that needs e2fsck): then
/// read-only, with the reason logged.
fn open_volume(
    dev: crate::blkfront::Blkfront,
    opts: &Options,
) -> Result<Volume, pvfs_fs::ext4::Error> {
    use pvfs_fs::block::BlockDevice;
    if opts.read_only || dev.read_only() {
        log::info!(
            "volume: mounting read-only ({})",
            if opts.read_only {
                "pvfs.ro"
            } else {
                "the disk is read-only"
            }
        );
        return pvfs_fs::ext4::Ext4::open_with(dev, &engine_options(opts));
    }
    // A refused read-write mount would consume the device: ask the read-only mount first,
    // and keep it when the answer is no.
    let probe = pvfs_fs::ext4::Ext4::open(dev)?;
    if let Err(why) = probe.check_writable() {
        log::warn!("volume: mounting read-only: {why}");
        return Ok(probe);
    }
    let dev = probe.into_device();
    match pvfs_fs::ext4::Ext4::open_rw(dev, &engine_options(opts)) {
        Ok(mut fs) => {
            let (sec, nsec) = xen::time::wall_clock();
            fs.set_clock(pvfs_fs::ext4::Timestamp {
                sec: i64::try_from(sec).unwrap_or(i64::MAX),
                nsec,
            });
            log::info!("volume: mounted read-write");
            Ok(fs)
        }
        Err(e) => Err(e),
    }
}

/// Engine options for the volume: the block cache gets `pvfs.cache_mib`, or by default half
/// of the heap still free (the rest is for guests' fids, request and reply buffers). The
/// cache holds metadata and file data (written data until it is written back, and what was
/// read while there is room), so it is what lets guests re-read files at memory speed.
fn engine_options(opts: &Options) -> pvfs_fs::ext4::Options {
    let free = heap::total().saturating_sub(heap::stats().live_bytes as u64);
    let bytes = match opts.cache_mib {
        0 => free / 2,
        n => u64::from(n) << 20,
    };
    let bytes = usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .max(pvfs_fs::ext4::DEFAULT_CACHE_BYTES);
    log::info!("volume: block cache {} MiB", bytes >> 20);
    pvfs_fs::ext4::Options { cache_bytes: bytes }
}
