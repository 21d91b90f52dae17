//! `xfront load`: many well-behaved devices at once, a load generator for pvfs's scale test
//! (`ci/xen/scenarios/p9-scale.sh`). Each device is connected as `device::connect` does (one
//! ring, at most order [`crate::device::ORDER`]) and then runs one session: `Tversion`,
//! `Tattach`, `Twalk` to a file, `Tlopen`, `Tread` (its content must be what the caller
//! expects), `Tclunk`. The devices stay connected until the caller is done with them.

use pvfs_9p::wire::{ty, Frame, Rmsg, Tmsg};

use crate::device::Device;
use crate::{err, Platform, Res};

/// The frontend directories of dom0's 9pfs devices whose tag starts with `prefix`, with their
/// tags, in device order (one listing, one read a device).
pub fn devices_with_prefix<P: Platform>(p: &mut P, prefix: &str) -> Vec<(String, String)> {
    let base = "/local/domain/0/device/9pfs";
    let mut ids: Vec<u32> = p
        .xs_list(base)
        .iter()
        .filter_map(|i| i.parse().ok())
        .collect();
    ids.sort_unstable();
    ids.into_iter()
        .filter_map(|id| {
            let dir = format!("{base}/{id}");
            let tag = p.xs_read(&format!("{dir}/tag"))?;
            tag.starts_with(prefix).then_some((dir, tag))
        })
        .collect()
}

/// msize the sessions negotiate (fits the ring half of order 0).
pub const MSIZE: u32 = 4096;
/// How long one request may take.
pub const CALL_MS: u64 = 30_000;

/// Sends `t` with `tag` and returns the reply, or an error if the device is dropped or
/// nothing comes within [`CALL_MS`].
pub fn call<P: Platform>(p: &mut P, dev: &Device<P::Mem>, tag: u16, t: &Tmsg<'_>) -> Res<Vec<u8>> {
    let mut msg = Vec::new();
    t.emit(tag, &mut msg)
        .map_err(|e| err(format!("encoding {t:?}: {e:?}")))?;
    let t0 = p.now_ms();
    while !dev.ring.send(&msg)? {
        if p.now_ms().saturating_sub(t0) > CALL_MS || dev.dropped(p) {
            return Err(err("no room in the ring"));
        }
        p.sleep_ms(1);
    }
    dev.kick(p)?;
    loop {
        if let Some(m) = dev.ring.recv()? {
            let got = u16::from_le_bytes([m[5], m[6]]);
            if got != tag {
                return Err(err(format!("reply for tag {got}, expected {tag}")));
            }
            return Ok(m);
        }
        if dev.dropped(p) {
            return Err(err("pvfs dropped the device"));
        }
        if p.now_ms().saturating_sub(t0) > CALL_MS {
            return Err(err(format!("no reply to {t:?} within {CALL_MS} ms")));
        }
        p.sleep_ms(1);
    }
}

/// The reply `m` as `Rmsg` of type `want`; an `Rlerror` or another type is an error.
fn expect<'a>(m: &'a [u8], want: u8, what: &str) -> Res<Rmsg<'a>> {
    let frame =
        Frame::new_checked(m).map_err(|e| err(format!("{what}: bad reply frame: {e:?}")))?;
    let r = Rmsg::parse(&frame).map_err(|e| err(format!("{what}: bad reply: {e:?}")))?;
    match r {
        Rmsg::Lerror { ecode } => Err(err(format!("{what}: Rlerror {ecode}"))),
        _ if frame.msg_type() != want => Err(err(format!(
            "{what}: reply type {}, expected {want}",
            frame.msg_type()
        ))),
        r => Ok(r),
    }
}

/// One session on `dev`: version, attach, walk to `file`, open, read it whole (it must hold
/// `content`), clunk.
pub fn session<P: Platform>(
    p: &mut P,
    dev: &Device<P::Mem>,
    file: &str,
    content: &[u8],
) -> Res<()> {
    let m = call(
        p,
        dev,
        pvfs_9p::wire::NOTAG,
        &Tmsg::Version {
            msize: MSIZE,
            version: b"9P2000.L",
        },
    )?;
    expect(&m, ty::RVERSION, "Tversion")?;
    let m = call(
        p,
        dev,
        1,
        &Tmsg::Attach {
            fid: 0,
            afid: pvfs_9p::wire::NOFID,
            uname: b"",
            aname: b"",
            n_uname: 0,
        },
    )?;
    expect(&m, ty::RATTACH, "Tattach")?;
    let names = file.split('/').filter(|n| !n.is_empty()).map(str::as_bytes);
    let m = call(
        p,
        dev,
        2,
        &Tmsg::Walk {
            fid: 0,
            newfid: 1,
            names: names.collect(),
        },
    )?;
    expect(&m, ty::RWALK, "Twalk")?;
    let m = call(p, dev, 3, &Tmsg::Lopen { fid: 1, flags: 0 })?;
    expect(&m, ty::RLOPEN, "Tlopen")?;
    let want = u32::try_from(content.len().saturating_add(1)).unwrap_or(u32::MAX);
    let m = call(
        p,
        dev,
        4,
        &Tmsg::Read {
            fid: 1,
            offset: 0,
            count: want.min(MSIZE - 64),
        },
    )?;
    match expect(&m, ty::RREAD, "Tread")? {
        Rmsg::Read { data } if data == content => {}
        Rmsg::Read { data } => {
            return Err(err(format!(
                "read {} bytes that are not the file's {} bytes",
                data.len(),
                content.len()
            )))
        }
        r => return Err(err(format!("Tread: {r:?}"))),
    }
    let m = call(p, dev, 5, &Tmsg::Clunk { fid: 1 })?;
    expect(&m, ty::RCLUNK, "Tclunk")?;
    Ok(())
}
