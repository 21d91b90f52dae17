//! Shared helpers for pvfs's acceptance tests.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

pub mod ext4img;
pub mod p9client;
pub mod wimg;
