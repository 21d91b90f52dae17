//! A device's identity policy from its backend keys: `mode` (read-only), `uid-map`,
//! `gid-map`, `squash-root` and `unmapped-ids` (`pvfs_9p::idpolicy`). Read when the device
//! connects (a key that does not parse refuses the device) and again whenever one is written
//! or removed while it is connected: the connection's next request runs under the new policy,
//! and a key that does not parse is logged and leaves the policy as it was.

use super::Service;
use crate::xen::store::XsStore;
use alloc::format;
use alloc::string::String;
use pvfs_9p::idpolicy::{PolicyKeys, SharePolicy, POLICY_KEYS};
use pvfs_ring::xenbus::{self, Store};

/// Whether the watch event `path` is one of a device's policy keys (or `mode`).
pub(super) fn is_policy_key(path: &str) -> bool {
    xenbus::is_mode_key(path)
        || path
            .rsplit('/')
            .next()
            .is_some_and(|k| POLICY_KEYS.contains(&k))
}

/// The policy of the device whose backend directory is `be`, or why its keys are not valid.
pub(super) fn read_policy(be: &str) -> Result<SharePolicy, String> {
    let read_only = xenbus::read_mode(&mut XsStore, be).map_err(|e| format!("mode: {e:?}"))?;
    let key = |k: &str| {
        XsStore
            .read(&format!("{be}/{k}"))
            .map_err(|e| format!("{k}: {e:?}"))
    };
    let keys = PolicyKeys {
        uid_map: key("uid-map")?,
        gid_map: key("gid-map")?,
        squash_root: key("squash-root")?,
        unmapped_ids: key("unmapped-ids")?,
    };
    keys.policy(read_only)
}

/// The policy in words, for the log.
pub(super) fn describe(p: &SharePolicy) -> String {
    if p.is_identity() {
        return format!("{}, ids unchanged", if p.read_only { "ro" } else { "rw" });
    }
    format!(
        "{}, uids {:?} (unmapped {}), gids {:?} (unmapped {})",
        if p.read_only { "ro" } else { "rw" },
        p.uid_map.rules,
        p.uid_map.unmapped_host,
        p.gid_map.rules,
        p.gid_map.unmapped_host
    )
}

impl Service {
    /// A policy key (or `mode`) of a connected device changed or went: the keys are read
    /// again and the connection's next request runs under them. Keys that do not parse leave
    /// the policy as it was, with a warning.
    pub(super) fn reload_policy(&self, key: (u16, u32)) {
        let Some(link) = self.devices.get(&key).and_then(|d| d.link.as_ref()) else {
            return;
        };
        let be = format!("{}/{}/{}", self.base, key.0, key.1);
        match read_policy(&be) {
            Ok(p) if *link.conn.policy() != p => {
                log::info!(
                    "9pfs: guest {} device {}: policy now {}",
                    key.0,
                    key.1,
                    describe(&p)
                );
                link.conn.set_policy(p);
            }
            Ok(_) => {}
            Err(e) => log::warn!(
                "9pfs: guest {} device {}: policy keys not valid ({e}); policy unchanged",
                key.0,
                key.1
            ),
        }
    }
}
