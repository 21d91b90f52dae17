//! Watch routing: what a watch event means for the 9pfs backend, and which devices exist.

use super::p9backend::{FIDS_KEY, STATS_KEY};
use super::{join, Store, StoreError, MAX_DEVICES};
use alloc::vec::Vec;
use core::fmt::Debug;

/// What a watch event means for the 9pfs backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Step the machine of this device.
    Device {
        /// Frontend domain.
        fe: u16,
        /// Device id.
        dev: u32,
    },
    /// Devices may have appeared or gone: rescan with [`scan_backends`].
    Rescan,
    /// A domain died (`@releaseDomain`): step every device (their frontend state reads
    /// will show which are gone).
    ReleaseDomain,
    /// Not ours.
    Ignore,
}

/// Maps a watch event path to a device. `backend_base` is the watched subtree, e.g.
/// `/local/domain/7/backend/9pfs` (the same spelling as registered). Frontend state paths
/// `/local/domain/<fe>/device/9pfs/<dev>/…` route to their device as well. Work is bounded
/// by the path's component count (at most a few are looked at).
pub fn route(backend_base: &str, path: &str) -> Route {
    if path == "@releaseDomain" {
        return Route::ReleaseDomain;
    }
    if let Some(rest) = path.strip_prefix(backend_base) {
        if rest.is_empty() {
            return Route::Rescan;
        }
        let Some(rest) = rest.strip_prefix('/') else {
            return Route::Ignore;
        };
        let mut it = rest.splitn(3, '/');
        let fe = it.next().and_then(|f| f.parse::<u16>().ok());
        let dev = it.next().map(|d| d.parse::<u32>().ok());
        let key = it.next();
        return match (fe, dev) {
            (Some(_), None) => Route::Rescan,
            // The keys the backend itself rewrites about once a second: a change of its own
            // figures is nothing to act on, and stepping the device would cost xenstore reads.
            (Some(_), Some(Some(_))) if key.is_some_and(is_own_output) => Route::Ignore,
            (Some(fe), Some(Some(dev))) => Route::Device { fe, dev },
            _ => Route::Ignore,
        };
    }
    if let Some(rest) = path.strip_prefix("/local/domain/") {
        let mut it = rest.splitn(5, '/');
        let fe = it.next().and_then(|f| f.parse::<u16>().ok());
        let kind = (it.next(), it.next());
        let dev = it.next().and_then(|d| d.parse::<u32>().ok());
        if let (Some(fe), (Some("device"), Some("9pfs")), Some(dev)) = (fe, kind, dev) {
            return Route::Device { fe, dev };
        }
    }
    Route::Ignore
}

/// Whether `key` (a path below a device's backend directory) is one the backend writes for
/// others to read and never acts on: its statistics and its count of fids in use.
fn is_own_output(key: &str) -> bool {
    key == STATS_KEY || key == FIDS_KEY
}

/// Lists the devices under `backend_base` as `(frontend domid, devid)`, at most
/// [`MAX_DEVICES`]; non-numeric entries are skipped.
pub fn scan_backends<S: Store + ?Sized>(
    s: &mut S,
    backend_base: &str,
) -> Result<Vec<(u16, u32)>, StoreError> {
    let mut out = Vec::new();
    for fe in s.directory(backend_base)? {
        let Ok(fe_id) = fe.parse::<u16>() else {
            continue;
        };
        for dev in s.directory(&join(backend_base, &fe))? {
            if out.len() >= MAX_DEVICES {
                return Ok(out);
            }
            if let Ok(d) = dev.parse::<u32>() {
                out.push((fe_id, d));
            }
        }
    }
    Ok(out)
}
