//! Framing: the `size[4] type[1] tag[2]` header. [`Frame`] views a received message;
//! `begin` / `finish` bracket a message being encoded, and [`finish_io_reply`] fills in the
//! header of an Rread / Rreaddir whose payload was written in place.

use super::{WireError, HEADER_LEN, NOTAG, RREAD_HEADER_LEN};
use alloc::vec::Vec;

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
        let b = self.buffer.as_ref();
        match b.get(0..4) {
            Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
            None => 0,
        }
    }

    /// Message type (0 if the buffer is too short).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref().get(4).copied().unwrap_or(0)
    }

    /// Tag (NOTAG if the buffer is too short).
    pub fn tag(&self) -> u16 {
        match self.buffer.as_ref().get(5..7) {
            Some(s) => u16::from_le_bytes([s[0], s[1]]),
            None => NOTAG,
        }
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
    let s = buf.get(0..4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Starts a message of type `ty` with `tag` at the end of `out`; returns where it starts.
pub(super) fn begin(out: &mut Vec<u8>, ty: u8, tag: u16) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, ty]);
    out.extend_from_slice(&tag.to_le_bytes());
    start
}

/// Writes the size of the message that starts at `start` and runs to the end of `out`.
pub(super) fn finish(out: &mut [u8], start: usize) -> Result<(), WireError> {
    let len = out.len() - start;
    let n = u32::try_from(len).map_err(|_| WireError::DataTooLong(len))?;
    if let Some(s) = out.get_mut(start..start + 4) {
        s.copy_from_slice(&n.to_le_bytes());
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
    hdr[0..4].copy_from_slice(&size.to_le_bytes());
    hdr[4] = msg_type;
    hdr[5..7].copy_from_slice(&tag.to_le_bytes());
    hdr[7..11].copy_from_slice(&count.to_le_bytes());
    Ok(())
}
