//! Reuse of buffers: replies the transport has sent and executed requests are kept (a few
//! per connection) to carry later large replies, so that an Rread does not allocate and
//! zero-fill a new buffer each time.

use super::connection::{ConnState, Connection};
use crate::fs::Filesystem;
use alloc::vec;
use alloc::vec::Vec;

/// Sent reply buffers a connection keeps for reuse, at most.
pub(super) const SPARE_BUFFERS: usize = 4;
/// Smaller buffers are not kept: allocating and zero-filling them costs little.
pub(super) const SPARE_MIN_BYTES: usize = 16 << 10;

/// Keeps `buf` among the connection's spares if it is large enough and there is room.
pub(super) fn keep_spare(st: &mut ConnState, buf: Vec<u8>) {
    if buf.capacity() >= SPARE_MIN_BYTES && st.spare.len() < SPARE_BUFFERS {
        st.spare.push(buf);
    }
}

impl<F: Filesystem> Connection<F> {
    /// Hands back a reply the transport has sent, so that its buffer carries a later large
    /// reply (an Rread) of this connection instead of a new buffer being allocated and
    /// zero-filled for it. Buffers are kept per connection (at most `SPARE_BUFFERS`, none
    /// under `SPARE_MIN_BYTES`), so a reused buffer only ever held this client's own replies;
    /// and a reply built in one is cut to the bytes written for it.
    pub fn recycle(&self, buf: Vec<u8>) {
        if buf.capacity() < SPARE_MIN_BYTES {
            return;
        }
        keep_spare(&mut self.state.lock(), buf);
    }

    /// A buffer of `len` bytes for a message of this connection (a request the transport
    /// copies in, or a reply): a recycled one when one is large enough (its old contents are
    /// left in place, to be overwritten; only growth is zero-filled), else a new zero-filled
    /// one. Executed requests' buffers are recycled too. Messages under `SPARE_MIN_BYTES`
    /// always get a new buffer, so that they do not take (and shorten) a large one.
    pub fn buffer(&self, len: usize) -> Vec<u8> {
        // Small messages get small new buffers: the spares are for the large ones.
        if len < SPARE_MIN_BYTES {
            return vec![0u8; len];
        }
        let spare = {
            let mut st = self.state.lock();
            match st.spare.iter().position(|b| b.capacity() >= len) {
                Some(i) => Some(st.spare.swap_remove(i)),
                None => None,
            }
        };
        match spare {
            Some(mut b) => {
                b.resize(len, 0);
                b
            }
            None => vec![0u8; len],
        }
    }
}
