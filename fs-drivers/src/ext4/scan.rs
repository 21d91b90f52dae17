//! A whole-tree read for checking an image: [`Ext4::scan`].

use crate::block::BlockDevice;
use crate::ext4::error::Error;
use crate::ext4::types::FileType;
use crate::ext4::{Ext4, ROOT_INO};
use alloc::vec;

/// What [`Ext4::scan`] visited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Inodes whose attributes were read.
    pub inodes: u64,
    /// Directories listed.
    pub dirs: u64,
    /// File bytes read.
    pub bytes: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<Error>,
}

impl<D: BlockDevice> Ext4<D> {
    /// Visit the tree from the root breadth-first: every entry's attributes, every directory
    /// listing, file contents (data ranges only, up to `max_file_bytes` per file), symlink
    /// targets and xattrs. Errors are counted, not returned, so that a damaged image is read as
    /// far as possible. At most `max_inodes` entries are visited; each directory once.
    pub fn scan(&mut self, max_inodes: u64, max_file_bytes: u64) -> ScanStats {
        let mut st = ScanStats::default();
        let note = |st: &mut ScanStats, e: Error| {
            st.errors += 1;
            if st.first_error.is_none() {
                st.first_error = Some(e);
            }
        };
        let mut seen_dirs = alloc::collections::BTreeSet::new();
        let mut queue = alloc::collections::VecDeque::new();
        queue.push_back(ROOT_INO);
        seen_dirs.insert(ROOT_INO);
        let mut buf = vec![0u8; 64 * 1024];
        while let Some(dir) = queue.pop_front() {
            st.dirs += 1;
            let entries = match self.read_dir(dir) {
                Ok(e) => e,
                Err(e) => {
                    note(&mut st, e);
                    continue;
                }
            };
            if let Err(e) = self.lookup(dir, b"..") {
                note(&mut st, e);
            }
            for ent in entries {
                if ent.name == b"." || ent.name == b".." {
                    continue;
                }
                if st.inodes >= max_inodes {
                    return st;
                }
                st.inodes += 1;
                if let Err(e) = self.lookup(dir, &ent.name) {
                    note(&mut st, e);
                }
                let attr = match self.getattr(ent.ino) {
                    Ok(a) => a,
                    Err(e) => {
                        note(&mut st, e);
                        continue;
                    }
                };
                match self.listxattr(ent.ino) {
                    Ok(names) => {
                        for n in names {
                            if let Err(e) = self.getxattr(ent.ino, &n) {
                                note(&mut st, e);
                            }
                        }
                    }
                    Err(e) => note(&mut st, e),
                }
                match attr.kind {
                    FileType::Directory if seen_dirs.insert(ent.ino) => queue.push_back(ent.ino),
                    FileType::Symlink => {
                        if let Err(e) = self.readlink(ent.ino) {
                            note(&mut st, e);
                        }
                    }
                    FileType::Regular => {
                        let ranges = match self.data_ranges(ent.ino) {
                            Ok(r) => r,
                            Err(e) => {
                                note(&mut st, e);
                                continue;
                            }
                        };
                        let mut budget = max_file_bytes;
                        'file: for (off, len) in ranges {
                            let mut pos = off;
                            while pos < off + len && budget > 0 {
                                let want = (off + len - pos).min(buf.len() as u64).min(budget);
                                let b = buf.get_mut(..want as usize).unwrap_or(&mut []);
                                match self.read(ent.ino, pos, b) {
                                    Ok(0) => break 'file,
                                    Ok(n) => {
                                        pos += n as u64;
                                        budget = budget.saturating_sub(n as u64);
                                        st.bytes += n as u64;
                                    }
                                    Err(e) => {
                                        note(&mut st, e);
                                        break 'file;
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        st
    }
}
