//! The jbd2 journal. A file system whose journal needs recovery (`needs_recovery` set) is
//! refused with [`Error::JournalRecovery`] for now; the write path replays it.

use super::{Error, Ext4};
use crate::block::BlockDevice;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Replay the journal into an in-memory overlay (physical block → new contents).
pub(crate) fn replay<D: BlockDevice>(_fs: &mut Ext4<D>) -> Result<BTreeMap<u64, Vec<u8>>, Error> {
    Err(Error::JournalRecovery {
        what: "in-memory replay is not supported; run e2fsck",
    })
}
