//! Engine tests on volumes formatted in memory (the acceptance tests in `tests/` use
//! mkfs.vfat, mtools and fsck.fat).
#![allow(clippy::unwrap_used, reason = "test code")]

use super::bpb::{self, FatType};
use super::*;
use crate::block::MemDisk;
use alloc::string::String;
use alloc::vec;

/// A blank volume of `sectors` 512-byte sectors with `spc` sectors per cluster, laid out
/// as mkfs.vfat lays it out (two FATs; FAT32 with FSInfo at sector 1).
fn format(kind: FatType, sectors: u32, spc: u8) -> Vec<u8> {
    let mut img = vec![0u8; sectors as usize * 512];
    let fat32 = kind == FatType::Fat32;
    let reserved: u32 = if fat32 { 32 } else { 1 };
    let root_entries: u32 = if fat32 { 0 } else { 512 };
    let root_sectors = root_entries * 32 / 512;
    let bits = match kind {
        FatType::Fat12 => 12,
        FatType::Fat16 => 16,
        FatType::Fat32 => 32,
    };
    let mut fat_sectors = 1u32;
    loop {
        let data = sectors - reserved - 2 * fat_sectors - root_sectors;
        let clusters = data / u32::from(spc);
        if (clusters + 2) * bits / 8 < fat_sectors * 512 {
            break;
        }
        fat_sectors += 1;
    }
    let b = &mut img[..512];
    b[0..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
    b[3..11].copy_from_slice(b"PVFSTEST");
    b[11..13].copy_from_slice(&512u16.to_le_bytes());
    b[13] = spc;
    b[14..16].copy_from_slice(&(reserved as u16).to_le_bytes());
    b[16] = 2;
    b[17..19].copy_from_slice(&(root_entries as u16).to_le_bytes());
    if sectors < 65536 && !fat32 {
        b[19..21].copy_from_slice(&(sectors as u16).to_le_bytes());
    } else {
        b[32..36].copy_from_slice(&sectors.to_le_bytes());
    }
    b[21] = 0xF8;
    if fat32 {
        b[36..40].copy_from_slice(&fat_sectors.to_le_bytes());
        b[44..48].copy_from_slice(&2u32.to_le_bytes());
        b[48..50].copy_from_slice(&1u16.to_le_bytes());
        b[66] = 0x29;
        b[71..82].copy_from_slice(b"PVFS       ");
    } else {
        b[22..24].copy_from_slice(&(fat_sectors as u16).to_le_bytes());
        b[38] = 0x29;
        b[43..54].copy_from_slice(b"PVFS       ");
    }
    b[510] = 0x55;
    b[511] = 0xAA;
    if fat32 {
        let f = &mut img[512..1024];
        f[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
        f[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
        f[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
    }
    for copy in 0..2 {
        let at = (reserved + copy * fat_sectors) as usize * 512;
        let t = &mut img[at..at + 12];
        match kind {
            FatType::Fat12 => t[..3].copy_from_slice(&[0xF8, 0xFF, 0xFF]),
            FatType::Fat16 => t[..4].copy_from_slice(&[0xF8, 0xFF, 0xFF, 0xFF]),
            FatType::Fat32 => {
                t[..4].copy_from_slice(&0x0FFF_FFF8u32.to_le_bytes());
                t[4..8].copy_from_slice(&0x0FFF_FFFFu32.to_le_bytes());
                t[8..12].copy_from_slice(&0x0FFF_FFFFu32.to_le_bytes());
            }
        }
    }
    let g = Geometry::parse(&img[..512]).unwrap();
    assert_eq!(g.kind, kind);
    if fat32 {
        let f = &mut img[512..1024];
        bpb::fsinfo_set(f, g.clusters - 1, 3);
    }
    img
}

fn clock() -> (i64, u32) {
    (1_700_000_000, 0)
}

fn mount(img: Vec<u8>) -> Fat<MemDisk<'static>> {
    let mut f = Fat::open(MemDisk::new(img), true).unwrap();
    f.set_now(clock());
    f
}

fn remount(f: Fat<MemDisk<'static>>) -> Fat<MemDisk<'static>> {
    let mut f = f;
    f.sync().unwrap();
    mount(f.into_device().into_vec().unwrap())
}

fn names(f: &mut Fat<MemDisk<'static>>, dir: Ino) -> Vec<String> {
    let mut out = Vec::new();
    f.readdir(dir, 0, &mut |l| {
        out.push(String::from_utf8(l.name.clone()).unwrap());
        true
    })
    .unwrap();
    out.sort();
    out
}

fn read_all(f: &mut Fat<MemDisk<'static>>, ino: Ino) -> Vec<u8> {
    let size = f.stat(ino).unwrap().size as usize;
    let mut buf = vec![0u8; size + 10];
    let n = f.read(ino, 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn kinds() -> [(FatType, u32, u8); 4] {
    [
        (FatType::Fat12, 4000, 1),
        (FatType::Fat16, 40_000, 2),
        (FatType::Fat32, 140_000, 1),
        (FatType::Fat32, 140_000, 8),
    ]
}

#[test]
fn files_directories_and_long_names_survive_a_remount() {
    for (kind, sectors, spc) in kinds() {
        let mut f = mount(format(kind, sectors, spc));
        let free0 = f.usage().free;
        let d = f
            .create(ROOT_INO, "Ünïcode dir with a long name".as_bytes(), true, 0)
            .unwrap();
        let a = f.create(d, b"README.TXT", false, 0).unwrap();
        let b = f.create(d, b"readme.txt.bak", false, 0).unwrap();
        let big = pattern(70_000, 3);
        assert_eq!(f.write(a, 0, b"hello").unwrap(), 5);
        f.write(b, 0, &big).unwrap();
        assert_eq!(f.create(d, b"readme.TXT", false, 0), Err(Error::Exists));
        assert_eq!(f.create(d, b"a:b", false, 0), Err(Error::InvalidName));
        // 8.3-colliding long names get distinct aliases.
        for i in 0..12 {
            let n = alloc::format!("collide name {i}.text");
            let x = f.create(d, n.as_bytes(), false, 0).unwrap();
            f.write(x, 0, n.as_bytes()).unwrap();
        }
        let mut f = remount(f);
        let d = f.lookup(ROOT_INO, "ünïcode DIR with a long name".as_bytes());
        // Case folding is ASCII only.
        assert_eq!(d, Err(Error::NotFound));
        let d = f
            .lookup(ROOT_INO, "Ünïcode dir with a long name".as_bytes())
            .unwrap();
        let listed = names(&mut f, d);
        assert_eq!(listed.len(), 14, "{kind:?}: {listed:?}");
        assert!(listed.contains(&String::from("readme.txt.bak")));
        let a = f.lookup(d, b"readme.txt").unwrap();
        assert_eq!(read_all(&mut f, a), b"hello");
        let b = f.lookup(d, b"readme.txt.bak").unwrap();
        assert_eq!(read_all(&mut f, b), big);
        for i in 0..12 {
            let n = alloc::format!("collide name {i}.text");
            let x = f.lookup(d, n.as_bytes()).unwrap();
            assert_eq!(read_all(&mut f, x), n.as_bytes());
        }
        let cb = u64::from(f.usage().cluster_bytes);
        let used = 1 + 1 + 70_000u64.div_ceil(cb) + 12;
        assert!(u64::from(free0 - f.usage().free) >= used, "{kind:?}");
        // Everything goes; the space comes back.
        for name in listed {
            f.unlink(d, name.as_bytes(), false).unwrap();
        }
        f.unlink(ROOT_INO, "Ünïcode dir with a long name".as_bytes(), true)
            .unwrap();
        assert_eq!(f.usage().free, free0, "{kind:?}");
        let f = remount(f);
        assert_eq!(f.usage().free, free0);
    }
}

#[test]
fn sparse_writes_truncate_and_reads_at_odd_offsets() {
    for (kind, sectors, spc) in kinds() {
        let mut f = mount(format(kind, sectors, spc));
        let free0 = f.usage().free;
        let x = f.create(ROOT_INO, b"x", false, 0).unwrap();
        f.write(x, 10_000, b"tail").unwrap();
        let mut want = vec![0u8; 10_000];
        want.extend_from_slice(b"tail");
        assert_eq!(read_all(&mut f, x), want);
        let mut buf = [0xAAu8; 7];
        assert_eq!(f.read(x, 9_998, &mut buf).unwrap(), 6);
        assert_eq!(&buf[..6], b"\0\0tail");
        f.truncate(x, 3).unwrap();
        assert_eq!(read_all(&mut f, x), [0, 0, 0]);
        f.truncate(x, 600).unwrap();
        assert_eq!(read_all(&mut f, x), vec![0u8; 600]);
        f.write(x, 1, b"abc").unwrap();
        f.truncate(x, 0).unwrap();
        assert_eq!(f.stat(x).unwrap().first_cluster, 0);
        assert_eq!(f.usage().free, free0, "{kind:?}");
        assert_eq!(f.write(x, MAX_FILE, b"a"), Err(Error::FileTooBig));
    }
}

#[test]
fn directories_grow_and_renames_move_entries() {
    for (kind, sectors, spc) in kinds() {
        let mut f = mount(format(kind, sectors, spc));
        let a = f.create(ROOT_INO, b"a", true, 0).unwrap();
        let b = f.create(ROOT_INO, b"b", true, 0).unwrap();
        for i in 0..150 {
            let n = alloc::format!("a rather long file name number {i:03}");
            f.create(a, n.as_bytes(), false, 0).unwrap();
        }
        assert!(f.stat(a).unwrap().clusters > 1);
        let x = f.lookup(a, b"a rather long file name number 007").unwrap();
        f.write(x, 0, b"seven").unwrap();
        f.rename(a, b"a rather long file name number 007", b, b"Seven")
            .unwrap();
        assert_eq!(
            f.lookup(b, b"seven").unwrap(),
            x,
            "the number follows the file"
        );
        f.rename(ROOT_INO, b"a", b, b"moved a").unwrap();
        assert_eq!(
            f.rename(ROOT_INO, b"b", a, b"loop"),
            Err(Error::Invalid {
                what: "a directory cannot move into itself",
            })
        );
        let y = f.lookup(a, b"a rather long file name number 008").unwrap();
        f.write(y, 0, b"eight").unwrap();
        // Replacing a file frees the old one.
        f.rename(a, b"a rather long file name number 008", b, b"seven")
            .unwrap();
        let mut f = remount(f);
        let b = f.lookup(ROOT_INO, b"b").unwrap();
        let s = f.lookup(b, b"SEVEN").unwrap();
        assert_eq!(read_all(&mut f, s), b"eight");
        let a = f.lookup(b, b"moved a").unwrap();
        assert_eq!(f.lookup(a, b"..").unwrap(), b);
        assert_eq!(names(&mut f, a).len(), 148);
        assert_eq!(f.unlink(ROOT_INO, b"b", true), Err(Error::NotEmpty));
        assert_eq!(f.unlink(b, b"seven", true), Err(Error::NotDir));
        assert_eq!(f.unlink(b, b"moved a", false), Err(Error::IsDir));
    }
}

#[test]
fn unlinked_retained_files_keep_their_clusters_until_released() {
    let mut f = mount(format(FatType::Fat16, 40_000, 4));
    let free0 = f.usage().free;
    let x = f.create(ROOT_INO, b"open file", false, 0).unwrap();
    f.write(x, 0, &pattern(5000, 1)).unwrap();
    f.retain(x);
    f.unlink(ROOT_INO, b"open file", false).unwrap();
    assert_eq!(f.lookup(ROOT_INO, b"open file"), Err(Error::NotFound));
    assert_eq!(read_all(&mut f, x), pattern(5000, 1));
    f.write(x, 5000, b"more").unwrap();
    assert!(f.usage().free < free0);
    f.release(x).unwrap();
    assert_eq!(f.usage().free, free0);
}

#[test]
fn fsinfo_is_unknown_while_changes_are_unsynced() {
    let mut f = mount(format(FatType::Fat32, 140_000, 1));
    let x = f.create(ROOT_INO, b"f", false, 0).unwrap();
    f.write(x, 0, &[1; 3000]).unwrap();
    let free = f.usage().free;
    let dev = f.into_device().into_vec().unwrap();
    assert_eq!(bpb::fsinfo_counts(&dev[512..1024]).0, bpb::FSINFO_UNKNOWN);
    let mut f = mount(dev);
    assert_eq!(f.usage().free, free);
    f.sync().unwrap();
    let dev = f.into_device().into_vec().unwrap();
    assert_eq!(bpb::fsinfo_counts(&dev[512..1024]).0, free);
}

#[test]
fn read_only_mounts_refuse_changes_and_hostile_boot_sectors_are_refused() {
    let img = format(FatType::Fat12, 4000, 1);
    let mut f = Fat::open(MemDisk::new(img.clone()), false).unwrap();
    assert_eq!(f.create(ROOT_INO, b"x", false, 0), Err(Error::ReadOnly));
    for (at, v) in [(11usize, 3u8), (13, 3), (16, 0), (14, 0), (510, 0)] {
        let mut bad = img.clone();
        bad[at] = v;
        if at == 14 {
            bad[15] = 0;
        }
        assert!(Fat::open(MemDisk::new(bad), false).is_err(), "byte {at}");
    }
    // A chain that loops is reported, not followed forever.
    let mut f = mount(img);
    let x = f.create(ROOT_INO, b"x", false, 0).unwrap();
    f.write(x, 0, &[7; 2048]).unwrap();
    let c = f.stat(x).unwrap().first_cluster;
    let mut img = f.into_device().into_vec().unwrap();
    // FAT12: point cluster c+1 back at c.
    let n = c + 1;
    let at = 512 + (n + n / 2) as usize;
    let cur = u16::from_le_bytes([img[at], img[at + 1]]);
    let v = if n & 1 == 1 {
        (cur & 0xF) | ((c as u16) << 4)
    } else {
        (cur & 0xF000) | c as u16
    };
    img[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let mut f = mount(img);
    let x = f.lookup(ROOT_INO, b"x").unwrap();
    let mut buf = vec![0u8; 4096];
    assert_eq!(
        f.read(x, 0, &mut buf).unwrap(),
        2048,
        "reads stop at the size"
    );
    assert!(matches!(
        f.unlink(ROOT_INO, b"x", false),
        Err(Error::Corrupt {
            what: "cluster chain loops",
            ..
        })
    ));
}
