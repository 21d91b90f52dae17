//! Extent trees for the writer, at any depth.
//!
//! A file's tree is read whole into a sorted list of extents (`Tree`) together with the
//! blocks that hold its index and leaf nodes, validated on the way (magic, counts, depth at
//! most 5, sorted and non-overlapping entries inside their parent's range, block numbers in
//! range, no block visited twice, `ext4_extent_tail` checksums). Operations change the list
//! (insert a mapped range, remove a range, convert unwritten extents to written ones) and
//! merge neighbours that are contiguous on disk (at most 32768 blocks per initialized extent,
//! 32767 per unwritten one). `Ext4::store_tree` then lays the list out again: in the inode
//! when it has at most 4 extents (depth 0), else in leaf blocks under as many index levels as
//! needed, the root staying in the inode. Each extent stays in the leaf whose logical range
//! holds it, like a B+tree: an overfull leaf is split (the last one into a full leaf and the
//! rest, as appends fill it; others in halves), neighbours holding at most half a leaf
//! together are merged, empty leaves are dropped, and a leaf keeps its block. Index levels
//! are rebuilt over the leaves. Tree blocks are reused, allocated or freed as the tree grows
//! or shrinks (so it also shrinks back to depth 0), every block gets its checksum tail,
//! `i_blocks` counts the tree blocks too, and a node whose contents did not change is not
//! rewritten: appending, filling a hole or punching dirties only the leaves concerned (and
//! the index nodes above them when their entries change).
//!
//! Writes into unwritten extents convert the written part to initialized extents.
//! Truncate and fallocate are in `extent::truncate`.

use crate::block::BlockDevice;
use crate::crc::crc32c_raw;
use crate::ext4::bytes::{le16, le32, put16, put32};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::extent::{ee, eh, ei, index_child, leaf_start, EXTENT_MAGIC, MAX_DEPTH};
use crate::ext4::inode::{add_iblocks, Inode, I_BLOCK, I_BLOCKS, I_BLOCKS_HIGH};
use crate::ext4::types::flags;
use crate::ext4::{Ext4, Ino};
use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

/// Longest initialized extent.
pub(crate) const MAX_INIT: u32 = 32768;
/// Longest unwritten (uninitialized) extent.
pub(crate) const MAX_UNINIT: u32 = 32767;

/// One extent: logical start, length, physical start, unwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ext {
    /// First logical block.
    pub(crate) l: u32,
    /// Length in blocks (≥ 1).
    pub(crate) n: u32,
    /// First physical block.
    pub(crate) p: u64,
    /// Unwritten (reads as zeros).
    pub(crate) u: bool,
}

impl Ext {
    pub(crate) fn end(&self) -> u64 {
        u64::from(self.l) + u64::from(self.n)
    }
    fn cap(u: bool) -> u32 {
        if u {
            MAX_UNINIT
        } else {
            MAX_INIT
        }
    }
}

/// A file's extent tree, flattened.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    /// The extents, sorted by logical block, not overlapping.
    pub(crate) ext: Vec<Ext>,
    /// The blocks holding leaf and index nodes (none at depth 0), leaves first, then each
    /// index level, each in logical order.
    pub(crate) blocks: Vec<u64>,
    /// First logical block of each leaf block (in the order of `blocks`).
    leaf_lo: Vec<u32>,
    /// Checksum seed of the inode.
    seed: u32,
    /// Where to look for free blocks for new tree nodes.
    home: u64,
}

/// Where logical block `lblk` falls: `Ok(i)` inside extent `i`, `Err(i)` in the hole before
/// extent `i` (or after the last one when `i == len`).
pub(crate) fn find(ext: &[Ext], lblk: u64) -> core::result::Result<usize, usize> {
    let i = ext.partition_point(|e| e.end() <= lblk);
    match ext.get(i) {
        Some(e) if u64::from(e.l) <= lblk => Ok(i),
        _ => Err(i),
    }
}

/// Merge neighbours that are contiguous logically and physically and of the same kind.
fn normalize(ext: &mut Vec<Ext>) {
    let mut out: Vec<Ext> = Vec::with_capacity(ext.len());
    for &e in ext.iter() {
        if let Some(last) = out.last_mut() {
            if last.u == e.u
                && last.end() == u64::from(e.l)
                && last.p.checked_add(u64::from(last.n)) == Some(e.p)
                && last.n + e.n <= Ext::cap(e.u)
            {
                last.n += e.n;
                continue;
            }
        }
        out.push(e);
    }
    *ext = out;
}

/// Insert a mapping of the unmapped range `e` (split into pieces of at most the maximum
/// length), merged with its neighbours where possible.
pub(crate) fn insert(ext: &mut Vec<Ext>, e: Ext) -> Result<()> {
    let pos = match find(ext, u64::from(e.l)) {
        Ok(_) => return corrupt("mapping an already mapped block", u64::from(e.l)),
        Err(p) => p,
    };
    if ext.get(pos).is_some_and(|nx| u64::from(nx.l) < e.end()) {
        return corrupt("mapping an already mapped block", e.end());
    }
    let mut pieces = Vec::new();
    let mut done = 0u32;
    while done < e.n {
        let n = (e.n - done).min(Ext::cap(e.u));
        pieces.push(Ext {
            l: e.l + done,
            n,
            p: e.p + u64::from(done),
            u: e.u,
        });
        done += n;
    }
    ext.splice(pos..pos, pieces);
    normalize(ext);
    Ok(())
}

/// Unmap logical blocks `[a, b)`; returns the physical ranges that were mapped there.
pub(crate) fn remove_range(ext: &mut Vec<Ext>, a: u64, b: u64) -> Vec<(u64, u64)> {
    let mut freed = Vec::new();
    if a >= b {
        return freed;
    }
    let mut out = Vec::with_capacity(ext.len() + 1);
    for &e in ext.iter() {
        let (s, t) = (u64::from(e.l), e.end());
        if t <= a || s >= b {
            out.push(e);
            continue;
        }
        let cs = s.max(a);
        let ct = t.min(b);
        freed.push((e.p + (cs - s), ct - cs));
        if s < cs {
            out.push(Ext {
                n: (cs - s) as u32,
                ..e
            });
        }
        if ct < t {
            out.push(Ext {
                l: ct as u32,
                n: (t - ct) as u32,
                p: e.p + (ct - s),
                u: e.u,
            });
        }
    }
    *ext = out;
    freed
}

/// Mark the mapped blocks of `[a, b)` written (splitting unwritten extents).
pub(crate) fn set_written(ext: &mut Vec<Ext>, a: u64, b: u64) {
    let mut out = Vec::with_capacity(ext.len() + 2);
    for &e in ext.iter() {
        let (s, t) = (u64::from(e.l), e.end());
        if !e.u || t <= a || s >= b {
            out.push(e);
            continue;
        }
        let cs = s.max(a);
        let ct = t.min(b);
        let piece = |x: u64, y: u64, u: bool| Ext {
            l: x as u32,
            n: (y - x) as u32,
            p: e.p + (x - s),
            u,
        };
        if s < cs {
            out.push(piece(s, cs, true));
        }
        out.push(piece(cs, ct, false));
        if ct < t {
            out.push(piece(ct, t, true));
        }
    }
    *ext = out;
    normalize(ext);
}

/// Leaves for `ext` (more than 4 extents) given the first logical blocks of the current
/// leaves (`starts`, none at depth 0): `(first extent, end, old leaf it continues)`. Each
/// extent stays in the leaf whose range holds it; a leaf over `per` entries is split (the
/// last leaf into a full one and the rest, as appends fill it; others in equal parts);
/// neighbours that together hold at most `per / 2` entries are merged; empty leaves go.
/// Without current leaves the extents are packed into full leaves.
fn plan_leaves(ext: &[Ext], starts: &[u32], per: usize) -> Vec<(usize, usize, Option<usize>)> {
    let per = per.max(1);
    let mut groups: Vec<(usize, usize, Option<usize>)> = Vec::new();
    if starts.is_empty() {
        let mut i = 0;
        while i < ext.len() {
            let e = (i + per).min(ext.len());
            groups.push((i, e, None));
            i = e;
        }
        return groups;
    }
    let mut i = 0;
    for j in 0..starts.len() {
        let end = match starts.get(j + 1) {
            Some(&next) => ext.partition_point(|e| e.l < next).max(i),
            None => ext.len(),
        };
        if end > i {
            groups.push((i, end, Some(j)));
        }
        i = end;
    }
    let last = groups.len().saturating_sub(1);
    let mut split: Vec<(usize, usize, Option<usize>)> = Vec::with_capacity(groups.len() + 1);
    for (k, &(a, b, origin)) in groups.iter().enumerate() {
        let len = b - a;
        if len <= per {
            split.push((a, b, origin));
        } else if k == last {
            let mut s = a;
            while s < b {
                let e = (s + per).min(b);
                split.push((s, e, if s == a { origin } else { None }));
                s = e;
            }
        } else {
            let pieces = len.div_ceil(per);
            let mut s = a;
            for p in 1..=pieces {
                let e = a + len * p / pieces;
                split.push((s, e, if s == a { origin } else { None }));
                s = e;
            }
        }
    }
    let mut out: Vec<(usize, usize, Option<usize>)> = Vec::with_capacity(split.len());
    for g in split {
        if let Some(prev) = out.last_mut() {
            if (prev.1 - prev.0) + (g.1 - g.0) <= per / 2 {
                prev.1 = g.1;
                prev.2 = prev.2.or(g.2);
                continue;
            }
        }
        out.push(g);
    }
    out
}

fn put_extent(b: &mut [u8], o: usize, e: &Ext) {
    put32(b, o + ee::BLOCK, e.l);
    put16(
        b,
        o + ee::LEN,
        if e.u { e.n + MAX_INIT } else { e.n } as u16,
    );
    put16(b, o + ee::START_HI, (e.p >> 32) as u16);
    put32(b, o + ee::START_LO, e.p as u32);
}

fn put_index(b: &mut [u8], o: usize, l: u32, child: u64) {
    put32(b, o + ei::BLOCK, l);
    put32(b, o + ei::LEAF_LO, child as u32);
    put16(b, o + ei::LEAF_HI, (child >> 32) as u16);
    put16(b, o + ei::UNUSED, 0);
}

fn put_header(b: &mut [u8], entries: usize, max: usize, depth: u16) {
    put16(b, eh::MAGIC, EXTENT_MAGIC);
    put16(b, eh::ENTRIES, entries as u16);
    put16(b, eh::MAX, max as u16);
    put16(b, eh::DEPTH, depth);
    put32(b, eh::GENERATION, 0);
}

/// Write a depth-0 root holding `ext` (at most 4) into the inode's `i_block`.
pub(crate) fn store_root_leaf(iblock: &mut [u8], ext: &[Ext]) {
    if let Some(b) = iblock.get_mut(..60) {
        b.fill(0);
    }
    put_header(iblock, ext.len().min(4), 4, 0);
    for (i, e) in ext.iter().take(4).enumerate() {
        put_extent(iblock, 12 + i * 12, e);
    }
}

/// State of a tree walk.
struct Walk {
    ext: Vec<Ext>,
    /// Tree blocks with their depth (0: leaf).
    blocks: Vec<(u16, u64)>,
    /// First logical block of each leaf block, in logical order.
    leaf_lo: Vec<u32>,
    seen: BTreeSet<u64>,
}

/// One extent of a new inode's depth-0 tree: (first logical block, length, first physical
/// block).
pub(crate) type Extent = (u32, u16, u64);

/// Write a depth-0 extent root holding `ext` (at most 4 initialized extents) into `iblock`,
/// for inodes being set up. Later changes go through the extent tree code
/// (`Ext4::store_tree`).
pub(crate) fn store_extents(iblock: &mut [u8], ext: &[Extent]) {
    let v: Vec<Ext> = ext
        .iter()
        .map(|&(l, n, p)| Ext {
            l,
            n: u32::from(n),
            p,
            u: false,
        })
        .collect();
    store_root_leaf(iblock, &v);
}

impl<D: BlockDevice> Ext4<D> {
    /// Read and validate the extent tree of `inode`.
    pub(crate) fn load_tree(&mut self, inode: &Inode) -> Result<Tree> {
        let ino = inode.ino;
        if inode.flags & flags::EXTENTS == 0 {
            return Err(Error::Unsupported {
                what: "changing a block-mapped file",
            });
        }
        let mut w = Walk {
            ext: Vec::new(),
            blocks: Vec::new(),
            leaf_lo: Vec::new(),
            seen: BTreeSet::new(),
        };
        let root = inode.iblock.to_vec();
        self.walk_node(&root, inode.seed, ino, None, 0, 1 << 32, &mut w)?;
        // Leaves first, then each index level, in logical order: the order `store_tree`
        // assigns blocks in, so that an unchanged node keeps its block.
        w.blocks.sort_by_key(|b| b.0);
        let home = self
            .groups
            .get(((ino - 1) / self.ctx.inodes_per_group.max(1)) as usize)
            .map_or(0, |d| d.inode_table);
        Ok(Tree {
            ext: w.ext,
            blocks: w.blocks.into_iter().map(|b| b.1).collect(),
            leaf_lo: w.leaf_lo,
            seed: inode.seed,
            home,
        })
    }

    /// Validate node `node` (the root when `at` is `None`) covering logical `[lo, hi)` and
    /// collect its extents and child blocks.
    #[allow(clippy::too_many_arguments)]
    fn walk_node(
        &mut self,
        node: &[u8],
        seed: u32,
        ino: Ino,
        at: Option<(u64, u16)>,
        lo: u64,
        hi: u64,
        w: &mut Walk,
    ) -> Result<()> {
        let where_ = at.map_or(u64::from(ino), |a| a.0);
        let entries = usize::from(le16(node, eh::ENTRIES));
        let max = usize::from(le16(node, eh::MAX));
        let depth = le16(node, eh::DEPTH);
        let room = if at.is_some() {
            node.len().saturating_sub(4)
        } else {
            node.len()
        };
        if le16(node, eh::MAGIC) != EXTENT_MAGIC
            || entries > max
            || 12 + max * 12 > room
            || depth > MAX_DEPTH
            || at.is_some_and(|(_, d)| d != depth)
        {
            return corrupt("extent header", where_);
        }
        if let Some((blk, _)) = at {
            if self.ctx.csum {
                let tail = 12 + max * 12;
                let want = le32(node, tail);
                if crc32c_raw(seed, node.get(..tail).unwrap_or(&[])) != want {
                    return Err(Error::Checksum {
                        what: "extent block",
                        at: blk,
                    });
                }
            }
        }
        if at.is_some() && depth == 0 {
            w.leaf_lo.push(lo as u32);
        }
        let ent = |i: usize| node.get(12 + i * 12..24 + i * 12).unwrap_or(&[]);
        let mut prev = lo;
        for i in 0..entries {
            let e = ent(i);
            let l = u64::from(le32(e, ee::BLOCK));
            if depth == 0 {
                let raw = u32::from(le16(e, ee::LEN));
                let (n, u) = if raw > MAX_INIT {
                    (raw - MAX_INIT, true)
                } else {
                    (raw, false)
                };
                let p = leaf_start(e);
                if n == 0
                    || l < prev
                    || l + u64::from(n) > hi
                    || p == 0
                    || p.saturating_add(u64::from(n)) > self.ctx.blocks_count
                {
                    return corrupt("extent", where_);
                }
                if self.zone_conflict(p, u64::from(n), ino).is_some() {
                    return corrupt("extent into the file system's metadata", where_);
                }
                prev = l + u64::from(n);
                w.ext.push(Ext {
                    l: l as u32,
                    n,
                    p,
                    u,
                });
            } else {
                let next = if i + 1 < entries {
                    u64::from(le32(ent(i + 1), ei::BLOCK))
                } else {
                    hi
                };
                let child = index_child(e);
                if l < prev
                    || (i > 0 && l == prev)
                    || next <= l
                    || next > hi
                    || child == 0
                    || child >= self.ctx.blocks_count
                    || self.zone_conflict(child, 1, ino).is_some()
                {
                    return corrupt("extent index", where_);
                }
                if !w.seen.insert(child) {
                    return corrupt("extent tree loop", child);
                }
                prev = l;
                w.blocks.push((depth - 1, child));
                let b = self.block(child)?.to_vec();
                self.walk_node(&b, seed, ino, Some((child, depth - 1)), l, next, w)?;
            }
        }
        Ok(())
    }

    /// Lay `tree.ext` out again (see the module doc) and write the root into inode `ino`;
    /// `i_blocks` changes by the change in tree blocks plus `data_delta` data blocks. On an
    /// error nothing has changed (new tree blocks are allocated before anything is written).
    pub(crate) fn store_tree(&mut self, ino: Ino, tree: &mut Tree, data_delta: i64) -> Result<()> {
        let bs = self.ctx.bs;
        let per = (bs - 12) / 12;
        let nl_old = tree.leaf_lo.len().min(tree.blocks.len());
        let leaves = if tree.ext.len() > 4 {
            plan_leaves(&tree.ext, tree.leaf_lo.get(..nl_old).unwrap_or(&[]), per)
        } else {
            Vec::new()
        };
        // Index nodes per level above the leaves (none when the root can point at them).
        let mut counts: Vec<usize> = Vec::new();
        let mut c = leaves.len();
        while c > 4 {
            c = c.div_ceil(per);
            counts.push(c);
        }
        if !leaves.is_empty() && 1 + counts.len() > usize::from(MAX_DEPTH) {
            return Err(Error::FileTooBig);
        }
        let n_index: usize = counts.iter().sum();
        // A leaf keeps the block of the old leaf it came from; the other blocks come from
        // the old index blocks (in order, for the index nodes), the unused old leaf blocks,
        // then new ones.
        let mut used = vec![false; nl_old];
        let mut leaf_blk: Vec<Option<u64>> = Vec::with_capacity(leaves.len());
        for &(_, _, origin) in &leaves {
            let b = match origin {
                Some(j) if used.get(j) == Some(&false) => {
                    if let Some(u) = used.get_mut(j) {
                        *u = true;
                    }
                    tree.blocks.get(j).copied()
                }
                _ => None,
            };
            leaf_blk.push(b);
        }
        let old_index = tree.blocks.get(nl_old..).unwrap_or(&[]);
        let mut pool: Vec<u64> = old_index.iter().skip(n_index).copied().collect();
        pool.extend(
            (0..nl_old)
                .filter(|&j| used.get(j) == Some(&false))
                .filter_map(|j| tree.blocks.get(j).copied()),
        );
        let missing = leaf_blk.iter().filter(|b| b.is_none()).count()
            + n_index.saturating_sub(old_index.len());
        let mut fresh: Vec<u64> = Vec::new();
        while pool.len() + fresh.len() < missing {
            let want = (missing - pool.len() - fresh.len()) as u32;
            match self.alloc_blocks(tree.home, want) {
                Ok((p, got)) => fresh.extend((0..u64::from(got)).map(|i| p + i)),
                Err(e) => {
                    for &b in &fresh {
                        self.free_blocks(b, 1)?;
                    }
                    return Err(e);
                }
            }
        }
        let mut spare = old_index
            .iter()
            .take(n_index)
            .copied()
            .chain(pool)
            .chain(fresh);
        let index_blk: Vec<u64> = spare.by_ref().take(n_index).collect();
        let leaf_blk: Vec<u64> = leaf_blk
            .into_iter()
            .map(|b| b.or_else(|| spare.next()))
            .collect::<Option<Vec<u64>>>()
            .ok_or(Error::NoSpace)?;
        let leftover: Vec<u64> = spare.collect();
        if index_blk.len() < n_index {
            return Err(Error::NoSpace);
        }
        // Write the leaves, then each index level: nodes are (first logical block, block).
        let seed = tree.seed;
        let csum = self.ctx.csum;
        let finish = |b: &mut [u8]| {
            if csum {
                let tail = 12 + per * 12;
                let c = crc32c_raw(seed, b.get(..tail).unwrap_or(&[]));
                put32(b, tail, c);
            }
        };
        let mut buf = vec![0u8; bs];
        let mut level: Vec<(u32, u64)> = Vec::with_capacity(leaves.len());
        let old_blocks: BTreeSet<u64> = tree.blocks.iter().copied().collect();
        let is_old = |b: u64, old: &BTreeSet<u64>| old.contains(&b);
        for (&(a, b, _), &blk) in leaves.iter().zip(&leaf_blk) {
            let chunk = tree.ext.get(a..b).unwrap_or(&[]);
            buf.fill(0);
            put_header(&mut buf, chunk.len(), per, 0);
            for (i, e) in chunk.iter().enumerate() {
                put_extent(&mut buf, 12 + i * 12, e);
            }
            finish(&mut buf);
            self.put_tree_block(blk, &buf, is_old(blk, &old_blocks))?;
            level.push((chunk.first().map_or(0, |e| e.l), blk));
        }
        let mut depth = u16::from(!leaves.is_empty());
        let mut next_index = index_blk.iter();
        while level.len() > 4 {
            let mut up = Vec::with_capacity(level.len().div_ceil(per));
            for chunk in level.chunks(per) {
                let blk = *next_index.next().ok_or(Error::NoSpace)?;
                buf.fill(0);
                put_header(&mut buf, chunk.len(), per, depth);
                for (i, &(l, c)) in chunk.iter().enumerate() {
                    put_index(&mut buf, 12 + i * 12, l, c);
                }
                finish(&mut buf);
                self.put_tree_block(blk, &buf, is_old(blk, &old_blocks))?;
                up.push((chunk.first().map_or(0, |x| x.0), blk));
            }
            level = up;
            depth += 1;
        }
        // Tree blocks no longer needed.
        for &b in &leftover {
            self.free_blocks(b, 1)?;
        }
        let need = leaf_blk.len() + index_blk.len();
        let delta = need as i64 - old_blocks.len() as i64 + data_delta;
        let ext = &tree.ext;
        self.patch_inode(ino, |raw| {
            if let Some(ib) = raw.get_mut(I_BLOCK..I_BLOCK + 60) {
                if depth == 0 {
                    store_root_leaf(ib, ext);
                } else {
                    ib.fill(0);
                    put_header(ib, level.len(), 4, depth);
                    for (i, &(l, c)) in level.iter().enumerate() {
                        put_index(ib, 12 + i * 12, l, c);
                    }
                }
            }
            add_iblocks(raw, delta, bs);
        })?;
        tree.leaf_lo = leaves
            .iter()
            .map(|&(a, _, _)| tree.ext.get(a).map_or(0, |e| e.l))
            .collect();
        tree.blocks = leaf_blk;
        tree.blocks.extend(index_blk);
        Ok(())
    }

    /// Write tree block `blk`; a reused block (`reused`) is left alone when it already holds
    /// exactly this (appending to a file rewrites only its last leaf and the index above).
    fn put_tree_block(&mut self, blk: u64, content: &[u8], reused: bool) -> Result<()> {
        if reused && self.block(blk)? == content {
            return Ok(());
        }
        self.block_new(blk)?.copy_from_slice(content);
        Ok(())
    }

    /// Map `n` new blocks at physical `p` to logical `l` of `ino` (a range not mapped yet),
    /// counting them in `i_blocks`. On an error nothing has changed.
    pub(crate) fn map_new_blocks(&mut self, ino: Ino, l: u32, n: u32, p: u64) -> Result<()> {
        let inode = self.load_inode(ino)?;
        let mut tree = self.load_tree(&inode)?;
        insert(&mut tree.ext, Ext { l, n, p, u: false })?;
        self.store_tree(ino, &mut tree, i64::from(n))
    }

    /// The physical block right after the last extent of `inode` (a goal for appending),
    /// `None` when it has no extents.
    pub(crate) fn append_goal(&mut self, inode: &Inode) -> Result<Option<u64>> {
        let tree = self.load_tree(inode)?;
        Ok(tree.ext.last().map(|e| e.p + u64::from(e.n)))
    }

    /// Free every data and tree block of `ino` and leave it with an empty depth-0 tree and
    /// `i_blocks` 0. An inode without the extents flag and without blocks (a fast symlink, a
    /// device) has nothing to free.
    pub(crate) fn free_all_blocks(&mut self, ino: Ino) -> Result<()> {
        let inode = self.load_inode(ino)?;
        if inode.flags & flags::EXTENTS == 0 && inode.blocks == 0 {
            return Ok(());
        }
        let tree = self.load_tree(&inode)?;
        for e in &tree.ext {
            self.free_blocks(e.p, u64::from(e.n))?;
        }
        for &b in &tree.blocks {
            self.free_blocks(b, 1)?;
        }
        self.patch_inode(ino, |raw| {
            if let Some(ib) = raw.get_mut(I_BLOCK..I_BLOCK + 60) {
                store_root_leaf(ib, &[]);
            }
            put32(raw, I_BLOCKS, 0);
            put16(raw, I_BLOCKS_HIGH, 0);
        })?;
        Ok(())
    }

    /// Move every extent of `src` to `dst`, whose tree must be empty: `dst` gets new tree
    /// blocks (checksummed with its own seed) and the data blocks in `i_blocks`; `src` is left
    /// with an empty tree, its tree blocks freed and its data blocks out of `i_blocks`. The
    /// data blocks stay where they are (nothing is copied). On an error nothing has changed.
    pub(crate) fn move_extents(&mut self, src: Ino, dst: Ino) -> Result<()> {
        let s = self.load_inode(src)?;
        let d = self.load_inode(dst)?;
        let mut from = self.load_tree(&s)?;
        let mut to = self.load_tree(&d)?;
        if !to.ext.is_empty() {
            return Err(Error::Invalid {
                what: "moving extents into a file that has some",
            });
        }
        let data: u64 = from.ext.iter().map(|e| u64::from(e.n)).sum();
        let data = i64::try_from(data).map_err(|_| Error::FileTooBig)?;
        to.ext = from.ext.clone();
        self.store_tree(dst, &mut to, data)?;
        from.ext.clear();
        self.store_tree(src, &mut from, -data)
    }

    /// Goal for new data at logical `lblk`: where the extent before it would continue
    /// physically, else the inode's home.
    /// Allocate up to `want` blocks near the file's goal for logical block `lblk` (a hole)
    /// and map them in `tree` (unwritten if `unwritten`), storing the tree. Returns the first
    /// physical block and the count. On failure nothing stays allocated or mapped.
    pub(crate) fn map_new_run(
        &mut self,
        ino: Ino,
        tree: &mut Tree,
        lblk: u64,
        want: u32,
        unwritten: bool,
    ) -> Result<(u64, u32)> {
        let goal = self.goal_for(tree, lblk);
        let (p, n) = self.alloc_blocks(goal, want)?;
        let before = tree.ext.clone();
        let l = u32::try_from(lblk).map_err(|_| Error::FileTooBig)?;
        let e = Ext {
            l,
            n,
            p,
            u: unwritten,
        };
        let r = insert(&mut tree.ext, e).and_then(|()| self.store_tree(ino, tree, i64::from(n)));
        if let Err(e) = r {
            tree.ext = before;
            self.free_blocks(p, u64::from(n))?;
            return Err(e);
        }
        Ok((p, n))
    }

    pub(crate) fn goal_for(&self, tree: &Tree, lblk: u64) -> u64 {
        let i = tree.ext.partition_point(|e| u64::from(e.l) < lblk);
        match i.checked_sub(1).and_then(|j| tree.ext.get(j)) {
            Some(e) => (e.p + u64::from(e.n)).saturating_add(lblk.saturating_sub(e.end())),
            None => tree.home,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(l: u32, n: u32, p: u64, u: bool) -> Ext {
        Ext { l, n, p, u }
    }

    #[test]
    fn insert_merges_and_caps() {
        let mut v = vec![e(0, 10, 100, false), e(20, 5, 200, false)];
        insert(&mut v, e(10, 10, 110, false)).unwrap();
        assert_eq!(v, vec![e(0, 20, 100, false), e(20, 5, 200, false)]);
        insert(&mut v, e(25, 5, 205, true)).unwrap();
        assert_eq!(v.len(), 3);
        assert!(insert(&mut v, e(3, 1, 999, false)).is_err());
        assert!(insert(&mut v, e(29, 2, 999, false)).is_err());
        let mut w = Vec::new();
        insert(&mut w, e(0, 70000, 1000, false)).unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].n, MAX_INIT);
        let mut w = Vec::new();
        insert(&mut w, e(0, 32768, 1000, true)).unwrap();
        assert_eq!(w, vec![e(0, 32767, 1000, true), e(32767, 1, 33767, true)]);
    }

    #[test]
    fn leaves_split_and_merge() {
        let ext: Vec<Ext> = (0..30)
            .map(|i| e(i * 2, 1, 1000 + u64::from(i) * 2, false))
            .collect();
        // Packed from scratch.
        assert_eq!(
            plan_leaves(&ext, &[], 10),
            vec![(0, 10, None), (10, 20, None), (20, 30, None)]
        );
        // Leaves starting at 0, 20, 40: 10, 10, 10 extents stay put.
        assert_eq!(
            plan_leaves(&ext, &[0, 20, 40], 10),
            vec![(0, 10, Some(0)), (10, 20, Some(1)), (20, 30, Some(2))]
        );
        // A middle leaf of 12 is halved; the last one of 12 is split full + rest.
        assert_eq!(
            plan_leaves(&ext, &[0, 16, 40], 10),
            vec![
                (0, 8, Some(0)),
                (8, 14, Some(1)),
                (14, 20, None),
                (20, 30, Some(2))
            ]
        );
        assert_eq!(
            plan_leaves(&ext, &[0, 36], 10),
            vec![
                (0, 9, Some(0)),
                (9, 18, None),
                (18, 28, Some(1)),
                (28, 30, None)
            ]
        );
        // Small neighbours merge; an old leaf left empty goes.
        assert_eq!(
            plan_leaves(&ext[..8], &[0, 4, 8, 100], 10),
            vec![(0, 4, Some(0)), (4, 8, Some(2))]
        );
    }

    #[test]
    fn remove_splits() {
        let mut v = vec![e(0, 10, 100, false), e(10, 10, 300, true)];
        let f = remove_range(&mut v, 5, 12);
        assert_eq!(f, vec![(105, 5), (300, 2)]);
        assert_eq!(v, vec![e(0, 5, 100, false), e(12, 8, 302, true)]);
        let f = remove_range(&mut v, 14, 16);
        assert_eq!(f, vec![(304, 2)]);
        assert_eq!(v.len(), 3);
        assert!(remove_range(&mut v, 30, 40).is_empty());
        assert_eq!(remove_range(&mut v, 0, 1 << 32).len(), 3);
        assert!(v.is_empty());
    }

    #[test]
    fn convert_splits() {
        let mut v = vec![e(0, 5, 100, false), e(12, 8, 302, true)];
        set_written(&mut v, 14, 16);
        assert_eq!(
            v,
            vec![
                e(0, 5, 100, false),
                e(12, 2, 302, true),
                e(14, 2, 304, false),
                e(16, 4, 306, true)
            ]
        );
        set_written(&mut v, 0, 100);
        assert_eq!(v, vec![e(0, 5, 100, false), e(12, 8, 302, false)]);
        assert_eq!(find(&v, 4), Ok(0));
        assert_eq!(find(&v, 5), Err(1));
        assert_eq!(find(&v, 20), Err(2));
    }
}
