//! Bounds-checked little-endian field access: [`Reader`] over a received body, [`Writer`]
//! appending to a message being encoded.
//!
//! 9P bodies are streams of variable-length fields (strings, counted data, arrays), so they
//! have no fixed offsets to name: the cursor is the better shape here than the named field
//! ranges used for fixed layouts elsewhere (the header in `frame.rs`, blkif, start info). The
//! reader decodes with `byteorder` like those; the writer appends `to_le_bytes()` to its
//! `Vec`, because an append has no offset to write at.

use super::{Qid, WireError};
use alloc::vec::Vec;
use byteorder::{ByteOrder, LittleEndian as LE};

/// A bounds-checked little-endian reader.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let have = self.buf.len().saturating_sub(self.pos);
        if n > have {
            return Err(WireError::Truncated { need: n, have });
        }
        let end = self.pos + n;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(WireError::Truncated { need: n, have })?;
        self.pos = end;
        Ok(s)
    }

    /// u8.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    /// u16.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(LE::read_u16(self.take(2)?))
    }
    /// u32.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(LE::read_u32(self.take(4)?))
    }
    /// u64.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(LE::read_u64(self.take(8)?))
    }
    /// A string: `len[2]` bytes. Not required to be UTF-8.
    pub fn str(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    /// `count[4] data`.
    pub fn data(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A qid.
    pub fn qid(&mut self) -> Result<Qid, WireError> {
        Ok(Qid {
            ty: self.u8()?,
            version: self.u32()?,
            path: self.u64()?,
        })
    }
    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    /// Fails if bytes are left.
    pub fn finish(&self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(WireError::TrailingBytes(n)),
        }
    }
}

/// A little-endian writer appending to a `Vec`.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// Appends to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out }
    }
    /// u8.
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    /// u16.
    pub fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// u32.
    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// u64.
    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// `len[2]` bytes.
    pub fn str(&mut self, s: &[u8]) -> Result<(), WireError> {
        let n = u16::try_from(s.len()).map_err(|_| WireError::StringTooLong(s.len()))?;
        self.u16(n);
        self.out.extend_from_slice(s);
        Ok(())
    }
    /// `count[4] data`.
    pub fn data(&mut self, d: &[u8]) -> Result<(), WireError> {
        let n = u32::try_from(d.len()).map_err(|_| WireError::DataTooLong(d.len()))?;
        self.u32(n);
        self.out.extend_from_slice(d);
        Ok(())
    }
    /// A qid.
    pub fn qid(&mut self, q: &Qid) {
        self.u8(q.ty);
        self.u32(q.version);
        self.u64(q.path);
    }
}
