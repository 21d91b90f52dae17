//! 9pfs data-ring extraction with a hostile frontend: arbitrary ring contents and indices,
//! changed between calls, must never panic; every request returned is whole and within the
//! size bounds; work per call is one message.
#![no_main]

use pvfs_ring::p9ring::{Backend9pRing, Interface, IN_CONS, OUT_PROD, PAGE_SIZE, RING_ORDER};
use pvfs_ring::shmem::{LocalMem, SharedMem};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let order = u32::from(ctl & 1);
    let intf = LocalMem::new(PAGE_SIZE);
    let area = LocalMem::new(PAGE_SIZE << order);
    let _ = intf.store_u32_release(RING_ORDER, u32::from(ctl >> 4));
    let _ = Interface::read(&intf, 9);
    let Ok(mut be) = Backend9pRing::attach(&intf, &area, order, 4096) else {
        return;
    };
    // Each step: 4 bytes out_prod, 4 bytes in_cons, 1 byte length n, n bytes of ring data
    // ending at out_prod.
    let mut rest = rest;
    let mut steps = 0;
    while rest.len() >= 9 && steps < 64 {
        steps += 1;
        let prod = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let cons = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let n = usize::from(rest[8]).min(rest.len() - 9);
        let bytes = &rest[9..9 + n];
        rest = &rest[9 + n..];
        let half = be.half_size() as usize;
        // The bytes end at the new producer index, as a real frontend's would.
        let start = prod.wrapping_sub(n as u32) as usize % half;
        let _ = area.write_bytes(half + start, bytes);
        let _ = intf.store_u32_release(OUT_PROD, prod);
        let _ = intf.store_u32_release(IN_CONS, cons);
        for _ in 0..8 {
            match be.next_request(&intf, &area) {
                Ok(Some(m)) => {
                    assert!(m.len() >= 7 && m.len() as u32 <= be.max_msg());
                    assert_eq!(
                        u32::from_le_bytes([m[0], m[1], m[2], m[3]]) as usize,
                        m.len()
                    );
                    let _ = be.write_response(&intf, &area, &m);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
});
