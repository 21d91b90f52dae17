//! Block maps: [`map`] maps logical blocks for reads (extent trees and legacy indirect maps);
//! [`write`] is the writer's extent trees, [`truncate`] truncate and fallocate.

pub(crate) mod map;
pub(crate) mod truncate;
pub(crate) mod write;

/// `eh_magic` of every extent tree node.
pub(crate) const EXTENT_MAGIC: u16 = 0xF30A;
/// The deepest extent tree ext4 allows.
pub(crate) const MAX_DEPTH: u16 = 5;
