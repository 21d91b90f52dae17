//! [`WireError`]: why a message could not be decoded or encoded.

/// Codec errors. They carry what was found so that a log line can say why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The buffer is shorter than the header or than a field needs.
    Truncated {
        /// Bytes needed at this point.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The size field disagrees with the buffer (smaller than a header, or larger than given).
    BadSize {
        /// The declared size.
        declared: u32,
        /// The buffer length.
        buffer: usize,
    },
    /// Unknown or unsupported message type.
    UnknownType(u8),
    /// Bytes left over after the body was parsed.
    TrailingBytes(usize),
    /// A walk with more than [`MAX_WELEM`](super::MAX_WELEM) names or qids.
    TooManyWalkElems(u16),
    /// A string longer than 65535 bytes was given to `emit`.
    StringTooLong(usize),
    /// A data payload longer than `u32::MAX` was given to `emit`.
    DataTooLong(usize),
}
