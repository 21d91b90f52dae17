//! `pvfs serve`: serves an ext4 or FAT image (or a RAM filesystem) over 9P2000.L on loopback TCP or a
//! unix socket, with the same server core the unikernel uses.

use clap::Args;
use pvfs_9p::ext4::Ext4Fs;
use pvfs_9p::host::{self, ListenAddr, Listener, ServeOptions};
use pvfs_9p::memfs::{MemFs, MemFsLimits};
use pvfs_9p::policy::{IdMap, QuotaLimits};
use pvfs_9p::server::{resolve_path, ExportConfig, Server};
use pvfs_9p::{fs::Timespec, Filesystem};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Args)]
#[command(
    after_help = "ext4 images are served read-write unless --read-only is given or the image has \
                        features the writer cannot maintain (then read-only, with the reason logged); \
                        the image is synced and marked clean on SIGINT/SIGTERM. \
                        FAT12/16/32 images are served read-write (unless --read-only) with vfat's \
                        owners, modes and errors (uid 0, gid 0, rwxr-xr-x). \
                        --memfs exports a read-write RAM filesystem.\n\
                        The attach aname selects a path inside the export (\"\" or \"/\" = its root)."
)]
pub struct ServeArgs {
    /// ext4 or FAT image to serve
    #[arg(long, required_unless_present = "memfs", conflicts_with = "memfs")]
    image: Option<PathBuf>,
    /// Serve an empty in-memory read-write filesystem instead of an image
    #[arg(long)]
    memfs: bool,
    /// Size limit of the --memfs filesystem, in MiB
    #[arg(long, default_value_t = 256)]
    memfs_mib: u64,
    /// Refuse all modifications (EROFS)
    #[arg(long)]
    read_only: bool,
    /// Directory inside the filesystem to export (default: its root); clients cannot walk above it
    #[arg(long, default_value = "/")]
    export: String,
    /// Where to listen: tcp:127.0.0.1:PORT or unix:PATH
    #[arg(long)]
    listen: String,
    /// Worker threads for data requests
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Largest msize offered to clients
    #[arg(long, default_value_t = 1 << 20)]
    max_msize: u32,
    /// uid translation: identity, squash-all:HOST, or rules map:GUEST:HOST:COUNT;squash:GUEST:HOST:COUNT
    #[arg(long, default_value = "identity")]
    uid_map: String,
    /// gid translation, same syntax as --uid-map
    #[arg(long, default_value = "identity")]
    gid_map: String,
    /// Quota: maximum open files over all connections
    #[arg(long)]
    max_open_files: Option<u64>,
    /// Quota: maximum number of files
    #[arg(long)]
    max_files: Option<u64>,
    /// Quota: maximum bytes of file data
    #[arg(long)]
    max_bytes: Option<u64>,
}

fn log_line(s: &str) {
    eprintln!("pvfs serve: {s}");
}

fn wall_clock() -> Timespec {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        sec: d.as_secs(),
        nsec: d.subsec_nanos(),
    }
}

pub fn run(a: ServeArgs) -> Result<(), String> {
    let listen = ListenAddr::parse(&a.listen)
        .ok_or_else(|| format!("--listen {}: expected tcp:HOST:PORT or unix:PATH", a.listen))?;
    let uid_map =
        IdMap::parse(&a.uid_map).ok_or_else(|| format!("--uid-map {}: bad syntax", a.uid_map))?;
    let gid_map =
        IdMap::parse(&a.gid_map).ok_or_else(|| format!("--gid-map {}: bad syntax", a.gid_map))?;
    let cfg = ExportConfig {
        read_only: a.read_only,
        uid_map,
        gid_map,
        max_msize: a.max_msize.max(pvfs_9p::server::MIN_MSIZE),
        quota: QuotaLimits {
            max_bytes: a.max_bytes,
            max_files: a.max_files,
            max_open_files: a.max_open_files,
        },
        ..ExportConfig::default()
    };
    if let Some(img) = a.image.as_ref().filter(|i| crate::fatfs::is_fat(i)) {
        let name = img.display().to_string();
        let disk = if a.read_only {
            pvfs_fs::block::FileDisk::open(img)
        } else {
            pvfs_fs::block::FileDisk::open_rw(img)
        }
        .map_err(|e| format!("{name}: {e}"))?;
        let engine =
            pvfs_fs::fat::Fat::open(disk, !a.read_only).map_err(|e| format!("{name}: {e}"))?;
        let fs = Arc::new(pvfs_9p::fat::FatFs::new(engine).with_clock(wall_clock));
        serve(fs.clone(), cfg, &a, listen, &name)?;
        fs.sync()
            .map_err(|e| format!("{name}: writing back: errno {}", e.0))?;
        log_line(&format!("{name}: written back"));
        return Ok(());
    }
    if let Some(img) = &a.image {
        let name = img.display().to_string();
        let engine = if a.read_only {
            None
        } else {
            match pvfs_fs::block::FileDisk::open_rw(img)
                .map_err(|e| format!("{name}: {e}"))
                .and_then(|d| {
                    pvfs_fs::ext4::Ext4::open_rw(d, &Default::default())
                        .map_err(|e| format!("{name}: {e}"))
                }) {
                Ok(fs) => Some(fs),
                Err(e) => {
                    log_line(&format!("{e}; serving it read-only"));
                    None
                }
            }
        };
        let Some(engine) = engine else {
            let fs = pvfs_fs::host::open_image(img).map_err(|e| e.to_string())?;
            if let Some(why) = fs.read_only_reason() {
                log_line(&format!("{name}: read-only ({why})"));
            }
            let cfg = ExportConfig {
                read_only: true,
                ..cfg
            };
            return serve(Ext4Fs::new(fs), cfg, &a, listen, &name);
        };
        let fs = Arc::new(Ext4Fs::new(engine).with_clock(wall_clock));
        serve(fs.clone(), cfg, &a, listen, &name)?;
        // Connections still open get EIO from now on; the image is closed under them.
        if let Some(r) = fs.close() {
            r.map_err(|e| format!("{name}: closing: {e}"))?;
        }
        log_line(&format!("{name}: closed cleanly"));
        Ok(())
    } else {
        let limits = MemFsLimits {
            max_bytes: a.memfs_mib.saturating_mul(1 << 20),
            ..MemFsLimits::default()
        };
        let fs = MemFs::with_limits(limits, wall_clock);
        if a.export != "/" && !a.export.is_empty() {
            return Err("--export needs --image (the RAM filesystem starts empty)".into());
        }
        serve(fs, cfg, &a, listen, "memfs")
    }
}

fn serve<F: Filesystem + 'static>(
    fs: F,
    mut cfg: ExportConfig,
    a: &ServeArgs,
    listen: ListenAddr,
    what: &str,
) -> Result<(), String> {
    let root = fs.root();
    let export = resolve_path(&fs, root, root, a.export.as_bytes())
        .map_err(|e| format!("--export {}: errno {}", a.export, e.0))?;
    if !export.is_dir() {
        return Err(format!("--export {}: not a directory", a.export));
    }
    cfg.root = Some(export.ino);
    let ro = cfg.read_only;
    let server = Server::new(fs, cfg);
    let listener = Listener::bind(&listen).map_err(|e| format!("{}: {e}", a.listen))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    log_line(&format!(
        "serving {what} (export {}, {}) on {}",
        a.export,
        if ro { "read-only" } else { "read-write" },
        listener.local_addr()
    ));
    host::serve(
        server,
        listener,
        a.workers,
        ServeOptions::default(),
        stop,
        log_line,
    )
    .map_err(|e| e.to_string())?;
    log_line("shut down, data synced");
    Ok(())
}
