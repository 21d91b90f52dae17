//! The boot sequence and the service loop, one file per job:
//!
//! - [`boot`]: from `boot/`'s hand-off to a running platform (memory, Xen setup).
//! - [`serve`]: the service loop of a Xen domain (9pfs devices, the data volume, shutdown).
//! - [`dedup`]: the serve loop's side of the live dedup (`pvfs dedup`).
//! - [`volume`]: connecting the data disk and opening ext4 on it.
//! - [`selftest`]: the plain-QEMU self-test.
//! - [`fault`]: faults raised on request (`pvfs.fault`) to exercise the crash paths.
//! - [`blkbench`]: the raw blkfront read benchmark.
//! - [`storm`]: the exit storm (`pvfs.exitstorm`), a test of the platform.

mod blkbench;
mod boot;
mod dedup;
mod fault;
mod publish;
mod selftest;
mod serve;
mod storm;
mod volume;

pub use boot::main;
