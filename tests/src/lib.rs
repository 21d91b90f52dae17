//! Shared helpers for pvfs's acceptance tests.
pub mod p9client;
