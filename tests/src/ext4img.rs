//! ext4 test images: deterministic source trees generated at test time, images built from them
//! with `mkfs.ext4 -d` (and `-t ext2` / `-t ext3`), and a recursive tree comparison.
//!
//! Missing host tools (mkfs.ext4, e2fsck, setfattr, mknod) make the helpers panic with a clear
//! message: a test that needs them must fail, not silently pass. Generating a tree needs root
//! (it chowns files and creates device nodes); CI runs the tests as root.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh, empty temporary directory unique to this process and `name`. The first call in a
/// process also removes the directories left by test processes that no longer run.
pub fn tmpdir(name: &str) -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| {
        let Ok(rd) = fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for e in rd.flatten() {
            let n = e.file_name();
            let Some(rest) = n.to_str().and_then(|n| n.strip_prefix("pvfs-test-")) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    });
    let d = std::env::temp_dir().join(format!("pvfs-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Run a host command, panicking with its output if it fails or cannot start.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (install e2fsprogs/attr: ci/host-deps.sh)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `debugfs -w -R req img`: one change to the image, which must succeed.
pub fn debugfs_w(img: &Path, req: &str) {
    run(Command::new("debugfs").args(["-w", "-R", req]).arg(img));
}

/// Sets `img`'s default directory hash to `alg` (`tune2fs -E hash_alg=`) and its signedness
/// flag in `s_flags` (`debugfs ssv flags`: 1 signed, 2 unsigned).
pub fn set_dir_hash(img: &Path, alg: &str, sflag: u32) {
    run(Command::new("tune2fs")
        .args(["-E", &format!("hash_alg={alg}")])
        .arg(img));
    debugfs_w(img, &format!("ssv flags {sflag}"));
}

/// `e2fsck opts img` with `opts` one of the repairing forms (`-fy`; `-fyD`, which also indexes
/// and optimises every directory): exit 1 (it changed something) is expected, anything above
/// fails. Returns e2fsck's report (its standard output).
pub fn e2fsck_fix(img: &Path, opts: &str) -> String {
    let out = Command::new("e2fsck")
        .arg(opts)
        .arg(img)
        .output()
        .expect("e2fsck must be installed (ci/host-deps.sh)");
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "e2fsck {opts}: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The superblock summary `dumpe2fs -h img` prints.
pub fn dumpe2fs(img: &Path) -> String {
    let out = Command::new("dumpe2fs")
        .arg("-h")
        .arg(img)
        .output()
        .expect("dumpe2fs must be installed (ci/host-deps.sh)");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything `dumpe2fs img` prints: the superblock summary and every group.
pub fn dumpe2fs_groups(img: &Path) -> String {
    let out = Command::new("dumpe2fs")
        .arg(img)
        .output()
        .expect("dumpe2fs must be installed (ci/host-deps.sh)");
    assert!(out.status.success(), "dumpe2fs {}: {out:?}", img.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `resize2fs -f img blocks` (offline), with lazy inode tables as on a host whose kernel
/// initializes them. (Without a size it would round the file's size down to whole pages.)
pub fn resize2fs(img: &Path, blocks: u64) {
    run(Command::new("resize2fs")
        .env("RESIZE2FS_FORCE_LAZY_ITABLE_INIT", "1")
        .arg("-f")
        .arg(img)
        .arg(blocks.to_string()));
}

/// What of `dumpe2fs img` a grow decides: the superblock's counts and geometry, and every
/// group (its blocks, flags, bitmaps, inode table, free counts and checksums).
pub fn dumpe2fs_layout(img: &Path) -> Vec<String> {
    const KEYS: [&str; 12] = [
        "Filesystem features:",
        "First meta block group:",
        "Inode count:",
        "Block count:",
        "Reserved block count:",
        "Overhead clusters:",
        "Free blocks:",
        "Free inodes:",
        "Reserved GDT blocks:",
        "Blocks per group:",
        "Inodes per group:",
        "Flex block group size:",
    ];
    let dump = dumpe2fs_groups(img);
    let groups = dump.find("\nGroup 0:").expect("dumpe2fs lists groups");
    let head = dump[..groups]
        .lines()
        .filter(|l| KEYS.iter().any(|k| l.starts_with(k)))
        .map(String::from);
    head.chain(dump[groups..].lines().map(String::from))
        .collect()
}

/// Panics with the first differing lines unless two [`dumpe2fs_layout`]s are equal.
pub fn assert_same_layout(what: &str, ours: &[String], theirs: &[String]) {
    if ours != theirs {
        let diff: Vec<String> = ours
            .iter()
            .zip(theirs)
            .filter(|(a, b)| a != b)
            .take(12)
            .map(|(a, b)| format!("pvfs:      {a}\nresize2fs: {b}"))
            .collect();
        panic!(
            "{what}: dumpe2fs differs from resize2fs's ({} lines vs {}):\n{}",
            ours.len(),
            theirs.len(),
            diff.join("\n")
        );
    }
}

/// Small deterministic PRNG (xorshift64*), so trees are the same on every run.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// What to put in a generated tree.
#[derive(Debug, Clone, Copy)]
pub struct TreeSpec {
    /// Files spread over subdirectories of `many/`.
    pub many_files: usize,
    /// Entries in the single directory `big/` (≥ 10 000 for a multi-level htree).
    pub big_dir: usize,
    /// Include `sparse/huge` (a sparse file larger than 4 GiB).
    pub huge_sparse: bool,
    /// Set xattrs with `setfattr`.
    pub xattrs: bool,
    /// End `sparse/holes` with a hole (mkfs.ext4 1.47 `-O inline_data` drops trailing holes).
    pub trailing_hole: bool,
}

impl TreeSpec {
    /// Every feature, with sizes for the shared "full" image.
    pub const FULL: TreeSpec = TreeSpec {
        many_files: 3000,
        big_dir: 10_500,
        huge_sparse: true,
        xattrs: true,
        trailing_hole: true,
    };
    /// Everything but the bulk directories (a 600-entry directory still gets an htree).
    pub const SMALL: TreeSpec = TreeSpec {
        many_files: 0,
        big_dir: 600,
        huge_sparse: true,
        xattrs: true,
        trailing_hole: true,
    };
}

/// Number of one-block data islands in `sparse/islands` (one every three 4 KiB blocks).
pub const ISLANDS: u64 = 400;

/// Size of `sparse/huge`.
pub const HUGE_SIZE: u64 = 5 * (1 << 30) + 12345;

/// xattrs the generator sets: (path relative to the root, name, value).
pub fn expected_xattrs() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    vec![
        ("files/small.txt", "user.comment", b"hello xattr".to_vec()),
        ("files/small.txt", "user.empty", Vec::new()),
        ("files/4097.bin", "user.big", Rng::new(77).bytes(900)),
        ("files/4097.bin", "user.second", b"2".to_vec()),
        ("deep", "user.dir", b"on a directory".to_vec()),
        ("files/acl", "system.posix_acl_access", posix_acl()),
    ]
}

/// An access ACL in the Linux xattr form: u::rw-, u:1000:r--, g::r--, m::r--, o::---.
pub fn posix_acl() -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 6u16, u32::MAX),
        (2, 4, 1000),
        (4, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

/// Generate the source tree at `root` (which must not exist).
pub fn gen_tree(root: &Path, spec: TreeSpec) {
    fs::create_dir_all(root).unwrap();
    let mut rng = Rng::new(0x5eed);
    let files = root.join("files");
    fs::create_dir(&files).unwrap();
    fs::write(files.join("small.txt"), b"hello, ext4\n").unwrap();
    fs::write(files.join("empty"), b"").unwrap();
    fs::write(files.join("acl"), b"has an ACL").unwrap();
    for (name, size) in [
        ("1.bin", 1usize),
        ("59.bin", 59),
        ("61.bin", 61),
        ("4095.bin", 4095),
        ("4096.bin", 4096),
        ("4097.bin", 4097),
        ("65659.bin", 65_659),
        ("1m7.bin", (1 << 20) + 7),
        ("3m.bin", 3 << 20),
    ] {
        fs::write(files.join(name), rng.bytes(size)).unwrap();
    }
    // Modes and owners.
    let modes = root.join("modes");
    fs::create_dir(&modes).unwrap();
    for (name, mode, uid, gid) in [
        ("private", 0o600, 1234, 5678),
        ("exec", 0o755, 0, 0),
        ("setuid", 0o4755, 1000, 1000),
        ("weird", 0o7001, 65534, 70000),
    ] {
        let p = modes.join(name);
        fs::write(&p, name.as_bytes()).unwrap();
        // chown clears set-id bits, so it goes first.
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
    let sticky = modes.join("sticky-dir");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    // Deep paths.
    let mut deep = root.join("deep");
    for i in 0..40 {
        deep = deep.join(format!("level{i:02}"));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom.txt"), b"at the bottom\n").unwrap();
    // Names.
    let names = root.join("names");
    fs::create_dir(&names).unwrap();
    fs::write(names.join("a".repeat(255)), b"255").unwrap();
    let utf8_255: String = "é".repeat(127) + "x"; // 255 bytes
    fs::write(names.join(&utf8_255), b"utf8-255").unwrap();
    for n in [
        "héllo wörld",
        "日本語のファイル名",
        "emoji-🦀",
        "sp ace",
        "-dash",
        ".hidden",
    ] {
        fs::write(names.join(n), n.as_bytes()).unwrap();
    }
    fs::write(
        names.join(OsStr::from_bytes(b"latin1-\xe9\xff")),
        b"non-utf8",
    )
    .unwrap();
    // Symlinks.
    let links = root.join("links");
    fs::create_dir(&links).unwrap();
    std::os::unix::fs::symlink("../files/small.txt", links.join("short")).unwrap();
    std::os::unix::fs::symlink("x".repeat(59), links.join("len59")).unwrap();
    std::os::unix::fs::symlink("y".repeat(60), links.join("len60")).unwrap();
    let long: String = (0..40)
        .map(|i| format!("component{i:02}/"))
        .collect::<String>()
        + "end";
    std::os::unix::fs::symlink(&long, links.join("long")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/dangling", links.join("dangling")).unwrap();
    std::os::unix::fs::symlink("../deep", links.join("to-dir")).unwrap();
    // Sparse files.
    let sparse = root.join("sparse");
    fs::create_dir(&sparse).unwrap();
    {
        let mut f = fs::File::create(sparse.join("holes")).unwrap();
        f.write_all(&rng.bytes(5000)).unwrap();
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.write_all(&rng.bytes(10_000)).unwrap();
        f.seek(SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(b"tail data").unwrap();
        if spec.trailing_hole {
            f.set_len((8 << 20) + 3).unwrap();
        }
        let f = fs::File::create(sparse.join("all-hole")).unwrap();
        f.set_len(100_000).unwrap();
    }
    {
        // Many small data islands: enough extents for a depth-2 tree with 1 KiB blocks.
        let mut f = fs::File::create(sparse.join("islands")).unwrap();
        for i in 0..ISLANDS {
            f.seek(SeekFrom::Start(i * 3 * 4096)).unwrap();
            f.write_all(&rng.bytes(4096)).unwrap();
        }
    }
    if spec.huge_sparse {
        let mut f = fs::File::create(sparse.join("huge")).unwrap();
        f.write_all(b"start of a huge file").unwrap();
        f.seek(SeekFrom::Start((1 << 32) - 10)).unwrap();
        f.write_all(b"across-the-4GiB-boundary").unwrap();
        f.seek(SeekFrom::Start(HUGE_SIZE - 7)).unwrap();
        f.write_all(b"the end").unwrap();
    }
    // Special files (`pvfs image get` skips them; the engine reports their type and rdev).
    let special = root.join("special");
    fs::create_dir(&special).unwrap();
    run(Command::new("mkfifo").arg(special.join("fifo")));
    run(Command::new("mknod")
        .arg(special.join("null"))
        .args(["c", "1", "3"]));
    run(Command::new("mknod")
        .arg(special.join("bigminor"))
        .args(["b", "259", "70000"]));
    // Hard links.
    let hl = root.join("hardlinks");
    fs::create_dir(&hl).unwrap();
    fs::write(hl.join("original"), b"linked content\n").unwrap();
    fs::hard_link(hl.join("original"), hl.join("second")).unwrap();
    fs::hard_link(hl.join("original"), files.join("third-link")).unwrap();
    // Specific timestamps (with nanoseconds, and before 1970).
    let times = root.join("times");
    fs::create_dir(&times).unwrap();
    for (name, sec, nsec) in [
        ("ns", 1_600_000_000i64, 123_456_789u32),
        ("old", -86_400 * 365, 5),
    ] {
        let p = times.join(name);
        fs::write(&p, name).unwrap();
        let t = std::time::UNIX_EPOCH.checked_add_signed_compat(sec, nsec);
        let f = fs::File::options().write(true).open(&p).unwrap();
        f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    }
    // Bulk.
    if spec.many_files > 0 {
        let many = root.join("many");
        for i in 0..spec.many_files {
            let d = many.join(format!("d{:02}", i % 50));
            if i < 50 {
                fs::create_dir_all(&d).unwrap();
            }
            let len = (rng.next_u64() % 3000) as usize;
            fs::write(d.join(format!("f{i:05}")), rng.bytes(len)).unwrap();
        }
    }
    if spec.big_dir > 0 {
        let big = root.join("big");
        fs::create_dir(&big).unwrap();
        for i in 0..spec.big_dir {
            let pad = "n".repeat((i * 7) % 40);
            fs::write(big.join(format!("entry-{i:06}-{pad}")), i.to_string()).unwrap();
        }
    }
    if spec.xattrs {
        for (p, name, value) in expected_xattrs() {
            let mut cmd = Command::new("setfattr");
            cmd.arg("-n").arg(name);
            if !value.is_empty() {
                let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
                cmd.arg("-v").arg(format!("0x{hex}"));
            }
            run(cmd.arg(root.join(p)));
        }
    }
    // The symlink mtimes are set last, after everything else was created.
    let p = links.join("short");
    run(Command::new("touch")
        .args(["-h", "-d", "@1500000000.5"])
        .arg(&p));
}

trait AddSigned {
    fn checked_add_signed_compat(self, sec: i64, nsec: u32) -> std::time::SystemTime;
}

impl AddSigned for std::time::SystemTime {
    fn checked_add_signed_compat(self, sec: i64, nsec: u32) -> std::time::SystemTime {
        if sec >= 0 {
            self + std::time::Duration::new(sec as u64, nsec)
        } else {
            self - std::time::Duration::from_secs(sec.unsigned_abs())
                + std::time::Duration::from_nanos(u64::from(nsec))
        }
    }
}

/// An image layout to build with mkfs.
#[derive(Debug, Clone)]
pub struct ImageKind {
    /// Short name (used in file names and messages).
    pub name: &'static str,
    /// `-t` type: ext2, ext3 or ext4.
    pub fs_type: &'static str,
    /// Block size.
    pub block_size: u32,
    /// Extra mkfs arguments (e.g. `-O ^metadata_csum`).
    pub extra: &'static [&'static str],
}

/// Build `image` from `tree` with mkfs. `size_mib` is the image size.
pub fn mkfs(kind: &ImageKind, tree: &Path, image: &Path, size_mib: u64, inodes: u32) {
    let _ = fs::remove_file(image);
    let f = fs::File::create(image).unwrap();
    f.set_len(size_mib << 20).unwrap();
    drop(f);
    let mut cmd = Command::new("mkfs.ext4");
    cmd.env("MKE2FS_CONFIG", "/etc/mke2fs.conf")
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .args([
            "-q",
            "-F",
            "-t",
            kind.fs_type,
            "-b",
            &kind.block_size.to_string(),
        ])
        .args([
            "-N",
            &inodes.to_string(),
            "-U",
            "01234567-89ab-cdef-0123-456789abcdef",
        ])
        .args(["-E", "hash_seed=fedcba98-7654-3210-fedc-ba9876543210"])
        .args(kind.extra)
        .arg("-d")
        .arg(tree)
        .arg(image);
    run(&mut cmd);
    // mkfs -d writes linear directories; `e2fsck -D` re-packs them, building htree indexes for
    // the large ones (exit status 1 = "file system modified").
    let st = Command::new("e2fsck")
        .args(["-fyD"])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        matches!(st.status.code(), Some(0 | 1)),
        "e2fsck -fyD: {st:?}"
    );
    // The image must be clean for e2fsck.
    run(Command::new("e2fsck").args(["-fn"]).arg(image));
}

/// Every path in `root` (relative, as bytes), with its `symlink_metadata`, sorted.
pub fn walk(root: &Path) -> BTreeMap<Vec<u8>, fs::Metadata> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = root.join(&rel);
        for e in fs::read_dir(&abs).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let md = fs::symlink_metadata(root.join(&r)).unwrap();
            if md.is_dir() {
                stack.push(r.clone());
            }
            out.insert(r.as_os_str().as_bytes().to_vec(), md);
        }
    }
    out
}

/// Compare two host trees (special files in `a` are ignored): same paths, types, modes, sizes, uid/gid, mtimes (seconds, and
/// nanoseconds when `ns`: mkfs.ext4 -d 1.47 drops them), link
/// targets, contents (sparse files compared by data runs via reads, not byte-by-byte beyond
/// 64 MiB), and hard-link groups. Returns the number of paths compared.
pub fn compare_trees(a: &Path, b: &Path, ns: bool) -> usize {
    let mut wa = walk(a);
    // Device nodes, FIFOs and sockets are not copied by `pvfs image get`.
    wa.retain(|_, m| m.is_dir() || m.is_file() || m.file_type().is_symlink());
    let wb = walk(b);
    let ka: Vec<_> = wa.keys().collect();
    let kb: Vec<_> = wb.keys().collect();
    assert_eq!(
        ka.len(),
        kb.len(),
        "different number of paths in {a:?} and {b:?}"
    );
    assert_eq!(ka, kb, "different paths");
    let mut groups_a: BTreeMap<u64, Vec<&Vec<u8>>> = BTreeMap::new();
    let mut groups_b: BTreeMap<u64, Vec<&Vec<u8>>> = BTreeMap::new();
    for (p, ma) in &wa {
        let mb = &wb[p];
        let show = String::from_utf8_lossy(p);
        assert_eq!(ma.mode(), mb.mode(), "mode of {show}");
        assert_eq!(ma.uid(), mb.uid(), "uid of {show}");
        assert_eq!(ma.gid(), mb.gid(), "gid of {show}");
        if !ma.is_dir() {
            assert_eq!(ma.len(), mb.len(), "size of {show}");
            assert_eq!(ma.nlink(), mb.nlink(), "nlink of {show}");
            if ma.nlink() > 1 {
                groups_a.entry(ma.ino()).or_default().push(p);
                groups_b.entry(mb.ino()).or_default().push(p);
            }
        }
        assert_eq!(ma.mtime(), mb.mtime(), "mtime of {show}");
        if ns {
            assert_eq!(ma.mtime_nsec(), mb.mtime_nsec(), "mtime ns of {show}");
        }
        let pa = a.join(OsStr::from_bytes(p));
        let pb = b.join(OsStr::from_bytes(p));
        if ma.file_type().is_symlink() {
            assert_eq!(
                fs::read_link(&pa).unwrap(),
                fs::read_link(&pb).unwrap(),
                "target of {show}"
            );
        } else if ma.is_file() {
            compare_contents(&pa, &pb, ma.len(), &show);
        }
    }
    let mut ga: Vec<_> = groups_a.into_values().collect();
    let mut gb: Vec<_> = groups_b.into_values().collect();
    ga.sort();
    gb.sort();
    assert_eq!(ga, gb, "hard-link groups differ");
    wa.len()
}

fn compare_contents(a: &Path, b: &Path, len: u64, show: &str) {
    if len <= 64 << 20 {
        assert!(
            fs::read(a).unwrap() == fs::read(b).unwrap(),
            "content of {show}"
        );
        return;
    }
    // Large sparse files: compare windows around every MiB boundary that has data in either.
    let mut fa = fs::File::open(a).unwrap();
    let mut fb = fs::File::open(b).unwrap();
    for off in sample_offsets(len) {
        let mut ba = vec![0u8; 8192];
        let mut bb = vec![0u8; 8192];
        let na = read_at(&mut fa, off, &mut ba);
        let nb = read_at(&mut fb, off, &mut bb);
        assert_eq!(na, nb);
        assert!(ba == bb, "content of {show} at {off}");
    }
    let ma = fs::metadata(a).unwrap();
    let mb = fs::metadata(b).unwrap();
    assert!(
        mb.blocks() * 512 < 64 << 20,
        "{show} is not sparse in the copy ({} blocks)",
        mb.blocks()
    );
    assert!(ma.blocks() * 512 < 64 << 20);
}

/// Offsets at which large sparse files are sampled (covers the data `gen_tree` writes).
pub fn sample_offsets(len: u64) -> Vec<u64> {
    let mut v = vec![0, 1 << 20, (1 << 32) - 4096, (1 << 32) - 8192, 1 << 32];
    v.push(len.saturating_sub(8192));
    v.push(len / 2);
    v.retain(|&o| o < len);
    v
}

fn read_at(f: &mut fs::File, off: u64, buf: &mut [u8]) -> usize {
    use std::io::Read;
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..]).unwrap();
        if r == 0 {
            break;
        }
        n += r;
    }
    n
}
