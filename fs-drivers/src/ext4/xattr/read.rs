//! Reading extended attributes (in-inode area and external block) and converting POSIX ACLs to
//! the Linux xattr form.

use crate::block::BlockDevice;
use crate::ext4::bytes::{le16, le32};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::inode::{Inode, I_EXTRA_ISIZE};
use crate::ext4::xattr::{check_block, e, Xattr, XATTR_MAGIC};
use crate::ext4::{Ext4, Ino};
use alloc::vec::Vec;

/// Convert an ext4 on-disk POSIX ACL (version 1; 4-byte entries for the owner, group, mask and
/// other tags, 8-byte entries with an id for named users and groups) to the xattr form.
fn acl_to_xattr(disk: &[u8], at: u64) -> Result<Vec<u8>> {
    if disk.len() < 4 || le32(disk, 0) != 1 {
        return corrupt("posix acl", at);
    }
    let mut out = Vec::with_capacity(disk.len() * 2);
    out.extend_from_slice(&2u32.to_le_bytes());
    let mut off = 4;
    while off < disk.len() {
        let tag = le16(disk, off);
        let perm = le16(disk, off + 2);
        let (id, len) = match tag {
            // ACL_USER, ACL_GROUP
            2 | 8 => (le32(disk, off + 4), 8),
            // ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER
            1 | 4 | 0x10 | 0x20 => (u32::MAX, 4),
            _ => return corrupt("posix acl tag", at),
        };
        if off + len > disk.len() {
            return corrupt("posix acl", at);
        }
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        off += len;
    }
    Ok(out)
}

fn xattr_prefix(idx: u8) -> Option<&'static [u8]> {
    Some(match idx {
        1 => b"user.",
        2 => b"system.posix_acl_access",
        3 => b"system.posix_acl_default",
        4 => b"trusted.",
        6 => b"security.",
        _ => return None,
    })
}

/// Parse xattr entries from `entries`; value offsets are relative to `values` (whose byte 0 is
/// `base` bytes before `entries`' byte 0 in the block case, or the entries start in the
/// in-inode case).
pub(crate) fn parse_xattrs(
    entries: &[u8],
    _base: usize,
    values: &[u8],
    out: &mut Vec<Xattr>,
    at: u64,
) -> Result<()> {
    let mut off = 0usize;
    for _ in 0..1024 {
        if off + 4 > entries.len() || le32(entries, off) == 0 {
            return Ok(());
        }
        let name_len = usize::from(entries.get(off + e::NAME_LEN).copied().unwrap_or(0));
        let index = entries.get(off + e::NAME_INDEX).copied().unwrap_or(0);
        let value_offs = usize::from(le16(entries, off + e::VALUE_OFFS));
        let value_inum = le32(entries, off + e::VALUE_INUM);
        let value_size = le32(entries, off + e::VALUE_SIZE) as usize;
        let name = entries
            .get(off + e::NAME..off + e::NAME + name_len)
            .ok_or(Error::Corrupt {
                what: "xattr entry",
                at,
            })?;
        if value_inum != 0 {
            return Err(Error::Unsupported {
                what: "xattr value in an inode (ea_inode)",
            });
        }
        let value = values
            .get(value_offs..value_offs.saturating_add(value_size))
            .ok_or(Error::Corrupt {
                what: "xattr value",
                at,
            })?;
        out.push((index, name.to_vec(), value.to_vec()));
        off += (e::NAME + name_len + 3) & !3;
    }
    corrupt("xattr entry count", at)
}

impl<D: BlockDevice> Ext4<D> {
    fn xattr_entries(&mut self, inode: &Inode) -> Result<Vec<Xattr>> {
        let mut out = Vec::new();
        let ctx = self.ctx;
        // In-inode area.
        if ctx.inode_size > 128 {
            let raw = self.inode_raw(inode.ino)?;
            let extra = usize::from(le16(&raw, I_EXTRA_ISIZE));
            let start = 128 + extra;
            if start + 4 <= raw.len() && le32(&raw, start) == XATTR_MAGIC {
                let area = raw.get(start + 4..).unwrap_or(&[]);
                parse_xattrs(area, 0, area, &mut out, u64::from(inode.ino))?;
            }
        }
        if inode.file_acl != 0 {
            let blk = inode.file_acl;
            self.check_phys(blk, 1, inode.ino)?;
            let b = self.block(blk)?.to_vec();
            check_block(&ctx, blk, &b, false)?;
            let entries = b.get(0x20..).unwrap_or(&[]);
            parse_xattrs(entries, 0x20, &b, &mut out, blk)?;
        }
        Ok(out)
    }

    pub(crate) fn xattr_get_inode(
        &mut self,
        inode: &Inode,
        index: u8,
        name: &[u8],
    ) -> Result<Vec<u8>> {
        let all = self.xattr_entries(inode)?;
        all.into_iter()
            .find(|(i, n, _)| *i == index && n == name)
            .map(|(_, _, v)| v)
            .ok_or(Error::NoXattr)
    }

    /// Names of the extended attributes of `ino` (full names, e.g. `user.foo`).
    /// `system.data` (inline data) is not listed.
    pub fn listxattr(&mut self, ino: Ino) -> Result<Vec<Vec<u8>>> {
        let inode = self.load_inode(ino)?;
        let mut v = Vec::new();
        for (idx, name, _) in self.xattr_entries(&inode)? {
            if let Some(p) = xattr_prefix(idx) {
                let mut full = p.to_vec();
                full.extend_from_slice(&name);
                v.push(full);
            }
        }
        Ok(v)
    }

    /// Value of extended attribute `name` (full name) of `ino`. POSIX ACLs
    /// (`system.posix_acl_access`/`_default`) are converted from ext4's compact on-disk form to
    /// the Linux xattr form (version 2, 8-byte entries), as `getxattr(2)` returns them.
    pub fn getxattr(&mut self, ino: Ino, name: &[u8]) -> Result<Vec<u8>> {
        let inode = self.load_inode(ino)?;
        for (idx, n, val) in self.xattr_entries(&inode)? {
            if let Some(p) = xattr_prefix(idx) {
                if name.len() == p.len() + n.len() && name.starts_with(p) && name.ends_with(&n) {
                    if idx == 2 || idx == 3 {
                        return acl_to_xattr(&val, u64::from(ino));
                    }
                    return Ok(val);
                }
            }
        }
        Err(Error::NoXattr)
    }
}
