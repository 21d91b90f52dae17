//! A fake dom0 and pvfs for host tests: grants are plain memory, xenstore is a map, and a
//! backend built on `pvfs_ring::p9ring::Backend9pRing` (the ring code pvfs runs) serves the
//! device whenever the frontend sleeps or notifies. It disconnects on any ring error, as pvfs
//! does, keeps at most [`MAX_PENDING`] unsent replies (then stops taking requests) and
//! refuses fids beyond [`MAX_FIDS`].

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use pvfs_ring::p9ring::{Backend9pRing, Interface};
use pvfs_ring::shmem::{LocalMem, OutOfBounds, SharedMem};

use crate::device::state;
use crate::wire;
use crate::{Platform, Res};

pub const BE: &str = "/local/domain/7/backend/9pfs/0/3";
pub const FE: &str = "/local/domain/0/device/9pfs/3";
pub const MAX_PENDING: usize = 32;
pub const MAX_FIDS: usize = 100;

/// Granted memory shared by the two ends.
#[derive(Debug, Clone)]
pub struct FakeMem(Rc<LocalMem>);

impl SharedMem for FakeMem {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn load_u32_acquire(&self, off: usize) -> Result<u32, OutOfBounds> {
        self.0.load_u32_acquire(off)
    }
    fn store_u32_release(&self, off: usize, val: u32) -> Result<(), OutOfBounds> {
        self.0.store_u32_release(off, val)
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        self.0.read_bytes(off, dst)
    }
    fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        self.0.write_bytes(off, src)
    }
    fn full_barrier(&self) {}
}

struct Link {
    ring: Backend9pRing,
    intf: FakeMem,
    data: FakeMem,
    fids: usize,
    pending: VecDeque<Vec<u8>>,
}

/// The fake platform with its backend.
#[derive(Default)]
pub struct Fake {
    pub xs: BTreeMap<String, String>,
    grants: Vec<(u32, FakeMem)>,
    next_ref: u32,
    link: Option<Link>,
    pub now: u64,
    pub requests: u64,
    pub peak_pending: usize,
    /// A backend that stops looking at the ring after its first request (the "silent" path).
    pub deaf: bool,
    /// Fids a connection may hold.
    pub fid_limit: usize,
    /// Unsent replies held before the backend stops taking requests.
    pub pending_limit: usize,
    /// A real 9P server answers instead of the canned replies (`xfront load`'s sessions).
    pub server: Option<pvfs_9p::Connection<pvfs_9p::memfs::MemFs>>,
}

impl Fake {
    /// dom0's device tagged "h" with the backend in InitWait, as `pvfs share add` leaves it.
    pub fn new() -> Self {
        let mut f = Fake {
            fid_limit: MAX_FIDS,
            pending_limit: MAX_PENDING,
            ..Fake::default()
        };
        for (k, v) in [
            (format!("{FE}/tag"), "h"),
            (format!("{FE}/backend"), BE),
            (format!("{FE}/backend-id"), "7"),
            (format!("{FE}/state"), "1"),
            (format!("{BE}/state"), "2"),
            (format!("{BE}/max-ring-page-order"), "9"),
            (
                "/local/domain/7/data/pvfs/stats".into(),
                "heap_live_bytes=1000 x=1",
            ),
        ] {
            f.xs.insert(k, v.to_string());
        }
        f
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.xs.get(k).map(String::as_str)
    }

    fn fail(&mut self, why: String) {
        self.link = None;
        self.xs.insert(format!("{BE}/error"), why);
        self.xs
            .insert(format!("{BE}/state"), state::CLOSED.to_string());
    }

    fn mem_of(&self, r: u32) -> Option<FakeMem> {
        self.grants
            .iter()
            .find(|(first, _)| *first == r)
            .map(|(_, m)| m.clone())
    }

    fn connect(&mut self) {
        let Some(r) = self
            .get(&format!("{FE}/ring-ref0"))
            .and_then(|s| s.parse().ok())
        else {
            return self.fail("no ring-ref0".into());
        };
        let Some(intf) = self.mem_of(r) else {
            return self.fail("bad ring-ref0".into());
        };
        let it = match Interface::read(&intf, 9) {
            Ok(i) => i,
            Err(e) => return self.fail(format!("{e:?}")),
        };
        let Some(data) = it.refs.first().and_then(|r| self.mem_of(*r)) else {
            return self.fail("bad data refs".into());
        };
        match Backend9pRing::attach(&intf, &data, it.ring_order, 8192) {
            Ok(ring) => {
                self.link = Some(Link {
                    ring,
                    intf,
                    data,
                    fids: 0,
                    pending: VecDeque::new(),
                });
                self.xs
                    .insert(format!("{BE}/state"), state::CONNECTED.to_string());
            }
            Err(e) => self.fail(format!("{e:?}")),
        }
    }

    /// One pass of the backend.
    fn serve(&mut self) {
        let fe = self.get(&format!("{FE}/state")).unwrap_or("0").to_string();
        let be = self.get(&format!("{BE}/state")).unwrap_or("0").to_string();
        if fe == "3" && be == "2" {
            self.connect();
        }
        if (fe == "5" || fe == "6") && be == "4" {
            self.link = None;
            self.xs
                .insert(format!("{BE}/state"), state::CLOSING.to_string());
        }
        if self.deaf && self.requests >= 1 {
            return;
        }
        let Some(mut l) = self.link.take() else {
            return;
        };
        let mut broken = None;
        while l.pending.len() < self.pending_limit {
            match l.ring.next_request(&l.intf, &l.data) {
                Ok(Some(req)) => {
                    self.requests += 1;
                    match &self.server {
                        Some(conn) => l.pending.extend(conn.handle(req.to_vec())),
                        None => {
                            let rep = respond(&mut l, &req, self.fid_limit);
                            l.pending.push_back(rep);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    broken = Some(format!("{e:?}"));
                    break;
                }
            }
        }
        self.peak_pending = self.peak_pending.max(l.pending.len());
        while let Some(first) = l.pending.front() {
            match l.ring.write_response(&l.intf, &l.data, first) {
                Ok(true) => {
                    l.pending.pop_front();
                }
                Ok(false) => break,
                Err(e) => {
                    broken = Some(format!("{e:?}"));
                    break;
                }
            }
        }
        match broken {
            Some(why) => self.fail(why),
            None => self.link = Some(l),
        }
    }
}

fn respond(l: &mut Link, req: &[u8], fid_limit: usize) -> Vec<u8> {
    let tag = u16::from_le_bytes([req[5], req[6]]);
    let lerror = |e: u32| wire::message(wire::RLERROR, tag, &e.to_le_bytes());
    match req[4] {
        wire::TVERSION => {
            l.ring.set_msize(8192);
            let mut b = 8192u32.to_le_bytes().to_vec();
            b.extend_from_slice(&8u16.to_le_bytes());
            b.extend_from_slice(b"9P2000.L");
            wire::message(wire::RVERSION, tag, &b)
        }
        wire::TATTACH => {
            l.fids += 1;
            wire::message(wire::RATTACH, tag, &[0; 13])
        }
        wire::TWALK if l.fids < fid_limit => {
            l.fids += 1;
            wire::message(wire::RWALK, tag, &[0; 2])
        }
        wire::TWALK => lerror(24),
        wire::TGETATTR if req.len() == 19 => wire::message(wire::RGETATTR, tag, &[0; 16]),
        wire::TFLUSH => wire::message(wire::RFLUSH, tag, &[]),
        _ => lerror(74),
    }
}

impl Platform for Fake {
    type Mem = FakeMem;
    fn grant(&mut self, _domid: u16, pages: usize) -> Res<(Vec<u32>, FakeMem)> {
        let m = FakeMem(Rc::new(LocalMem::new(pages * 4096)));
        let refs: Vec<u32> = (0..pages as u32).map(|i| self.next_ref + i).collect();
        self.grants.push((self.next_ref, m.clone()));
        self.next_ref += pages as u32 + 10;
        Ok((refs, m))
    }
    fn bind_unbound(&mut self, _remote: u16) -> Res<u32> {
        Ok(42)
    }
    fn notify(&mut self, _port: u32) -> Res<()> {
        self.serve();
        Ok(())
    }
    fn xs_read(&mut self, path: &str) -> Option<String> {
        self.serve();
        self.xs.get(path).cloned()
    }
    fn xs_write(&mut self, path: &str, value: &str) -> Res<()> {
        self.xs.insert(path.to_string(), value.to_string());
        self.serve();
        Ok(())
    }
    fn xs_list(&mut self, path: &str) -> Vec<String> {
        let pre = format!("{path}/");
        let mut v: Vec<String> = self
            .xs
            .keys()
            .filter_map(|k| k.strip_prefix(&pre))
            .filter_map(|rest| rest.split('/').next())
            .map(str::to_string)
            .collect();
        v.dedup();
        v
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.now += ms;
        self.serve();
    }
    fn now_ms(&mut self) -> u64 {
        self.now += 1;
        self.now
    }
}
