//! Overlapping the client's work with the server's: [`Connection::execute_or_defer`] hands back
//! a Tread whose data is not in memory yet, and answers a Twrite that can only fail with a
//! device error before running it ([`WriteBehind`], run by [`Connection::finish_write`]).

use super::connection::Connection;
use super::export::MAX_LATE_ERRORS;
use super::session::Request;
use super::{reply, O_ACCMODE, O_WRONLY};
use crate::fs::{Errno, Filesystem, Ino};
use crate::wire::{Frame, Rmsg, Tmsg, RREAD_HEADER_LEN};
use alloc::vec;
use alloc::vec::Vec;

/// A `Twrite` answered before the filesystem ran it ([`Connection::execute_or_defer`]): the
/// transport sends the replies first and then runs it with [`Connection::finish_write`],
/// before any other request of the filesystem runs, so that no request (of any guest) sees
/// the file without it. Only writes the filesystem says cannot fail short of a device error
/// ([`Filesystem::write_would_fit`]) are answered early; if one fails all the same, the error
/// is returned by the next `Tfsync` of the file, as a local filesystem reports a failed
/// write-back.
#[derive(Debug)]
#[must_use = "an answered write must be run with Connection::finish_write"]
pub struct WriteBehind {
    msg: Vec<u8>,
    /// Where the data starts in `msg` (it runs to the end of the message).
    start: usize,
    ino: Ino,
    off: u64,
    grow: u64,
}

impl WriteBehind {
    /// The bytes to write.
    pub fn len(&self) -> usize {
        self.data().len()
    }

    /// Whether there is nothing to write (never, for a write answered early).
    pub fn is_empty(&self) -> bool {
        self.data().is_empty()
    }

    fn data(&self) -> &[u8] {
        self.msg.get(self.start..).unwrap_or(&[])
    }
}

/// Result of [`Connection::execute_or_defer`] for a request that ran.
#[derive(Debug)]
pub enum Executed {
    /// The request ran: send these replies.
    Done(Vec<Vec<u8>>),
    /// A write was answered before it ran: send these replies, then run the write with
    /// [`Connection::finish_write`] before anything else.
    Answered(Vec<Vec<u8>>, WriteBehind),
}

impl<F: Filesystem> Connection<F> {
    /// Like [`execute`](Self::execute), but a `Tread` whose data the filesystem does not hold
    /// in memory ([`Filesystem::read_would_wait`], which starts fetching it) is handed back
    /// unrun as `Err`, so the transport can run other requests first and `execute` it later;
    /// and with `early_writes`, a `Twrite` the filesystem says will fit
    /// ([`Filesystem::write_would_fit`]) is answered before it runs ([`Executed::Answered`],
    /// see [`WriteBehind`]), so the client can prepare its next request while the server
    /// writes. Everything else runs at once.
    pub fn execute_or_defer(&self, req: Request, early_writes: bool) -> Result<Executed, Request> {
        if self.read_would_wait(&req) {
            return Err(req);
        }
        if !early_writes {
            return Ok(Executed::Done(self.execute(req)));
        }
        match self.answer_early(req) {
            Ok(answered) => Ok(answered),
            Err(req) => Ok(Executed::Done(self.execute(req))),
        }
    }

    /// Answers a `Twrite` before running it, when it can only fail with a device error: its
    /// fid is open for writing, the export is writable, the quota has room (charged now) and
    /// the filesystem has room for it. Hands the request back otherwise.
    fn answer_early(&self, req: Request) -> Result<Executed, Request> {
        let f = Frame::new_unchecked(&req.msg[..]);
        if f.msg_type() != crate::wire::ty::TWRITE {
            return Err(req);
        }
        let Ok(Tmsg::Write { fid, offset, data }) =
            Tmsg::parse_body(crate::wire::ty::TWRITE, f.body())
        else {
            return Err(req);
        };
        let len = data.len();
        // The data is the message's last field: it runs from `start` to the end.
        let start = (data.as_ptr() as usize).wrapping_sub(req.msg.as_ptr() as usize);
        if len == 0 || start.checked_add(len) != Some(req.msg.len()) {
            return Err(req);
        }
        {
            let st = self.state.lock();
            if st.inflight.get(&req.tag).is_none_or(|i| i.flushed) {
                return Err(req);
            }
        }
        let Ok(i) = self.plain(fid) else {
            return Err(req);
        };
        let Ok((off, grow)) = self.write_start(i, offset, len) else {
            return Err(req);
        };
        if !self.shared.fs.write_would_fit(i.ino, off, len as u64) {
            self.shared.quota.refund_bytes(grow);
            return Err(req);
        }
        let mut replies = vec![reply(req.tag, &Rmsg::Write { count: len as u32 })];
        let inf = self
            .state
            .lock()
            .inflight
            .remove(&req.tag)
            .unwrap_or_default();
        // Not flushed (checked above, and nothing ran in between); a Tflush that came anyway
        // is answered after the reply, as `execute` does.
        for t in inf.flushes {
            replies.push(reply(t, &Rmsg::Flush));
        }
        Ok(Executed::Answered(
            replies,
            WriteBehind {
                msg: req.msg,
                start,
                ino: i.ino,
                off,
                grow,
            },
        ))
    }

    /// Runs a write answered early (see [`WriteBehind`]); returns the bytes written, or the
    /// error, which the next `Tfsync` of the file also returns (and the quota charge is
    /// refunded). A short write counts as `ENOSPC`.
    pub fn finish_write(&self, w: WriteBehind) -> Result<usize, Errno> {
        let want = w.len();
        let res = match self.shared.fs.write(w.ino, w.off, w.data()) {
            Ok(n) if n >= want => Ok(n),
            Ok(_) => Err(Errno::ENOSPC),
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            self.shared.quota.refund_bytes(w.grow);
            let mut late = self.shared.late_errors.lock();
            if late.len() < MAX_LATE_ERRORS || late.contains_key(&w.ino) {
                late.entry(w.ino).or_insert(e);
            }
        }
        self.recycle(w.msg);
        res
    }

    /// Whether `req` is a Tread of file data the filesystem does not hold in memory (it
    /// starts fetching it).
    fn read_would_wait(&self, req: &Request) -> bool {
        let f = Frame::new_unchecked(&req.msg[..]);
        if f.msg_type() != crate::wire::ty::TREAD {
            return false;
        }
        let Ok(Tmsg::Read { fid, offset, count }) =
            Tmsg::parse_body(crate::wire::ty::TREAD, f.body())
        else {
            return false;
        };
        let ino = {
            let st = self.state.lock();
            if st.inflight.get(&req.tag).is_none_or(|i| i.flushed) {
                return false;
            }
            match st.fids.get(&fid) {
                Some(fd)
                    if fd.xattr.is_none()
                        && fd.open.is_some_and(|fl| fl & O_ACCMODE != O_WRONLY) =>
                {
                    fd.ino
                }
                _ => return false,
            }
        };
        let max = self.msize().saturating_sub(RREAD_HEADER_LEN as u32);
        self.fs().read_would_wait(ino, offset, count.min(max))
    }
}
