//! An in-memory blkif backend for host tests and fuzzing: granted regions as plain memory
//! ([`LocalGranted`]), a backend that serves requests from a memory disk ([`FakeBackend`]) and
//! can misbehave (answer out of order, fail, hold answers, close, inject any response), and
//! the doorbell that drives it ([`FakeDoor`]).
//!
//! The backend also checks the frontend: a request that reuses an id or a page of a request
//! it still owns (taken, not answered) is recorded in [`FakeBackend::violations`].

use super::{DiskConfig, Doorbell, Engine, EngineError, Granted, PAGE};
use crate::blkif::{self, Request, Response, Segment};
use crate::shared_ring::{BackRing, HEADER_LEN, RSP_PROD};
use crate::shmem::{LocalMem, SharedMem};
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

/// Plain memory standing for pvfs's pages granted to the backend; clones share the bytes.
/// Page `i` has grant reference `first_gref + i`.
#[derive(Debug, Clone)]
pub struct LocalGranted {
    mem: Rc<LocalMem>,
    first_gref: u32,
    pages: usize,
}

impl LocalGranted {
    /// `pages` zeroed pages with grefs from `first_gref`.
    pub fn new(pages: usize, first_gref: u32) -> Self {
        Self {
            mem: Rc::new(LocalMem::new(pages * PAGE)),
            first_gref,
            pages,
        }
    }

    /// The page a grant reference names, if it is one of this region's.
    pub fn page_of(&self, gref: u32) -> Option<usize> {
        let i = gref.checked_sub(self.first_gref)? as usize;
        (i < self.pages).then_some(i)
    }
}

crate::delegate_shared_mem!(LocalGranted, mem: LocalMem);

impl Granted for LocalGranted {
    fn gref(&self, page: usize) -> Option<u32> {
        (page < self.pages).then(|| self.first_gref + page as u32)
    }
}

/// A request the backend has taken and not answered yet.
#[derive(Debug, Clone)]
struct Owned {
    id: u64,
    op: u8,
    status: i16,
    grefs: Vec<u32>,
}

/// The backend end: serves requests against `disk`.
#[derive(Debug)]
pub struct FakeBackend {
    ring_mem: LocalGranted,
    pool: LocalGranted,
    indirect: LocalGranted,
    back: BackRing,
    /// The disk's bytes.
    pub disk: Vec<u8>,
    owned: Vec<Owned>,
    /// Answer the newest request first.
    pub reverse: bool,
    /// Answer at most this many requests per wait (0: all).
    pub per_wait: usize,
    /// Take requests but answer none (a hung backend, or one the test answers by hand).
    pub hold: bool,
    /// Gone: the doorbell's wait reports it.
    pub closed: bool,
    /// Requests touching this 512-byte sector fail with `BLKIF_RSP_ERROR`.
    pub fail_sector: Option<u64>,
    /// Waits in a row that found nothing to answer, after which the doorbell reports the
    /// backend gone (`None`: never; the engine's own limit applies).
    pub patience: Option<u32>,
    idle_waits: u32,
    /// Requests taken.
    pub requests: usize,
    /// What the frontend did wrong (reused an id or a page still owned by the backend).
    pub violations: Vec<String>,
    /// The backend has written the ring's slots or indices as it liked ([`Self::write_raw`]):
    /// from then on a slot the fake reads as a request may hold its own bytes.
    scribbled: bool,
}

impl FakeBackend {
    fn take_all(&mut self) {
        loop {
            let mut e = [0u8; blkif::REQUEST_SIZE];
            match self.back.take_request(&self.ring_mem, &mut e) {
                Ok(true) => self.serve(&e),
                // Asks to be notified of the next request, and looks once more.
                Ok(false) => match self.back.final_check_for_requests(&self.ring_mem) {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return,
                },
                Err(_) => return,
            }
        }
    }

    /// The segments of a request (an indirect request's read from its indirect page).
    fn segments(&self, r: &Request) -> Option<Vec<Segment>> {
        match r {
            Request::ReadWrite { segs, .. } => Some(segs.clone()),
            Request::Indirect {
                nr_segments,
                indirect_grefs,
                ..
            } => {
                let page = self.indirect.page_of(*indirect_grefs.first()?)?;
                let mut buf = alloc::vec![0u8; PAGE];
                self.indirect.read_bytes(page * PAGE, &mut buf).ok()?;
                (0..usize::from(*nr_segments))
                    .map(|i| blkif::parse_indirect_segment(&buf, i).ok())
                    .collect()
            }
            _ => Some(Vec::new()),
        }
    }

    fn serve(&mut self, entry: &[u8]) {
        self.requests += 1;
        let Ok(r) = Request::parse(entry) else {
            // Once the fake has lied about the ring, the engine may trust slots the fake
            // still reads, or the fake may read its own scribble: not the engine's fault.
            if !self.scribbled {
                self.violations
                    .push(alloc::format!("unparsable request {:02x?}", entry));
            }
            return;
        };
        let (id, op, write, sector) = match &r {
            Request::ReadWrite {
                id, write, sector, ..
            } => (*id, u8::from(*write), *write, *sector),
            Request::Indirect {
                id, write, sector, ..
            } => (*id, u8::from(*write), *write, *sector),
            Request::Flush { id, barrier, .. } => (
                *id,
                if *barrier {
                    blkif::OP_WRITE_BARRIER
                } else {
                    blkif::OP_FLUSH_DISKCACHE
                },
                false,
                0,
            ),
            Request::Discard { id, .. } => (*id, blkif::OP_DISCARD, false, 0),
        };
        let segs = self.segments(&r).unwrap_or_default();
        let mut grefs: Vec<u32> = segs.iter().map(|s| s.gref).collect();
        if let Request::Indirect { indirect_grefs, .. } = &r {
            grefs.extend_from_slice(indirect_grefs);
        }
        for o in &self.owned {
            if o.id == id {
                self.violations
                    .push(alloc::format!("id {id} reused while owned"));
            }
            if o.grefs.iter().any(|g| grefs.contains(g)) {
                self.violations
                    .push(alloc::format!("request {id} uses a page still owned"));
            }
        }
        let mut status = blkif::RSP_OKAY;
        let mut at = sector.saturating_mul(512);
        let total: u64 = segs.iter().map(Segment::sectors).sum();
        if self
            .fail_sector
            .is_some_and(|f| f >= sector && f < sector.saturating_add(total))
        {
            status = blkif::RSP_ERROR;
        }
        for s in &segs {
            let n = (s.sectors() * 512) as usize;
            let Some(page) = self.pool.page_of(s.gref) else {
                status = blkif::RSP_ERROR;
                break;
            };
            let off = page * PAGE + usize::from(s.first_sect) * 512;
            let Some(d) = usize::try_from(at)
                .ok()
                .and_then(|a| self.disk.get_mut(a..a + n))
            else {
                status = blkif::RSP_ERROR;
                break;
            };
            if status == blkif::RSP_OKAY {
                let ok = if write {
                    self.pool.read_bytes(off, d).is_ok()
                } else {
                    self.pool.write_bytes(off, d).is_ok()
                };
                if !ok {
                    status = blkif::RSP_ERROR;
                }
            }
            at += n as u64;
        }
        self.owned.push(Owned {
            id,
            op,
            status,
            grefs,
        });
    }

    /// Answers up to `n` owned requests (all with 0), in arrival order or reversed.
    pub fn answer(&mut self, n: usize) -> usize {
        let mut done = 0;
        while done < n || n == 0 {
            let o = if self.reverse {
                self.owned.pop()
            } else if self.owned.is_empty() {
                None
            } else {
                Some(self.owned.remove(0))
            };
            let Some(o) = o else { break };
            let rsp = Response {
                id: o.id,
                operation: o.op,
                status: o.status,
            };
            if !self.respond(&rsp.emit()) {
                break;
            }
            done += 1;
        }
        done
    }

    /// Puts any 16 bytes on the ring as the next response (it takes the response slot of a
    /// request taken and not answered; false if every taken request has had one). A request
    /// whose id it names counts as answered from then on, whatever else it says.
    pub fn inject(&mut self, rsp: [u8; blkif::RESPONSE_SIZE]) -> bool {
        let sent = self.respond(&rsp);
        if sent {
            if let Ok(r) = Response::parse(&rsp) {
                self.owned.retain(|o| o.id != r.id);
            }
        }
        sent
    }

    fn respond(&mut self, rsp: &[u8]) -> bool {
        self.back.queue_response(&self.ring_mem, rsp).is_ok()
            && self.back.push_responses(&self.ring_mem).is_ok()
    }

    /// Writes `rsp` into response slot `idx` and sets the response producer to `prod`,
    /// whatever they are: a backend that lies about its indices.
    pub fn write_raw(&mut self, idx: u32, rsp: &[u8], prod: u32) {
        self.scribbled = true;
        let nr = self.back.geometry().nr_ents().max(1);
        let at = HEADER_LEN + (idx % nr) as usize * blkif::ENTRY_SIZE;
        let _ = self.ring_mem.write_bytes(at, rsp);
        let _ = self.ring_mem.store_u32_release(RSP_PROD, prod);
        // Whatever request it names counts as answered (the frontend cannot tell).
        if let Ok(r) = Response::parse(rsp) {
            self.owned.retain(|o| o.id != r.id);
        }
    }

    /// Requests taken and not answered.
    pub fn owned(&self) -> usize {
        self.owned.len()
    }

    /// Forgets the requests taken (a backend that will never answer them).
    pub fn forget_owned(&mut self) {
        self.owned.clear();
    }

    /// Takes the requests on the ring, and answers them unless held; returns how many it
    /// answered.
    fn run(&mut self) -> usize {
        self.take_all();
        if self.hold {
            0
        } else {
            self.answer(self.per_wait)
        }
    }
}

/// The doorbell to a [`FakeBackend`]: a notify makes it take (and answer) requests, as does a
/// wait, which reports it gone once `closed`.
#[derive(Debug, Clone)]
pub struct FakeDoor(pub Rc<RefCell<FakeBackend>>);

impl Doorbell for FakeDoor {
    fn notify(&mut self) {
        self.0.borrow_mut().run();
    }
    fn wait(&mut self) -> bool {
        let mut b = self.0.borrow_mut();
        if b.closed {
            return false;
        }
        if b.run() > 0 {
            b.idle_waits = 0;
        } else {
            b.idle_waits = b.idle_waits.saturating_add(1);
        }
        b.patience.is_none_or(|p| b.idle_waits <= p)
    }
}

/// A fake engine: the frontend over `ring_pages` ring pages, `pool_pages` bounce pages and
/// `indirect_pages` indirect pages, with its backend serving `disk`.
pub type FakeEngine = Engine<LocalGranted, FakeDoor>;

/// Builds an engine and its fake backend over `disk` (its length rounded down to sectors).
pub fn engine(
    cfg: DiskConfig,
    (ring_pages, pool_pages, indirect_pages): (usize, usize, usize),
    disk: Vec<u8>,
) -> Result<(FakeEngine, Rc<RefCell<FakeBackend>>), EngineError> {
    let ring_mem = LocalGranted::new(ring_pages, 1);
    let pool = LocalGranted::new(pool_pages, 1000);
    let indirect = LocalGranted::new(indirect_pages, 100_000);
    let back = BackRing::new(&ring_mem, blkif::ENTRY_SIZE).map_err(EngineError::Ring)?;
    let be = Rc::new(RefCell::new(FakeBackend {
        ring_mem: ring_mem.clone(),
        pool: pool.clone(),
        indirect: indirect.clone(),
        back,
        disk,
        owned: Vec::new(),
        reverse: false,
        per_wait: 0,
        hold: false,
        closed: false,
        fail_sector: None,
        patience: None,
        idle_waits: 0,
        requests: 0,
        violations: Vec::new(),
        scribbled: false,
    }));
    let e = Engine::new(cfg, ring_mem, pool, indirect, FakeDoor(be.clone()))?;
    Ok((e, be))
}
