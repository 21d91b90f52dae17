//! The overlay's table of merged objects: what each reported inode number stands for (its
//! upper and lower inodes, its parent and name in the merged tree). Filled by lookups and
//! bounded: past its capacity the least recently used entries that no fid holds and that no
//! other entry names as its parent are dropped (a later lookup refills them).

use crate::fs::{Errno, FsResult, Ino};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// One merged object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    /// Its inode in the share's directory tree, once it has one.
    pub upper: Option<Ino>,
    /// Its inode in the template (a lower-only object, or the origin of a copy).
    pub lower: Option<Ino>,
    /// The upper inode holds the metadata only; the data is still the lower inode's.
    pub meta: bool,
    /// A directory.
    pub dir: bool,
    /// Reported inode number of the parent directory (the root is its own parent).
    pub parent: Ino,
    /// Name in the parent (empty once the object was removed).
    pub name: Vec<u8>,
}

#[derive(Debug)]
struct Slot {
    node: Node,
    /// Server references (`retain` minus `release`).
    refs: u64,
    /// Entries whose parent this is.
    kids: u64,
    /// Key in `idle` while the entry may be dropped.
    idle_at: Option<u64>,
}

/// The table.
#[derive(Debug)]
pub(super) struct Table {
    slots: BTreeMap<Ino, Slot>,
    idle: BTreeMap<u64, Ino>,
    tick: u64,
    cap: usize,
    root: Ino,
}

impl Table {
    /// A table holding the root (never dropped) and at most `cap` entries besides what fids
    /// and children pin.
    pub fn new(root: Ino, node: Node, cap: usize) -> Self {
        let mut slots = BTreeMap::new();
        slots.insert(
            root,
            Slot {
                node,
                refs: 1,
                kids: 0,
                idle_at: None,
            },
        );
        Table {
            slots,
            idle: BTreeMap::new(),
            tick: 0,
            cap: cap.max(2),
            root,
        }
    }

    /// The entry of `ino`.
    pub fn get(&self, ino: Ino) -> FsResult<&Node> {
        self.slots.get(&ino).map(|s| &s.node).ok_or(Errno::ENOENT)
    }

    /// Server references to `ino`.
    pub fn refs(&self, ino: Ino) -> u64 {
        self.slots.get(&ino).map_or(0, |s| s.refs)
    }

    /// Records `node` as `ino` (replacing what was there), then drops idle entries over the
    /// capacity, never `ino` itself.
    pub fn put(&mut self, ino: Ino, node: Node) {
        let new_parent = node.parent;
        let old_parent = match self.slots.get_mut(&ino) {
            Some(s) => {
                let old = s.node.parent;
                s.node = node;
                Some(old)
            }
            None => {
                self.slots.insert(
                    ino,
                    Slot {
                        node,
                        refs: 0,
                        kids: 0,
                        idle_at: None,
                    },
                );
                None
            }
        };
        if old_parent != Some(new_parent) && ino != self.root {
            if let Some(old) = old_parent {
                self.add_kids(old, -1);
            }
            self.add_kids(new_parent, 1);
        }
        self.refresh(ino);
        self.evict(ino);
    }

    /// Changes the entry of `ino` in place (parent links are not to be changed this way).
    pub fn update(&mut self, ino: Ino, f: impl FnOnce(&mut Node)) {
        if let Some(s) = self.slots.get_mut(&ino) {
            f(&mut s.node);
        }
    }

    /// Takes (`delta` 1) or drops (-1) a server reference.
    pub fn add_refs(&mut self, ino: Ino, delta: i64) {
        if let Some(s) = self.slots.get_mut(&ino) {
            s.refs = if delta >= 0 {
                s.refs.saturating_add(1)
            } else {
                s.refs.saturating_sub(1)
            };
        }
        self.refresh(ino);
    }

    /// Forgets `ino` unless a fid holds it or an entry names it as its parent (then it is
    /// kept, marked removed by its empty name).
    pub fn forget(&mut self, ino: Ino) {
        let Some(s) = self.slots.get_mut(&ino) else {
            return;
        };
        s.node.name.clear();
        if s.refs > 0 || s.kids > 0 || ino == self.root {
            return;
        }
        self.drop_slot(ino);
    }

    fn add_kids(&mut self, ino: Ino, delta: i64) {
        if let Some(s) = self.slots.get_mut(&ino) {
            s.kids = if delta >= 0 {
                s.kids.saturating_add(1)
            } else {
                s.kids.saturating_sub(1)
            };
        }
        self.refresh(ino);
    }

    /// Puts `ino` in or out of the idle set after its counts changed; a use moves it to the
    /// end of the set.
    fn refresh(&mut self, ino: Ino) {
        let root = self.root;
        let tick = self.tick;
        let Some(s) = self.slots.get_mut(&ino) else {
            return;
        };
        if let Some(t) = s.idle_at.take() {
            self.idle.remove(&t);
        }
        if s.refs == 0 && s.kids == 0 && ino != root {
            s.idle_at = Some(tick);
            self.idle.insert(tick, ino);
            self.tick = tick.wrapping_add(1);
        }
    }

    fn drop_slot(&mut self, ino: Ino) {
        if let Some(s) = self.slots.remove(&ino) {
            if let Some(t) = s.idle_at {
                self.idle.remove(&t);
            }
            self.add_kids(s.node.parent, -1);
        }
    }

    fn evict(&mut self, keep: Ino) {
        while self.slots.len() > self.cap {
            let victim = self.idle.iter().map(|(_, &i)| i).find(|&i| i != keep);
            let Some(v) = victim else {
                return;
            };
            self.drop_slot(v);
        }
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }
}
