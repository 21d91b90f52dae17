//! The xenstore wire protocol (`io/xs_wire.h`): message framing, request encoding, and a
//! decoder that reassembles messages from partial ring reads and separates watch events from
//! replies.
//!
//! No-panic contract: [`Decoder::push`] and [`Decoder::next_message`] accept any byte stream. A
//! header that declares more than [`PAYLOAD_MAX`] bytes is reported as [`WireError::TooLong`];
//! the connection is then unusable and should be reset.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use byteorder::{ByteOrder, LittleEndian as LE};

/// Size of a message header.
pub const HEADER_LEN: usize = 16;
/// Largest payload xenstored accepts or sends.
pub const PAYLOAD_MAX: usize = 4096;

/// Offsets in `struct xenstore_domain_interface`.
pub mod iface {
    use crate::byte_ring::Layout;
    /// Requests, guest to xenstored.
    pub const REQ: Layout = Layout {
        data_off: 0,
        size: 1024,
        cons_off: 2048,
        prod_off: 2052,
    };
    /// Replies and watch events, xenstored to guest.
    pub const RSP: Layout = Layout {
        data_off: 1024,
        size: 1024,
        cons_off: 2056,
        prod_off: 2060,
    };
}

// A table of `io/xs_wire.h`'s numbers; `XenbusState` (xenbus/mod.rs) and other numbered
// enums look the same, but each copies its own header.
u32_enum! {
/// Message types (`enum xsd_sockmsg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// XS_CONTROL
    Control = 0,
    /// XS_DIRECTORY
    Directory = 1,
    /// XS_READ
    Read = 2,
    /// XS_GET_PERMS
    GetPerms = 3,
    /// XS_WATCH
    Watch = 4,
    /// XS_UNWATCH
    Unwatch = 5,
    /// XS_TRANSACTION_START
    TransactionStart = 6,
    /// XS_TRANSACTION_END
    TransactionEnd = 7,
    /// XS_INTRODUCE
    Introduce = 8,
    /// XS_RELEASE
    Release = 9,
    /// XS_GET_DOMAIN_PATH
    GetDomainPath = 10,
    /// XS_WRITE
    Write = 11,
    /// XS_MKDIR
    Mkdir = 12,
    /// XS_RM
    Rm = 13,
    /// XS_SET_PERMS
    SetPerms = 14,
    /// XS_WATCH_EVENT
    WatchEvent = 15,
    /// XS_ERROR
    Error = 16,
    /// XS_IS_DOMAIN_INTRODUCED
    IsDomainIntroduced = 17,
    /// XS_RESUME
    Resume = 18,
    /// XS_SET_TARGET
    SetTarget = 19,
    /// XS_RESET_WATCHES
    ResetWatches = 21,
    /// XS_DIRECTORY_PART
    DirectoryPart = 22,
}
}

/// Byte ranges of the header's fields (`struct xsd_sockmsg`).
mod field {
    /// A field's bytes in the header.
    pub(super) type Field = core::ops::Range<usize>;
    /// `type`.
    pub(super) const TYPE: Field = 0..4;
    /// `req_id`.
    pub(super) const REQ_ID: Field = 4..8;
    /// `tx_id`.
    pub(super) const TX_ID: Field = 8..12;
    /// `len`.
    pub(super) const LEN: Field = 12..16;
}

/// A message header (`struct xsd_sockmsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Raw message type.
    pub ty: u32,
    /// Request id, echoed in the reply.
    pub req_id: u32,
    /// Transaction id, 0 outside a transaction.
    pub tx_id: u32,
    /// Payload length.
    pub len: u32,
}

impl Header {
    /// Parses a header from the first [`HEADER_LEN`] bytes of `b`.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b = b.get(..HEADER_LEN)?;
        Some(Self {
            ty: LE::read_u32(&b[field::TYPE]),
            req_id: LE::read_u32(&b[field::REQ_ID]),
            tx_id: LE::read_u32(&b[field::TX_ID]),
            len: LE::read_u32(&b[field::LEN]),
        })
    }

    /// Encodes the header.
    pub fn emit(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        LE::write_u32(&mut out[field::TYPE], self.ty);
        LE::write_u32(&mut out[field::REQ_ID], self.req_id);
        LE::write_u32(&mut out[field::TX_ID], self.tx_id);
        LE::write_u32(&mut out[field::LEN], self.len);
        out
    }
}

/// Protocol errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// A payload longer than [`PAYLOAD_MAX`] was declared.
    TooLong(u32),
    /// A request payload would exceed [`PAYLOAD_MAX`].
    RequestTooLong(usize),
    /// A watch event payload without its two NUL-terminated strings.
    BadWatchEvent,
    /// xenstored answered with an error (`"ENOENT"`, `"EACCES"`, …).
    Xs(String),
    /// A reply of an unexpected type.
    UnexpectedType(u32),
    /// Reply payload is not valid UTF-8 where text was expected.
    NotUtf8,
}

/// A complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The payload, exactly `header.len` bytes.
    pub payload: Vec<u8>,
}

/// A watch firing: the path that changed and the token given to `XS_WATCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// The path that changed (or a special path like `@releaseDomain`).
    pub path: String,
    /// The watch's token.
    pub token: String,
}

impl Message {
    /// Interprets the message as a watch event.
    pub fn watch_event(&self) -> Result<WatchEvent, WireError> {
        let mut parts = self.payload.split(|&b| b == 0);
        let path = parts.next().ok_or(WireError::BadWatchEvent)?;
        let token = parts.next().ok_or(WireError::BadWatchEvent)?;
        Ok(WatchEvent {
            path: String::from_utf8(path.to_vec()).map_err(|_| WireError::NotUtf8)?,
            token: String::from_utf8(token.to_vec()).map_err(|_| WireError::NotUtf8)?,
        })
    }

    /// Turns an `XS_ERROR` reply into an error, and checks the reply type otherwise.
    pub fn into_reply(self, expect: MsgType) -> Result<Vec<u8>, WireError> {
        if self.header.ty == MsgType::Error as u32 {
            let text = self.payload.split(|&b| b == 0).next().unwrap_or(&[]);
            return Err(WireError::Xs(String::from_utf8_lossy(text).into_owned()));
        }
        if self.header.ty != expect as u32 {
            return Err(WireError::UnexpectedType(self.header.ty));
        }
        Ok(self.payload)
    }
}

/// Encodes a request whose payload is `parts` joined as given (the caller includes NULs).
pub fn encode_request(
    ty: MsgType,
    req_id: u32,
    tx_id: u32,
    parts: &[&[u8]],
) -> Result<Vec<u8>, WireError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > PAYLOAD_MAX {
        return Err(WireError::RequestTooLong(len));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    out.extend_from_slice(
        &Header {
            ty: ty as u32,
            req_id,
            tx_id,
            len: len as u32,
        }
        .emit(),
    );
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// Splits a `XS_DIRECTORY` reply into names.
pub fn parse_directory(payload: &[u8]) -> Result<Vec<String>, WireError> {
    payload
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).map_err(|_| WireError::NotUtf8))
        .collect()
}

/// Reassembles messages from a byte stream delivered in arbitrary pieces.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Appends bytes read from the ring.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Removes and returns the next complete message, if one is buffered.
    pub fn next_message(&mut self) -> Result<Option<Message>, WireError> {
        let Some(header) = Header::parse(&self.buf) else {
            return Ok(None);
        };
        if header.len as usize > PAYLOAD_MAX {
            return Err(WireError::TooLong(header.len));
        }
        let total = HEADER_LEN + header.len as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let payload = self.buf[HEADER_LEN..total].to_vec();
        self.buf.drain(..total);
        Ok(Some(Message { header, payload }))
    }

    /// Bytes buffered but not yet part of a complete message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Initial capacity of the client's reply and watch-event queues.
const QUEUE_START: usize = 64;

/// Watch events queued, at most. An event equal to one already queued is dropped (its
/// consumer looks at the path again anyway); past the bound new events are dropped and
/// [`Client::take_overflow`] tells the consumer to look at everything it watches, as after
/// a lost event. An event's payload is at most [`PAYLOAD_MAX`] bytes, so this holds the
/// queue to about 1 MiB however fast the watched nodes change.
pub const MAX_QUEUED_EVENTS: usize = 256;

/// Client-side bookkeeping independent of the transport: request ids, replies matched to
/// requests, and watch events queued while a reply is awaited.
#[derive(Debug, Default)]
pub struct Client {
    decoder: Decoder,
    next_id: u32,
    replies: VecDeque<Message>,
    events: VecDeque<WatchEvent>,
    /// Events were dropped because the queue was full ([`MAX_QUEUED_EVENTS`]).
    overflowed: bool,
}

impl Client {
    /// A new client.
    /// A client whose buffers are sized up front: the decoder for a whole message plus what
    /// a read can add, and queues for typical bursts. Buffers reused for the client's lifetime
    /// then keep one size, so pvfs's heap figures (`data/pvfs/stats`) do not creep as bursts
    /// of xenstore traffic set new highs.
    pub fn new() -> Self {
        Self {
            decoder: Decoder {
                buf: Vec::with_capacity(2 * (HEADER_LEN + PAYLOAD_MAX)),
            },
            next_id: 0,
            replies: VecDeque::with_capacity(QUEUE_START),
            events: VecDeque::with_capacity(QUEUE_START),
            overflowed: false,
        }
    }

    /// Allocates a request id and encodes a request.
    pub fn request(
        &mut self,
        ty: MsgType,
        tx_id: u32,
        parts: &[&[u8]],
    ) -> Result<(u32, Vec<u8>), WireError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Ok((id, encode_request(ty, id, tx_id, parts)?))
    }

    /// Feeds bytes read from the response ring; sorts complete messages into replies and
    /// watch events.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.decoder.push(bytes);
        while let Some(m) = self.decoder.next_message()? {
            if m.header.ty == MsgType::WatchEvent as u32 {
                // A malformed event is dropped rather than failing the connection.
                if let Ok(ev) = m.watch_event() {
                    self.queue_event(ev);
                }
            } else {
                self.replies.push_back(m);
            }
        }
        Ok(())
    }

    /// Takes the reply to request `req_id`, if it has arrived.
    pub fn take_reply(&mut self, req_id: u32) -> Option<Message> {
        let pos = self
            .replies
            .iter()
            .position(|m| m.header.req_id == req_id)?;
        self.replies.remove(pos)
    }

    /// Queues a watch event: coalesced with an equal one already queued, dropped with the
    /// overflow flag set if [`MAX_QUEUED_EVENTS`] are queued.
    fn queue_event(&mut self, ev: WatchEvent) {
        if self.events.contains(&ev) {
            return;
        }
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.overflowed = true;
            return;
        }
        self.events.push_back(ev);
    }

    /// Takes the oldest queued watch event.
    pub fn take_event(&mut self) -> Option<WatchEvent> {
        self.events.pop_front()
    }

    /// Whether watch events were dropped since the last call (the queue was full): the
    /// consumer must then look at every node it watches, not only the queued events' paths.
    pub fn take_overflow(&mut self) -> bool {
        core::mem::take(&mut self.overflowed)
    }

    /// Watch events queued.
    pub fn queued_events(&self) -> usize {
        self.events.len()
    }
}

/// Builds a NUL-terminated path argument.
pub fn nul(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(ty: MsgType, req_id: u32, payload: &[u8]) -> Vec<u8> {
        encode_request(ty, req_id, 0, &[payload]).unwrap()
    }

    #[test]
    fn header_round_trip() {
        let h = Header {
            ty: 2,
            req_id: 7,
            tx_id: 9,
            len: 5,
        };
        assert_eq!(Header::parse(&h.emit()), Some(h));
        assert_eq!(Header::parse(&[0; 15]), None);
    }

    #[test]
    fn encodes_write_request() {
        let b = encode_request(MsgType::Write, 3, 0, &[&nul("data/x"), b"ready"]).unwrap();
        assert_eq!(&b[..4], &11u32.to_le_bytes());
        assert_eq!(&b[4..8], &3u32.to_le_bytes());
        assert_eq!(&b[12..16], &12u32.to_le_bytes());
        assert_eq!(&b[16..], b"data/x\0ready");
        assert!(encode_request(MsgType::Write, 0, 0, &[&[0; 4097]]).is_err());
    }

    #[test]
    fn decoder_handles_byte_by_byte_delivery() {
        let mut stream = reply(MsgType::Read, 1, b"hello");
        stream.extend(reply(MsgType::Read, 2, b""));
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in &stream {
            d.push(core::slice::from_ref(b));
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].payload, b"hello");
        assert_eq!(got[1].header.req_id, 2);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn decoder_rejects_oversized_length() {
        let mut d = Decoder::default();
        d.push(
            &Header {
                ty: 2,
                req_id: 0,
                tx_id: 0,
                len: 4097,
            }
            .emit(),
        );
        assert_eq!(d.next_message(), Err(WireError::TooLong(4097)));
    }

    #[test]
    fn watch_events_interleaved_with_replies() {
        let mut c = Client::new();
        let (id, _) = c.request(MsgType::Read, 0, &[&nul("domid")]).unwrap();
        let mut stream = reply(MsgType::WatchEvent, 0, b"backend/9pfs/5/0\0tok\0");
        stream.extend(reply(MsgType::Read, id, b"3"));
        stream.extend(reply(MsgType::WatchEvent, 0, b"@releaseDomain\0rel\0"));
        // Deliver in awkward pieces: split inside the header and inside the payload.
        for chunk in stream.chunks(7) {
            c.feed(chunk).unwrap();
        }
        assert_eq!(
            c.take_reply(id).unwrap().into_reply(MsgType::Read).unwrap(),
            b"3"
        );
        assert!(c.take_reply(id).is_none());
        assert_eq!(
            c.take_event().unwrap(),
            WatchEvent {
                path: "backend/9pfs/5/0".into(),
                token: "tok".into()
            }
        );
        assert_eq!(c.take_event().unwrap().path, "@releaseDomain");
        assert!(c.take_event().is_none());
    }

    #[test]
    fn error_replies_and_type_mismatch() {
        let mut c = Client::new();
        c.feed(&reply(MsgType::Error, 4, b"ENOENT\0")).unwrap();
        c.feed(&reply(MsgType::Write, 5, b"OK\0")).unwrap();
        assert_eq!(
            c.take_reply(4).unwrap().into_reply(MsgType::Read),
            Err(WireError::Xs("ENOENT".into()))
        );
        assert_eq!(
            c.take_reply(5).unwrap().into_reply(MsgType::Read),
            Err(WireError::UnexpectedType(11))
        );
    }

    #[test]
    fn malformed_watch_event_is_dropped() {
        let mut c = Client::new();
        c.feed(&reply(MsgType::WatchEvent, 0, b"")).unwrap();
        c.feed(&reply(MsgType::WatchEvent, 0, b"\xff\xfe\0t\0"))
            .unwrap();
        assert!(c.take_event().is_none());
    }

    #[test]
    fn directory_parsing() {
        assert_eq!(parse_directory(b"a\0bb\0c\0").unwrap(), ["a", "bb", "c"]);
        assert!(parse_directory(b"").unwrap().is_empty());
    }

    /// A flood of watch events: duplicates coalesce, the queue stops at its bound with the
    /// overflow flag set (once), and what it holds stays within the bound.
    #[test]
    fn watch_event_flood_is_bounded() {
        let mut c = Client::new();
        let long = "x".repeat(PAYLOAD_MAX - 40);
        for round in 0..3 {
            for i in 0..MAX_QUEUED_EVENTS * 2 {
                let ev = alloc::format!("backend/9pfs/{i}/{long}\0tok\0");
                c.feed(&reply(MsgType::WatchEvent, 0, ev.as_bytes()))
                    .unwrap();
                assert!(c.queued_events() <= MAX_QUEUED_EVENTS, "round {round}");
            }
        }
        assert_eq!(c.queued_events(), MAX_QUEUED_EVENTS);
        assert!(c.take_overflow());
        assert!(!c.take_overflow(), "the flag is reported once");
        let mut bytes = 0;
        let mut n = 0;
        while let Some(ev) = c.take_event() {
            bytes += ev.path.len() + ev.token.len();
            n += 1;
        }
        assert_eq!(n, MAX_QUEUED_EVENTS);
        assert!(bytes <= MAX_QUEUED_EVENTS * PAYLOAD_MAX);
        // Equal events coalesce without setting the flag.
        for _ in 0..MAX_QUEUED_EVENTS * 2 {
            c.feed(&reply(MsgType::WatchEvent, 0, b"a\0t\0")).unwrap();
        }
        assert_eq!(c.queued_events(), 1);
        assert!(!c.take_overflow());
    }
}
