//! 9P2000.L codec and server over a `Filesystem` trait, with the export policy (confinement,
//! read-only, uid/gid mapping, quota hooks, POSIX locks). no_std + alloc, no unsafe code, no Xen.
//!
//! - [`wire`]: zero-copy codec for every 9P2000.L message (framing, constants, T- and
//!   R-messages, directory entries).
//! - [`fs`]: the [`fs::Filesystem`] trait the server drives.
//! - [`server`]: [`server::Server`] (one export) and [`server::Connection`] (one client), with
//!   one method per 9P message.
//! - [`policy`]: uid/gid maps, quota, lock table.
//! - [`idpolicy`]: a share's identity policy (read-only, uid and gid maps) from its keys.
//! - [`perm`]: permission checks for mapped and squashed guests, ids inside POSIX ACLs.
//! - [`privs`]: when a write, truncate or chown clears the set-user-ID and set-group-ID bits.
//! - [`sched`]: the per-channel request queue of transports that take many requests at once.
//! - [`memfs`]: an in-memory filesystem.
//! - [`overlay`]: template shares, a copy-on-write merged view of a template directory under
//!   a share's own directory, over any [`fs::Filesystem`].
//! - [`ext4`]: the ext4 engine behind the `Filesystem` trait: reads and writes (mounted
//!   read-write), or refuses every change with `EROFS` (mounted read-only).
//! - [`fat`]: the FAT engine behind the `Filesystem` trait, with vfat's owner, mode and
//!   errno rules.
//! - [`volume`]: the served volume, ext4 or FAT ([`volume::detect`] tells which), behind one
//!   `Filesystem`.
//! - `host` (feature `std`): TCP / unix-socket transport with a worker pool.
//!
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(all(feature = "std", not(test)))]
extern crate std;

pub mod channel;
pub mod ext4;
pub mod fat;
pub mod fs;
#[cfg(feature = "std")]
pub mod host;
pub mod idpolicy;
pub mod memfs;
pub mod overlay;
pub mod perm;
pub mod policy;
pub mod privs;
pub mod sched;
pub mod server;
pub mod volume;
pub mod wire;

pub use fs::{Errno, Filesystem};
pub use server::{
    Connection, Executed, ExportConfig, Request, SeedError, Server, Submitted, WriteBehind,
};
