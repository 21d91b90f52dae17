//! `pvfs share add|rm|ls|set` and `pvfs status`: dom0 commands that attach, detach, list and
//! tune pvfs shares by writing xenstore as libxl does (`libxl__device_generic_add`), over the
//! [`Store`](crate::xs::Store) trait, so that all of it runs against an in-memory store in host
//! tests.
//!
//! One module a job: [`failure`] (exit statuses, transactions), [`domains`] (the guest and the
//! pvfs domain), [`nodes`] (where a device's nodes are, reading shares back, removing them),
//! [`xsquota`] (xenstored's quotas for pvfs's domain), [`add`], [`rm`], [`set`], [`ls`] and
//! [`status`] (with [`json`]), [`top`], and [`cli`] (the command line). Details and exit statuses: `docs/pvfs-share.md`.

mod add;
mod cli;
mod dedup;
mod domains;
mod failure;
mod json;
mod ls;
mod nodes;
mod policy;
mod rm;
mod set;
mod status;
mod top;
mod xsquota;

pub use cli::{
    run_dedup, run_share, run_status, run_top, DedupArgs, ShareCmd, StatusArgs, TopArgs,
};
pub use failure::Failure;

/// How often the commands look at xenstore while they wait.
pub const POLL_MS: u64 = 100;

#[cfg(test)]
mod tests;
