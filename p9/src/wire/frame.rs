//! Framing: the `size[4] type[1] tag[2]` header. [`Frame`] views a received message;
//! `begin` / `finish` bracket a message being encoded, and [`finish_io_reply`] fills in the
//! header of an Rread / Rreaddir whose payload was written in place.

use super::{WireError, HEADER_LEN, NOTAG, RREAD_HEADER_LEN};
use alloc::vec::Vec;
use byteorder::{ByteOrder, LittleEndian as LE};

/// Byte ranges of the header's fields.
mod field {
    /// A field's bytes in the message.
    pub(super) type Field = core::ops::Range<usize>;
    /// `size[4]`: the whole message's length, itself included.
    pub(super) const SIZE: Field = 0..4;
    /// `type[1]`.
    pub(super) const TYPE: usize = 4;
    /// `tag[2]`.
    pub(super) const TAG: Field = 5..7;
    /// `count[4]` of an Rread or Rreaddir, right after the header.
    pub(super) const IO_COUNT: Field = 7..11;
}

/// A zero-copy view of one 9P message.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it. Accessors may then return short fields; use
    /// [`Frame::new_checked`] on untrusted input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps a buffer that must hold exactly one message: the header fits and the size field
    /// equals the buffer length.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Frame { buffer };
        f.check_len()?;
        Ok(f)
    }

    /// Validates the header against the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                need: HEADER_LEN,
                have: b.len(),
            });
        }
        let size = self.size();
        if size as usize != b.len() {
            return Err(WireError::BadSize {
                declared: size,
                buffer: b.len(),
            });
        }
        Ok(())
    }

    /// Declared size (0 if the buffer is too short).
    pub fn size(&self) -> u32 {
        self.buffer
            .as_ref()
            .get(field::SIZE)
            .map_or(0, LE::read_u32)
    }

    /// Message type (0 if the buffer is too short).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref().get(field::TYPE).copied().unwrap_or(0)
    }

    /// Tag (NOTAG if the buffer is too short).
    pub fn tag(&self) -> u16 {
        self.buffer
            .as_ref()
            .get(field::TAG)
            .map_or(NOTAG, LE::read_u16)
    }

    /// The body after the header (empty if the buffer is too short).
    pub fn body(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Consumes the view.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<'a> Frame<&'a [u8]> {
    /// The body after the header, with the buffer's lifetime.
    pub fn body_slice(&self) -> &'a [u8] {
        self.buffer.get(HEADER_LEN..).unwrap_or(&[])
    }
}

/// Reads the declared size of a message from the first four bytes of a stream, if present.
pub fn peek_size(buf: &[u8]) -> Option<u32> {
    buf.get(field::SIZE).map(LE::read_u32)
}

/// Starts a message of type `ty` with `tag` at the end of `out`; returns where it starts.
pub(super) fn begin(out: &mut Vec<u8>, ty: u8, tag: u16) -> usize {
    let start = out.len();
    let mut hdr = [0u8; HEADER_LEN];
    hdr[field::TYPE] = ty;
    LE::write_u16(&mut hdr[field::TAG], tag);
    out.extend_from_slice(&hdr);
    start
}

/// Writes the size of the message that starts at `start` and runs to the end of `out`.
pub(super) fn finish(out: &mut [u8], start: usize) -> Result<(), WireError> {
    let len = out.len() - start;
    let n = u32::try_from(len).map_err(|_| WireError::DataTooLong(len))?;
    if let Some(s) = out.get_mut(start..).and_then(|m| m.get_mut(field::SIZE)) {
        LE::write_u32(s, n);
    }
    Ok(())
}

/// Fills in the header of an Rread or Rreaddir reply built in place: `out` is the whole
/// message, its first [`RREAD_HEADER_LEN`] bytes the room for `size[4] type[1] tag[2]
/// count[4]` and the payload after them, to the end. Fails only if `out` is shorter than
/// that header or longer than a size field can say.
pub fn finish_io_reply(out: &mut [u8], msg_type: u8, tag: u16) -> Result<(), WireError> {
    let len = out.len();
    let size = u32::try_from(len).map_err(|_| WireError::DataTooLong(len))?;
    let count = size.checked_sub(RREAD_HEADER_LEN as u32);
    let (Some(count), Some(hdr)) = (count, out.get_mut(..RREAD_HEADER_LEN)) else {
        return Err(WireError::Truncated {
            need: RREAD_HEADER_LEN,
            have: len,
        });
    };
    LE::write_u32(&mut hdr[field::SIZE], size);
    hdr[field::TYPE] = msg_type;
    LE::write_u16(&mut hdr[field::TAG], tag);
    LE::write_u32(&mut hdr[field::IO_COUNT], count);
    Ok(())
}
