//! Xen shared-ring protocols: the `io/ring.h` request/response rings, the byte rings used by
//! xenstore, the PV console and 9pfs, and the xenstore wire format.
//!
//! No unsafe code lives here. Shared memory is reached only through [`shmem::SharedMem`], which
//! the kernel implements with volatile accesses on granted or mapped pages and tests implement
//! with plain memory. Every index read from shared memory is validated against the ring size
//! before it is used, and every payload is copied out once before it is parsed: nothing in this
//! crate panics on what the other end writes.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod blkif;
pub mod byte_ring;
pub mod p9ring;
pub mod shared_ring;
pub mod shmem;
pub mod xenbus;
pub mod xenstore;
