//! Mapping and binding the rings of a connecting 9pfs device, and releasing them.

use super::{ConnectPlan, Platform, RingKeys};
use alloc::vec::Vec;
use core::fmt::Debug;

use crate::p9ring::{Backend9pRing, Interface, P9RingError};

/// One connected 9pfs ring: its mappings, local event channel and data ring.
#[derive(Debug)]
pub struct ConnectedRing<M> {
    /// The interface page.
    pub intf: M,
    /// The data area (`2^order` pages).
    pub data: M,
    /// Our local event channel port.
    pub port: u32,
    /// The data ring.
    pub ring: Backend9pRing,
}

/// Why [`connect_rings`] failed.
#[derive(Debug)]
pub enum ConnectError<E> {
    /// The platform refused a mapping or a binding.
    Platform(E),
    /// A ring's interface page is invalid.
    Ring(P9RingError),
}

/// Maps and binds every ring of `plan`: the interface page, then (after validating its
/// `ring_order` against `max_order`) the data pages, then the event channel. On any failure
/// everything mapped or bound so far is released, so nothing leaks.
pub fn connect_rings<P: Platform>(
    p: &mut P,
    plan: &ConnectPlan,
    max_order: u32,
    max_msg: u32,
) -> Result<Vec<ConnectedRing<P::Mem>>, ConnectError<P::Error>> {
    let mut done: Vec<ConnectedRing<P::Mem>> = Vec::with_capacity(plan.rings.len());
    for rk in &plan.rings {
        match connect_one(p, plan.fe_domid, rk, max_order, max_msg) {
            Ok(r) => done.push(r),
            Err(e) => {
                disconnect_rings(p, done);
                return Err(e);
            }
        }
    }
    Ok(done)
}

fn connect_one<P: Platform>(
    p: &mut P,
    domid: u16,
    rk: &RingKeys,
    max_order: u32,
    max_msg: u32,
) -> Result<ConnectedRing<P::Mem>, ConnectError<P::Error>> {
    let intf = p
        .map_grants(domid, core::slice::from_ref(&rk.intf_ref))
        .map_err(ConnectError::Platform)?;
    let info = match Interface::read(&intf, max_order) {
        Ok(i) => i,
        Err(e) => {
            p.unmap(intf);
            return Err(ConnectError::Ring(e));
        }
    };
    let data = match p.map_grants(domid, &info.refs) {
        Ok(d) => d,
        Err(e) => {
            p.unmap(intf);
            return Err(ConnectError::Platform(e));
        }
    };
    let ring = match Backend9pRing::attach(&intf, &data, info.ring_order, max_msg) {
        Ok(r) => r,
        Err(e) => {
            p.unmap(data);
            p.unmap(intf);
            return Err(ConnectError::Ring(e));
        }
    };
    let port = match p.bind_interdomain(domid, rk.evtchn) {
        Ok(port) => port,
        Err(e) => {
            p.unmap(data);
            p.unmap(intf);
            return Err(ConnectError::Platform(e));
        }
    };
    Ok(ConnectedRing {
        intf,
        data,
        port,
        ring,
    })
}

/// Closes the event channels and unmaps every ring.
pub fn disconnect_rings<P: Platform>(p: &mut P, rings: Vec<ConnectedRing<P::Mem>>) {
    for r in rings {
        p.close_evtchn(r.port);
        p.unmap(r.data);
        p.unmap(r.intf);
    }
}
