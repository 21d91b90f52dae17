//! In-process 9P servers over the in-memory filesystem, a client mounted on one and a file
//! made through it: what the 9P2000.L conformance tests (`p9_session`, `p9_file_ops`,
//! `p9_dir_ops`, `p9_requests`, `p9_export`) start from.

use crate::p9client::{o, Client, TestServer};
use pvfs_9p::host::ServeOptions;
use pvfs_9p::memfs::MemFs;
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_9p::Filesystem;

/// A server of a fresh in-memory filesystem exported with `cfg`, four workers.
pub fn memfs_server(cfg: ExportConfig) -> TestServer<MemFs> {
    TestServer::start(Server::new(MemFs::new(), cfg), 4, ServeOptions::default())
}

/// [`memfs_server`] with a root of mode 0777.
pub fn open_memfs_server(cfg: ExportConfig) -> TestServer<MemFs> {
    let fs = MemFs::new();
    let set = pvfs_9p::fs::SetAttr {
        mode: Some(0o777),
        ..Default::default()
    };
    fs.setattr(fs.root(), &set).unwrap();
    TestServer::start(Server::new(fs, cfg), 4, ServeOptions::default())
}

/// A client of `ts`, version negotiated (msize 65536) and fid 0 attached to `/`.
pub fn mount(ts: &TestServer<impl Filesystem + 'static>) -> Client {
    Client::mount(&ts.addr, 65536, "/")
}

/// Creates `path` (in the root) with `data`, leaving no fids behind.
pub fn put(c: &mut Client, name: &str, data: &[u8]) {
    c.walk(0, 90, &[]).unwrap();
    c.lcreate(90, name, o::RDWR, 0o644, 0).unwrap();
    let chunk = (c.msize - 24) as usize;
    for (i, part) in data.chunks(chunk).enumerate() {
        assert_eq!(
            c.write(90, (i * chunk) as u64, part).unwrap() as usize,
            part.len()
        );
    }
    c.clunk(90).unwrap();
}
