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

/// Declares a `#[repr(u32)]` enum whose values a Xen header fixes, with `from_u32`, its
/// decoder: each value is written once, so the decoder cannot drift from the enum. The call
/// holds the enum as it would stand on its own, without `#[repr(u32)]`.
macro_rules! u32_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[repr(u32)]
        $vis enum $name {
            $($(#[$vmeta])* $variant = $value,)+
        }

        impl $name {
            /// Decodes a wire value; `None` for one the enum does not name.
            pub fn from_u32(v: u32) -> Option<Self> {
                match v {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

pub mod blkif;
pub mod byte_ring;
pub mod p9ring;
pub mod shared_ring;
pub mod shmem;
pub mod xenbus;
pub mod xenstore;
