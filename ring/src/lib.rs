//! Xen shared-ring protocols: the `io/ring.h` request/response rings, the 9pfs byte rings and
//! the xenstore wire format. No unsafe code: shared memory is reached through a trait that the
//! kernel implements with volatile accesses and tests implement with plain memory.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod xenstore;
