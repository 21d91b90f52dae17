//! Inode numbers for FAT entries (see the module documentation of `fat`): a table from
//! number to the entry's place and a copy of its short entry, and back.

use super::bpb::Geometry;
use super::entry::{attr, Short};
use super::{Ino, ROOT_INO};
use alloc::collections::BTreeMap;

/// An entry the engine has numbered.
#[derive(Debug, Clone)]
pub struct Node {
    /// Directory holding the entry (the root's is itself).
    pub parent: Ino,
    /// First slot (first long-name slot, or the short entry) in the parent.
    pub first: u32,
    /// Slot of the short entry in the parent.
    pub slot: u32,
    /// The short entry as on disk (the engine writes it through).
    pub entry: Short,
    /// References held by `retain`.
    pub refs: u32,
    /// Removed from its directory while retained: its clusters are freed at the last release.
    pub unlinked: bool,
}

/// Attributes of a file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Inode number.
    pub ino: Ino,
    /// Directory or file.
    pub dir: bool,
    /// Bytes (a directory: its clusters' bytes).
    pub size: u64,
    /// FAT attribute bits ([`super::attr`]).
    pub attr: u8,
    /// Last change of the data, Unix seconds and nanoseconds (2 s resolution).
    pub mtime: (i64, u32),
    /// Last access date (day resolution).
    pub atime: (i64, u32),
    /// Creation time (10 ms resolution).
    pub crtime: (i64, u32),
    /// Clusters allocated.
    pub clusters: u64,
    /// First cluster (0: none).
    pub first_cluster: u32,
}

/// The table of numbered entries.
pub struct Nodes {
    map: BTreeMap<Ino, Node>,
    by_place: BTreeMap<(Ino, u32), Ino>,
    next: Ino,
}

impl Nodes {
    /// A table holding the root only.
    pub fn new(g: &Geometry) -> Nodes {
        let mut map = BTreeMap::new();
        map.insert(
            ROOT_INO,
            Node {
                parent: ROOT_INO,
                first: 0,
                slot: 0,
                entry: Short {
                    name: *b"           ",
                    attr: attr::DIR,
                    cluster: g.root_cluster,
                    ..Short::default()
                },
                refs: 0,
                unlinked: false,
            },
        );
        Nodes {
            map,
            by_place: BTreeMap::new(),
            next: ROOT_INO + 1,
        }
    }

    /// The node numbered `ino`.
    pub fn get(&self, ino: Ino) -> Option<&Node> {
        self.map.get(&ino)
    }

    /// The node numbered `ino`, for changing.
    pub fn get_mut(&mut self, ino: Ino) -> Option<&mut Node> {
        self.map.get_mut(&ino)
    }

    /// The number of the entry at (`parent`, `slot`), numbering it if it is new.
    pub fn number(&mut self, parent: Ino, first: u32, slot: u32, entry: &Short) -> Ino {
        if let Some(&ino) = self.by_place.get(&(parent, slot)) {
            if let Some(n) = self.map.get_mut(&ino) {
                n.first = first;
                return ino;
            }
        }
        let ino = self.next;
        self.next += 1;
        self.map.insert(
            ino,
            Node {
                parent,
                first,
                slot,
                entry: *entry,
                refs: 0,
                unlinked: false,
            },
        );
        self.by_place.insert((parent, slot), ino);
        ino
    }

    /// Detaches `ino` from its place (its entry is gone); the node stays if `keep`.
    pub fn unplace(&mut self, ino: Ino, keep: bool) {
        if let Some(n) = self.map.get(&ino) {
            let key = (n.parent, n.slot);
            if self.by_place.get(&key) == Some(&ino) {
                self.by_place.remove(&key);
            }
        }
        if keep {
            if let Some(n) = self.map.get_mut(&ino) {
                n.unlinked = true;
            }
        } else {
            self.map.remove(&ino);
        }
    }

    /// Moves `ino` to a new place.
    pub fn place(&mut self, ino: Ino, parent: Ino, first: u32, slot: u32) {
        if let Some(n) = self.map.get_mut(&ino) {
            n.parent = parent;
            n.first = first;
            n.slot = slot;
            n.unlinked = false;
        }
        self.by_place.insert((parent, slot), ino);
    }

    /// Forgets a node entirely.
    pub fn forget(&mut self, ino: Ino) {
        self.map.remove(&ino);
    }
}
