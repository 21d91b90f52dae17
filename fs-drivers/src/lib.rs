//! Block devices, the block cache and the file-system engines (ext4, FAT12/16/32). no_std +
//! alloc, no unsafe code, and no knowledge of Xen.
//!
//! - [`block`]: the [`block::BlockDevice`] trait, [`block::MemDisk`] and (feature `std`)
//!   `block::FileDisk`.
//! - [`cache`]: a bounded LRU block cache.
//! - [`crc`]: CRC32C and CRC-16 for metadata checksums (the `crc` crate).
//! - [`ext4`]: the ext4 engine ([`ext4::Ext4`]).
//! - [`dedup`]: file-level deduplication of an ext4 volume (shared store files).
//! - [`fat`]: the FAT12/16/32 engine with VFAT long names ([`fat::Fat`]).
//! - `host` (feature `std`): host helpers such as copying a tree out of an image.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod block;
pub mod cache;
pub mod crc;
pub mod dedup;
pub mod ext4;
pub mod fat;
#[cfg(feature = "std")]
pub mod host;
pub mod index;
