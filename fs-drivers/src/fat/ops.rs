//! Names: lookup, listing, create, mkdir, unlink, rmdir, rename, and the references that
//! keep an unlinked file's clusters until it is released.

use super::entry::{self, attr, Short, ENTRY};
use super::{Error, Fat, Ino, ROOT_INO};
use crate::block::BlockDevice;
use alloc::vec;
use alloc::vec::Vec;

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Inode number.
    pub ino: Ino,
    /// The name (long name when there is one).
    pub name: Vec<u8>,
    /// A directory.
    pub dir: bool,
    /// Cookie that resumes the listing after this entry.
    pub next: u64,
}

impl<D: BlockDevice> Fat<D> {
    /// The root directory.
    pub fn root(&self) -> Ino {
        ROOT_INO
    }

    /// Looks `name` up in `dir` (`..` gives the parent).
    pub fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Ino, Error> {
        let n = self.nodes.get(dir).ok_or(Error::NotFound)?;
        if !n.entry.is_dir() {
            return Err(Error::NotDir);
        }
        if name == b".." {
            return Ok(n.parent);
        }
        if name == b"." {
            return Ok(dir);
        }
        let f = self.find(dir, name)?.ok_or(Error::NotFound)?;
        Ok(self.nodes.number(dir, f.first, f.slot, &f.entry))
    }

    /// The parent of directory `ino`.
    pub fn parent(&self, ino: Ino) -> Result<Ino, Error> {
        Ok(self.nodes.get(ino).ok_or(Error::NotFound)?.parent)
    }

    /// Lists `dir` from `cookie` (0: the start; `.` and `..` are not listed), calling `f` until
    /// it returns false. Cookies are slot positions, so they stay valid across changes.
    pub fn readdir(
        &mut self,
        dir: Ino,
        cookie: u64,
        f: &mut dyn FnMut(&Listed) -> bool,
    ) -> Result<(), Error> {
        let d = self.load_dir(dir)?;
        let mut found = Vec::new();
        entry::scan(&d.bytes, |e| {
            if u64::from(e.slot) >= cookie {
                found.push(e);
            }
            true
        });
        for e in found {
            let ino = self.nodes.number(dir, e.first, e.slot, &e.entry);
            let l = Listed {
                ino,
                name: e.name,
                dir: e.entry.is_dir(),
                next: u64::from(e.slot) + 1,
            };
            if !f(&l) {
                break;
            }
        }
        Ok(())
    }

    /// Creates an empty file (or, with `dir`, a directory) named `name` in `parent`, with
    /// the FAT attribute bits `bits` (read-only, hidden, system).
    pub fn create(&mut self, parent: Ino, name: &[u8], dir: bool, bits: u8) -> Result<Ino, Error> {
        self.check_writable()?;
        self.dir_cluster(parent)?;
        super::name::long_units(name)?;
        if self.find(parent, name)?.is_some() {
            return Err(Error::Exists);
        }
        let (d, t, cs) = self.now_dos();
        let mut e = Short {
            attr: (bits & (attr::READ_ONLY | attr::HIDDEN | attr::SYSTEM))
                | if dir { attr::DIR } else { attr::ARCHIVE },
            ctime_cs: cs,
            ctime: t,
            cdate: d,
            adate: d,
            mtime: t,
            mdate: d,
            ..Short::default()
        };
        if dir {
            // The directory's cluster, with `.` and `..`, exists before its entry.
            let c = self.table.allocate(1)?[0];
            let parent_cluster = match self.dir_cluster(parent)? {
                Some(pc) if parent != ROOT_INO => pc,
                _ => 0,
            };
            let mut buf = vec![0u8; self.geo.cluster_bytes() as usize];
            let mut dot = Short {
                name: *b".          ",
                cluster: c,
                ..e
            };
            dot.attr = attr::DIR;
            dot.encode(&mut buf[..ENTRY]);
            dot.name = *b"..         ";
            dot.cluster = parent_cluster;
            dot.encode(&mut buf[ENTRY..2 * ENTRY]);
            let s = self.geo.cluster_sector(c);
            if let Err(err) = self.write_sectors(s, &buf) {
                self.table.release(&[c]);
                return Err(err);
            }
            self.flush_table()?;
            self.barrier()?;
            e.cluster = c;
        }
        let (first, slot, e) = self.add_entry(parent, name, e)?;
        Ok(self.nodes.number(parent, first, slot, &e))
    }

    /// Removes `name` from `dir`: a file, or with `rmdir` an empty directory. The entry is
    /// cleared before its clusters are freed; a retained file keeps them until released.
    pub fn unlink(&mut self, dir: Ino, name: &[u8], rmdir: bool) -> Result<(), Error> {
        self.check_writable()?;
        let f = self.find(dir, name)?.ok_or(Error::NotFound)?;
        let ino = self.nodes.number(dir, f.first, f.slot, &f.entry);
        if f.entry.is_dir() {
            if !rmdir {
                return Err(Error::IsDir);
            }
            if !self.dir_empty(ino)? {
                return Err(Error::NotEmpty);
            }
        } else if rmdir {
            return Err(Error::NotDir);
        }
        self.clear_entry(dir, f.first, f.slot)?;
        self.barrier()?;
        let refs = self.nodes.get(ino).map_or(0, |n| n.refs);
        self.nodes.unplace(ino, refs > 0);
        if refs == 0 {
            self.free_clusters(&f.entry)?;
        }
        Ok(())
    }

    /// Frees the chain of entry `e` (all of it, whatever its size says).
    fn free_clusters(&mut self, e: &Short) -> Result<(), Error> {
        if e.cluster == 0 {
            return Ok(());
        }
        let chain = self
            .table
            .chain(e.cluster, self.geo.clusters as usize + 1)?;
        self.table.release(&chain);
        self.flush_table()
    }

    /// The server holds a reference to `ino`: an unlink keeps its clusters until the last
    /// [`Fat::release`].
    pub fn retain(&mut self, ino: Ino) {
        if let Some(n) = self.nodes.get_mut(ino) {
            n.refs = n.refs.saturating_add(1);
        }
    }

    /// Drops a reference; the last one of an unlinked file frees its clusters.
    pub fn release(&mut self, ino: Ino) -> Result<(), Error> {
        let Some(n) = self.nodes.get_mut(ino) else {
            return Ok(());
        };
        n.refs = n.refs.saturating_sub(1);
        if n.refs == 0 && n.unlinked {
            let e = n.entry;
            self.nodes.forget(ino);
            if self.writable {
                self.free_clusters(&e)?;
            }
        }
        Ok(())
    }

    /// Whether `anc` is `ino` or one of its ancestors.
    fn is_ancestor(&self, anc: Ino, mut ino: Ino) -> bool {
        for _ in 0..4096 {
            if ino == anc {
                return true;
            }
            match self.nodes.get(ino) {
                Some(n) if n.parent != ino => ino = n.parent,
                _ => return false,
            }
        }
        true
    }

    /// Renames `od/on` to `nd/nn`, replacing a file with a file or an empty directory with a
    /// directory. Not atomic (FAT has no journal): the old entry (and a replaced one) is
    /// cleared before the new one is written, so a cut in between loses the file to lost
    /// clusters but never leaves two entries on one chain.
    pub fn rename(&mut self, od: Ino, on: &[u8], nd: Ino, nn: &[u8]) -> Result<(), Error> {
        self.check_writable()?;
        self.dir_cluster(nd)?;
        super::name::long_units(nn)?;
        let src = self.find(od, on)?.ok_or(Error::NotFound)?;
        let ino = self.nodes.number(od, src.first, src.slot, &src.entry);
        let is_dir = src.entry.is_dir();
        if is_dir && self.is_ancestor(ino, nd) {
            return Err(Error::Invalid {
                what: "a directory cannot move into itself",
            });
        }
        let dst = self.find(nd, nn)?;
        let mut replaced = None;
        if let Some(t) = &dst {
            if od == nd && t.slot == src.slot {
                if t.name == super::name::stored_form(nn) {
                    return Ok(()); // the same name: nothing to do
                }
            } else {
                let tino = self.nodes.number(nd, t.first, t.slot, &t.entry);
                match (is_dir, t.entry.is_dir()) {
                    (true, false) => return Err(Error::NotDir),
                    (false, true) => return Err(Error::IsDir),
                    (true, true) if !self.dir_empty(tino)? => return Err(Error::NotEmpty),
                    _ => {}
                }
                replaced = Some((tino, t.clone()));
            }
        }
        let entry = self.nodes.get(ino).ok_or(Error::NotFound)?.entry;
        // 1. The replaced entry goes, then the old name.
        if let Some((_, t)) = &replaced {
            self.clear_entry(nd, t.first, t.slot)?;
        }
        self.clear_entry(od, src.first, src.slot)?;
        self.barrier()?;
        self.nodes.unplace(ino, true);
        // 2. A directory moving elsewhere points its `..` at the new parent.
        if is_dir && od != nd {
            let pc = match self.dir_cluster(nd)? {
                Some(c) if nd != ROOT_INO => c,
                _ => 0,
            };
            self.set_dotdot(entry.cluster, pc)?;
            self.barrier()?;
        }
        // 3. The new name.
        let (first, slot, e) = self.add_entry(nd, nn, entry)?;
        self.nodes.place(ino, nd, first, slot);
        if let Some(n) = self.nodes.get_mut(ino) {
            n.entry = e;
            n.parent = nd;
        }
        // 4. The replaced file's clusters (its entry is durably gone: barrier above).
        if let Some((tino, t)) = replaced {
            let refs = self.nodes.get(tino).map_or(0, |n| n.refs);
            self.nodes.unplace(tino, refs > 0);
            if refs == 0 {
                self.free_clusters(&t.entry)?;
            }
        }
        Ok(())
    }
}
