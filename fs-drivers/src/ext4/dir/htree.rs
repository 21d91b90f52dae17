//! Reading the htree index of a directory: dx nodes (checksums verified) and the lookup of a
//! name through the index to its leaf.

use crate::block::BlockDevice;
use crate::crc::crc32c_raw;
use crate::ext4::bytes::{le16, le32};
use crate::ext4::dir::linear::dir_tag;
use crate::ext4::dir::{de, dx, hash};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::Inode;
use crate::ext4::{Ctx, Ext4, Ino};
use alloc::vec::Vec;

/// A dx node: its (hash, block) entries (entry 0's hash is 0), hash version, indirect levels.
type DxNode = (Vec<(u32, u32)>, u8, u8);

/// Where the count/limit header of dx root block `b` is (after its `dx_root_info`).
pub(crate) fn root_count_off(b: &[u8]) -> usize {
    dx::ROOT_INFO + usize::from(b.get(dx::INFO_LENGTH).copied().unwrap_or(0))
}

/// Linux `ext4_dx_csum` of dx node `b` with its count/limit header at `count_off`: the used
/// entries, then the tail with its checksum field as zero. Returns the checksum and the
/// offset of the tail's checksum field, or `None` when count and limit do not fit the block.
/// Reads, the `..` update and index writes all checksum through here.
pub(crate) fn dx_csum(b: &[u8], count_off: usize, seed: u32) -> Option<(u32, usize)> {
    let limit = usize::from(le16(b, count_off + dx::LIMIT));
    let count = usize::from(le16(b, count_off + dx::COUNT));
    let tail = count_off + limit * dx::ENTRY_LEN;
    if count > limit || tail + dx::TAIL_LEN > b.len() {
        return None;
    }
    let mut c = crc32c_raw(
        seed,
        b.get(..count_off + count * dx::ENTRY_LEN).unwrap_or(&[]),
    );
    c = crc32c_raw(c, b.get(tail..tail + dx::TAIL_CSUM).unwrap_or(&[]));
    c = crc32c_raw(c, &[0; 4]);
    Some((c, tail + dx::TAIL_CSUM))
}

pub(crate) fn verify_dx_csum(b: &[u8], count_off: usize, seed: u32, at: u64) -> Result<()> {
    let Some((c, at_csum)) = dx_csum(b, count_off, seed) else {
        return Err(Error::Corrupt {
            what: "dx node limit",
            at,
        });
    };
    if c != le32(b, at_csum) {
        return Err(Error::Checksum {
            what: "dx node",
            at,
        });
    }
    Ok(())
}

/// The entry of index node `entries` to follow for hash `h`: the last one whose hash is at
/// most `h` (entry 0 covers everything below entry 1's hash).
pub(crate) fn dx_pick(entries: &[(u32, u32)], h: u32) -> usize {
    entries
        .iter()
        .skip(1)
        .take_while(|&&(eh, _)| eh <= h)
        .count()
}

impl Ctx {
    /// The hash to use for an index of `version`: the legacy, half-MD4 and TEA hashes have
    /// unsigned variants, chosen by the superblock's flags.
    pub(crate) fn dx_version(&self, version: u8) -> u8 {
        if version <= hash::TEA && self.hash_unsigned {
            version + 3
        } else {
            version
        }
    }
}

/// The block that entry `i` of index node `entries` points at, checked to lie inside the
/// directory (`nblocks` blocks, block 0 being the root); `what` names a bad pointer at `at`.
pub(crate) fn dx_child(
    entries: &[(u32, u32)],
    i: usize,
    nblocks: u64,
    what: &'static str,
    at: u64,
) -> Result<u64> {
    let blk = u64::from(entries.get(i).map_or(0, |e| e.1));
    if blk == 0 || blk >= nblocks {
        return corrupt(what, at);
    }
    Ok(blk)
}

impl<D: BlockDevice> Ext4<D> {
    /// Read a dx node: returns its (hash, block) entries, entry 0's hash being 0.
    pub(crate) fn dx_node(&mut self, inode: &Inode, lblk: u64, root: bool) -> Result<DxNode> {
        let ctx = self.ctx;
        let run = self.map(inode, lblk)?;
        let phys = run.phys.ok_or(Error::Corrupt {
            what: "dx node hole",
            at: u64::from(inode.ino),
        })?;
        // the tag `check_dir_block` records a verified dx checksum under
        let tag = dir_tag(inode.seed, if root { 1 } else { 2 });
        let verified = self.block_checked(phys) == Some(tag);
        let b = self.block(phys)?;
        let (count_off, hash_version, levels) = if root {
            let info_len = usize::from(b.get(dx::INFO_LENGTH).copied().unwrap_or(0));
            if le32(b, dx::ROOT_INFO) != 0 || info_len != 8 {
                return corrupt("dx root", phys);
            }
            (
                root_count_off(b),
                b.get(dx::HASH_VERSION).copied().unwrap_or(0),
                b.get(dx::INDIRECT_LEVELS).copied().unwrap_or(0),
            )
        } else {
            if le32(b, de::INODE) != 0 || usize::from(le16(b, de::REC_LEN)) != ctx.bs {
                return corrupt("dx node", phys);
            }
            (dx::NODE_COUNT_OFF, 0, 0)
        };
        if ctx.csum && !verified {
            verify_dx_csum(b, count_off, inode.seed, phys)?;
        }
        let limit = usize::from(le16(b, count_off + dx::LIMIT));
        let count = usize::from(le16(b, count_off + dx::COUNT));
        if count == 0 || count > limit || count_off + limit * dx::ENTRY_LEN > ctx.bs {
            return corrupt("dx count", phys);
        }
        let mut v = Vec::with_capacity(count);
        for i in 0..count {
            let o = count_off + i * dx::ENTRY_LEN;
            let h = if i == 0 { 0 } else { le32(b, o + dx::HASH) };
            v.push((h, le32(b, o + dx::BLOCK)));
        }
        if ctx.csum && !verified {
            self.set_block_checked(phys, tag);
        }
        Ok((v, hash_version, levels))
    }

    /// htree lookup. `Ok(None)` means the index cannot be used (fall back to linear search);
    /// `Ok(Some(None))` means the name is not there.
    pub(crate) fn dx_lookup(&mut self, inode: &Inode, name: &[u8]) -> Result<Option<Option<Ino>>> {
        let (root, version, levels) = self.dx_node(inode, 0, true)?;
        let max_levels = if self.ctx.largedir { 3 } else { 2 };
        if levels >= max_levels {
            return corrupt("dx depth", u64::from(inode.ino));
        }
        let version = self.ctx.dx_version(version);
        let Some(h) = hash::dirhash(name, version, self.ctx.hash_seed) else {
            return Ok(None);
        };
        let nblocks = inode.size / self.ctx.bs as u64;
        let at = u64::from(inode.ino);
        // Stack of (entries, chosen index).
        let mut frames: Vec<(Vec<(u32, u32)>, usize)> = Vec::new();
        let i = dx_pick(&root, h);
        frames.push((root, i));
        for _ in 0..levels {
            let Some((entries, i)) = frames.last() else {
                break;
            };
            let blk = dx_child(entries, *i, nblocks, "dx block pointer", at)?;
            let (node, _, _) = self.dx_node(inode, blk, false)?;
            let i = dx_pick(&node, h);
            frames.push((node, i));
        }
        // Visit the leaf, then continuation leaves that share the hash.
        for _ in 0..nblocks {
            let Some((entries, i)) = frames.last() else {
                break;
            };
            let leaf = dx_child(entries, *i, nblocks, "dx leaf pointer", at)?;
            if let Some(ino) = self.search_leaf(inode, leaf, name)? {
                return Ok(Some(Some(ino)));
            }
            // Advance to the next leaf in hash order.
            let mut depth = frames.len();
            loop {
                let Some((entries, i)) = frames.get_mut(depth - 1) else {
                    return Ok(Some(None));
                };
                *i += 1;
                if *i < entries.len() {
                    break;
                }
                if depth == 1 {
                    return Ok(Some(None));
                }
                depth -= 1;
            }
            let next_hash = frames
                .get(depth - 1)
                .and_then(|(e, i)| e.get(*i))
                .map_or(0, |e| e.0);
            if next_hash & !1 != h {
                return Ok(Some(None));
            }
            frames.truncate(depth);
            while frames.len() < usize::from(levels) + 1 {
                let Some((entries, i)) = frames.last() else {
                    break;
                };
                let blk = dx_child(entries, *i, nblocks, "dx block pointer", at)?;
                let (node, _, _) = self.dx_node(inode, blk, false)?;
                frames.push((node, 0));
            }
        }
        Ok(Some(None))
    }

    /// The leaf block (logical) of htree directory `inode` where `name` belongs.
    pub(crate) fn dx_leaf(&mut self, inode: &Inode, name: &[u8]) -> Result<u64> {
        let at = u64::from(inode.ino);
        let (mut entries, version, levels) = self.dx_node(inode, 0, true)?;
        let max_levels = if self.ctx.largedir { 3 } else { 2 };
        if levels >= max_levels {
            return corrupt("dx depth", at);
        }
        let version = self.ctx.dx_version(version);
        let h = hash::dirhash(name, version, self.ctx.hash_seed).ok_or(Error::Unsupported {
            what: "unknown htree hash version",
        })?;
        let nblocks = inode.size / self.ctx.bs as u64;
        for _ in 0..levels {
            let blk = dx_child(
                &entries,
                dx_pick(&entries, h),
                nblocks,
                "dx block pointer",
                at,
            )?;
            entries = self.dx_node(inode, blk, false)?.0;
        }
        dx_child(
            &entries,
            dx_pick(&entries, h),
            nblocks,
            "dx leaf pointer",
            at,
        )
    }
}
