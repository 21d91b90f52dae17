//! Interop with an independent 9P client (diod's `diodls` / `diodcat`) against the real
//! `pvfs serve` binary serving an ext4 image made by `mkfs.ext4 -d`; plus our own client
//! against the binary (RAM export, aname selection, clean shutdown).
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_tests::p9client::{o, require_tool, temp_dir, Client, ServeProcess};
use pvfs_tests::wimg::mkfs_sized;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn diod_tool(name: &str) -> PathBuf {
    require_tool(name);
    for d in ["/usr/sbin", "/usr/bin", "/sbin"] {
        let p = Path::new(d).join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn content(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// Builds the source tree; returns it.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::create_dir_all(root.join("many")).unwrap();
    let sizes = [0usize, 1, 4095, 4096, 4097, 100_000, 1_000_001];
    for (i, s) in sizes.iter().enumerate() {
        std::fs::write(root.join(format!("f{s}")), content(i as u32, *s)).unwrap();
    }
    std::fs::write(root.join("a/b/c/deep.txt"), b"deep file\n").unwrap();
    std::fs::write(root.join("a/mid.bin"), content(99, 70_000)).unwrap();
    for i in 0..300 {
        std::fs::write(
            root.join(format!("many/entry-with-a-longish-name-{i:04}")),
            format!("{i}\n"),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("f4096", root.join("link")).unwrap();
}

fn make_image(dir: &Path) -> (PathBuf, PathBuf) {
    require_tool("mkfs.ext4");
    let src = dir.join("src");
    make_tree(&src);
    let img = dir.join("img.ext4");
    mkfs_sized(&img, "16M", &["-d", src.to_str().unwrap()]);
    (src, img)
}

/// `diodls -l DIR` parsed into name -> (type char, size).
fn diodls(server: &str, aname: &str, dir: &str) -> BTreeMap<String, (char, u64)> {
    let out = diod_run("diodls", &["-s", server, "-a", aname, "-l", dir]);
    let mut m = BTreeMap::new();
    for line in String::from_utf8(out).unwrap().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(f.len() >= 9, "unexpected diodls line {line:?}");
        let name = f[8..].join(" ");
        let ty = f[0].chars().next().unwrap();
        m.insert(name, (ty, f[4].parse().unwrap()));
    }
    m
}

fn diodcat(server: &str, aname: &str, file: &str) -> Vec<u8> {
    diod_run("diodcat", &["-s", server, "-a", aname, file])
}

/// The standard output of diod's client tool `tool` run with `args`, which must succeed.
fn diod_run(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(diod_tool(tool)).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Expected listing of `dir` in the source tree, in diodls terms.
fn expected(dir: &Path) -> BTreeMap<String, (char, u64)> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let ty = if md.is_dir() { 'd' } else { '-' };
        let size = if md.is_dir() { 0 } else { md.len() };
        m.insert(e.file_name().into_string().unwrap(), (ty, size));
    }
    m
}

fn compare_dir(server: &str, src: &Path, rel: &str) {
    let mut got = diodls(server, "/", &format!("/{rel}"));
    for n in [".", "..", "lost+found"] {
        got.remove(n);
    }
    let want = expected(&src.join(rel));
    let strip = |m: &BTreeMap<String, (char, u64)>| -> BTreeMap<String, (char, u64)> {
        // Directory sizes are the filesystem's own; symlink type letters differ by client.
        m.iter()
            .map(|(k, (t, s))| {
                (
                    k.clone(),
                    (
                        if *t == 'd' { 'd' } else { '-' },
                        if *t == 'd' { 0 } else { *s },
                    ),
                )
            })
            .collect()
    };
    assert_eq!(strip(&got), strip(&want), "listing of /{rel}");
}

#[test]
fn diod_clients_read_ext4_image() {
    let dir = temp_dir("diod-interop");
    let (src, img) = make_image(&dir);
    let mut srv = ServeProcess::start(
        &["--image", img.to_str().unwrap(), "--read-only"],
        &dir.join("serve.log"),
    );
    let s = srv.host_port.clone();
    for rel in ["", "a", "a/b", "a/b/c", "many"] {
        compare_dir(&s, &src, rel);
    }
    // Every regular file's bytes match.
    let mut files = vec![];
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            files.push(e.file_name().into_string().unwrap());
        }
    }
    files.extend([
        "a/mid.bin".to_string(),
        "a/b/c/deep.txt".into(),
        "many/entry-with-a-longish-name-0123".into(),
    ]);
    for f in &files {
        let got = diodcat(&s, "/", f);
        let want = std::fs::read(src.join(f)).unwrap();
        assert!(
            got == want,
            "contents of {f}: got {} bytes, want {}",
            got.len(),
            want.len()
        );
    }
    // The attach name selects a directory inside the export.
    assert_eq!(diodcat(&s, "/a/b", "c/deep.txt"), b"deep file\n");
    // The image is served read-only (--read-only); the log says so and has one line per
    // connection.
    assert!(srv.terminate(), "clean exit on SIGTERM");
    let log = std::fs::read_to_string(&srv.log).unwrap();
    assert!(log.contains("read-only"), "{log}");
    assert!(log.contains("shut down"), "{log}");
    let conns = log
        .lines()
        .filter(|l| l.contains("connection from"))
        .count();
    // diodls x5, diodcat per file, the aname diodcat, and the readiness probe.
    assert_eq!(conns, 5 + files.len() + 1 + 1, "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn own_client_against_serve_binary() {
    let dir = temp_dir("serve-bin");
    let (src, img) = make_image(&dir);
    // ext4 image with --export: confined to the subtree, read-write.
    let mut srv = ServeProcess::start(
        &["--image", img.to_str().unwrap(), "--export", "/a"],
        &dir.join("serve-ext4.log"),
    );
    let mut c = Client::mount(&srv.addr, 65536, "/");
    let q = c.walk(0, 1, &["..", "..", "mid.bin"]).unwrap();
    assert_eq!(q.len(), 3, "'..' at the export root stays there");
    c.lopen(1, o::RDONLY).unwrap();
    assert_eq!(
        c.read_all(1, 8192).unwrap(),
        std::fs::read(src.join("a/mid.bin")).unwrap()
    );
    c.walk(0, 2, &[]).unwrap();
    c.lcreate(2, "new", o::RDWR, 0o644, 0).unwrap();
    c.write(2, 0, b"written over 9P\n").unwrap();
    c.clunk(2).unwrap();
    let s = c.statfs(0).unwrap();
    assert_eq!(s.ty, 0xEF53);
    c.walk(0, 3, &["b", "c"]).unwrap();
    c.lopen(3, o::RDONLY).unwrap();
    let names = c.readdir_names(3).unwrap();
    assert!(names.contains(&b"deep.txt".to_vec()), "{names:?}");
    assert!(srv.terminate());
    // SIGTERM synced the image and marked it clean; the new file is inside the export.
    let log = std::fs::read_to_string(&srv.log).unwrap();
    assert!(
        log.contains("read-write") && log.contains("closed cleanly"),
        "{log}"
    );
    pvfs_tests::wimg::e2fsck_clean(&img);
    assert_eq!(
        pvfs_tests::wimg::debugfs(&img, "cat /a/new"),
        b"written over 9P\n"
    );

    // --read-only: every change refused with EROFS.
    let mut srv = ServeProcess::start(
        &["--image", img.to_str().unwrap(), "--read-only"],
        &dir.join("serve-ro.log"),
    );
    let mut c = Client::mount(&srv.addr, 65536, "/");
    c.walk(0, 2, &[]).unwrap();
    assert_eq!(c.lcreate(2, "new2", o::RDWR, 0o644, 0), Err(30), "EROFS");
    assert!(srv.terminate());

    // RAM export: read-write.
    let mut srv = ServeProcess::start(&["--memfs"], &dir.join("serve-mem.log"));
    let mut c = Client::mount(&srv.addr, 8192, "");
    c.walk(0, 1, &[]).unwrap();
    c.lcreate(1, "hello", o::RDWR, 0o644, 0).unwrap();
    c.write(1, 0, b"hello over a real socket").unwrap();
    c.clunk(1).unwrap();
    c.walk(0, 1, &["hello"]).unwrap();
    c.lopen(1, o::RDONLY).unwrap();
    assert_eq!(c.read_all(1, 5).unwrap(), b"hello over a real socket");
    assert!(srv.terminate());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_on_unix_socket_and_sigint() {
    let dir = temp_dir("serve-unix");
    let sock = dir.join("9p.sock");
    let log = dir.join("serve.log");
    let mut child = Command::new(pvfs_tests::p9client::pvfs_bin())
        .args(["serve", "--memfs", "--listen"])
        .arg(format!("unix:{}", sock.display()))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..800 {
        if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(
        up,
        "no unix socket: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let mut c = Client::mount(&format!("unix:{}", sock.display()), 8192, "/");
    c.mkdir(0, "dir", 0o755, 0).unwrap();
    c.walk(0, 1, &["dir"]).unwrap();
    c.lopen(1, o::RDONLY).unwrap();
    let names = c.readdir_names(1).unwrap();
    assert_eq!(names, [b".".to_vec(), b"..".to_vec()]);
    drop(c);
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success(), "clean exit on SIGINT");
    assert!(!sock.exists(), "socket file removed on shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
