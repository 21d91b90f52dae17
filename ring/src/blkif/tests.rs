use super::*;

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
