//! The engine against a fake backend that misbehaves: out of order, errors, lying ids, torn
//! responses, lying indices, hangs and closes. The engine must return errors, never panic,
//! never complete the wrong request and never reuse a slot or page the backend still owns.

use super::fake::{self, FakeBackend, FakeEngine};
use super::{DiskConfig, EngineError, FlushOp};
use crate::blkif::{self, Response};
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use pvfs_fs::block::{BlockDevice, DevError, Request};

const DISK: usize = 1 << 20;

fn cfg() -> DiskConfig {
    DiskConfig {
        handle: 7,
        sectors: (DISK / 512) as u64,
        sector_size: 512,
        read_only: false,
        flush: Some(FlushOp::DiskCache),
        max_segments: 32,
    }
}

/// A disk whose every byte says where it is.
fn pattern() -> Vec<u8> {
    (0..DISK).map(|i| (i / 512 + i) as u8).collect()
}

fn setup() -> (FakeEngine, Rc<RefCell<FakeBackend>>) {
    fake::engine(cfg(), (1, 64, 4), pattern()).unwrap()
}

/// [`setup`] with a backend that holds every request until told otherwise (`hold`).
fn held() -> (FakeEngine, Rc<RefCell<FakeBackend>>) {
    let (e, be) = setup();
    be.borrow_mut().hold = true;
    (e, be)
}

fn clean(be: &Rc<RefCell<FakeBackend>>) {
    assert_eq!(be.borrow().violations, Vec::<alloc::string::String>::new());
}

/// A response to the oldest request taken, with any id, operation and status.
fn lie(be: &Rc<RefCell<FakeBackend>>, id: u64, operation: u8, status: i16) -> bool {
    be.borrow_mut().inject(
        Response {
            id,
            operation,
            status,
        }
        .emit(),
    )
}

#[test]
fn reads_writes_direct_and_indirect() {
    let (mut e, be) = setup();
    assert_eq!(e.config().max_segments, 32);
    assert_eq!(e.ring_slots(), 32);
    // 100 KiB: split into a 32-page indirect request and a smaller one.
    let data: Vec<u8> = (0..100 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    e.write(16, &data, false).unwrap();
    assert_eq!(
        &be.borrow().disk[16 * 512..16 * 512 + data.len()],
        &data[..]
    );
    let mut back = vec![0u8; data.len()];
    e.read(16, &mut back).unwrap();
    assert_eq!(back, data);
    e.write(2, &data[..1024], true).unwrap();
    e.flush().unwrap();
    assert_eq!(&be.borrow().disk[1024..2048], &data[..1024]);
    assert!(e.completed() >= 5);
    assert!(!e.is_broken());
    clean(&be);
}

#[test]
fn answers_out_of_order_go_to_their_own_requests() {
    let (mut e, be) = setup();
    be.borrow_mut().reverse = true;
    be.borrow_mut().per_wait = 1;
    be.borrow_mut().hold = false;
    let want = pattern();
    let mut bufs: Vec<Vec<u8>> = (0..24).map(|_| vec![0u8; 4096]).collect();
    let mut reqs: Vec<Request<'_>> = bufs
        .iter_mut()
        .enumerate()
        .map(|(i, b)| Request::Read {
            lba: (i as u64 * 37) % 2000,
            buf: b,
        })
        .collect();
    e.submit(&mut reqs).unwrap();
    drop(reqs);
    for (i, b) in bufs.iter().enumerate() {
        let at = ((i as u64 * 37) % 2000) as usize * 512;
        assert_eq!(&b[..], &want[at..at + 4096], "request {i}");
    }
    clean(&be);
}

#[test]
fn error_status_fails_only_its_request() {
    let (mut e, be) = setup();
    be.borrow_mut().fail_sector = Some(100);
    let mut a = vec![0u8; 4096];
    assert_eq!(e.read(96, &mut a), Err(DevError::Io { lba: 96, code: -1 }));
    let mut b = vec![0u8; 4096];
    e.read(200, &mut b).unwrap();
    assert_eq!(&b[..], &pattern()[200 * 512..200 * 512 + 4096]);
    // A failed posted write is reported by the next flush, once.
    assert_eq!(e.post_writes(&[(100, &[1u8; 512][..])]), Ok(1));
    assert_eq!(e.flush(), Err(DevError::Io { lba: 100, code: -1 }));
    e.flush().unwrap();
    assert!(!e.is_broken());
    clean(&be);
}

#[test]
fn unknown_duplicate_and_completed_ids_stop_the_engine() {
    for lying_id in [999u64, u64::MAX, 1, 0] {
        let (mut e, be) = held();
        // Two read-aheads in flight: ids 0 and 1 (slots are taken from the front).
        assert_eq!(e.post_reads(&[(0, 4096), (64, 4096)]), Ok(2));
        assert_eq!(e.in_flight(), 2);
        if lying_id <= 1 {
            // Answer id 0 properly, then lie with an id already completed (0), or answer 1
            // twice.
            assert!(lie(&be, 0, blkif::OP_READ, 0));
            assert!(e.reap());
            assert_eq!(e.in_flight(), 1);
            if lying_id == 1 {
                assert!(lie(&be, 1, blkif::OP_READ, 0));
                assert!(e.reap());
                assert_eq!(e.in_flight(), 0);
                // One more request, so the backend has a response slot to lie with.
                assert_eq!(e.post_reads(&[(200, 4096)]), Ok(1));
                assert!(lie(&be, 1, blkif::OP_READ, 0));
            } else {
                assert!(lie(&be, 0, blkif::OP_READ, 0));
            }
        } else {
            assert!(lie(&be, lying_id, blkif::OP_READ, 0));
        }
        let before = e.in_flight();
        e.reap();
        assert!(e.is_broken(), "id {lying_id}");
        // Nothing the backend may still own was freed, and everything fails now.
        assert_eq!(e.in_flight(), before);
        let mut b = vec![0u8; 512];
        assert!(e.read(0, &mut b).is_err());
        assert!(e.post_writes(&[(0, &b[..])]).is_err());
        assert!(e.post_reads(&[(0, 512)]).is_err());
        assert!(e.flush().is_err());
        assert_eq!(e.posted(), 0);
        assert!(!e.take_reads(&mut |_, _| panic!("data from a broken device")));
        clean(&be);
    }
}

#[test]
fn torn_responses() {
    // A garbage operation for a request in flight: the engine stops, frees nothing.
    let (mut e, be) = held();
    assert_eq!(e.post_reads(&[(0, 4096)]), Ok(1));
    assert!(lie(&be, 0, 0x77, 0));
    e.reap();
    assert!(e.is_broken());
    assert_eq!(e.in_flight(), 1);
    // A read answered as a write: also a mismatch.
    let (mut e, be) = held();
    assert_eq!(e.post_reads(&[(0, 4096)]), Ok(1));
    assert!(lie(&be, 0, blkif::OP_WRITE, 0));
    e.reap();
    assert!(e.is_broken());
    // A garbage status with the right id and operation fails that request only.
    let (mut e, be) = held();
    assert_eq!(e.post_writes(&[(8, &[5u8; 4096][..])]), Ok(1));
    assert!(lie(&be, 0, blkif::OP_WRITE, 0x1234));
    assert!(e.reap());
    assert!(!e.is_broken());
    be.borrow_mut().hold = false;
    assert_eq!(e.flush(), Err(DevError::Io { lba: 8, code: -5 }));
    // Random bytes as a response never panic and never leave the engine both working and
    // short of a page.
    let (mut e, be) = held();
    assert_eq!(e.post_reads(&[(0, 4096)]), Ok(1));
    let mut raw = [0xA5u8; 16];
    raw[0] = 0; // id 0 in flight, operation 0xA5
    assert!(be.borrow_mut().inject(raw));
    e.reap();
    assert!(e.is_broken());
    clean(&be);
}

#[test]
fn indirect_answered_with_either_operation() {
    for op in [blkif::OP_READ, blkif::OP_INDIRECT] {
        let (mut e, be) = held();
        // 64 KiB: 16 segments, an indirect request.
        assert_eq!(e.post_reads(&[(0, 65536)]), Ok(1));
        assert!(lie(&be, 0, op, 0));
        assert!(e.reap());
        assert!(!e.is_broken());
        let mut got = Vec::new();
        assert!(e.take_reads(&mut |lba, d| got.push((lba, d.to_vec()))));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 0);
        assert_eq!(&got[0].1[..], &pattern()[..65536]);
        clean(&be);
    }
}

#[test]
fn lying_response_index() {
    let (mut e, be) = held();
    assert_eq!(e.post_reads(&[(0, 4096)]), Ok(1));
    // Claims 1000 responses for one request.
    be.borrow_mut().write_raw(0, &[0u8; 16], 1000);
    e.reap();
    assert!(e.is_broken());
    assert_eq!(e.in_flight(), 1);
    let mut b = vec![0u8; 512];
    assert!(e.read(0, &mut b).is_err());
    clean(&be);
}

#[test]
fn backend_closes_mid_flight() {
    let (mut e, be) = held();
    be.borrow_mut().closed = true;
    let mut b = vec![0u8; 8192];
    assert_eq!(e.read(0, &mut b), Err(DevError::Io { lba: 0, code: -5 }));
    assert!(e.is_broken());
    // The request the backend took is still counted as its own.
    assert_eq!(e.in_flight(), 1);
    assert!(e.write(0, &b, false).is_err());
    assert_eq!(e.wait_posted(), Err(DevError::Io { lba: 0, code: -5 }));
    e.drain();
    clean(&be);
}

#[test]
fn hung_backend_times_out() {
    let (mut e, be) = held();
    let mut b = vec![0u8; 512];
    assert!(e.read(0, &mut b).is_err());
    assert!(e.is_broken());
    assert_eq!(be.borrow().owned(), 1);
    clean(&be);
}

#[test]
fn backend_that_gives_up_answering_is_gone() {
    let (mut e, be) = held();
    be.borrow_mut().patience = Some(3);
    let mut b = vec![0u8; 512];
    assert_eq!(e.read(0, &mut b), Err(DevError::Io { lba: 0, code: -5 }));
    assert!(e.is_broken());
    clean(&be);
}

#[test]
fn drain_completes_posted_requests() {
    let (mut e, be) = held();
    assert_eq!(e.post_writes(&[(0, &[9u8; 4096][..])]), Ok(1));
    be.borrow_mut().hold = false;
    e.drain();
    assert_eq!(e.in_flight(), 0);
    assert_eq!(&be.borrow().disk[..4096], &[9u8; 4096][..]);
    clean(&be);
}

#[test]
fn slots_and_pages_are_not_reused_while_owned() {
    let (mut e, be) = held();
    // Fill: 32 KiB read-aheads up to the half of the pool they may use, then posted writes
    // until the slots or pages run out.
    let reads: Vec<(u64, usize)> = (0..8).map(|i| (i * 64, 32768)).collect();
    let n = e.post_reads(&reads).unwrap();
    assert!(n >= 1);
    let w = vec![3u8; 8192];
    let writes: Vec<(u64, &[u8])> = (0..40).map(|i| (1000 + i * 32, &w[..])).collect();
    let started = e.post_writes(&writes).unwrap();
    assert!(started >= 1);
    let owned = be.borrow().owned();
    assert_eq!(owned, e.in_flight());
    // Answer in reverse, a few at a time, posting more in between.
    be.borrow_mut().reverse = true;
    for round in 0..10 {
        be.borrow_mut().answer(3);
        e.reap();
        let more: Vec<(u64, &[u8])> = (0..4)
            .map(|i| (1500 + round * 40 + i * 16, &w[..]))
            .collect();
        let _ = e.post_writes(&more).unwrap();
        e.take_reads(&mut |_, _| {});
    }
    be.borrow_mut().hold = false;
    e.flush().unwrap();
    assert_eq!(e.in_flight(), 0);
    assert!(be.borrow().requests > 20);
    clean(&be);
}

#[test]
fn bad_configurations_are_refused() {
    let mut c = cfg();
    c.sectors = 0;
    assert!(matches!(
        fake::engine(c, (1, 4, 0), vec![]),
        Err(EngineError::Geometry { .. })
    ));
    let mut c = cfg();
    c.sectors = u64::MAX;
    assert!(fake::engine(c, (1, 4, 0), vec![]).is_err());
    let mut c = cfg();
    c.sector_size = 8192;
    assert!(fake::engine(c, (1, 4, 0), vec![]).is_err());
    assert!(matches!(
        fake::engine(cfg(), (1, 0, 0), vec![]),
        Err(EngineError::Pool)
    ));
    // No indirect pages: at most 11 segments per request; a small pool caps it further.
    let (e, _) = fake::engine(cfg(), (1, 64, 0), vec![]).unwrap();
    assert_eq!(e.config().max_segments, 11);
    let (e, _) = fake::engine(cfg(), (1, 4, 4), vec![]).unwrap();
    assert_eq!(e.config().max_segments, 4);
}

#[test]
fn out_of_range_and_read_only() {
    let (mut e, be) = setup();
    let mut b = vec![0u8; 1024];
    assert!(matches!(
        e.read(2047, &mut b),
        Err(DevError::OutOfRange { .. })
    ));
    assert!(matches!(
        e.read(u64::MAX, &mut b),
        Err(DevError::OutOfRange { .. })
    ));
    assert!(matches!(
        e.read(0, &mut b[..100]),
        Err(DevError::Misaligned { .. })
    ));
    let mut c = cfg();
    c.read_only = true;
    let (mut ro, _) = fake::engine(c, (1, 8, 1), pattern()).unwrap();
    assert_eq!(ro.write(0, &b, false), Err(DevError::ReadOnly));
    assert_eq!(ro.post_writes(&[(0, &b[..])]), Err(DevError::ReadOnly));
    assert_eq!(be.borrow().requests, 0);
}

#[test]
fn random_work_matches_a_model_whatever_the_answer_order() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let (mut e, be) = setup();
    let mut model = pattern();
    let mut posted_reads = 0;
    for step in 0..2000 {
        {
            let mut b = be.borrow_mut();
            b.reverse = rnd(2) == 0;
            b.per_wait = rnd(4) as usize;
        }
        let lba = rnd(1900);
        let len = (rnd(100) as usize + 1) * 512;
        let at = lba as usize * 512;
        match rnd(6) {
            0 => {
                let mut buf = vec![0u8; len];
                e.read(lba, &mut buf).unwrap();
                assert_eq!(
                    &buf[..],
                    &model[at..at + len],
                    "step {step}: read {lba}+{len}"
                );
            }
            1 => {
                let buf: Vec<u8> = (0..len).map(|i| (i as u64 + step) as u8).collect();
                e.write(lba, &buf, rnd(4) == 0).unwrap();
                model[at..at + len].copy_from_slice(&buf);
            }
            2 => {
                let len = len.min(32 * 4096);
                let buf = vec![step as u8; len];
                if e.post_writes(&[(lba, &buf[..])]).unwrap() == 1 {
                    model[at..at + len].copy_from_slice(&buf);
                }
            }
            3 => {
                posted_reads += e.post_reads(&[(lba, len.min(8 * 4096))]).unwrap();
            }
            4 => {
                // Read-ahead handed over must be what the disk holds now: every write since
                // it was read dropped it.
                e.take_reads(&mut |lba, d| {
                    let at = lba as usize * 512;
                    assert_eq!(d, &model[at..at + d.len()], "step {step}: read-ahead {lba}");
                });
            }
            _ => e.flush().unwrap(),
        }
    }
    e.flush().unwrap();
    assert_eq!(be.borrow().disk, model);
    assert!(posted_reads > 10);
    assert!(!e.is_broken());
    clean(&be);
}

#[test]
fn the_disk_grows_while_in_use() {
    let (mut e, be) = setup();
    let old = (DISK / 512) as u64;
    let mut b = vec![0u8; 1024];
    assert!(matches!(
        e.read(old, &mut b),
        Err(DevError::OutOfRange { .. })
    ));
    // Shrinking and sizes past the bound are refused, and the size stays.
    assert!(matches!(
        e.grow_to(old - 1),
        Err(EngineError::Geometry { .. })
    ));
    assert!(matches!(
        e.grow_to(super::MAX_SECTORS + 1),
        Err(EngineError::Geometry { .. })
    ));
    assert_eq!(e.size_bytes(), DISK as u64);
    // The backend's disk doubles, then the engine is told.
    be.borrow_mut().disk.resize(2 * DISK, 0xa5);
    e.grow_to(2 * old).unwrap();
    assert_eq!(e.size_bytes(), 2 * DISK as u64);
    e.write(old, &[7u8; 1024], false).unwrap();
    e.read(old, &mut b).unwrap();
    assert_eq!(b, [7u8; 1024]);
    e.read(2 * old - 2, &mut b).unwrap();
    assert_eq!(b, [0xa5u8; 1024]);
    assert!(matches!(
        e.read(2 * old - 1, &mut b),
        Err(DevError::OutOfRange { .. })
    ));
    clean(&be);
}
