//! `pvfs image …` on FAT12/16/32 images, through pvfs's FAT engine: the same commands, output
//! formats and error messages as on ext4 (`docs/pvfs-image.md`, "FAT images"), with what FAT
//! cannot store refused as Linux's vfat refuses it. Owners and modes are vfat's defaults
//! (uid 0, gid 0, `rwxr-xr-x`; no write bits with the read-only attribute).

use crate::edit::{parse_size, EditCmd};
use crate::image::{escape, fmt_time, mode_string, ImageCmd};
use pvfs_fs::block::FileDisk;
use pvfs_fs::ext4::Timestamp;
use pvfs_fs::fat::{attr, bpb::FatType, Error, Fat, Ino, Stat, ROOT_INO};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

type Fs = Fat<FileDisk>;

/// Whether `image` holds a FAT file system (and not ext4).
pub fn is_fat(image: &Path) -> bool {
    let mut head = vec![0u8; 2048];
    let Ok(mut f) = std::fs::File::open(image) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let ext4 = n >= 1082 && head[1080..1082] == [0x53, 0xEF];
    n >= 512 && !ext4 && pvfs_fs::fat::probe(&head[..512])
}

fn emsg(e: &Error) -> String {
    e.to_string()
}

fn open(image: &Path, writable: bool) -> Result<Fs, String> {
    let disk = if writable {
        FileDisk::open_rw(image)
    } else {
        FileDisk::open(image)
    }
    .map_err(|e| format!("{}: {e}", image.display()))?;
    let mut fs =
        Fat::open(disk, writable).map_err(|e| format!("{}: {}", image.display(), emsg(&e)))?;
    fs.set_now(now());
    Ok(fs)
}

fn now() -> (i64, u32) {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(_) => (0, 0),
    }
}

/// Open `image` read-write, run `f`, and write everything back whatever `f` returned.
fn with_image<T>(image: &Path, f: impl FnOnce(&mut Fs) -> Result<T, String>) -> Result<T, String> {
    let mut fs = open(image, true)?;
    let r = f(&mut fs);
    let synced = fs
        .sync()
        .map_err(|e| format!("{}: writing back: {}", image.display(), emsg(&e)));
    match (r, synced) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), Ok(())) => Err(e),
        (Ok(_), Err(c)) => Err(c),
        (Err(e), Err(c)) => Err(format!("{e} (and {c})")),
    }
}

fn lookup_path(fs: &mut Fs, path: &str) -> Result<Ino, Error> {
    let mut ino = ROOT_INO;
    for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        ino = fs.lookup(ino, c.as_bytes())?;
    }
    Ok(ino)
}

fn resolve(fs: &mut Fs, path: &str) -> Result<Ino, String> {
    lookup_path(fs, path).map_err(|e| format!("{path}: {}", emsg(&e)))
}

fn mode_of(s: &Stat) -> u16 {
    if s.dir {
        0o040_755
    } else if s.attr & attr::READ_ONLY != 0 {
        0o100_555
    } else {
        0o100_755
    }
}

fn stamp((sec, nsec): (i64, u32)) -> Timestamp {
    Timestamp { sec, nsec }
}

fn long_line(s: &Stat, name: &[u8]) -> String {
    format!(
        "{} 1 0 0 {} {} {}\n",
        mode_string(mode_of(s)),
        s.size,
        fmt_time(stamp(s.mtime)),
        escape(name)
    )
}

fn list(fs: &mut Fs, dir: Ino) -> Result<Vec<(Ino, Vec<u8>, bool)>, Error> {
    let mut out = Vec::new();
    fs.readdir(dir, 0, &mut |l| {
        out.push((l.ino, l.name.clone(), l.dir));
        true
    })?;
    Ok(out)
}

fn ls(fs: &mut Fs, path: &str, long: bool) -> Result<String, String> {
    let ino = resolve(fs, path)?;
    let s = fs.stat(ino).map_err(|e| format!("{path}: {}", emsg(&e)))?;
    if !s.dir {
        let name = path.rsplit('/').next().unwrap_or(path);
        return Ok(if long {
            long_line(&s, name.as_bytes())
        } else {
            format!("{}\n", escape(name.as_bytes()))
        });
    }
    let mut entries = list(fs, ino).map_err(|e| format!("{path}: {}", emsg(&e)))?;
    entries.sort_by(|x, y| x.1.cmp(&y.1));
    let mut text = String::new();
    for (ino, name, _) in entries {
        if long {
            let s = fs
                .stat(ino)
                .map_err(|e| format!("{path}/{}: {}", escape(&name), emsg(&e)))?;
            text.push_str(&long_line(&s, &name));
        } else {
            text.push_str(&escape(&name));
            text.push('\n');
        }
    }
    Ok(text)
}

fn time_field(t: (i64, u32)) -> String {
    format!("{} ({}.{:09})", fmt_time(stamp(t)), t.0, t.1)
}

fn stat(fs: &mut Fs, path: &str) -> Result<String, String> {
    let ino = resolve(fs, path)?;
    let s = fs.stat(ino).map_err(|e| format!("{path}: {}", emsg(&e)))?;
    let m = mode_of(&s);
    let mut attrs = Vec::new();
    for (bit, name) in [
        (attr::READ_ONLY, "read-only"),
        (attr::HIDDEN, "hidden"),
        (attr::SYSTEM, "system"),
        (attr::ARCHIVE, "archive"),
    ] {
        if s.attr & bit != 0 {
            attrs.push(name);
        }
    }
    Ok(format!(
        "path: {path}\ninode: {ino}\ntype: {}\nmode: {:04o} ({})\nlinks: 1\nuid: 0\ngid: 0\nsize: {}\nblocks: {}\natime: {}\nmtime: {}\nctime: {}\ncrtime: {}\nattributes: {}\nfirst cluster: {}\n",
        if s.dir { "directory" } else { "regular file" },
        m & 0o7777,
        mode_string(m),
        s.size,
        s.clusters * u64::from(fs.usage().cluster_bytes / 512),
        time_field(s.atime),
        time_field(s.mtime),
        time_field(s.mtime),
        time_field(s.crtime),
        attrs.join(" "),
        s.first_cluster,
    ))
}

fn info(fs: &Fs) -> String {
    let g = fs.geometry();
    let u = fs.usage();
    let kind = match g.kind {
        FatType::Fat12 => "FAT12",
        FatType::Fat16 => "FAT16",
        FatType::Fat32 => "FAT32",
    };
    let label = String::from_utf8_lossy(&g.label).trim_end().to_string();
    format!(
        "volume: {label}\nvolume id: {:04X}-{:04X}\nfat type: {kind}\nsector size: {}\ncluster size: {}\nclusters: {}\nfree clusters: {}\nfats: {}\nsectors per fat: {}\nreserved sectors: {}\nroot entries: {}\nsectors: {}\n",
        g.volume_id >> 16,
        g.volume_id & 0xFFFF,
        g.sector_size,
        u.cluster_bytes,
        u.clusters,
        u.free,
        g.fats,
        g.fat_sectors,
        g.reserved,
        g.root_entries,
        g.total_sectors,
    )
}

/// Copies `path` out to host `dest` (which must not exist).
fn get(fs: &mut Fs, path: &str, dest: &Path) -> Result<(u64, u64, u64), String> {
    if std::fs::symlink_metadata(dest).is_ok() {
        return Err(format!("{}: exists", dest.display()));
    }
    let ino = resolve(fs, path)?;
    let mut counts = (0u64, 0u64, 0u64);
    copy_out(fs, ino, path, dest, &mut counts)?;
    Ok(counts)
}

fn copy_out(
    fs: &mut Fs,
    ino: Ino,
    shown: &str,
    dest: &Path,
    counts: &mut (u64, u64, u64),
) -> Result<(), String> {
    let s = fs.stat(ino).map_err(|e| format!("{shown}: {}", emsg(&e)))?;
    let io = |e: std::io::Error| format!("{}: {e}", dest.display());
    if s.dir {
        std::fs::create_dir(dest).map_err(io)?;
        counts.1 += 1;
        for (child, name, _) in list(fs, ino).map_err(|e| format!("{shown}: {}", emsg(&e)))? {
            let sub = dest.join(std::ffi::OsStr::from_bytes(&name));
            let shown = format!(
                "{}/{}",
                shown.trim_end_matches('/'),
                String::from_utf8_lossy(&name)
            );
            copy_out(fs, child, &shown, &sub, counts)?;
        }
    } else {
        let mut f = std::fs::File::create(dest).map_err(io)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        loop {
            let n = fs
                .read(ino, off, &mut buf)
                .map_err(|e| format!("{shown}: {}", emsg(&e)))?;
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n]).map_err(io)?;
            off += n as u64;
        }
        counts.0 += 1;
        counts.2 += off;
        if s.attr & attr::READ_ONLY != 0 {
            let mut p = f.metadata().map_err(io)?.permissions();
            p.set_readonly(true);
            std::fs::set_permissions(dest, p).map_err(io)?;
        }
    }
    let t = |(sec, nsec): (i64, u32)| {
        std::time::UNIX_EPOCH + std::time::Duration::new(u64::try_from(sec).unwrap_or(0), nsec)
    };
    let times = std::fs::FileTimes::new()
        .set_accessed(t(s.atime))
        .set_modified(t(s.mtime));
    // A read-only file cannot be opened for writing, but its times can be set through a
    // read-only handle.
    std::fs::File::open(dest)
        .and_then(|f| f.set_times(times))
        .map_err(io)
}

/// Runs a read command (or hands an edit command on) on a FAT image.
pub fn run(cmd: ImageCmd) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    let w = |r: std::io::Result<()>| r.map_err(|e| format!("stdout: {e}"));
    match cmd {
        ImageCmd::Edit(c) => edit(c),
        ImageCmd::Resize { image, .. } => {
            Err(format!("{}: FAT images cannot be resized", image.display()))
        }
        ImageCmd::Info { image } => {
            let fs = open(&image, false)?;
            w(out.write_all(info(&fs).as_bytes()))
        }
        ImageCmd::Ls { long, image, path } => {
            let mut fs = open(&image, false)?;
            let text = ls(&mut fs, &path, long)?;
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Cat { image, path } => {
            let mut fs = open(&image, false)?;
            let ino = resolve(&mut fs, &path)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0u64;
            loop {
                let n = fs
                    .read(ino, off, &mut buf)
                    .map_err(|e| format!("{path}: {}", emsg(&e)))?;
                if n == 0 {
                    break;
                }
                w(out.write_all(buf.get(..n).unwrap_or(&[])))?;
                off += n as u64;
            }
            w(out.flush())
        }
        ImageCmd::Stat { image, path } => {
            let mut fs = open(&image, false)?;
            let text = stat(&mut fs, &path)?;
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Get { image, path, dest } => {
            let mut fs = open(&image, false)?;
            let (files, dirs, bytes) = get(&mut fs, &path, &dest)?;
            eprintln!(
                "pvfs: copied {files} files ({bytes} bytes), {dirs} directories, 0 symlinks, 0 hard links"
            );
            Ok(())
        }
        ImageCmd::Df { image } => {
            let fs = open(&image, false)?;
            let u = fs.usage();
            let text = format!(
                "block size: {}\nblocks: {}\nused blocks: {}\nfree blocks: {}\navailable blocks: {}\ninodes: 0\nused inodes: 0\nfree inodes: 0\nname max: 255\n",
                u.cluster_bytes,
                u.clusters,
                u.clusters - u.free,
                u.free,
                u.free,
            );
            w(out.write_all(text.as_bytes()))
        }
        ImageCmd::Dedup { image, .. } => {
            Err(format!("{}: dedup needs an ext4 image", image.display()))
        }
    }
}

/// Split `path` into its parent directory (resolved) and last component.
fn parent_of(fs: &mut Fs, path: &str) -> Result<(Ino, Vec<u8>), String> {
    let trimmed = path.trim_end_matches('/');
    let (dir, leaf) = match trimmed.rsplit_once('/') {
        Some((d, l)) => (d, l),
        None => ("", trimmed),
    };
    if leaf.is_empty() || leaf == "." || leaf == ".." {
        return Err(format!("{path}: not allowed on the root, `.` or `..`"));
    }
    let parent = lookup_path(fs, dir).map_err(|e| format!("{path}: {}", emsg(&e)))?;
    match fs.stat(parent) {
        Ok(s) if s.dir => Ok((parent, leaf.as_bytes().to_vec())),
        Ok(_) => Err(format!("{path}: not a directory")),
        Err(e) => Err(format!("{path}: {}", emsg(&e))),
    }
}

fn is_dir(fs: &mut Fs, ino: Ino) -> bool {
    fs.stat(ino).is_ok_and(|s| s.dir)
}

/// What FAT cannot store, with vfat's answer.
const NO_LINKS: &str = "operation not permitted (FAT has no links)";

fn edit(cmd: EditCmd) -> Result<(), String> {
    match cmd {
        EditCmd::Mkdir {
            parents,
            image,
            path,
        } => with_image(&image, |fs| mkdir(fs, &path, parents)),
        EditCmd::Rm {
            recursive,
            image,
            path,
        } => with_image(&image, |fs| rm(fs, &path, recursive)),
        EditCmd::Ln {
            image, linkpath, ..
        } => with_image(&image, |_| Err(format!("{linkpath}: {NO_LINKS}"))),
        EditCmd::Truncate { image, size, path } => {
            let bytes = parse_size(&size)
                .ok_or_else(|| format!("{size}: not a size (bytes, or with K, M, G or T)"))?;
            with_image(&image, |fs| {
                let ino = resolve(fs, &path)?;
                if is_dir(fs, ino) {
                    return Err(format!("{path}: not a regular file"));
                }
                fs.truncate(ino, bytes)
                    .map_err(|e| format!("{path}: {}", emsg(&e)))
            })
        }
        EditCmd::Mv { image, from, to } => with_image(&image, |fs| mv(fs, &from, &to)),
        EditCmd::Chmod { image, mode, path } => {
            let m = u16::from_str_radix(&mode, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| format!("{mode}: not an octal mode (0 to 7777)"))?;
            with_image(&image, |fs| chmod(fs, &path, m))
        }
        EditCmd::Chown { image, owner, path } => {
            let bad = || format!("{owner}: not UID:GID, UID or :GID (numbers)");
            let (u, g) = owner.split_once(':').unwrap_or((&owner, ""));
            let ids: Vec<u32> = [u, g]
                .iter()
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().map_err(|_| bad()))
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Err(bad());
            }
            with_image(&image, |fs| {
                resolve(fs, &path)?;
                if ids.iter().any(|&i| i != 0) {
                    return Err(format!(
                        "{path}: operation not permitted (FAT owners are 0:0)"
                    ));
                }
                Ok(())
            })
        }
        EditCmd::Put { image, src, path } => {
            std::fs::symlink_metadata(&src).map_err(|e| format!("{}: {e}", src.display()))?;
            let image_id = std::fs::metadata(&image)
                .map(|m| (m.dev(), m.ino()))
                .map_err(|e| format!("{}: {e}", image.display()))?;
            let st = with_image(&image, |fs| {
                let mut counts = (0u64, 0u64, 0u64);
                put(fs, &src, &path, image_id, &mut counts)?;
                Ok(counts)
            })?;
            eprintln!(
                "pvfs: copied {} files ({} bytes), {} directories, 0 symlinks, 0 hard links, 0 special files",
                st.0, st.2, st.1
            );
            Ok(())
        }
    }
}

fn mkdir(fs: &mut Fs, path: &str, parents: bool) -> Result<(), String> {
    if !parents {
        let (parent, leaf) = parent_of(fs, path)?;
        return fs
            .create(parent, &leaf, true, 0)
            .map(drop)
            .map_err(|e| format!("{path}: {}", emsg(&e)));
    }
    let mut dir = ROOT_INO;
    let mut done = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        done.push('/');
        done.push_str(comp);
        dir = match fs.lookup(dir, comp.as_bytes()) {
            Ok(ino) if is_dir(fs, ino) => ino,
            Ok(_) => return Err(format!("{done}: exists and is not a directory")),
            Err(Error::NotFound) => fs
                .create(dir, comp.as_bytes(), true, 0)
                .map_err(|e| format!("{done}: {}", emsg(&e)))?,
            Err(e) => return Err(format!("{done}: {}", emsg(&e))),
        };
    }
    Ok(())
}

fn chmod(fs: &mut Fs, path: &str, mode: u16) -> Result<(), String> {
    let ino = resolve(fs, path)?;
    let s = fs.stat(ino).map_err(|e| format!("{path}: {}", emsg(&e)))?;
    // vfat's rule (`fat_sanitize_mode_change`, mask 022): bits in the mask are ignored, r
    // and x stay all set, w is the owner's (or, for a file, none: the read-only attribute).
    let perm = mode & !0o022;
    let w = perm & 0o222;
    let ok = mode & !0o777 == 0 && perm & 0o555 == 0o555 && (w == 0o200 || (w == 0 && !s.dir));
    if !ok {
        return Err(format!(
            "{path}: operation not permitted (FAT keeps {} only)",
            if s.dir { "0755" } else { "0755 and 0555" }
        ));
    }
    if s.dir || ino == ROOT_INO {
        return Ok(());
    }
    let bits = (s.attr & !attr::READ_ONLY) | if w == 0 { attr::READ_ONLY } else { 0 };
    fs.set_attributes(ino, bits)
        .map_err(|e| format!("{path}: {}", emsg(&e)))
}

fn mv(fs: &mut Fs, from: &str, to: &str) -> Result<(), String> {
    let (odir, oname) = parent_of(fs, from)?;
    fs.lookup(odir, &oname)
        .map_err(|e| format!("{from}: {}", emsg(&e)))?;
    let (ndir, nname, shown) = match lookup_path(fs, to) {
        Ok(ino) if is_dir(fs, ino) => {
            let shown = format!(
                "{}/{}",
                to.trim_end_matches('/'),
                String::from_utf8_lossy(&oname)
            );
            (ino, oname.clone(), shown)
        }
        Ok(_) | Err(Error::NotFound) => {
            let (d, n) = parent_of(fs, to)?;
            (d, n, to.to_string())
        }
        Err(e) => return Err(format!("{to}: {}", emsg(&e))),
    };
    fs.rename(odir, &oname, ndir, &nname).map_err(|e| match e {
        Error::Invalid { .. } => format!("{from}: cannot move a directory into itself ({shown})"),
        e => format!("{shown}: {}", emsg(&e)),
    })
}

fn rm(fs: &mut Fs, path: &str, recursive: bool) -> Result<(), String> {
    let (parent, leaf) = parent_of(fs, path)?;
    let ino = fs
        .lookup(parent, &leaf)
        .map_err(|e| format!("{path}: {}", emsg(&e)))?;
    if is_dir(fs, ino) {
        if !recursive {
            return Err(format!("{path}: is a directory (use rm -r)"));
        }
        remove_contents(fs, ino, path.trim_end_matches('/'))?;
        fs.unlink(parent, &leaf, true)
    } else {
        fs.unlink(parent, &leaf, false)
    }
    .map_err(|e| format!("{path}: {}", emsg(&e)))
}

fn remove_contents(fs: &mut Fs, dir: Ino, shown: &str) -> Result<(), String> {
    for (ino, name, d) in list(fs, dir).map_err(|e| format!("{shown}: {}", emsg(&e)))? {
        let child = format!("{shown}/{}", String::from_utf8_lossy(&name));
        if d {
            remove_contents(fs, ino, &child)?;
        }
        fs.unlink(dir, &name, d)
            .map_err(|e| format!("{child}: {}", emsg(&e)))?;
    }
    Ok(())
}

fn put(
    fs: &mut Fs,
    src: &Path,
    dest: &str,
    image_id: (u64, u64),
    counts: &mut (u64, u64, u64),
) -> Result<(), String> {
    let md = std::fs::symlink_metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let (parent, name, shown) = match lookup_path(fs, dest) {
        Ok(ino) if is_dir(fs, ino) => {
            let base = src
                .file_name()
                .ok_or_else(|| format!("{}: has no file name to copy to", src.display()))?;
            let shown = format!("{}/{}", dest.trim_end_matches('/'), base.to_string_lossy());
            (ino, base.as_bytes().to_vec(), shown)
        }
        Ok(_) if md.is_dir() => {
            return Err(format!(
                "{dest}: cannot overwrite non-directory with directory"
            ))
        }
        Ok(_) | Err(Error::NotFound) => {
            let (p, l) = parent_of(fs, dest)?;
            (p, l, dest.to_string())
        }
        Err(e) => return Err(format!("{dest}: {}", emsg(&e))),
    };
    copy_in(fs, parent, &name, src, &md, &shown, image_id, counts)
}

#[allow(clippy::too_many_arguments, reason = "one recursive step of put")]
fn copy_in(
    fs: &mut Fs,
    parent: Ino,
    name: &[u8],
    src: &Path,
    md: &std::fs::Metadata,
    shown: &str,
    image_id: (u64, u64),
    counts: &mut (u64, u64, u64),
) -> Result<(), String> {
    let fail = |e: &Error| format!("{shown}: {}", emsg(e));
    if (md.dev(), md.ino()) == image_id {
        return Err(format!("{}: is the image itself", src.display()));
    }
    let ft = md.file_type();
    let ino = if ft.is_dir() {
        let dir = match fs.lookup(parent, name) {
            Ok(ino) if is_dir(fs, ino) => ino,
            Ok(_) => {
                return Err(format!(
                    "{shown}: cannot overwrite non-directory with directory"
                ))
            }
            Err(Error::NotFound) => {
                counts.1 += 1;
                fs.create(parent, name, true, 0).map_err(|e| fail(&e))?
            }
            Err(e) => return Err(fail(&e)),
        };
        let mut children: Vec<_> = std::fs::read_dir(src)
            .map_err(|e| format!("{}: {e}", src.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", src.display()))?;
        children.sort_by_key(|e| e.file_name());
        for c in children {
            let p = c.path();
            let cmd = std::fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let cn = c.file_name();
            let cs = format!("{}/{}", shown.trim_end_matches('/'), cn.to_string_lossy());
            copy_in(fs, dir, cn.as_bytes(), &p, &cmd, &cs, image_id, counts)?;
        }
        dir
    } else if ft.is_file() {
        let ino = match fs.lookup(parent, name) {
            Ok(ino) if is_dir(fs, ino) => return Err(format!("{shown}: is a directory")),
            Ok(ino) => {
                fs.truncate(ino, 0).map_err(|e| fail(&e))?;
                ino
            }
            Err(Error::NotFound) => fs.create(parent, name, false, 0).map_err(|e| fail(&e))?,
            Err(e) => return Err(fail(&e)),
        };
        let mut f = std::fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| format!("{}: {e}", src.display()))?;
            if n == 0 {
                break;
            }
            fs.write(ino, off, &buf[..n]).map_err(|e| fail(&e))?;
            off += n as u64;
        }
        counts.0 += 1;
        counts.2 += off;
        if md.mode() & 0o222 == 0 {
            let s = fs.stat(ino).map_err(|e| fail(&e))?;
            fs.set_attributes(ino, s.attr | attr::READ_ONLY)
                .map_err(|e| fail(&e))?;
        }
        ino
    } else if ft.is_symlink() {
        return Err(format!(
            "{shown}: operation not permitted (FAT cannot store symbolic links)"
        ));
    } else {
        return Err(format!(
            "{shown}: operation not permitted (FAT cannot store special files)"
        ));
    };
    let t = |s: i64, n: i64| (s, n.clamp(0, 999_999_999) as u32);
    fs.set_times(
        ino,
        Some(t(md.mtime(), md.mtime_nsec())),
        Some(t(md.atime(), md.atime_nsec())),
    )
    .map_err(|e| fail(&e))
}
