//! The data volume: connecting the first virtual block device and opening the file system
//! on it, ext4 or FAT (`pvfs_9p::volume::detect` tells which from the disk's first 2 KiB).

use super::blkbench::blkbench;
use super::boot::Platform;
use crate::blkfront::Blkfront;
use crate::{heap, kprint, xen};
use alloc::format;
use alloc::string::{String, ToString};
use pvfs_9p::ext4::Ext4Fs;
use pvfs_9p::fat::FatFs;
use pvfs_9p::volume::{detect, Kind, VolumeFs, DETECT_BYTES};
use pvfs_fs::block::BlockDevice;
use pvfs_kernel::cmdline::Options;

/// The mounted data volume.
pub(super) type Volume = VolumeFs<Blkfront>;

/// Connects the first virtual block device and mounts ext4 or FAT from it; publishes
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
    let fs = match open_volume(dev, opts) {
        Ok(fs) => fs,
        Err(e) => {
            log::error!("vbd {devid}: cannot mount: {e}");
            let _ = xen::store::write(&key, &format!("error: vbd {devid}: {e}"));
            return None;
        }
    };
    let desc = crate::volume::describe_volume(&fs).unwrap_or_default();
    log::info!("volume: vbd {devid}: {} {desc}", fs.kind_name());
    let _ = xen::store::write(&key, &desc);
    if let Some(dir) = &opts.checksum_dir {
        let sums = match &fs {
            VolumeFs::Ext4(e) => e
                .with_engine(|e| crate::volume::checksum_tree(e, dir, 4096))
                .unwrap_or_else(|| Err("the volume is closed".to_string())),
            VolumeFs::Fat(_) => Err("pvfs.checksum reads ext4 volumes only".to_string()),
        };
        match sums {
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

/// Opens the file system the disk holds, ext4 or FAT, for serving (stamping changes with the
/// wall clock).
fn open_volume(mut dev: Blkfront, opts: &Options) -> Result<Volume, String> {
    let head = read_head(&mut dev)?;
    match detect(&head) {
        Some(Kind::Ext4) => open_ext4(dev, opts)
            .map(|e| VolumeFs::Ext4(Ext4Fs::new(e).with_clock(crate::p9back::wall_clock)))
            .map_err(|e| format!("cannot mount ext4: {e}")),
        Some(Kind::Fat) => open_fat(dev, opts)
            .map(|f| VolumeFs::Fat(FatFs::new(f).with_clock(crate::p9back::wall_clock)))
            .map_err(|e| format!("cannot mount FAT: {e}")),
        None => Err(String::from(
            "no file system pvfs serves (neither an ext4 superblock nor a FAT boot sector)",
        )),
    }
}

/// The disk's first [`DETECT_BYTES`] (whole sectors; only the first sector on a smaller
/// disk).
fn read_head(dev: &mut Blkfront) -> Result<alloc::vec::Vec<u8>, String> {
    let ss = (dev.sector_size().max(512)) as usize;
    let want = DETECT_BYTES.div_ceil(ss) * ss;
    let len = if (want / ss) as u64 <= dev.sector_count() {
        want
    } else {
        ss
    };
    let mut head = alloc::vec![0u8; len];
    dev.read(0, &mut head)
        .map_err(|e| format!("cannot read the disk's first sectors: {e}"))?;
    Ok(head)
}

/// Why the volume must be read-only whatever it holds: `pvfs.ro`, or a read-only disk.
fn forced_read_only(dev: &Blkfront, opts: &Options) -> Option<&'static str> {
    if opts.read_only {
        Some("pvfs.ro")
    } else if dev.read_only() {
        Some("the disk is read-only")
    } else {
        None
    }
}

/// Mounts FAT read-write unless [`forced_read_only`] says otherwise. FAT writes through:
/// every change reaches the disk before its reply, so it has no block cache to size.
fn open_fat(dev: Blkfront, opts: &Options) -> Result<pvfs_fs::fat::Fat<Blkfront>, String> {
    let why = forced_read_only(&dev, opts);
    let mut fs = pvfs_fs::fat::Fat::open(dev, why.is_none()).map_err(|e| e.to_string())?;
    let (sec, nsec) = xen::time::wall_clock();
    fs.set_now((i64::try_from(sec).unwrap_or(i64::MAX), nsec));
    match why {
        Some(why) => log::info!("volume: FAT mounted read-only ({why})"),
        None => log::info!("volume: FAT mounted read-write"),
    }
    Ok(fs)
}

/// Mounts ext4 read-write unless `pvfs.ro` is given, the disk is read-only, or the
/// engine refuses (a feature it cannot maintain, a file system that needs e2fsck): then
/// read-only, with the reason logged.
fn open_ext4(
    dev: Blkfront,
    opts: &Options,
) -> Result<pvfs_fs::ext4::Ext4<Blkfront>, pvfs_fs::ext4::Error> {
    if let Some(why) = forced_read_only(&dev, opts) {
        log::info!("volume: mounting read-only ({why})");
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
