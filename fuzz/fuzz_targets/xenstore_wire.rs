//! xenstore wire decoding: any byte stream from xenstored, delivered in any pieces, must not
//! panic, and the client must never buffer more than one incomplete message.
#![no_main]

use pvfs_ring::xenstore::{Client, Decoder, MsgType, HEADER_LEN, PAYLOAD_MAX};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let mut client = Client::new();
    // Ask a few questions so replies have ids to match.
    let ids: Vec<u32> = (0..4)
        .filter_map(|_| client.request(MsgType::Read, 0, &[b"x\0"]).ok())
        .map(|(id, _)| id)
        .collect();
    for piece in rest.chunks(chunk) {
        if client.feed(piece).is_err() {
            // The connection would be reset: stop feeding.
            break;
        }
        while let Some(ev) = client.take_event() {
            assert!(ev.path.len() <= PAYLOAD_MAX);
        }
        for id in &ids {
            if let Some(m) = client.take_reply(*id) {
                assert_eq!(m.payload.len(), m.header.len as usize);
                let _ = m.into_reply(MsgType::Read);
            }
        }
    }
    // The bare decoder: after every successful call, less than one whole message is buffered.
    let mut d = Decoder::default();
    for piece in rest.chunks(chunk) {
        d.push(piece);
        loop {
            match d.next_message() {
                Ok(Some(m)) => {
                    let _ = m.watch_event();
                    let _ = pvfs_ring::xenstore::parse_directory(&m.payload);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(d.pending() < HEADER_LEN + PAYLOAD_MAX);
    }
});
