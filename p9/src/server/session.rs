//! A request's way through a connection: [`Connection::submit`] checks its header and
//! answers at once what needs no filesystem (Tversion, Tflush, protocol errors), then
//! [`Connection::execute`] runs it and answers the Tflushes that waited for it.

use super::buffers::keep_spare;
use super::connection::{Connection, InFlight};
use super::{err_reply, reply, wire_errno, EMSGSIZE, MIN_MSIZE, VERSION};
use crate::fs::{Errno, Filesystem};
use crate::wire::{Frame, Rmsg, Tmsg, NOTAG};
use alloc::vec;
use alloc::vec::Vec;

/// A request accepted by [`Connection::submit`], to be run by [`Connection::execute`].
#[derive(Debug)]
pub struct Request {
    pub(super) tag: u16,
    pub(super) msg: Vec<u8>,
}

impl Request {
    /// The request's tag.
    pub fn tag(&self) -> u16 {
        self.tag
    }
    /// The message type.
    pub fn msg_type(&self) -> u8 {
        Frame::new_unchecked(&self.msg[..]).msg_type()
    }
    /// Size of the message in bytes.
    pub fn size(&self) -> usize {
        self.msg.len()
    }
    /// Whether the request does no bulk I/O (metadata only), so a transport may run it inline
    /// instead of handing it to a worker.
    pub fn is_cheap(&self) -> bool {
        use crate::wire::ty::*;
        matches!(
            self.msg_type(),
            TWALK | TGETATTR | TCLUNK | TSTATFS | TREADLINK | TATTACH | TGETLOCK | TLOCK | TLOPEN
        )
    }
}

/// Result of [`Connection::submit`].
#[derive(Debug)]
pub enum Submitted {
    /// Send this reply now; nothing else to do.
    Reply(Vec<u8>),
    /// Run this with [`Connection::execute`] (on any thread).
    Run(Request),
    /// Nothing to send now (a Tflush waiting for its request to complete).
    Pending,
}

impl<F: Filesystem> Connection<F> {
    /// Accepts one complete message (see the module docs).
    pub fn submit(&self, msg: Vec<u8>) -> Submitted {
        let f = Frame::new_unchecked(&msg[..]);
        let tag = f.tag();
        if let Err(e) = f.check_len() {
            return Submitted::Reply(err_reply(tag, wire_errno(e)));
        }
        let ty = f.msg_type();
        if msg.len() as u64 > u64::from(self.max_message()) {
            return Submitted::Reply(err_reply(tag, EMSGSIZE));
        }
        match ty {
            crate::wire::ty::TVERSION => return Submitted::Reply(self.version(tag, f.body())),
            crate::wire::ty::TFLUSH => {
                let oldtag = match Tmsg::parse_body(ty, f.body()) {
                    Ok(Tmsg::Flush { oldtag }) => oldtag,
                    Ok(_) => return Submitted::Reply(err_reply(tag, Errno::EBADMSG)),
                    Err(e) => return Submitted::Reply(err_reply(tag, wire_errno(e))),
                };
                let mut st = self.state.lock();
                if oldtag != tag {
                    if let Some(inf) = st.inflight.get_mut(&oldtag) {
                        inf.flushed = true;
                        if inf.flushes.len() < 16 {
                            inf.flushes.push(tag);
                            return Submitted::Pending;
                        }
                    }
                }
                return Submitted::Reply(reply(tag, &Rmsg::Flush));
            }
            _ => {}
        }
        let mut st = self.state.lock();
        if st.msize == 0 {
            return Submitted::Reply(err_reply(tag, Errno::EPROTO));
        }
        if tag == NOTAG || st.inflight.contains_key(&tag) {
            return Submitted::Reply(err_reply(tag, Errno::EBADMSG));
        }
        if st.inflight.len() >= self.shared.cfg.max_in_flight {
            return Submitted::Reply(err_reply(tag, Errno::EAGAIN));
        }
        st.inflight.insert(tag, InFlight::default());
        Submitted::Run(Request { tag, msg })
    }

    /// Runs a request; returns the replies to send, in order (possibly none).
    pub fn execute(&self, req: Request) -> Vec<Vec<u8>> {
        let flushed_early = self
            .state
            .lock()
            .inflight
            .get(&req.tag)
            .is_none_or(|i| i.flushed);
        let out = if flushed_early {
            None
        } else {
            Some(self.dispatch(&req))
        };
        let mut replies = Vec::new();
        let mut st = self.state.lock();
        let inf = st.inflight.remove(&req.tag).unwrap_or_default();
        if !inf.flushed {
            if let Some(r) = out {
                replies.push(r);
            }
        }
        for t in inf.flushes {
            replies.push(reply(t, &Rmsg::Flush));
        }
        keep_spare(&mut st, req.msg);
        replies
    }

    /// `submit` then `execute`: the replies to one message, in order.
    pub fn handle(&self, msg: Vec<u8>) -> Vec<Vec<u8>> {
        match self.submit(msg) {
            Submitted::Reply(r) => vec![r],
            Submitted::Run(req) => self.execute(req),
            Submitted::Pending => Vec::new(),
        }
    }

    /// Tversion: negotiates the msize and starts a new session.
    fn version(&self, tag: u16, body: &[u8]) -> Vec<u8> {
        let (msize, version) = match Tmsg::parse_body(crate::wire::ty::TVERSION, body) {
            Ok(Tmsg::Version { msize, version }) => (msize, version),
            Ok(_) => return err_reply(tag, Errno::EBADMSG),
            Err(e) => return err_reply(tag, wire_errno(e)),
        };
        if msize < MIN_MSIZE {
            return err_reply(tag, Errno::EINVAL);
        }
        // A new session: every fid of the old one is clunked.
        self.clunk_all();
        if !version.starts_with(VERSION) {
            self.state.lock().msize = 0;
            return reply(
                tag,
                &Rmsg::Version {
                    msize,
                    version: b"unknown",
                },
            );
        }
        let m = msize.min(self.shared.cfg.max_msize.max(MIN_MSIZE));
        self.state.lock().msize = m;
        reply(
            tag,
            &Rmsg::Version {
                msize: m,
                version: VERSION,
            },
        )
    }
}
