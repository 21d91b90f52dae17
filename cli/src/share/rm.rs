//! `pvfs share rm`: asks pvfs to release a device, then removes its nodes.

use super::domains::Domain;
use super::failure::{transact, Failure, Kind, Res};
use super::nodes::{backend_dir, find_share, read_state, remove_nodes, Share};
use super::POLL_MS;
use crate::xs::{Store, NO_TX};
use pvfs_ring::xenbus::XenbusState;

/// After `rm` asked pvfs to close a device (`online=0`, Closing), how long it waits for pvfs
/// to remove the backend directory before it writes Closed, as libxl does on its way out.
pub const CLOSE_GRACE_MS: u64 = 1000;

/// `share rm`: asks pvfs to release the device (`online=0`, state Closing, as libxl does),
/// writes Closed if pvfs keeps the directory (a device the guest never connected), waits for
/// pvfs to remove its backend directory, then removes the frontend and libxl nodes. Refuses
/// while the guest is connected unless `force`.
pub fn rm<S: Store + ?Sized>(
    s: &mut S,
    be: &Domain,
    guest: &Domain,
    tag: &str,
    force: bool,
    timeout_ms: u64,
) -> Res<Share> {
    let sh = find_share(s, be.domid, guest, tag)?;
    if sh.guest_state == Some(XenbusState::Connected) && !force {
        return Err(Failure::new(
            Kind::InUse,
            format!(
                "{} is connected to share {tag:?} (its 9pfs driver holds the rings; it may have it mounted): unmount it in the guest, then use --force",
                guest.label()
            ),
        ));
    }
    let (b, f, dev) = (be.domid, guest.domid, sh.devid);
    let bd = backend_dir(b, f, dev);
    let state_key = format!("{bd}/state");
    transact(s, |s, tx| {
        let Some(st) = read_state(s, tx, &state_key)? else {
            return Ok(()); // pvfs removed it already
        };
        s.write(tx, &format!("{bd}/online"), "0")?;
        if st != XenbusState::Closed {
            s.write(tx, &state_key, XenbusState::Closing.as_str())?;
        }
        Ok(())
    })?;
    let start = s.now_ms();
    let mut wrote_closed = false;
    loop {
        if s.read(NO_TX, &bd)?.is_none() {
            break;
        }
        let waited = s.now_ms().saturating_sub(start);
        if !wrote_closed && waited >= CLOSE_GRACE_MS {
            // pvfs leaves a device it never connected in Closing; Closed from the toolstack
            // asks it to remove the directory.
            transact(s, |s, tx| {
                if s.read(tx, &state_key)?.is_some() {
                    s.write(tx, &state_key, XenbusState::Closed.as_str())?;
                }
                Ok(())
            })?;
            wrote_closed = true;
        }
        if waited >= timeout_ms {
            if force {
                remove_nodes(s, b, f, dev)?;
                return Ok(sh);
            }
            return Err(Failure::new(
                Kind::Timeout,
                format!(
                    "pvfs (domain {b}) did not release share {tag:?} of {} within {} s; its nodes are left offline (online=0): `pvfs share rm --force` removes them",
                    guest.label(),
                    timeout_ms / 1000
                ),
            ));
        }
        s.sleep_ms(POLL_MS);
    }
    remove_nodes(s, b, f, dev)?;
    Ok(sh)
}
