//! A whole 9P2000.L session over the in-memory filesystem: the fuzz input is the byte stream a
//! client sends (after a fixed Tversion). Nothing may panic, every reply must be well formed
//! and fit the negotiated msize, and closing the connection must release every open file.
#![no_main]

use pvfs_9p::memfs::{MemFs, MemFsLimits};
use pvfs_9p::policy::QuotaLimits;
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_9p::wire::{peek_size, Frame, Rmsg, Tmsg, HEADER_LEN};

const MSIZE: u32 = 8192;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let fs = MemFs::with_limits(
        MemFsLimits {
            max_bytes: 1 << 20,
            max_inodes: 256,
        },
        Default::default,
    );
    let cfg = ExportConfig {
        max_fids: 64,
        max_msize: MSIZE,
        quota: QuotaLimits {
            max_bytes: Some(512 << 10),
            max_files: Some(128),
            max_open_files: Some(32),
        },
        ..ExportConfig::default()
    };
    let server = Server::new(fs, cfg);
    let conn = server.connect();
    let mut v = Vec::new();
    Tmsg::Version {
        msize: MSIZE,
        version: b"9P2000.L",
    }
    .emit(0xffff, &mut v)
    .expect("emit");
    assert_eq!(conn.handle(v).len(), 1);
    let mut rest = data;
    // Frame the stream as a transport would: stop at the first unframeable size.
    for _ in 0..10_000 {
        let Some(size) = peek_size(rest) else { break };
        if (size as usize) < HEADER_LEN || size > conn.max_message() || size as usize > rest.len() {
            break;
        }
        let (msg, tail) = rest.split_at(size as usize);
        rest = tail;
        for r in conn.handle(msg.to_vec()) {
            assert!(
                r.len() <= conn.max_message() as usize,
                "reply larger than msize"
            );
            let f = Frame::new_checked(&r[..]).expect("reply frame");
            Rmsg::parse(&f).expect("reply decodes");
        }
    }
    drop(conn);
    assert_eq!(
        server.quota().usage().open_files,
        0,
        "open files leaked past the connection"
    );
});
