//! The keys of a 9pfs device's backend and frontend directories: what the backend
//! advertises, the export, quotas, mode and the rings the frontend published.

use super::{join, read_bool, read_opt_num, read_req, Store, XenbusError};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Debug;

use crate::p9ring::MAX_RING_ORDER;

/// Largest number of 9pfs devices [`scan_backends`] returns.
pub const MAX_DEVICES: usize = 4096;

/// What this backend advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendConfig {
    /// `max-rings` (Linux requires ≥ 2).
    pub max_rings: u32,
    /// `max-ring-page-order` (≤ 9).
    pub max_ring_page_order: u32,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            max_rings: 2,
            max_ring_page_order: MAX_RING_ORDER,
        }
    }
}

/// The quota keys of a device's backend directory. The toolstack may write them before the
/// device connects, and an administrator may change or remove them at any time.
pub const QUOTA_KEYS: [&str; 3] = ["max-files", "max-open-files", "max-space"];

/// A device's quota (backend keys [`QUOTA_KEYS`]; a missing key is no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaKeys {
    /// `max-files`.
    pub max_files: Option<u64>,
    /// `max-open-files`.
    pub max_open_files: Option<u64>,
    /// `max-space`, in MiB.
    pub max_space_mib: Option<u64>,
}

impl QuotaKeys {
    /// Reads the quota keys under `be`; a key that is present but not a number is an error.
    pub fn read<S: Store + ?Sized>(s: &mut S, be: &str) -> Result<Self, XenbusError> {
        Ok(Self {
            max_files: read_opt_num(s, &join(be, "max-files"))?,
            max_open_files: read_opt_num(s, &join(be, "max-open-files"))?,
            max_space_mib: read_opt_num(s, &join(be, "max-space"))?,
        })
    }

    /// Whether the watch event `path` is one of a device's quota keys.
    pub fn is_key(path: &str) -> bool {
        key_name(path).is_some_and(|k| QUOTA_KEYS.contains(&k))
    }
}

/// The rate-limit keys of a device's backend directory: requests and bytes of file data a
/// second. Like the quota keys, they may be written, changed or removed at any time.
pub const RATE_KEYS: [&str; 2] = ["max-iops", "max-bps"];

/// A device's rate limits (backend keys [`RATE_KEYS`]; a missing key is no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateKeys {
    /// `max-iops`: requests answered a second.
    pub max_iops: Option<u64>,
    /// `max-bps`: bytes read or written a second.
    pub max_bps: Option<u64>,
}

impl RateKeys {
    /// Reads the rate keys under `be`; a key that is present but not a number is an error,
    /// and so is 0 (which would stop the device; remove the key to lift the limit).
    pub fn read<S: Store + ?Sized>(s: &mut S, be: &str) -> Result<Self, XenbusError> {
        let mut k = Self::default();
        for (name, slot) in RATE_KEYS.iter().zip([&mut k.max_iops, &mut k.max_bps]) {
            let path = join(be, name);
            *slot = read_opt_num(s, &path)?;
            if *slot == Some(0) {
                return Err(XenbusError::Invalid {
                    key: path,
                    value: String::from("0"),
                });
            }
        }
        Ok(k)
    }

    /// Whether the watch event `path` is one of a device's rate keys.
    pub fn is_key(path: &str) -> bool {
        key_name(path).is_some_and(|k| RATE_KEYS.contains(&k))
    }
}

/// The last component of a watch event's path: the key that changed.
fn key_name(path: &str) -> Option<&str> {
    path.rsplit('/').next()
}

/// The key of a device's backend directory that makes the device read-only: `ro`, or `rw`
/// (the same as no key). The toolstack writes it (`pvfs share add --ro`); an administrator may
/// change or remove it at any time.
pub const MODE_KEY: &str = "mode";

/// The key of a device's backend directory that names a template directory on the volume:
/// the guest sees it merged under `path`, copy-on-write (`pvfs share add --template`). Read
/// when the device connects.
pub const TEMPLATE_KEY: &str = "template";

/// Reads a device's [`MODE_KEY`] under `be`: whether it asks for the device to be read-only.
/// A value other than `ro` or `rw` is an error.
pub fn read_mode<S: Store + ?Sized>(s: &mut S, be: &str) -> Result<bool, XenbusError> {
    let key = join(be, MODE_KEY);
    match s.read(&key)? {
        None => Ok(false),
        Some(v) => match v.trim() {
            "rw" => Ok(false),
            "ro" => Ok(true),
            _ => Err(XenbusError::Invalid { key, value: v }),
        },
    }
}

/// Whether the watch event `path` is a device's [`MODE_KEY`].
pub fn is_mode_key(path: &str) -> bool {
    key_name(path) == Some(MODE_KEY)
}

/// The export the toolstack configured for one device (backend keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// `path`: the exported directory inside the volume.
    pub path: String,
    /// `max-files`, `max-open-files`, `max-space`.
    pub quota: QuotaKeys,
    /// `mode=ro`: the device is served read-only.
    pub read_only: bool,
    /// `auto-delete`.
    pub auto_delete: bool,
    /// `template`: a directory of the volume merged under `path` (template share).
    pub template: Option<String>,
}

impl ExportConfig {
    /// Reads and validates the export keys under `be` (`security_model` must be `none`, `mode`
    /// `ro`, `rw` or absent, the quota keys numbers, `template` a non-empty path if present).
    pub fn read<S: Store + ?Sized>(s: &mut S, be: &str) -> Result<Self, XenbusError> {
        let path_key = join(be, "path");
        let path = read_req(s, &path_key)?;
        if path.is_empty() || path.contains('\0') {
            return Err(XenbusError::Invalid {
                key: path_key,
                value: path,
            });
        }
        let template_key = join(be, TEMPLATE_KEY);
        let template = s.read(&template_key)?;
        if let Some(t) = &template {
            if t.is_empty() || t.contains('\0') {
                return Err(XenbusError::Invalid {
                    key: template_key,
                    value: t.clone(),
                });
            }
        }
        let sm_key = join(be, "security_model");
        let sm = read_req(s, &sm_key)?;
        if sm != "none" {
            return Err(XenbusError::Invalid {
                key: sm_key,
                value: sm,
            });
        }
        Ok(Self {
            path,
            quota: QuotaKeys::read(s, be)?,
            read_only: read_mode(s, be)?,
            auto_delete: read_bool(s, &join(be, "auto-delete"))?,
            template,
        })
    }
}

/// One ring the frontend published: `ring-ref<N>` (its interface page) and
/// `event-channel-<N>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingKeys {
    /// Grant reference of the interface page.
    pub intf_ref: u32,
    /// The frontend's event channel port.
    pub evtchn: u32,
}

/// The rings to connect, read and validated from the frontend's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectPlan {
    /// Frontend domain.
    pub fe_domid: u16,
    /// The export.
    pub export: ExportConfig,
    /// One entry per ring, in ring order.
    pub rings: Vec<RingKeys>,
}
