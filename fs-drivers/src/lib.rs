//! Block devices, the block cache and the file-system engines (ext4, FAT). no_std + alloc, no
//! unsafe code, and no knowledge of Xen.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
