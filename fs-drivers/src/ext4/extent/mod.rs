//! Block maps: [`map`] maps logical blocks for reads (extent trees and legacy indirect maps);
//! [`write`] is the writer's extent trees, truncate and fallocate.

pub(crate) mod map;
pub(crate) mod write;
