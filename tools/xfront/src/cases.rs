//! The hostile cases. Each one runs on a freshly connected device and ends in a [`Report`]:
//! what pvfs did (disconnected the device, answered, or neither) and the numbers seen.

use std::fmt::Write as _;

use pvfs_ring::shmem::SharedMem;

use crate::device::Device;
use crate::wire::{self, Reply};
use crate::{Platform, Res};

/// msize this frontend negotiates (below the ring half of order 3).
pub const MSIZE: u32 = 8192;
/// How long a case waits for pvfs to react to one message.
pub const REACT_MS: u64 = 10_000;

/// The misbehaviours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// A message whose size field (3) is smaller than a header.
    TornShort,
    /// A message whose size field is larger than the bytes published, completed 2 s later.
    TornLong,
    /// `out_prod` far beyond `out_cons` + the ring size.
    LyingIndex,
    /// A size field of 1 GiB.
    Oversize,
    /// Requests sent as fast as the ring takes them, replies never read.
    Flood,
    /// Walks to new fids until pvfs refuses them.
    Fids,
    /// `Tflush` after `Tflush`, replies unread, then flushes of requests in flight.
    FlushStorm,
}

impl Case {
    /// Every case, in the order the scenario runs them.
    pub const ALL: [Case; 7] = [
        Case::TornShort,
        Case::TornLong,
        Case::LyingIndex,
        Case::Oversize,
        Case::Flood,
        Case::Fids,
        Case::FlushStorm,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Case::TornShort => "torn-short",
            Case::TornLong => "torn-long",
            Case::LyingIndex => "lying-index",
            Case::Oversize => "oversize",
            Case::Flood => "flood",
            Case::Fids => "fids",
            Case::FlushStorm => "flush-storm",
        }
    }

    /// The case called `name`.
    pub fn parse(name: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What pvfs did about the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// pvfs closed the device; its `error` node.
    Disconnected(String),
    /// pvfs kept the device and answered (with errors where the case called for them).
    Answered,
    /// pvfs did neither within the case's time: a finding.
    Silent,
}

/// A case's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The case.
    pub case: Case,
    /// What pvfs did.
    pub outcome: Outcome,
    /// `key=value` facts, in order.
    pub facts: Vec<(String, String)>,
    /// Whether the case's expectation held.
    pub ok: bool,
}

impl Report {
    fn new(case: Case) -> Self {
        Report {
            case,
            outcome: Outcome::Silent,
            facts: Vec::new(),
            ok: false,
        }
    }

    fn fact(&mut self, k: &str, v: impl ToString) {
        self.facts.push((k.to_string(), v.to_string()));
    }

    /// The report as one line: `XFRONT <case> ok|FAILED outcome=… key=value …`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "XFRONT {} {} outcome=",
            self.case.name(),
            if self.ok { "ok" } else { "FAILED" }
        );
        match &self.outcome {
            Outcome::Disconnected(e) => {
                let _ = write!(s, "disconnected error={:?}", e);
            }
            Outcome::Answered => s.push_str("answered"),
            Outcome::Silent => s.push_str("silent"),
        }
        for (k, v) in &self.facts {
            let _ = write!(s, " {k}={v}");
        }
        s
    }
}

/// Runs `case` on `dev`.
pub fn run<P: Platform>(p: &mut P, dev: &Device<P::Mem>, case: Case) -> Res<Report> {
    let mut r = Report::new(case);
    match case {
        Case::TornShort => {
            version(p, dev)?;
            let mut m = wire::tgetattr(1, 0);
            m[0..4].copy_from_slice(&3u32.to_le_bytes());
            dev.ring.send(&m)?;
            violation(p, dev, &mut r)?;
        }
        Case::Oversize => {
            version(p, dev)?;
            let mut m = wire::tgetattr(1, 0);
            m[0..4].copy_from_slice(&(1u32 << 30).to_le_bytes());
            dev.ring.send(&m)?;
            violation(p, dev, &mut r)?;
        }
        Case::LyingIndex => {
            version(p, dev)?;
            let prod = dev.ring.out_cons().wrapping_add(4 * dev.ring.half() + 123);
            dev.ring.set_out_prod(prod)?;
            violation(p, dev, &mut r)?;
        }
        Case::TornLong => torn_long(p, dev, &mut r)?,
        Case::Flood => flood(p, dev, &mut r)?,
        Case::Fids => fids(p, dev, &mut r)?,
        Case::FlushStorm => flush_storm(p, dev, &mut r)?,
    }
    Ok(r)
}

/// Negotiates the version (and checks the device answers at all).
fn version<P: Platform>(p: &mut P, dev: &Device<P::Mem>) -> Res<()> {
    match call(p, dev, &wire::tversion(MSIZE), REACT_MS)? {
        Some(Reply {
            ty: wire::RVERSION, ..
        }) => Ok(()),
        other => Err(crate::err(format!("Tversion answered {other:?}"))),
    }
}

/// Version and attach of fid 0 to the export's root.
fn attach<P: Platform>(p: &mut P, dev: &Device<P::Mem>) -> Res<()> {
    version(p, dev)?;
    match call(p, dev, &wire::tattach(1, 0), REACT_MS)? {
        Some(Reply {
            ty: wire::RATTACH, ..
        }) => Ok(()),
        other => Err(crate::err(format!("Tattach answered {other:?}"))),
    }
}

/// After a protocol violation: pvfs must drop the device (or answer with an error).
fn violation<P: Platform>(p: &mut P, dev: &Device<P::Mem>, r: &mut Report) -> Res<()> {
    dev.kick(p)?;
    let t0 = p.now_ms();
    loop {
        if let Some(m) = dev.ring.recv()? {
            let rep = wire::parse(&m);
            r.fact("reply", format!("{rep:?}").replace(' ', ""));
            if matches!(
                rep,
                Some(Reply {
                    ty: wire::RLERROR,
                    ..
                })
            ) {
                r.outcome = Outcome::Answered;
                r.ok = true;
                return Ok(());
            }
        }
        if dev.dropped(p) {
            disconnected(p, dev, r, t0);
            return Ok(());
        }
        if p.now_ms().saturating_sub(t0) > REACT_MS {
            return Ok(());
        }
        p.sleep_ms(5);
    }
}

fn disconnected<P: Platform>(p: &mut P, dev: &Device<P::Mem>, r: &mut Report, t0: u64) {
    let e = p
        .xs_read(&format!("{}/error", dev.be))
        .unwrap_or_default()
        .replace('"', "'");
    r.outcome = Outcome::Disconnected(e);
    r.fact("after_ms", p.now_ms().saturating_sub(t0));
    r.ok = true;
}

/// Sends `msg` (waiting for room) and returns the reply with its tag, or `None` if pvfs
/// dropped the device or `ms` passed. Replies with other tags are discarded.
pub fn call<P: Platform>(
    p: &mut P,
    dev: &Device<P::Mem>,
    msg: &[u8],
    ms: u64,
) -> Res<Option<Reply>> {
    let tag = u16::from_le_bytes([msg[5], msg[6]]);
    let t0 = p.now_ms();
    while !dev.ring.send(msg)? {
        let _ = drain(p, dev)?;
        if p.now_ms().saturating_sub(t0) > ms || dev.dropped(p) {
            return Ok(None);
        }
        p.sleep_ms(1);
    }
    dev.kick(p)?;
    loop {
        while let Some(m) = dev.ring.recv()? {
            if let Some(rep) = wire::parse(&m) {
                if rep.tag == tag {
                    return Ok(Some(rep));
                }
            }
        }
        if dev.dropped(p) {
            return Ok(None);
        }
        if p.now_ms().saturating_sub(t0) > ms {
            return Ok(None);
        }
        p.sleep_ms(1);
    }
}

/// Reads every reply there is; counts them by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Replies other than `Rlerror`.
    pub ok: u64,
    /// `Rlerror`s.
    pub errors: u64,
    /// Replies that did not parse.
    pub malformed: u64,
    /// The first errno seen.
    pub first_errno: Option<u32>,
}

impl Drained {
    fn add(&mut self, o: Drained) {
        self.ok += o.ok;
        self.errors += o.errors;
        self.malformed += o.malformed;
        self.first_errno = self.first_errno.or(o.first_errno);
    }
}

fn drain<P: Platform>(_p: &mut P, dev: &Device<P::Mem>) -> Res<Drained> {
    let mut d = Drained::default();
    while let Some(m) = dev.ring.recv()? {
        match wire::parse(&m) {
            Some(Reply { errno: Some(e), .. }) => {
                d.errors += 1;
                d.first_errno = d.first_errno.or(Some(e));
            }
            Some(_) => d.ok += 1,
            None => d.malformed += 1,
        }
    }
    Ok(d)
}

/// Reads replies until none came for `idle_ms` (or pvfs dropped the device).
fn drain_until_idle<P: Platform>(p: &mut P, dev: &Device<P::Mem>, idle_ms: u64) -> Res<Drained> {
    let mut total = Drained::default();
    let mut last = p.now_ms();
    loop {
        dev.kick(p)?;
        let d = drain(p, dev)?;
        if d != Drained::default() {
            total.add(d);
            last = p.now_ms();
        } else if p.now_ms().saturating_sub(last) > idle_ms || dev.dropped(p) {
            return Ok(total);
        }
        p.sleep_ms(5);
    }
}

fn note_drained(r: &mut Report, prefix: &str, d: Drained) {
    r.fact(&format!("{prefix}_ok"), d.ok);
    r.fact(&format!("{prefix}_errors"), d.errors);
    r.fact(&format!("{prefix}_malformed"), d.malformed);
    if let Some(e) = d.first_errno {
        r.fact(&format!("{prefix}_errno"), e);
    }
}

/// After a case: the device still answers a `Tgetattr`, or pvfs has dropped it.
fn still_served<P: Platform>(p: &mut P, dev: &Device<P::Mem>, r: &mut Report, t0: u64) -> Res<()> {
    if dev.dropped(p) {
        disconnected(p, dev, r, t0);
        return Ok(());
    }
    match call(p, dev, &wire::tgetattr(0xfff0, 0), REACT_MS)? {
        Some(rep) => {
            r.fact("then", format!("ty{}", rep.ty));
            r.outcome = Outcome::Answered;
            r.ok = true;
        }
        None if dev.dropped(p) => disconnected(p, dev, r, t0),
        None => r.fact("then", "no-reply"),
    }
    Ok(())
}

fn torn_long<P: Platform>(p: &mut P, dev: &Device<P::Mem>, r: &mut Report) -> Res<()> {
    attach(p, dev)?;
    // a Tgetattr padded to 1000 bytes: the size field says 1000, 16 bytes are published
    let mut m = wire::tgetattr(2, 0);
    m.resize(1000, 0xa5);
    m[0..4].copy_from_slice(&1000u32.to_le_bytes());
    dev.ring.send_partial(&m, 16)?;
    dev.kick(p)?;
    let t0 = p.now_ms();
    p.sleep_ms(2000);
    let early = drain(p, dev)?;
    r.fact(
        "replies_while_torn",
        early.ok + early.errors + early.malformed,
    );
    let waited = !dev.dropped(p);
    r.fact("waited", waited);
    if !waited {
        disconnected(p, dev, r, t0);
        return Ok(());
    }
    let prod = dev.ring.out_prod();
    dev.ring
        .set_out_prod(prod.wrapping_add((m.len() - 16) as u32))?;
    dev.kick(p)?;
    let t1 = p.now_ms();
    let mut got = None;
    while got.is_none() && p.now_ms().saturating_sub(t1) < REACT_MS && !dev.dropped(p) {
        if let Some(m) = dev.ring.recv()? {
            got = wire::parse(&m);
        }
        p.sleep_ms(2);
    }
    r.fact("completed_reply", format!("{got:?}").replace(' ', ""));
    still_served(p, dev, r, t0)?;
    r.ok &= early == Drained::default() && (got.is_some() || dev.dropped(p));
    Ok(())
}

/// Sends `make(i)` for i = 0, 1, … as fast as the ring takes them, without reading replies,
/// until `max` were sent, the ring stayed full for 3 s, 60 s passed or pvfs dropped the
/// device. Returns (sent, why it stopped).
fn pour<P: Platform>(
    p: &mut P,
    dev: &Device<P::Mem>,
    max: u64,
    make: impl Fn(u64) -> Vec<u8>,
) -> Res<(u64, &'static str)> {
    let t0 = p.now_ms();
    let mut sent = 0u64;
    let mut full_since: Option<u64> = None;
    loop {
        if sent >= max {
            return Ok((sent, "count"));
        }
        if dev.ring.send(&make(sent))? {
            sent += 1;
            full_since = None;
            if sent.is_multiple_of(64) {
                dev.kick(p)?;
            }
            continue;
        }
        dev.kick(p)?;
        let now = p.now_ms();
        let since = *full_since.get_or_insert(now);
        if now.saturating_sub(since) > 3000 {
            return Ok((sent, "ring-full"));
        }
        if now.saturating_sub(t0) > 60_000 {
            return Ok((sent, "time"));
        }
        if dev.dropped(p) {
            return Ok((sent, "dropped"));
        }
        p.sleep_ms(2);
    }
}

fn heap<P: Platform, M: SharedMem>(p: &mut P, dev: &Device<M>) -> String {
    let stats = p
        .xs_read(&format!("/local/domain/{}/data/pvfs/stats", dev.be_id))
        .unwrap_or_default();
    stats
        .split(' ')
        .find_map(|kv| kv.strip_prefix("heap_live_bytes="))
        .unwrap_or("?")
        .to_string()
}

/// Attaches, [`pour`]s up to `max` requests `make` builds and then reads every reply; the
/// facts are the heap before and after (`heap_fact`), the count sent (`sent_fact`), why the
/// pouring stopped and the replies. Returns when it started and whether pvfs held: it stopped
/// taking requests while its replies were not read (or dropped the device), and no reply was
/// malformed.
fn overrun<P: Platform>(
    p: &mut P,
    dev: &Device<P::Mem>,
    r: &mut Report,
    max: u64,
    sent_fact: &str,
    heap_fact: &str,
    make: impl Fn(u64) -> Vec<u8>,
) -> Res<(u64, bool)> {
    attach(p, dev)?;
    r.fact("heap_before", heap(p, dev));
    let t0 = p.now_ms();
    let (sent, why) = pour(p, dev, max, make)?;
    r.fact(sent_fact, sent);
    r.fact("stopped", why);
    let bounded = why == "ring-full" || why == "dropped";
    p.sleep_ms(1100);
    r.fact(heap_fact, heap(p, dev));
    let d = drain_until_idle(p, dev, 3000)?;
    note_drained(r, "replies", d);
    Ok((t0, d.malformed == 0 && bounded))
}

fn flood<P: Platform>(p: &mut P, dev: &Device<P::Mem>, r: &mut Report) -> Res<()> {
    let (t0, held) = overrun(p, dev, r, 200_000, "sent", "heap_flooded", |i| {
        wire::tgetattr((i % 0xff00) as u16 + 1, 0)
    })?;
    still_served(p, dev, r, t0)?;
    r.ok &= held;
    Ok(())
}

fn fids<P: Platform>(p: &mut P, dev: &Device<P::Mem>, r: &mut Report) -> Res<()> {
    attach(p, dev)?;
    r.fact("heap_before", heap(p, dev));
    let t0 = p.now_ms();
    let (mut ok, mut errors, mut streak) = (0u64, 0u64, 0u64);
    let mut first_errno = None;
    let mut inflight = 0u64;
    let mut next = 1u32;
    const MAX: u32 = 6000;
    while (next <= MAX || inflight > 0) && streak < 200 {
        while inflight < 64 && next <= MAX {
            let m = wire::twalk_clone((next % 0xff00) as u16 + 1, 0, next);
            if !dev.ring.send(&m)? {
                break;
            }
            next += 1;
            inflight += 1;
        }
        dev.kick(p)?;
        let before = (ok, errors);
        while let Some(m) = dev.ring.recv()? {
            inflight = inflight.saturating_sub(1);
            match wire::parse(&m) {
                Some(Reply {
                    ty: wire::RWALK, ..
                }) => {
                    ok += 1;
                    streak = 0;
                }
                Some(Reply { errno, .. }) => {
                    errors += 1;
                    streak += 1;
                    first_errno = first_errno.or(errno);
                }
                None => errors += 1,
            }
        }
        if (ok, errors) == before {
            if dev.dropped(p) || p.now_ms().saturating_sub(t0) > 120_000 {
                break;
            }
            p.sleep_ms(1);
        }
    }
    r.fact("walked", ok);
    r.fact("refused", errors);
    if let Some(e) = first_errno {
        r.fact("errno", e);
    }
    p.sleep_ms(1100);
    r.fact("heap_fids", heap(p, dev));
    still_served(p, dev, r, t0)?;
    // a bound on fids: some walks were refused before MAX
    r.ok &= errors > 0 || matches!(r.outcome, Outcome::Disconnected(_));
    Ok(())
}

fn flush_storm<P: Platform>(p: &mut P, dev: &Device<P::Mem>, r: &mut Report) -> Res<()> {
    let (t0, held) = overrun(p, dev, r, 50_000, "flushes", "heap_storm", |i| {
        let tag = (i % 0xff00) as u16 + 1;
        wire::tflush(tag, tag.wrapping_add(7))
    })?;
    // flushes of requests in flight: a getattr and at once a flush of it, 500 times
    let mut rflush = 0u64;
    for i in 0..500u16 {
        if dev.dropped(p) {
            break;
        }
        let a = 2 * i + 1;
        dev.ring.send(&wire::tgetattr(a, 0))?;
        if let Some(rep) = call(p, dev, &wire::tflush(a + 1, a), REACT_MS)? {
            rflush += u64::from(rep.ty == wire::RFLUSH);
        }
    }
    r.fact("rflush_of_inflight", rflush);
    let _ = drain(p, dev)?;
    still_served(p, dev, r, t0)?;
    r.ok &= held;
    Ok(())
}
