//! The few 9P2000.L messages the hostile cases send, and what they need of a reply. Type
//! numbers and reserved values are pvfs's own (`pvfs_9p::wire`), so the two cannot drift.

pub use pvfs_9p::wire::ty::{
    RATTACH, RFLUSH, RGETATTR, RLERROR, RVERSION, RWALK, TATTACH, TFLUSH, TGETATTR, TVERSION, TWALK,
};
pub use pvfs_9p::wire::{HEADER_LEN as HEADER, NOFID, NOTAG};

/// A message of type `ty` with `tag` and `body`, its size field set to its length.
pub fn message(ty: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER + body.len());
    m.extend_from_slice(&((HEADER + body.len()) as u32).to_le_bytes());
    m.push(ty);
    m.extend_from_slice(&tag.to_le_bytes());
    m.extend_from_slice(body);
    m
}

fn string(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u16).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// `Tversion msize "9P2000.L"`.
pub fn tversion(msize: u32) -> Vec<u8> {
    let mut b = msize.to_le_bytes().to_vec();
    string(&mut b, "9P2000.L");
    message(TVERSION, NOTAG, &b)
}

/// `Tattach fid NOFID "" "" n_uname=0`: the export's root as root.
pub fn tattach(tag: u16, fid: u32) -> Vec<u8> {
    let mut b = fid.to_le_bytes().to_vec();
    b.extend_from_slice(&NOFID.to_le_bytes());
    string(&mut b, "");
    string(&mut b, "");
    b.extend_from_slice(&0u32.to_le_bytes());
    message(TATTACH, tag, &b)
}

/// `Twalk fid newfid` with no names: a second fid on the same file.
pub fn twalk_clone(tag: u16, fid: u32, newfid: u32) -> Vec<u8> {
    let mut b = fid.to_le_bytes().to_vec();
    b.extend_from_slice(&newfid.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    message(TWALK, tag, &b)
}

/// `Tgetattr fid` of the basic fields.
pub fn tgetattr(tag: u16, fid: u32) -> Vec<u8> {
    let mut b = fid.to_le_bytes().to_vec();
    b.extend_from_slice(&0x7ffu64.to_le_bytes());
    message(TGETATTR, tag, &b)
}

/// `Tflush oldtag`.
pub fn tflush(tag: u16, oldtag: u16) -> Vec<u8> {
    message(TFLUSH, tag, &oldtag.to_le_bytes())
}

/// A reply's type, tag and (for `Rlerror`) errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// Message type.
    pub ty: u8,
    /// Tag.
    pub tag: u16,
    /// The errno of an `Rlerror`.
    pub errno: Option<u32>,
}

/// Parses a reply's header (and an `Rlerror`'s errno); `None` if it is not a 9P message
/// whose size field matches its length.
pub fn parse(m: &[u8]) -> Option<Reply> {
    let size = u32::from_le_bytes(m.get(0..4)?.try_into().ok()?) as usize;
    if size != m.len() || size < HEADER {
        return None;
    }
    let ty = *m.get(4)?;
    let tag = u16::from_le_bytes(m.get(5..7)?.try_into().ok()?);
    let errno = if ty == RLERROR {
        Some(u32::from_le_bytes(m.get(7..11)?.try_into().ok()?))
    } else {
        None
    };
    Some(Reply { ty, tag, errno })
}
