//! The 9P2000.L server: sessions, fids, flush, and the operations, over a
//! [`Filesystem`](crate::fs::Filesystem).
//!
//! A [`Server`] is one export: a filesystem, its policy ([`ExportConfig`]), its quota and its
//! lock table. Each transport connection gets a [`Connection`]. Requests are handled in two
//! steps so that a transport can run many at once and complete them out of order:
//!
//! 1. [`Connection::submit`] takes one complete message, validates its header, answers the
//!    requests that need no filesystem work (Tversion, Tflush, protocol errors) and otherwise
//!    registers the tag as in flight and returns a [`Request`].
//! 2. [`Connection::execute`] runs a request (on any thread) and returns the replies to send:
//!    its own reply, unless it was flushed meanwhile, followed by the Rflush of every Tflush
//!    that waited for it.
//!
//! [`Connection::handle`] does both for transports that work one request at a time.
//! [`Connection::execute_or_defer`] is `execute` for transports that overlap the client's
//! work with the server's: it may answer a `Twrite` before running it ([`WriteBehind`]),
//! which the transport then runs with [`Connection::finish_write`] before anything else.
//!
//! # Files
//! - `export`: [`Server`] (one export), its policy ([`ExportConfig`]) and quota seeding.
//! - `connection`: [`Connection`], one client's state.
//! - `session`: a request's way through a connection: submit, flush, execute, Tversion.
//! - `buffers`: reuse of sent reply buffers for later replies.
//! - `write_behind`: reads deferred until their data is in memory, and writes answered
//!   before they run ([`WriteBehind`]).
//! - `dispatch`: decodes a request and calls the method of its message; the methods are
//!   grouped by what they do:
//!   - `attach`: Tattach and Twalk (and [`resolve_path`]);
//!   - `fids`: the fid table and Tclunk;
//!   - `open`: Tlopen and Tlcreate;
//!   - `io`: Tread, Twrite, Treaddir and Tfsync;
//!   - `attr`: Tgetattr, Tsetattr and Tstatfs (and [`qid_of`]);
//!   - `namespace`: Tmkdir, Tmknod, Tsymlink, Tlink, Trename, Trenameat, Tunlinkat,
//!     Tremove and Treadlink;
//!   - `xattr`: Txattrwalk, Txattrcreate and the reads and writes of xattr fids;
//!   - `lock`: Tlock and Tgetlock (lock owners are a process id and a client name: no ids
//!     to map).
//! - `access`: the share's identity policy on a connection and the permission checks for
//!   mapped or squashed shares.

mod access;
mod attach;
mod attr;
mod buffers;
mod connection;
mod dispatch;
mod export;
mod fids;
mod io;
mod lock;
mod namespace;
mod open;
mod session;
mod write_behind;
mod xattr;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_idmap;

pub use attach::resolve_path;
pub use attr::qid_of;
pub use connection::Connection;
pub use export::{ExportConfig, SeedError, Server};
pub use session::{Request, Submitted};
pub use write_behind::{Executed, WriteBehind};

use crate::fs::Errno;
use crate::wire::{Rmsg, WireError, HEADER_LEN};
use alloc::vec::Vec;

/// Smallest msize the server accepts.
pub const MIN_MSIZE: u32 = 4096;
/// The protocol version string.
pub const VERSION: &[u8] = b"9P2000.L";
/// A message or reply larger than the msize.
const EMSGSIZE: Errno = Errno(90);
/// `open` flags (Linux values, as Tlopen and Tlcreate carry them).
const O_ACCMODE: u32 = 3;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;

/// An Rlerror reply.
fn err_reply(tag: u16, e: Errno) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 4);
    let _ = Rmsg::Lerror { ecode: e.0 }.emit(tag, &mut out);
    out
}

/// The encoded reply `m` (an Rlerror `ENAMETOOLONG` if a string of it is too long).
fn reply(tag: u16, m: &Rmsg<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match m.emit(tag, &mut out) {
        Ok(()) => out,
        Err(_) => err_reply(tag, Errno::ENAMETOOLONG),
    }
}

/// The error answered for a request that does not decode.
fn wire_errno(e: WireError) -> Errno {
    match e {
        WireError::TooManyWalkElems(_) => Errno::E2BIG,
        WireError::UnknownType(_) => Errno::EOPNOTSUPP,
        _ => Errno::EBADMSG,
    }
}

/// Checks a name a request creates or removes: one path component, at most 255 bytes.
fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Errno::EINVAL);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}
