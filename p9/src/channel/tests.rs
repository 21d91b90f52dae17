use super::*;
use crate::memfs::MemFs;
use crate::sched::tests::{msg, tag_of};
use crate::server::{ExportConfig, Server};
use crate::wire::{ty, Tmsg};

/// A ring over queues: requests the client produced, replies it has taken, and how many
/// more replies fit (`None`: any number).
#[derive(Default)]
struct FakeRing {
    requests: VecDeque<Vec<u8>>,
    replies: Vec<Vec<u8>>,
    room: Option<usize>,
    notified: usize,
}

impl Channel for FakeRing {
    type Error = ();
    fn take(&mut self, buffer: &mut dyn FnMut(usize) -> Vec<u8>) -> Result<Option<Vec<u8>>, ()> {
        let Some(m) = self.requests.pop_front() else {
            return Ok(None);
        };
        let mut b = buffer(m.len());
        b.clear();
        b.extend_from_slice(&m);
        Ok(Some(b))
    }
    fn put(&mut self, reply: &[u8]) -> Result<bool, ()> {
        match &mut self.room {
            Some(0) => return Ok(false),
            Some(n) => *n -= 1,
            None => {}
        }
        self.replies.push(reply.to_vec());
        Ok(true)
    }
    fn notify(&mut self) {
        self.notified += 1;
    }
}

/// A connection with a negotiated session, and its ring.
fn session() -> (Server<MemFs>, Connection<MemFs>, RingWork, FakeRing) {
    let s = Server::new(MemFs::new(), ExportConfig::default());
    let c = s.connect();
    let mut work = RingWork::new(64, 1 << 20);
    let mut ring = FakeRing::default();
    ring.requests.push_back(msg(
        0xffff,
        &Tmsg::Version {
            msize: 65536,
            version: b"9P2000.L",
        },
    ));
    assert!(work.serve(&mut ring, &c, (0, true), &mut NoHooks).unwrap());
    assert_eq!(ring.replies.len(), 1);
    assert_eq!(ring.replies[0][4], ty::RVERSION);
    ring.replies.clear();
    (s, c, work, ring)
}

/// A client that sends replies-without-work (Tflush of unknown tags, malformed messages,
/// Tversion) and never takes a reply: the replies waiting stay within the bounds and the
/// rest of its requests stay in its ring; once it takes replies, every request is answered
/// in order.
#[test]
fn a_client_that_never_takes_replies_is_held_back() {
    let (_s, c, mut work, mut ring) = session();
    const N: u16 = 5000;
    for tag in 0..N {
        let m = match tag % 3 {
            0 => msg(tag, &Tmsg::Flush { oldtag: 0x7777 }),
            // A message too short for its type: EBADMSG, made while it is accepted.
            1 => {
                let mut m = msg(tag, &Tmsg::Flush { oldtag: 1 });
                m.truncate(7);
                m[0..4].copy_from_slice(&7u32.to_le_bytes());
                m
            }
            _ => msg(tag, &Tmsg::Getattr { fid: 99, mask: 0 }),
        };
        ring.requests.push_back(m);
    }
    ring.room = Some(0);
    for _ in 0..1000 {
        let _ = work.serve(&mut ring, &c, (0, true), &mut NoHooks).unwrap();
        assert!(work.outbox.len() <= MAX_PENDING_REPLIES + 17);
        assert!(
            work.outbox.bytes() <= MAX_PENDING_BYTES + 64 * 1024,
            "{} bytes waiting",
            work.outbox.bytes()
        );
    }
    assert!(
        ring.requests.len() > usize::from(N) - 2 * MAX_PENDING_REPLIES - 64,
        "requests stay in the client's ring: {} left",
        ring.requests.len()
    );
    assert!(ring.replies.is_empty());
    // The client starts taking its replies.
    ring.room = None;
    for _ in 0..10 * usize::from(N) {
        if !work.serve(&mut ring, &c, (0, true), &mut NoHooks).unwrap() {
            break;
        }
    }
    assert!(ring.requests.is_empty() && work.is_idle());
    assert_eq!(ring.replies.len(), usize::from(N));
    let mut tags: Vec<u16> = ring.replies.iter().map(|r| tag_of(r)).collect();
    tags.sort_unstable();
    assert!(tags.iter().copied().eq(0..N), "one reply per request");
    assert!(ring.notified > 0);
}

/// A broken ring reports its error from `serve`.
#[test]
fn ring_errors_are_reported() {
    struct Broken;
    impl Channel for Broken {
        type Error = u8;
        fn take(&mut self, _: &mut dyn FnMut(usize) -> Vec<u8>) -> Result<Option<Vec<u8>>, u8> {
            Err(7)
        }
        fn put(&mut self, _: &[u8]) -> Result<bool, u8> {
            Err(8)
        }
    }
    let (_s, c, mut work, _) = session();
    assert_eq!(work.serve(&mut Broken, &c, (0, true), &mut NoHooks), Err(7));
}
