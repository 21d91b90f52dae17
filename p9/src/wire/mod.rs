//! 9P2000.L wire codec.
//!
//! A message on the wire is `size[4] type[1] tag[2] body…`, little-endian, where `size` counts
//! the whole message including itself. [`Frame`] is a zero-copy view over such a message:
//! [`Frame::new_checked`] validates the header against the buffer, and [`Tmsg::parse`] /
//! [`Rmsg::parse`] decode the body into representations that borrow strings and data from the
//! buffer. [`Tmsg::emit`] / [`Rmsg::emit`] append an encoded message to a `Vec<u8>`.
//!
//! # No-panic contract
//! Every function in this module that takes bytes returns an error instead of panicking on
//! any input: every length and count read from the wire is checked against the remaining
//! buffer before it is used, and nothing is allocated from a declared size (parsing allocates
//! only the fixed-size `Vec` of walk names / qids, bounded by [`MAX_WELEM`]).
//!
//! # Files
//! - `constants`: header sizes, reserved values, type numbers and protocol bit sets.
//! - `error`: [`WireError`].
//! - `frame`: the message header ([`Frame`]) and the Rread / Rreaddir header helper.
//! - `codec`: [`Reader`] and [`Writer`], bounds-checked little-endian fields.
//! - `fields`: [`Qid`] and the structured bodies ([`Getattr`], [`SetattrReq`], …).
//! - `tmsg`: requests ([`Tmsg`]); `rmsg`: replies ([`Rmsg`]).
//! - `dirent`: Rreaddir entries ([`DirEntryRepr`], [`DirEntries`]).

mod codec;
mod constants;
mod dirent;
mod error;
mod fields;
mod frame;
mod rmsg;
mod summary;
mod tmsg;

pub use codec::{Reader, Writer};
pub use constants::*;
pub use dirent::{DirEntries, DirEntryRepr};
pub use error::WireError;
use fields::lock_body;
pub use fields::{Getattr, LockRepr, Qid, SetattrReq, StatfsRepr};
pub use frame::{finish_io_reply, peek_size, Frame};
pub use rmsg::Rmsg;
pub use summary::{summary, MAX_SUMMARY};
pub use tmsg::Tmsg;

#[cfg(test)]
mod tests;
