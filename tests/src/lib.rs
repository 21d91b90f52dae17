//! Shared helpers for pvfs's acceptance tests.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

pub mod dedupset;
pub mod ext4img;
pub mod fatimg;
pub mod namei;
pub mod overlay_model;
pub mod p9client;
pub mod p9memfs;
pub mod wimg;

/// The environment variable that turns every environment skip into a failure. `.ci/run` sets
/// it: CI runs as root on a machine that can loop-mount and has every tool the tests use.
pub const REQUIRE_ALL: &str = "PVFS_REQUIRE_ALL";

/// Gives up on (the rest of) a test because this machine cannot run it: no loop mount, a tool
/// that will not run. Prints `skipped: <reason>` and returns; the caller returns next. With
/// `PVFS_REQUIRE_ALL=1` it panics instead, so that a skip cannot pass for a pass.
pub fn skip(reason: &str) {
    if std::env::var_os(REQUIRE_ALL).is_some_and(|v| v == "1") {
        panic!("{REQUIRE_ALL}=1, and this test would be skipped: {reason}");
    }
    println!("skipped: {reason}");
}
