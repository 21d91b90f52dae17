//! Allocation: group descriptors and free counts ([`groups`]), bitmaps verified before they
//! change ([`bitmaps`]), blocks ([`blocks`]) and inodes ([`inodes`]).

pub(crate) mod bitmaps;
pub(crate) mod blocks;
pub(crate) mod groups;
pub(crate) mod inodes;

/// `bg_flags`: the group's inode bitmap is not initialized (all free).
pub(crate) const BG_INODE_UNINIT: u16 = 0x1;
/// `bg_flags`: the group's block bitmap is not initialized (computed from the layout).
pub(crate) const BG_BLOCK_UNINIT: u16 = 0x2;

/// Bit `i` of bitmap `b` (false out of range).
pub(crate) fn bit(b: &[u8], i: usize) -> bool {
    b.get(i / 8).is_some_and(|x| x & (1 << (i % 8)) != 0)
}

/// Set or clear bit `i` of bitmap `b` (nothing out of range).
pub(crate) fn set_bit(b: &mut [u8], i: usize, on: bool) {
    if let Some(x) = b.get_mut(i / 8) {
        if on {
            *x |= 1 << (i % 8);
        } else {
            *x &= !(1 << (i % 8));
        }
    }
}
