//! The jbd2 journal: [`replay`] reads a log that needs recovery (in memory at a read-only
//! mount, for real before a read-write one); [`commit`] writes transactions to it.

pub(crate) mod commit;
pub(crate) mod replay;

pub(crate) use commit::Jnl;
pub(crate) use replay::{replay, REPLAYED_IN_MEMORY};
