//! `pvfs share set`: writes or removes a share's quota, rate-limit and identity-policy keys.

use super::domains::Domain;
use super::failure::{transact, Failure, Kind, Res};
use super::nodes::{backend_dir, find_share, Share, QUOTA_KEYS};
use super::policy::KeyChange;
use crate::xs::Store;

/// `share set`: for each quota key, `Some(Some(v))` writes it, `Some(None)` removes it (no
/// limit), `None` leaves it; each identity-policy change ([`KeyChange`], validated) writes or
/// removes its key. One transaction; pvfs watches the keys and applies them live.
pub fn set<S: Store + ?Sized>(
    s: &mut S,
    be: &Domain,
    guest: &Domain,
    tag: &str,
    changes: [Option<Option<u64>>; 5],
    policy: &[KeyChange],
) -> Res<Share> {
    if changes.iter().all(Option::is_none) && policy.is_empty() {
        return Err(Failure::new(
            Kind::Usage,
            "nothing to change: give --max-space, --max-files, --max-open-files, --max-iops, --max-bps (or their --no- forms), --ro, --rw, --uid-map, --gid-map, --squash-root, --no-squash-root, --squash-all or --unmapped-ids",
        ));
    }
    let sh = find_share(s, be.domid, guest, tag)?;
    let bd = backend_dir(be.domid, guest.domid, sh.devid);
    transact(s, |s, tx| {
        if s.read(tx, &format!("{bd}/state"))?.is_none() {
            return Err(Failure::new(
                Kind::NoSuchShare,
                format!("share {tag:?} of {} went away", guest.label()),
            ));
        }
        for (k, c) in QUOTA_KEYS.iter().zip(changes) {
            match c {
                Some(Some(v)) => s.write(tx, &format!("{bd}/{k}"), &v.to_string())?,
                Some(None) => s.rm(tx, &format!("{bd}/{k}"))?,
                None => {}
            }
        }
        for (k, v) in policy {
            match v {
                Some(v) => s.write(tx, &format!("{bd}/{k}"), v)?,
                None => s.rm(tx, &format!("{bd}/{k}"))?,
            }
        }
        Ok(())
    })?;
    find_share(s, be.domid, guest, tag)
}
