//! Opening a device's export, and the quota keys that shape it while the device is
//! connected (applied at once; the identity policy is in `idpolicy`).

use super::{Fs, Service, ShareFs, MAX_MSIZE};
use crate::xen::store::XsStore;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use pvfs_9p::overlay::OverlayFs;
use pvfs_9p::policy::QuotaLimits;
use pvfs_9p::{ExportConfig, Server};
use pvfs_ring::xenbus::QuotaKeys;

impl Service {
    /// A quota key of a connected device changed (or went): its export's limits are read
    /// again and take effect for the next request. A key that is not a number leaves the
    /// limits as they were, with a warning.
    pub(super) fn reload_quota(&self, key: (u16, u32)) {
        let Some(link) = self.devices.get(&key).and_then(|d| d.link.as_ref()) else {
            return;
        };
        let be = format!("{}/{}/{}", self.base, key.0, key.1);
        match QuotaKeys::read(&mut XsStore, &be) {
            Ok(q) => {
                let limits = quota_limits(q);
                if link.conn.quota().limits() != limits {
                    link.conn.quota().set_limits(limits);
                    log::info!("9pfs: guest {} device {}: quota now {q:?}", key.0, key.1);
                    seed_quota_once(
                        link.conn.quota(),
                        |n| link.conn.seed_quota(n),
                        &format!("of guest {} device {}", key.0, key.1),
                    );
                }
            }
            Err(e) => log::warn!(
                "9pfs: guest {} device {}: quota keys not valid ({e:?}); quota unchanged",
                key.0,
                key.1
            ),
        }
    }

    /// The directory that export `path` names on the volume, or why it cannot be served.
    pub(super) fn export_dir(&self, path: &str) -> Result<(Fs, pvfs_9p::fs::Attr), String> {
        let fs = self.fs.clone().ok_or("pvfs has no volume mounted")?;
        let root = pvfs_9p::Filesystem::root(&fs);
        let attr = pvfs_9p::server::resolve_path(&fs, root, root, path.as_bytes())
            .map_err(|e| format!("export path {path:?}: errno {}", e.0))?;
        if !attr.is_dir() {
            return Err(format!(
                "export path {path:?}: errno {} (not a directory)",
                pvfs_9p::Errno::ENOTDIR.0
            ));
        }
        Ok((fs, attr))
    }

    /// The server of export `path` (merged with directory `template` for a template share),
    /// read-only if the volume is or if `pvfs.ro_exports` lists it. (A device's own `mode` is
    /// part of its connection's policy.)
    pub(super) fn export(
        &mut self,
        path: &str,
        template: Option<&str>,
    ) -> Result<Server<ShareFs>, String> {
        let key = match template {
            Some(t) => format!("{path}\0{t}"),
            None => path.to_string(),
        };
        if let Some(s) = self.servers.get(&key) {
            return Ok(s.clone());
        }
        let (fs, attr) = self.export_dir(path)?;
        let writable = fs.is_writable();
        let read_only = !writable || (self.read_only_export)(path);
        log::info!(
            "9pfs: export {path:?} {}",
            if read_only { "read-only" } else { "read-write" },
        );
        let (share, root) = match template {
            Some(t) if matches!(*fs, pvfs_9p::volume::VolumeFs::Fat(_)) => {
                return Err(format!(
                    "export path {path:?} with template {t:?}: template shares need ext4 (FAT cannot hold their whiteouts and marks)"
                ));
            }
            Some(t) => {
                let (_, tattr) = self.export_dir(t)?;
                let ov = OverlayFs::new(fs, attr.ino, tattr.ino).map_err(|e| {
                    format!("export path {path:?} with template {t:?}: errno {}", e.0)
                })?;
                log::info!("9pfs: export {path:?} merges template {t:?}");
                (ShareFs::Template(Arc::new(ov)), None)
            }
            None => (ShareFs::Plain(fs), Some(attr.ino)),
        };
        let cfg = ExportConfig {
            read_only,
            max_msize: MAX_MSIZE,
            root,
            ..ExportConfig::default()
        };
        let s = Server::new(share, cfg);
        self.servers.insert(key, s.clone());
        Ok(s)
    }
}

/// Directory entries an export may have for its quota usage to be measured when a byte or
/// file limit is first set (the walk holds the serve loop while it runs). A larger export
/// counts from zero what guests write.
const QUOTA_SEED_MAX_ENTRIES: u64 = 200_000;

/// Measures an export's usage the first time it has a byte or file limit, so files already
/// there count (`pvfs_9p::Server::seed_quota`); `export` names it in the log.
pub(super) fn seed_quota_once(
    quota: &pvfs_9p::policy::Quota,
    seed: impl FnOnce(u64) -> Result<pvfs_9p::policy::QuotaUsage, pvfs_9p::SeedError>,
    export: &str,
) {
    if quota.seeded() || !quota.limits_usage() {
        return;
    }
    let t = crate::xen::time::now_ns();
    match seed(QUOTA_SEED_MAX_ENTRIES) {
        Ok(u) => log::info!(
            "9pfs: export {export}: quota usage measured: {} bytes in {} files ({} ms)",
            u.bytes,
            u.files,
            crate::xen::time::now_ns().saturating_sub(t) / 1_000_000
        ),
        Err(e) => log::warn!(
            "9pfs: export {export}: quota usage not measured ({e:?}, at most {QUOTA_SEED_MAX_ENTRIES} entries); it counts what guests write from now on"
        ),
    }
}

/// The export limits of a device's quota keys (`max-space` is in MiB).
pub(super) fn quota_limits(q: QuotaKeys) -> QuotaLimits {
    QuotaLimits {
        max_bytes: q.max_space_mib.map(|m| m.saturating_mul(1 << 20)),
        max_files: q.max_files,
        max_open_files: q.max_open_files,
    }
}
