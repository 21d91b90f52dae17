//! `pvfs share rm`: asks pvfs to release a device, then removes its nodes.
//!
//! Without `--force`, a share pvfs serves (backend state Connected) is detached only if the
//! guest has nothing attached: `rm` writes `detach` = `if-idle` into the backend directory and
//! pvfs decides from its live fid table, in its own service thread, so a mount starting at
//! the same moment either is served first (and `rm` is refused) or finds the device gone. pvfs
//! answers `detach` = `busy` to refuse, or takes the device offline and removes its backend
//! directory. (The `fids` key pvfs publishes may lag by a second, so it is not what decides.)

use super::domains::Domain;
use super::failure::{transact, Failure, Kind, Res};
use super::nodes::{backend_dir, find_share, read_state, remove_nodes, Share};
use super::POLL_MS;
use crate::xs::{Store, NO_TX};
use pvfs_ring::xenbus::{XenbusState, DETACH_BUSY, DETACH_IF_IDLE, DETACH_KEY};

/// After `rm` asked pvfs to close a device (`online=0`, Closing), how long it waits for pvfs
/// to remove the backend directory before it writes Closed, as libxl does on its way out.
pub const CLOSE_GRACE_MS: u64 = 1000;

/// `share rm`: detaches the share. Without `force`, refuses (exit 11) while the guest has it
/// mounted (fids in use on the device); with `force`, takes it away regardless, as libxl does
/// (`online=0`, state Closing). Then writes Closed if pvfs keeps the directory (a device the
/// guest never connected), waits for pvfs to remove its backend directory, and removes the
/// frontend and libxl nodes.
pub fn rm<S: Store + ?Sized>(
    s: &mut S,
    be: &Domain,
    guest: &Domain,
    tag: &str,
    force: bool,
    timeout_ms: u64,
) -> Res<Share> {
    let sh = find_share(s, be.domid, guest, tag)?;
    let (b, f, dev) = (be.domid, guest.domid, sh.devid);
    let bd = backend_dir(b, f, dev);
    let state_key = format!("{bd}/state");
    let detach_key = format!("{bd}/{DETACH_KEY}");
    let in_use = || {
        Failure::new(
            Kind::InUse,
            format!(
                "{} has share {tag:?} mounted (pvfs holds fids of it): unmount it in the guest first, or use --force",
                guest.label()
            ),
        )
    };
    // Without --force, a device pvfs serves is asked to go only if the guest has nothing
    // attached; any other is taken offline as libxl does.
    let asked = transact(s, |s, tx| {
        let Some(st) = read_state(s, tx, &state_key)? else {
            return Ok(false); // pvfs removed it already
        };
        if !force && st == XenbusState::Connected {
            s.write(tx, &detach_key, DETACH_IF_IDLE)?;
            return Ok(true);
        }
        s.write(tx, &format!("{bd}/online"), "0")?;
        if st != XenbusState::Closed {
            s.write(tx, &state_key, XenbusState::Closing.as_str())?;
        }
        Ok(false)
    })?;
    let start = s.now_ms();
    let mut wrote_closed = false;
    loop {
        if s.read(NO_TX, &bd)?.is_none() {
            break;
        }
        if asked && s.read(NO_TX, &detach_key)?.as_deref() == Some(DETACH_BUSY) {
            withdraw(s, &bd, &detach_key)?;
            return Err(in_use());
        }
        let waited = s.now_ms().saturating_sub(start);
        if !wrote_closed && waited >= CLOSE_GRACE_MS {
            // pvfs leaves a device it never connected in Closing (also after agreeing to a
            // detach); Closed from the toolstack asks it to remove the directory.
            transact(s, |s, tx| {
                let st = read_state(s, tx, &state_key)?;
                let offline = s.read(tx, &format!("{bd}/online"))?.as_deref() == Some("0");
                let close = match asked {
                    // only once pvfs agreed and left the device in Closing
                    true => offline && st == Some(XenbusState::Closing),
                    false => st.is_some(),
                };
                if close {
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
            if asked {
                withdraw(s, &bd, &detach_key)?;
            }
            return Err(Failure::new(
                Kind::Timeout,
                format!(
                    "pvfs (domain {b}) did not release share {tag:?} of {} within {} s; {}: `pvfs share rm --force` removes them",
                    guest.label(),
                    timeout_ms / 1000,
                    if asked { "its nodes are left as they were" } else { "its nodes are left offline (online=0)" }
                ),
            ));
        }
        s.sleep_ms(POLL_MS);
    }
    remove_nodes(s, b, f, dev)?;
    Ok(sh)
}

/// Removes `rm`'s detach request (or pvfs's answer to it) if the device is still there, so a
/// refused `rm` leaves the device as it found it.
fn withdraw<S: Store + ?Sized>(s: &mut S, bd: &str, detach_key: &str) -> Res<()> {
    transact(s, |s, tx| {
        if s.read(tx, &format!("{bd}/state"))?.is_some() && s.read(tx, detach_key)?.is_some() {
            s.rm(tx, detach_key)?;
        }
        Ok(())
    })
}
