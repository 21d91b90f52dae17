//! Extended attributes: [`read`] (in-inode area and external block, POSIX ACL conversion) and
//! [`write`] (set, replace, remove; the block shared by reference count).

pub(crate) mod read;
pub(crate) mod write;

/// An xattr: name index, name suffix, value.
pub(crate) type Xattr = (u8, Vec<u8>, Vec<u8>);

use alloc::vec::Vec;
