use super::*;
use crate::shared_ring::{BackRing, FrontRing};
use crate::shmem::LocalMem;

#[test]
fn layout_offsets() {
    let r = Request::ReadWrite {
        write: true,
        handle: 0x1234,
        id: 0x0102_0304_0506_0708,
        sector: 0x1122_3344_5566_7788,
        segs: vec![
            Segment {
                gref: 0xaabb_ccdd,
                first_sect: 1,
                last_sect: 6,
            };
            11
        ],
    };
    let b = r.emit().unwrap();
    assert_eq!(b[0], OP_WRITE);
    assert_eq!(b[1], 11);
    assert_eq!(&b[2..4], &[0x34, 0x12]);
    assert_eq!(&b[4..8], &[0; 4]);
    assert_eq!(&b[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
    assert_eq!(&b[16..24], &0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(&b[24..32], &[0xdd, 0xcc, 0xbb, 0xaa, 1, 6, 0, 0]);
    assert_eq!(&b[104..112], &[0xdd, 0xcc, 0xbb, 0xaa, 1, 6, 0, 0]);
    assert_eq!(Request::parse(&b).unwrap(), r);

    let ind = Request::Indirect {
        write: false,
        handle: 0x0203,
        id: 9,
        sector: 77,
        nr_segments: 513,
        indirect_grefs: vec![0x1111_1111, 0x2222_2222],
    };
    let b = ind.emit().unwrap();
    assert_eq!(b[0], OP_INDIRECT);
    assert_eq!(b[1], OP_READ);
    assert_eq!(&b[2..4], &513u16.to_le_bytes());
    assert_eq!(&b[8..16], &9u64.to_le_bytes());
    assert_eq!(&b[16..24], &77u64.to_le_bytes());
    assert_eq!(&b[24..26], &[0x03, 0x02]);
    assert_eq!(&b[28..32], &[0x11; 4]);
    assert_eq!(&b[32..36], &[0x22; 4]);
    assert_eq!(Request::parse(&b).unwrap(), ind);

    let d = Request::Discard {
        secure: true,
        handle: 1,
        id: 2,
        sector: 3,
        nr_sectors: 4,
    };
    let b = d.emit().unwrap();
    assert_eq!((b[0], b[1]), (OP_DISCARD, 1));
    assert_eq!(&b[24..32], &4u64.to_le_bytes());
    assert_eq!(Request::parse(&b).unwrap(), d);

    let f = Request::Flush {
        barrier: false,
        handle: 5,
        id: 6,
    };
    assert_eq!(Request::parse(&f.emit().unwrap()).unwrap(), f);

    let rsp = Response {
        id: 0xdead_beef_0000_0001,
        operation: OP_READ,
        status: RSP_EOPNOTSUPP,
    };
    let b = rsp.emit();
    assert_eq!(&b[0..8], &0xdead_beef_0000_0001u64.to_le_bytes());
    assert_eq!(b[8], 0);
    assert_eq!(&b[10..12], &[0xfe, 0xff]);
    assert_eq!(Response::parse(&b).unwrap(), rsp);
}

#[test]
fn hostile_requests_rejected() {
    let mut b = [0u8; REQUEST_SIZE];
    assert_eq!(Request::parse(&b), Err(BlkifError::BadSegmentCount(0)));
    b[1] = 12;
    assert_eq!(Request::parse(&b), Err(BlkifError::BadSegmentCount(12)));
    b[1] = 1;
    b[28] = 3;
    b[29] = 2;
    assert_eq!(
        Request::parse(&b),
        Err(BlkifError::BadSegment { first: 3, last: 2 })
    );
    b[28] = 0;
    b[29] = 8;
    assert!(Request::parse(&b).is_err());
    b[29] = 7;
    assert!(Request::parse(&b).is_ok());
    b[0] = 4;
    assert_eq!(Request::parse(&b), Err(BlkifError::BadOperation(4)));
    b[0] = 200;
    assert!(Request::parse(&b).is_err());
    b[0] = OP_INDIRECT;
    b[1] = OP_DISCARD;
    assert_eq!(
        Request::parse(&b),
        Err(BlkifError::BadOperation(OP_DISCARD))
    );
    b[1] = OP_WRITE;
    b[2..4].copy_from_slice(&4097u16.to_le_bytes());
    assert_eq!(Request::parse(&b), Err(BlkifError::BadSegmentCount(4097)));
    assert!(matches!(
        Request::parse(&b[..50]),
        Err(BlkifError::Short {
            need: 112,
            have: 50
        })
    ));
    assert!(Response::parse(&[0; 15]).is_err());
    // Every byte pattern in the first bytes: never panics.
    for op in 0..=255u8 {
        for n in 0..=255u8 {
            let mut e = [0xffu8; REQUEST_SIZE];
            e[0] = op;
            e[1] = n;
            let _ = Request::parse(&e);
        }
    }
}

#[test]
fn emit_validates() {
    let seg = Segment {
        gref: 1,
        first_sect: 0,
        last_sect: 7,
    };
    let rw = |n| Request::ReadWrite {
        write: false,
        handle: 0,
        id: 0,
        sector: 0,
        segs: vec![seg; n],
    };
    assert!(rw(0).emit().is_err());
    assert!(rw(12).emit().is_err());
    let bad = Request::ReadWrite {
        write: false,
        handle: 0,
        id: 0,
        sector: 0,
        segs: vec![Segment {
            gref: 1,
            first_sect: 5,
            last_sect: 4,
        }],
    };
    assert!(bad.emit().is_err());
    let ind = Request::Indirect {
        write: true,
        handle: 0,
        id: 0,
        sector: 0,
        nr_segments: 600,
        indirect_grefs: vec![1],
    };
    assert_eq!(ind.emit(), Err(BlkifError::BadIndirectPages(1)));
}

#[test]
fn indirect_pages_round_trip() {
    let segs: Vec<Segment> = (0..512)
        .map(|i| Segment {
            gref: i,
            first_sect: (i % 8) as u8,
            last_sect: 7,
        })
        .collect();
    let mut page = vec![0u8; 4096];
    emit_indirect_page(&segs, &mut page).unwrap();
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(parse_indirect_segment(&page, i).unwrap(), *s);
    }
    assert!(parse_indirect_segment(&page, 512).is_err());
    assert!(emit_indirect_page(&vec![Segment::default(); 513], &mut page).is_err());
    page[4] = 9;
    assert!(parse_indirect_segment(&page, 0).is_err());
}

#[test]
fn planner_direct_split_and_unaligned_start() {
    let core = BlkfrontCore::new(32, 0);
    assert_eq!(core.max_segments(), 11);
    let grefs: Vec<u32> = (100..130).collect();
    // 100 sectors starting 3 sectors into the first page: 5 + 8*11 + 7 = 100 over 13 pages.
    let chunks = core.plan(false, 1000, 100, 3, &grefs).unwrap();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].segs.len(), 11);
    assert_eq!(chunks[0].sector, 1000);
    assert_eq!(
        chunks[0].segs[0],
        Segment {
            gref: 100,
            first_sect: 3,
            last_sect: 7
        }
    );
    assert_eq!(chunks[0].sectors(), 5 + 80);
    assert_eq!(chunks[1].sector, 1085);
    assert_eq!(chunks[1].segs.len(), 2);
    assert_eq!(
        *chunks[1].segs.last().unwrap(),
        Segment {
            gref: 112,
            first_sect: 0,
            last_sect: 6
        }
    );
    assert_eq!(chunks.iter().map(Chunk::sectors).sum::<u64>(), 100);
    assert!(chunks.iter().all(|c| !c.is_indirect()));
    // Single sector.
    let c = core.plan(true, 5, 1, 7, &[9]).unwrap();
    assert_eq!(
        c[0].segs,
        [Segment {
            gref: 9,
            first_sect: 7,
            last_sect: 7
        }]
    );
    // Bad inputs.
    assert_eq!(core.plan(false, 0, 0, 0, &grefs), Err(BlkifError::BadIo));
    assert_eq!(core.plan(false, 0, 9, 0, &[1]), Err(BlkifError::BadIo));
    assert_eq!(core.plan(false, 0, 1, 8, &[1]), Err(BlkifError::BadIo));
    assert_eq!(
        core.plan(false, u64::MAX, 2, 0, &[1]),
        Err(BlkifError::BadIo)
    );
}

#[test]
fn planner_indirect() {
    let core = BlkfrontCore::new(32, 256);
    assert_eq!(core.max_segments(), 256);
    let grefs: Vec<u32> = (0..600).collect();
    let chunks = core.plan(true, 0, 600 * 8, 0, &grefs).unwrap();
    assert_eq!(
        chunks.iter().map(|c| c.segs.len()).collect::<Vec<_>>(),
        [256, 256, 88]
    );
    assert_eq!(chunks[1].sector, 256 * 8);
    assert!(chunks.iter().all(Chunk::is_indirect));
    assert_eq!(chunks[0].indirect_pages(), 1);
    let req = chunks[0].request(4, 0, &[77]).unwrap();
    assert_eq!(Request::parse(&req.emit().unwrap()).unwrap(), req);
    assert!(chunks[0].request(4, 0, &[]).is_err());
    // A 12-segment chunk with indirect support is indirect; 11 stays direct.
    let c = core.plan(false, 0, 96, 0, &grefs).unwrap();
    assert!(c[0].is_indirect());
    let c = core.plan(false, 0, 88, 0, &grefs).unwrap();
    assert!(!c[0].is_indirect());
    assert!(matches!(
        c[0].request(1, 0, &[]).unwrap(),
        Request::ReadWrite { .. }
    ));
    // Huge negotiated limits are capped at 8 pages of 512.
    assert_eq!(BlkfrontCore::new(32, u32::MAX).max_segments(), 4096);
    let big = BlkfrontCore::new(32, 4096);
    let g: Vec<u32> = (0..4097).collect();
    let c = big.plan(false, 0, 4097 * 8, 0, &g).unwrap();
    assert_eq!(c[0].indirect_pages(), 8);
    assert_eq!(c[1].segs.len(), 1);
}

#[test]
fn slots_and_response_matching() {
    let mut core = BlkfrontCore::new(4, 0);
    let ids: Vec<u64> = (0..4)
        .map(|c| core.submit(OP_READ, 100 + c).unwrap())
        .collect();
    assert_eq!(core.submit(OP_READ, 9), Err(BlkifError::NoFreeSlot));
    assert_eq!(core.in_flight(), 4);
    let done = core
        .complete(&Response {
            id: ids[2],
            operation: OP_READ,
            status: RSP_ERROR,
        })
        .unwrap();
    assert_eq!(done.cookie, 102);
    assert_eq!(done.status, IoStatus::Error);
    // Duplicate.
    assert_eq!(
        core.complete(&Response {
            id: ids[2],
            operation: OP_READ,
            status: 0
        }),
        Err(BlkifError::UnknownId(ids[2]))
    );
    // Out of range.
    for id in [4u64, 1 << 16, u64::MAX] {
        assert_eq!(
            core.complete(&Response {
                id,
                operation: OP_READ,
                status: 0
            }),
            Err(BlkifError::UnknownId(id))
        );
    }
    // Operation mismatch leaves the slot in flight.
    assert!(matches!(
        core.complete(&Response {
            id: ids[0],
            operation: OP_WRITE,
            status: 0
        }),
        Err(BlkifError::OperationMismatch { .. })
    ));
    assert_eq!(core.in_flight(), 3);
    let mut out = core.outstanding();
    out.sort();
    assert_eq!(out, [100, 101, 103]);
    let d = core
        .complete(&Response {
            id: ids[3],
            operation: OP_READ,
            status: RSP_EOPNOTSUPP,
        })
        .unwrap();
    assert_eq!(d.status, IoStatus::NotSupported);
    assert_eq!(IoStatus::from_status(7), IoStatus::Unknown(7));
    // The freed slots are reused.
    assert!(core.submit(OP_FLUSH_DISKCACHE, 5).is_ok());
    assert!(core.submit(OP_FLUSH_DISKCACHE, 6).is_ok());
    assert!(core.submit(OP_FLUSH_DISKCACHE, 7).is_err());
}

#[test]
fn end_to_end_over_a_shared_ring() {
    // Frontend plans a 200-sector read with 11-segment requests, queues them on a real
    // ring; a fake backend parses each copy and answers; the core matches everything.
    let mem = LocalMem::new(4096);
    let mut front = FrontRing::init(&mem, ENTRY_SIZE).unwrap();
    let mut back = BackRing::new(&mem, ENTRY_SIZE).unwrap();
    let mut core = BlkfrontCore::new(front.geometry().nr_ents() as usize, 0);
    let grefs: Vec<u32> = (0..25).collect();
    let chunks = core.plan(false, 64, 200, 0, &grefs).unwrap();
    assert_eq!(chunks.len(), 3);
    for (i, c) in chunks.iter().enumerate() {
        let id = core.submit(OP_READ, i as u64).unwrap();
        let req = c.request(id, 0, &[]).unwrap();
        front.queue_request(&mem, &req.emit().unwrap()).unwrap();
    }
    assert!(front.push_requests(&mem).unwrap());
    let mut entry = [0u8; ENTRY_SIZE];
    let mut sectors = 0;
    while back.take_request(&mem, &mut entry).unwrap() {
        let Request::ReadWrite { id, segs, .. } = Request::parse(&entry).unwrap() else {
            panic!("expected read");
        };
        sectors += segs.iter().map(Segment::sectors).sum::<u64>();
        let rsp = Response {
            id,
            operation: OP_READ,
            status: RSP_OKAY,
        };
        back.queue_response(&mem, &rsp.emit()).unwrap();
    }
    assert_eq!(sectors, 200);
    back.push_responses(&mem).unwrap();
    let mut r = [0u8; RESPONSE_SIZE];
    let mut cookies = Vec::new();
    while front.take_response(&mem, &mut r).unwrap() {
        let done = core.complete(&Response::parse(&r).unwrap()).unwrap();
        assert_eq!(done.status, IoStatus::Ok);
        cookies.push(done.cookie);
    }
    assert_eq!(cookies, [0, 1, 2]);
    assert_eq!(core.in_flight(), 0);
}
