//! Every case against the fake backend (`fake.rs`), which runs pvfs's own ring code.

use crate::cases::{self, Case, Outcome};
use crate::device;
use crate::fake::{Fake, BE, FE, MAX_FIDS};
use crate::wire;

fn connected() -> (Fake, device::Device<crate::fake::FakeMem>) {
    let mut f = Fake::new();
    let fe = device::find_by_tag(&mut f, "h").unwrap();
    assert_eq!(fe, FE);
    let d = device::connect(&mut f, &fe, 1000).unwrap();
    (f, d)
}

#[test]
fn connect_writes_the_frontend_keys_and_reaches_connected() {
    let (f, d) = connected();
    assert_eq!(f.xs[&format!("{FE}/version")], "1");
    assert_eq!(f.xs[&format!("{FE}/num-rings")], "1");
    assert_eq!(f.xs[&format!("{FE}/event-channel-0")], "42");
    assert_eq!(f.xs[&format!("{FE}/state")], "4");
    assert_eq!(f.xs[&format!("{BE}/state")], "4");
    assert_eq!(d.ring.half(), 16 * 1024);
    assert_eq!(d.be_id, 7);
}

#[test]
fn connect_gives_up_when_the_backend_never_connects() {
    let mut f = Fake::new();
    f.xs.insert(format!("{BE}/state"), "1".into());
    let e = device::connect(&mut f, FE, 500).unwrap_err();
    assert!(e.0.contains("InitWait"), "{e}");
}

#[test]
fn unknown_tag_is_an_error() {
    let mut f = Fake::new();
    assert!(device::find_by_tag(&mut f, "nope").is_err());
}

#[test]
fn a_call_is_answered() {
    let (mut f, d) = connected();
    let r = cases::call(&mut f, &d, &wire::tversion(8192), 1000)
        .unwrap()
        .unwrap();
    assert_eq!((r.ty, r.tag), (wire::RVERSION, wire::NOTAG));
}

fn run(case: Case) -> (Fake, cases::Report) {
    let (mut f, d) = connected();
    let r = cases::run(&mut f, &d, case).unwrap();
    assert_eq!(d.close(&mut f, 1000).unwrap().map(|s| s >= 5), Some(true));
    (f, r)
}

#[test]
fn violations_disconnect() {
    for case in [Case::TornShort, Case::Oversize, Case::LyingIndex] {
        let (f, r) = run(case);
        assert!(r.ok, "{}", r.line());
        match &r.outcome {
            Outcome::Disconnected(e) => assert!(!e.is_empty(), "{}", r.line()),
            o => panic!("{case:?}: {o:?}"),
        }
        assert!(f.xs.contains_key(&format!("{BE}/error")));
        assert!(r
            .line()
            .starts_with(&format!("XFRONT {} ok outcome=disconnected", case.name())));
    }
}

#[test]
fn a_violation_nobody_notices_is_reported_silent() {
    let (mut f, d) = connected();
    f.deaf = true;
    let r = cases::run(&mut f, &d, Case::LyingIndex).unwrap();
    assert_eq!(r.outcome, Outcome::Silent);
    assert!(!r.ok);
    assert!(r.line().contains("FAILED outcome=silent"));
}

#[test]
fn torn_message_waits_then_is_answered() {
    let (_, r) = run(Case::TornLong);
    assert!(r.ok, "{}", r.line());
    assert_eq!(r.outcome, Outcome::Answered);
    assert!(r.line().contains("replies_while_torn=0"), "{}", r.line());
    assert!(r.line().contains("waited=true"), "{}", r.line());
    assert!(r.line().contains("errno:Some(74)"), "{}", r.line());
}

#[test]
fn flood_meets_backpressure_and_every_reply_arrives() {
    let (f, r) = run(Case::Flood);
    assert!(r.ok, "{}", r.line());
    assert!(r.line().contains("stopped=ring-full"), "{}", r.line());
    assert!(f.peak_pending <= crate::fake::MAX_PENDING);
    // every request the fake took was answered and read
    let sent: u64 = fact(&r, "sent");
    let ok: u64 = fact(&r, "replies_ok");
    assert!(sent > 100, "{}", r.line());
    assert_eq!(ok, sent, "{}", r.line());
}

#[test]
fn fid_exhaustion_is_refused_with_errors() {
    let (_, r) = run(Case::Fids);
    assert!(r.ok, "{}", r.line());
    assert_eq!(fact::<usize>(&r, "walked"), MAX_FIDS - 1);
    assert_eq!(fact::<u32>(&r, "errno"), 24);
    // the case stops after 200 refusals in a row (plus what was in flight: at most 64)
    let refused: u64 = fact(&r, "refused");
    assert!((200..=264).contains(&refused), "{}", r.line());
}

#[test]
fn unbounded_fids_fail_the_case() {
    let (mut f, d) = connected();
    f.fid_limit = usize::MAX;
    let r = cases::run(&mut f, &d, Case::Fids).unwrap();
    assert!(!r.ok, "{}", r.line());
    assert_eq!(fact::<u64>(&r, "walked"), 6000);
    assert!(r.line().contains("FAILED"));
}

#[test]
fn flush_storm_is_answered() {
    let (_, r) = run(Case::FlushStorm);
    assert!(r.ok, "{}", r.line());
    assert_eq!(fact::<u64>(&r, "rflush_of_inflight"), 500, "{}", r.line());
    assert!(fact::<u64>(&r, "replies_ok") > 100, "{}", r.line());
}

#[test]
fn a_backend_that_buffers_without_bound_fails_the_storms() {
    for case in [Case::Flood, Case::FlushStorm] {
        let (mut f, d) = connected();
        f.pending_limit = usize::MAX;
        let r = cases::run(&mut f, &d, case).unwrap();
        assert!(!r.ok, "{}", r.line());
        assert!(r.line().contains("stopped=count"), "{}", r.line());
    }
}

#[test]
fn case_names_round_trip() {
    for c in Case::ALL {
        assert_eq!(Case::parse(c.name()), Some(c));
    }
    assert_eq!(Case::parse("all"), None);
}

#[test]
fn reply_parsing_checks_the_size_field() {
    let m = wire::message(wire::RLERROR, 9, &5u32.to_le_bytes());
    let r = wire::parse(&m).unwrap();
    assert_eq!((r.ty, r.tag, r.errno), (wire::RLERROR, 9, Some(5)));
    let mut bad = m.clone();
    bad[0] = 99;
    assert_eq!(wire::parse(&bad), None);
    assert_eq!(wire::parse(&m[..5]), None);
}

fn fact<T: std::str::FromStr>(r: &cases::Report, k: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    r.facts
        .iter()
        .find(|(key, _)| key == k)
        .unwrap_or_else(|| panic!("no {k} in {}", r.line()))
        .1
        .parse()
        .unwrap()
}

/// A fake whose backend is a real 9P server on a MemFs holding `known` with `content`.
fn with_server(content: &[u8]) -> Fake {
    use pvfs_9p::wire::Tmsg;
    let server = pvfs_9p::Server::new(
        pvfs_9p::memfs::MemFs::new(),
        pvfs_9p::ExportConfig::default(),
    );
    let setup = server.connect();
    let send = |tag: u16, t: Tmsg<'_>| {
        let mut m = Vec::new();
        t.emit(tag, &mut m).unwrap();
        let r = setup.handle(m);
        assert_ne!(r[0][4], wire::RLERROR, "{t:?}");
    };
    send(
        wire::NOTAG,
        Tmsg::Version {
            msize: 8192,
            version: b"9P2000.L",
        },
    );
    send(
        1,
        Tmsg::Attach {
            fid: 0,
            afid: wire::NOFID,
            uname: b"",
            aname: b"",
            n_uname: 0,
        },
    );
    send(
        2,
        Tmsg::Walk {
            fid: 0,
            newfid: 1,
            names: vec![],
        },
    );
    send(
        3,
        Tmsg::Lcreate {
            fid: 1,
            name: b"known",
            flags: 0o101,
            mode: 0o644,
            gid: 0,
        },
    );
    send(
        4,
        Tmsg::Write {
            fid: 1,
            offset: 0,
            data: content,
        },
    );
    send(5, Tmsg::Clunk { fid: 1 });
    let mut f = Fake::new();
    f.server = Some(server.connect());
    f
}

#[test]
fn load_finds_devices_by_prefix_and_reads_the_file() {
    let mut f = with_server(b"scale test\n");
    let found = crate::load::devices_with_prefix(&mut f, "h");
    assert_eq!(found, [(FE.to_string(), "h".to_string())]);
    assert!(crate::load::devices_with_prefix(&mut f, "x").is_empty());
    let d = device::connect(&mut f, FE, 1000).unwrap();
    crate::load::session(&mut f, &d, "known", b"scale test\n").unwrap();
    // six requests: version, attach, walk, open, read, clunk
    assert_eq!(f.requests, 6);
    // another content is a failure, and so is a missing file
    let e = crate::load::session(&mut f, &d, "known", b"other").unwrap_err();
    assert!(e.0.contains("not the file's"), "{e}");
    let e = crate::load::session(&mut f, &d, "missing", b"x").unwrap_err();
    assert!(e.0.contains("Twalk: Rlerror 2"), "{e}");
}

#[test]
fn load_session_fails_cleanly_against_canned_replies() {
    let (mut f, d) = connected();
    // the canned backend answers Tlopen with Rlerror(EBADMSG)
    let e = crate::load::session(&mut f, &d, "known", b"x").unwrap_err();
    assert!(e.0.contains("Rlerror"), "{e}");
}
