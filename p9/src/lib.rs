//! 9P2000.L codec and server over a `Filesystem` trait, with the export policy (confinement,
//! read-only, uid/gid mapping, quota hooks). no_std + alloc, no unsafe code, no Xen.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
