//! 9P2000.L decoding: any bytes, taken as one framed message, must decode or fail cleanly, and
//! whatever decodes must re-encode to bytes that decode to the same message (byte-identical
//! except for the legacy Tfsync without `datasync`).
#![no_main]

use pvfs_9p::wire::{DirEntries, Frame, Rmsg, Tmsg};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Frame::new_checked(data) {
        if let Ok(m) = Tmsg::parse(&f) {
            let mut out = Vec::new();
            m.emit(f.tag(), &mut out)
                .expect("re-encode a decoded request");
            let f2 = Frame::new_checked(&out[..]).expect("re-encoded frame");
            assert_eq!(
                Tmsg::parse(&f2).expect("re-decode"),
                m,
                "request round trip"
            );
            if !matches!(m, Tmsg::Fsync { .. }) {
                assert_eq!(out, data, "request bytes round trip");
            }
        }
        if let Ok(m) = Rmsg::parse(&f) {
            let mut out = Vec::new();
            m.emit(f.tag(), &mut out)
                .expect("re-encode a decoded reply");
            assert_eq!(out, data, "reply bytes round trip");
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
