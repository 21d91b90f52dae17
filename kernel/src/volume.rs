//! Describing a mounted data volume and checksumming its files through the engine, so tests
//! can compare what pvfs read with what the host wrote. Mounting happens elsewhere:
//! `run::volume` opens ext4 or FAT on the blkfront disk under Xen, `run::selftest` ext4 on a
//! PVH module under plain QEMU.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use pvfs_9p::volume::{fat_name, VolumeFs};
use pvfs_fs::block::BlockDevice;
use pvfs_fs::ext4::{Ext4, FileType, Ino, ROOT_INO};
use pvfs_fs::fat::Fat;
use sha2::{Digest, Sha256};

/// A one-line description of the served volume (`data/pvfs/volume`): [`describe`] for ext4,
/// [`describe_fat`] for FAT; `None` once an ext4 volume is closed.
pub fn describe_volume<D: BlockDevice + Send>(v: &VolumeFs<D>) -> Option<String> {
    match v {
        VolumeFs::Ext4(fs) => fs.with_engine(|e| describe(e)),
        VolumeFs::Fat(fs) => Some(fs.with_engine(|e| describe_fat(e))),
    }
}

/// A one-line description of a FAT volume: label, size, cluster size, free space, variant,
/// and `read-only` when it is mounted so.
pub fn describe_fat<D: BlockDevice>(fs: &Fat<D>) -> String {
    let geo = fs.geometry();
    let label = String::from_utf8_lossy(&geo.label).trim_end().to_string();
    let u = fs.usage();
    let cluster = u64::from(u.cluster_bytes);
    format!(
        "label={label:?} size={}MiB cluster={} free={}MiB type={}{}",
        (u64::from(geo.total_sectors) * u64::from(geo.sector_size)) >> 20,
        u.cluster_bytes,
        (u64::from(u.free) * cluster) >> 20,
        fat_name(geo.kind),
        if fs.writable() { "" } else { " read-only" }
    )
}

/// A one-line description: label, size, block size, features, read-only reason.
pub fn describe<D: BlockDevice>(fs: &Ext4<D>) -> String {
    let sb = fs.superblock();
    let label = String::from_utf8_lossy(sb.volume_name.split(|&b| b == 0).next().unwrap_or(&[]))
        .into_owned();
    let st = fs.statfs();
    let ro = fs
        .read_only_reason()
        .map(|r| format!(" read-only ({r})"))
        .unwrap_or_default();
    format!(
        "label={label:?} size={}MiB block={} free={}MiB features={}{ro}",
        (st.blocks * u64::from(st.block_size)) >> 20,
        st.block_size,
        (st.free_blocks * u64::from(st.block_size)) >> 20,
        sb.feature_names().join(",")
    )
}

/// SHA-256 and size of a regular file, read through the engine in 1 MiB chunks.
pub fn checksum<D: BlockDevice>(fs: &mut Ext4<D>, ino: Ino) -> Result<(String, u64), String> {
    let attr = fs.getattr(ino).map_err(|e| format!("getattr: {e}"))?;
    let mut h = Sha256::new();
    let mut buf = alloc::vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < attr.size {
        let n = fs
            .read(ino, off, &mut buf)
            .map_err(|e| format!("read at {off}: {e}"))?;
        if n == 0 {
            return Err(format!("short read at {off} of {}", attr.size));
        }
        h.update(buf.get(..n).unwrap_or(&[]));
        off += n as u64;
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, attr.size))
}

/// Checksums every regular file under `dir` (depth-first, at most `limit` files). Returns
/// `(path, sha256, size)` sorted by path.
pub fn checksum_tree<D: BlockDevice>(
    fs: &mut Ext4<D>,
    dir: &str,
    limit: usize,
) -> Result<Vec<(String, String, u64)>, String> {
    let start = if dir == "/" {
        ROOT_INO
    } else {
        fs.lookup_path(dir.as_bytes())
            .map_err(|e| format!("{dir}: {e}"))?
    };
    let mut out = Vec::new();
    let mut stack: Vec<(Ino, String)> =
        alloc::vec![(start, String::from(dir.trim_end_matches('/')))];
    while let Some((ino, path)) = stack.pop() {
        let entries = fs.read_dir(ino).map_err(|e| format!("{path}: {e}"))?;
        for e in entries {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
            let kind = if e.kind == FileType::Unknown {
                fs.getattr(e.ino)
                    .map(|a| a.kind)
                    .unwrap_or(FileType::Unknown)
            } else {
                e.kind
            };
            match kind {
                FileType::Directory => stack.push((e.ino, p)),
                FileType::Regular => {
                    if out.len() >= limit {
                        return Err(format!("more than {limit} files under {dir}"));
                    }
                    let (sum, size) = checksum(fs, e.ino).map_err(|m| format!("{p}: {m}"))?;
                    out.push((p, sum, size));
                }
                _ => {}
            }
        }
    }
    out.sort();
    Ok(out)
}
