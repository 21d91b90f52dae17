//! Directory index (htree) growth: a linear directory whose only block is full becomes an
//! indexed one (as Linux `make_indexed_dir`: the dx root in block 0 behind `.` and `..`, the
//! other entries sorted by hash into two leaves), a full leaf is split in two at the median
//! hash (never between equal hashes), a full index node is split in two, and a full root
//! gains a level (`indirect_levels` + 1): up to 2 levels of index nodes with `largedir`,
//! 1 without; beyond that adding fails with [`Error::NoSpace`]. The hash version comes from
//! the superblock's `s_def_hash_version` (unsigned variant per the superblock flag); the dx
//! tails carry their checksums (metadata_csum).

use crate::block::BlockDevice;
use crate::ext4::bytes::{le16, le32, put16, put32};
use crate::ext4::dir::entries::{dir_tail, dirent, put_dir_tail, rec_need};
use crate::ext4::dir::htree::{dx_csum, dx_pick};
use crate::ext4::dir::{de, dx, hash};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::{raw_size, set_mtime_ctime, set_raw_size, Inode, I_FLAGS};
use crate::ext4::types::flags;
use crate::ext4::{Ext4, Ino};
use alloc::vec;
use alloc::vec::Vec;

/// A directory entry being moved: (hash, inode, name, file type).
type Ent = (u32, Ino, Vec<u8>, u8);

/// One index node on the path from the root to a leaf.
struct Frame {
    /// Logical block of the node (0: the root).
    lblk: u32,
    /// Its (hash, logical block) entries; entry 0's hash is implicit (0).
    entries: Vec<(u32, u32)>,
    /// How many entries it can hold.
    limit: usize,
    /// The entry followed towards the leaf.
    idx: usize,
    /// Changed: must be written back.
    dirty: bool,
}

/// Entries a dx node can hold (room for the dx tail with metadata_csum).
fn dx_limit(bs: usize, count_off: usize, csum: bool) -> usize {
    (bs - count_off - if csum { dx::TAIL_LEN } else { 0 }) / dx::ENTRY_LEN
}

/// Write `entries` (count/limit header included) at `count_off` of a dx node and its tail
/// checksum.
fn store_dx(
    b: &mut [u8],
    count_off: usize,
    limit: usize,
    entries: &[(u32, u32)],
    csum: Option<u32>,
) {
    if let Some(area) = b.get_mut(count_off..count_off + limit * dx::ENTRY_LEN) {
        area.fill(0);
    }
    for (i, &(h, blk)) in entries.iter().enumerate() {
        let o = count_off + i * dx::ENTRY_LEN;
        if i > 0 {
            put32(b, o + dx::HASH, h);
        }
        put32(b, o + dx::BLOCK, blk);
    }
    put16(b, count_off + dx::LIMIT, limit as u16);
    put16(b, count_off + dx::COUNT, entries.len() as u16);
    if let Some(seed) = csum {
        // `dt_reserved`, then the checksum.
        put32(b, count_off + limit * dx::ENTRY_LEN, 0);
        if let Some((c, at_csum)) = dx_csum(b, count_off, seed) {
            put32(b, at_csum, c);
        }
    }
}

/// Where to split hash-sorted entries: near the middle, never between equal hashes.
fn split_point(ents: &[Ent]) -> Option<usize> {
    let len = ents.len();
    let same = |m: usize| ents.get(m).map(|e| e.0) == ents.get(m - 1).map(|e| e.0);
    let mut up = len / 2;
    while up > 0 && up < len && same(up) {
        up += 1;
    }
    let mut down = len / 2;
    while down > 0 && same(down) {
        down -= 1;
    }
    [up, down]
        .into_iter()
        .filter(|&m| m > 0 && m < len)
        .min_by_key(|&m| m.abs_diff(len / 2))
}

/// A leaf block holding `list` (the last entry takes the rest), with its dirent tail; `None`
/// when they do not fit.
fn build_leaf(bs: usize, csum: bool, seed: u32, list: &[Ent]) -> Option<Vec<u8>> {
    let limit = if csum { bs - de::TAIL_LEN } else { bs };
    let mut b = vec![0u8; bs];
    if list.is_empty() {
        put16(&mut b, de::REC_LEN, limit as u16);
    }
    let mut off = 0usize;
    for (i, (_, e_ino, n, ft)) in list.iter().enumerate() {
        let need = rec_need(n.len());
        let rec = if i + 1 == list.len() {
            limit.checked_sub(off)?
        } else {
            need
        };
        if rec < need {
            return None;
        }
        dirent(&mut b, off, *e_ino, rec, n, *ft);
        off += rec;
    }
    if csum {
        put_dir_tail(&mut b, bs, seed);
    }
    Some(b)
}

/// Split the entries of a full leaf (with the new one) in two leaves at a hash boundary:
/// (lower leaf, upper leaf, first hash of the upper one).
fn split_leaf(
    bs: usize,
    csum: bool,
    seed: u32,
    mut ents: Vec<Ent>,
) -> Result<(Vec<u8>, Vec<u8>, u32)> {
    ents.sort_by_key(|e| e.0);
    let m = split_point(&ents).ok_or(Error::Unsupported {
        what: "htree leaf full of one hash value",
    })?;
    let upper = ents.split_off(m);
    let hash2 = upper.first().map_or(0, |e| e.0);
    let (Some(low), Some(high)) = (
        build_leaf(bs, csum, seed, &ents),
        build_leaf(bs, csum, seed, &upper),
    ) else {
        return Err(Error::Unsupported {
            what: "htree leaf split does not fit",
        });
    };
    Ok((low, high, hash2))
}

impl<D: BlockDevice> Ext4<D> {
    /// The hash version a directory's names are hashed with (stored version `v`, made
    /// unsigned per the superblock flag), or `None` for a version this engine cannot compute.
    fn dx_hash_fn(&self, v: u8) -> Option<impl Fn(&[u8]) -> Option<u32>> {
        let ctx = self.ctx;
        let version = ctx.dx_version(v);
        hash::dirhash(b"", version, ctx.hash_seed)?;
        Some(move |n: &[u8]| hash::dirhash(n, version, ctx.hash_seed))
    }

    /// Append one block to directory `dir` at the end of its file (size and `i_blocks`
    /// updated): returns (logical, physical) block. The block's contents are the caller's.
    fn dir_append_block(&mut self, dir: Ino, goal: u64) -> Result<(u32, u64)> {
        let ctx = self.ctx;
        let bs = ctx.bs as u64;
        let inode = self.load_inode(dir)?;
        let lblk = u32::try_from(inode.size / bs).map_err(|_| Error::NoSpace)?;
        let goal = self.append_goal(&inode)?.unwrap_or(goal);
        let (phys, _) = self.alloc_blocks(goal, 1)?;
        if let Err(e) = self.map_new_blocks(dir, lblk, 1, phys) {
            self.free_blocks(phys, 1)?;
            return Err(e);
        }
        self.patch_inode(dir, |raw| {
            let size = raw_size(raw) + bs;
            set_raw_size(raw, size);
        })?;
        Ok((lblk, phys))
    }

    /// The entries of leaf block `lblk` with their hashes.
    fn dx_leaf_entries(
        &mut self,
        inode: &Inode,
        lblk: u64,
        hash: &impl Fn(&[u8]) -> Option<u32>,
    ) -> Result<(u64, Vec<Ent>)> {
        let ctx = self.ctx;
        let at = u64::from(inode.ino);
        let phys = self.map(inode, lblk)?.phys.ok_or(Error::Corrupt {
            what: "directory hole",
            at,
        })?;
        let b = self.block(phys)?;
        let mut ents: Vec<Ent> = Vec::new();
        Self::walk_block(&ctx, b, phys, 0, |_, e_ino, n, ft, _| {
            ents.push((0, e_ino, n.to_vec(), ft));
            true
        })?;
        for e in &mut ents {
            e.0 = hash(&e.2).ok_or(Error::Unsupported {
                what: "unknown htree hash version",
            })?;
        }
        Ok((phys, ents))
    }

    /// Turn linear directory `inode` (one full block) into an indexed one holding its
    /// entries and `name → ino`. `Ok(false)` when the superblock's hash version is unknown
    /// (the caller then grows the directory linearly).
    pub(crate) fn make_indexed_dir(
        &mut self,
        inode: &Inode,
        name: &[u8],
        ino: Ino,
        t: u8,
    ) -> Result<bool> {
        let ctx = self.ctx;
        let bs = ctx.bs;
        let version = self.sb.def_hash_version;
        let Some(hash) = self.dx_hash_fn(version) else {
            return Ok(false);
        };
        let (phys0, mut all) = self.dx_leaf_entries(inode, 0, &|_| Some(0))?;
        // `.` and `..` must be the first two entries; they stay in the root.
        let b0 = self.block(phys0)?;
        let dot_rec = usize::from(le16(b0, de::REC_LEN));
        if all.len() < 2
            || all.first().map(|e| e.2.as_slice()) != Some(b".")
            || all.get(1).map(|e| e.2.as_slice()) != Some(b"..")
            || dot_rec != 12
        {
            return corrupt("directory `.`/`..`", u64::from(inode.ino));
        }
        let rest = all.split_off(2);
        let (dot, dotdot) = match (all.first(), all.get(1)) {
            (Some(a), Some(b)) => (a.clone(), b.clone()),
            _ => return corrupt("directory `.`/`..`", u64::from(inode.ino)),
        };
        let unknown = Error::Unsupported {
            what: "unknown htree hash version",
        };
        let mut ents = Vec::with_capacity(rest.len() + 1);
        for (_, e_ino, n, ft) in rest {
            let h = hash(&n).ok_or(unknown.clone())?;
            ents.push((h, e_ino, n, ft));
        }
        ents.push((hash(name).ok_or(unknown)?, ino, name.to_vec(), t));
        let (low, high, hash2) = split_leaf(bs, ctx.csum, inode.seed, ents)?;
        // Room for both leaves first (nothing changes when the disk is full).
        if self.sb.free_blocks_count < 2 {
            return Err(Error::NoSpace);
        }
        let (l1, p1) = self.dir_append_block(inode.ino, phys0)?;
        self.block_new(p1)?.copy_from_slice(&low);
        let (l2, p2) = match self.dir_append_block(inode.ino, p1) {
            Ok(x) => x,
            Err(e) => {
                // Keep the directory consistent: the first leaf becomes an ordinary block.
                let mut keep = vec![0u8; bs];
                let limit = if ctx.csum { bs - de::TAIL_LEN } else { bs };
                put16(&mut keep, de::REC_LEN, limit as u16);
                dir_tail(&ctx, &mut keep, inode.seed);
                self.block_new(p1)?.copy_from_slice(&keep);
                return Err(e);
            }
        };
        self.block_new(p2)?.copy_from_slice(&high);
        // The root: `.`, `..` covering the block, dx_root_info, then the index.
        let mut root = vec![0u8; bs];
        dirent(&mut root, 0, dot.1, 12, b".", dot.3);
        dirent(
            &mut root,
            dx::DOTDOT,
            dotdot.1,
            bs - dx::DOTDOT,
            b"..",
            dotdot.3,
        );
        if let Some(x) = root.get_mut(dx::HASH_VERSION..dx::ROOT_COUNT_OFF) {
            x.copy_from_slice(&[version, 8, 0, 0]);
        }
        let limit = dx_limit(bs, dx::ROOT_COUNT_OFF, ctx.csum);
        let seed = ctx.csum.then_some(inode.seed);
        store_dx(
            &mut root,
            dx::ROOT_COUNT_OFF,
            limit,
            &[(0, l1), (hash2, l2)],
            seed,
        );
        self.block_mut(phys0)?.copy_from_slice(&root);
        let now = self.clock;
        self.patch_inode(inode.ino, |raw| {
            put32(raw, I_FLAGS, le32(raw, I_FLAGS) | flags::INDEX);
            set_mtime_ctime(raw, now);
        })?;
        Ok(true)
    }

    /// Add `name → ino` to htree directory `inode` whose leaf for `name` is full: split the
    /// leaf, and first the index nodes on the way that are full (adding a level when the
    /// root is full and the depth allows it).
    pub(crate) fn dx_add(&mut self, inode: &Inode, name: &[u8], ino: Ino, t: u8) -> Result<()> {
        let ctx = self.ctx;
        let bs = ctx.bs;
        let at = u64::from(inode.ino);
        let dir = inode.ino;
        let (root, version, levels) = self.dx_node(inode, 0, true)?;
        let max_levels: u8 = if ctx.largedir { 3 } else { 2 };
        if levels >= max_levels {
            return corrupt("dx depth", at);
        }
        let hash = self.dx_hash_fn(version).ok_or(Error::Unsupported {
            what: "unknown htree hash version",
        })?;
        let h = hash(name).ok_or(Error::Unsupported {
            what: "unknown htree hash version",
        })?;
        let nblocks = inode.size / bs as u64;
        let mut path = self.dx_path(inode, root, levels, h)?;
        let leaf_lblk = path
            .last()
            .and_then(|f| f.entries.get(f.idx))
            .map_or(0, |e| u64::from(e.1));
        if leaf_lblk == 0 || leaf_lblk >= nblocks {
            return corrupt("dx leaf pointer", at);
        }
        // The leaf split, computed before anything changes.
        let (leaf_phys, mut ents) = self.dx_leaf_entries(inode, leaf_lblk, &hash)?;
        ents.push((h, ino, name.to_vec(), t));
        let (low, high, hash2) = split_leaf(bs, ctx.csum, inode.seed, ents)?;
        // Which index nodes must split: the full ones from the bottom up to the first one
        // with room. With all full, the root gains a level (if the depth allows).
        let full = |f: &Frame| f.entries.len() >= f.limit;
        let mut first_split = path.len();
        while first_split > 0 && path.get(first_split - 1).is_some_and(full) {
            first_split -= 1;
        }
        let add_level = first_split == 0;
        if add_level && levels + 1 >= max_levels {
            return Err(Error::NoSpace);
        }
        let new_blocks = (path.len() - first_split) as u64 + 1;
        if self.sb.free_blocks_count < new_blocks + 1 {
            return Err(Error::NoSpace);
        }
        let node_limit = dx_limit(bs, dx::NODE_COUNT_OFF, ctx.csum);
        let mut goal = leaf_phys;
        if add_level {
            // The root's entries move to a new node; the root points at it alone.
            let (nl, np) = self.dir_append_block(dir, goal)?;
            goal = np;
            let Some(r) = path.first_mut() else {
                return corrupt("dx path", at);
            };
            let moved = core::mem::take(&mut r.entries);
            r.entries.push((0, nl));
            let idx = r.idx;
            r.idx = 0;
            r.dirty = true;
            path.insert(
                1,
                Frame {
                    lblk: nl,
                    entries: moved,
                    limit: node_limit,
                    idx,
                    dirty: true,
                },
            );
            first_split = 2;
        }
        // Split the full nodes top-down: the upper half moves to a new node, indexed in
        // the parent (which has room by now); the path continues in the half with the name.
        let mut off_path = Vec::new();
        for j in first_split.max(1)..path.len() {
            if !path.get(j).is_some_and(full) {
                continue;
            }
            let (nl, np) = self.dir_append_block(dir, goal)?;
            goal = np;
            let Some(f) = path.get_mut(j) else { break };
            let half = f.entries.len() / 2;
            let moved = f.entries.split_off(half);
            let hash_m = moved.first().map_or(0, |e| e.0);
            let mut other = Frame {
                lblk: nl,
                entries: moved,
                limit: node_limit,
                idx: 0,
                dirty: true,
            };
            f.dirty = true;
            let went_up = f.idx >= half;
            if went_up {
                other.idx = f.idx - half;
                core::mem::swap(f, &mut other);
            }
            off_path.push(other);
            let Some(parent) = path.get_mut(j - 1) else {
                return corrupt("dx path", at);
            };
            parent.entries.insert(parent.idx + 1, (hash_m, nl));
            parent.dirty = true;
            if went_up {
                parent.idx += 1;
            }
        }
        // The leaf split: the upper half goes to a new leaf, indexed after the old one.
        let (nl, np) = self.dir_append_block(dir, goal)?;
        self.block_mut(leaf_phys)?.copy_from_slice(&low);
        self.block_new(np)?.copy_from_slice(&high);
        let Some(bottom) = path.last_mut() else {
            return corrupt("dx path", at);
        };
        bottom.entries.insert(bottom.idx + 1, (hash2, nl));
        bottom.dirty = true;
        if add_level {
            let p = self.map(inode, 0)?.phys.ok_or(Error::Corrupt {
                what: "dx node hole",
                at,
            })?;
            if let Some(x) = self.block_mut(p)?.get_mut(dx::INDIRECT_LEVELS) {
                *x = levels + 1;
            }
        }
        for f in path.iter().chain(off_path.iter()) {
            if f.dirty {
                self.dx_store_node(inode, f)?;
            }
        }
        let now = self.clock;
        self.patch_inode(dir, |raw| {
            set_mtime_ctime(raw, now);
        })?;
        Ok(())
    }

    /// The index nodes from the root (entries `root`, `levels` levels below it) down to the
    /// leaf where hash `h` belongs, with the entry taken in each; counts and pointers checked.
    fn dx_path(
        &mut self,
        inode: &Inode,
        root: Vec<(u32, u32)>,
        levels: u8,
        h: u32,
    ) -> Result<Vec<Frame>> {
        let at = u64::from(inode.ino);
        let nblocks = inode.size / self.ctx.bs as u64;
        let root_limit = {
            let run = self.map(inode, 0)?;
            let p = run.phys.ok_or(Error::Corrupt {
                what: "dx node hole",
                at,
            })?;
            usize::from(le16(self.block(p)?, dx::ROOT_COUNT_OFF))
        };
        let idx = dx_pick(&root, h);
        let mut path = vec![Frame {
            lblk: 0,
            entries: root,
            limit: root_limit,
            idx,
            dirty: false,
        }];
        for _ in 0..levels {
            let Some(f) = path.last() else { break };
            let blk = f.entries.get(f.idx).map_or(0, |e| e.1);
            if blk == 0 || u64::from(blk) >= nblocks {
                return corrupt("dx block pointer", at);
            }
            let (entries, _, _) = self.dx_node(inode, u64::from(blk), false)?;
            let p = self
                .map(inode, u64::from(blk))?
                .phys
                .ok_or(Error::Corrupt {
                    what: "dx node hole",
                    at,
                })?;
            let limit = usize::from(le16(self.block(p)?, dx::NODE_COUNT_OFF));
            let idx = dx_pick(&entries, h);
            path.push(Frame {
                lblk: blk,
                entries,
                limit,
                idx,
                dirty: false,
            });
        }
        for f in &path {
            if f.entries.len() > f.limit || f.limit == 0 {
                return corrupt("dx count", at);
            }
        }
        Ok(path)
    }

    /// Write index node `f` back (the root keeps its `.`, `..` and dx_root_info).
    fn dx_store_node(&mut self, inode: &Inode, f: &Frame) -> Result<()> {
        let ctx = self.ctx;
        let bs = ctx.bs;
        let at = u64::from(inode.ino);
        if f.entries.len() > f.limit {
            return corrupt("dx node overflow", at);
        }
        // The inode may have grown since `inode` was loaded: map through a fresh copy.
        let cur = self.load_inode(inode.ino)?;
        let p = self
            .map(&cur, u64::from(f.lblk))?
            .phys
            .ok_or(Error::Corrupt {
                what: "dx node hole",
                at,
            })?;
        let csum = ctx.csum.then_some(inode.seed);
        if f.lblk == 0 {
            let b = self.block_mut(p)?;
            store_dx(b, dx::ROOT_COUNT_OFF, f.limit, &f.entries, csum);
        } else {
            let mut b = vec![0u8; bs];
            put16(&mut b, de::REC_LEN, if bs >= 65536 { 0 } else { bs as u16 });
            store_dx(&mut b, dx::NODE_COUNT_OFF, f.limit, &f.entries, csum);
            self.block_new(p)?.copy_from_slice(&b);
        }
        Ok(())
    }
}
