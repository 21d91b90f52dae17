//! The kinds of failure and their exit statuses, the message of each xenstore error, and
//! [`transact`], which runs a transaction again while xenstored reports conflicts.

use crate::xs::{Store, Tx, XsError};

/// Transaction attempts before giving up on conflicts.
pub const TX_ATTEMPTS: u32 = 16;

// The exit statuses `docs/pvfs-share.md` documents; only the shape of a numbered enum is
// shared with the Xen tables in ring (`XenbusState`, `MsgType`) and the kernel (`HvmParam`).
/// The kinds of failure, each with its exit status (the table in `docs/pvfs-share.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: anything else (xenstore protocol errors, transactions that kept conflicting).
    Other = 1,
    /// 2: bad arguments.
    Usage = 2,
    /// 3: no xenstore access: not dom0, not root, or no xenstored.
    NoAccess = 3,
    /// 4: no pvfs domain (or it is not ready).
    NoPvfs = 4,
    /// 5: no such guest domain.
    UnknownGuest = 5,
    /// 6: the guest has no pvfs share with that tag.
    NoSuchShare = 6,
    /// 7: the guest already has a 9pfs device with that tag.
    DuplicateTag = 7,
    /// 8: pvfs refused the device (its `error` node says why).
    Refused = 8,
    /// 9: a xenstored quota was reached.
    Quota = 9,
    /// 10: pvfs did not answer in time.
    Timeout = 10,
    /// 11: the guest has the share mounted (fids in use) and `--force` was not given.
    InUse = 11,
}

/// A failure: its kind (exit status) and the one line printed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind.
    pub kind: Kind,
    /// The message.
    pub msg: String,
    /// A transaction conflict seen inside a transaction body: the body is run again.
    conflict: bool,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: Kind, msg: impl Into<String>) -> Self {
        Self {
            kind,
            msg: msg.into(),
            conflict: false,
        }
    }

    /// The exit status.
    pub fn code(&self) -> u8 {
        self.kind as u8
    }
}

/// How to raise xenstored's node quota, for the quota message.
pub const QUOTA_HINT: &str = "raise xenstored's per-domain node quota, e.g. `xenstore-control quota set nodes 8192` (C xenstored 4.17+), or start xenstored with `--entry-nb 8192` (`-E 8192`)";

impl From<XsError> for Failure {
    fn from(e: XsError) -> Self {
        match e {
            XsError::Again => Self {
                kind: Kind::Other,
                msg: "xenstore transaction conflict".into(),
                conflict: true,
            },
            XsError::Denied(p) => Failure::new(
                Kind::NoAccess,
                format!("xenstore denied access to {p}: run pvfs as root in dom0"),
            ),
            XsError::Io(e) => Failure::new(
                Kind::NoAccess,
                format!("cannot reach xenstored ({e}): run pvfs as root in dom0, with xenstored running"),
            ),
            XsError::Quota(p) => Failure::new(
                Kind::Quota,
                format!("xenstored quota reached at {p}; nothing was written: {QUOTA_HINT}"),
            ),
            XsError::NoEnt(p) => Failure::new(Kind::Other, format!("xenstore: {p}: no such node")),
            XsError::Other(e) => Failure::new(Kind::Other, format!("xenstore: {e}")),
        }
    }
}

pub type Res<T> = Result<T, Failure>;

/// Runs `body` in a transaction and commits it, starting over (up to [`TX_ATTEMPTS`] times)
/// when xenstored answers `EAGAIN`. A failing body aborts the transaction: nothing is written.
pub fn transact<S: Store + ?Sized, T>(
    s: &mut S,
    mut body: impl FnMut(&mut S, Tx) -> Res<T>,
) -> Res<T> {
    for _ in 0..TX_ATTEMPTS {
        let tx = s.tx_start()?;
        match body(s, tx) {
            Ok(v) => match s.tx_end(tx, true) {
                Ok(()) => return Ok(v),
                Err(XsError::Again) => continue,
                Err(e) => return Err(e.into()),
            },
            Err(f) => {
                let _ = s.tx_end(tx, false);
                if f.conflict {
                    continue;
                }
                return Err(f);
            }
        }
    }
    Err(Failure::new(
        Kind::Other,
        format!("xenstore transaction still conflicting after {TX_ATTEMPTS} attempts; try again"),
    ))
}
