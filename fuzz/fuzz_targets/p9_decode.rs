//! 9P2000.L decoding: any bytes, taken as one framed message, must decode or fail cleanly, and
//! whatever decodes must re-encode to the same bytes.
#![no_main]

use pvfs_9p::wire::{DirEntries, Frame, Rmsg, Tmsg};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Frame::new_checked(data) {
        if let Ok(m) = Tmsg::parse(&f) {
            let mut out = Vec::new();
            m.emit(f.tag(), &mut out).expect("re-encode a decoded request");
            assert_eq!(out, data, "request round trip");
        }
        if let Ok(m) = Rmsg::parse(&f) {
            let mut out = Vec::new();
            m.emit(f.tag(), &mut out).expect("re-encode a decoded reply");
            assert_eq!(out, data, "reply round trip");
            if let Rmsg::Readdir { data } = m {
                for e in DirEntries::new(data) {
                    if e.is_err() {
                        break;
                    }
                }
            }
        }
    }
    // Also every body under every type, without a frame.
    if let Some((&ty, body)) = data.split_first() {
        let _ = Tmsg::parse_body(ty, body);
        let _ = Rmsg::parse_body(ty, body);
    }
});
