//! The command line of `pvfs share …` and `pvfs status`, and what each prints on success.

use super::add::{add, AddOpts, Verdict};
use super::domains::{guest, pvfs_domain};
use super::failure::Res;
use super::ls::{ls_json, ls_table};
use super::nodes::{shares, Share, QUOTA_KEYS};
use super::policy::{policy_summary, PolicyArgs};
use super::rm::rm;
use super::set::set;
use super::status::{status, status_json, status_text, wait_ready};
use super::top::{top, TopOpts};
use super::xsquota::Headroom;
use crate::xs::Store;
use clap::{Args, Subcommand};
use pvfs_ring::xenbus::MODE_KEY;
use std::fmt::Write as _;

/// `pvfs share …`.
#[derive(Subcommand)]
pub enum ShareCmd {
    /// Attach a share to a running or paused guest (no device model involved).
    Add(AddArgs),
    /// Detach a share: pvfs releases it and its xenstore nodes go away.
    Rm(RmArgs),
    /// List the shares pvfs serves: guests, tags, paths, states, read-only, quotas, id maps.
    Ls(LsArgs),
    /// Change a share's quota, read-only mode or id maps while it is in use (pvfs applies them
    /// to the guest's next request).
    Set(SetArgs),
}

/// `--backend`, common to the commands.
#[derive(Args)]
pub struct BackendArg {
    /// The pvfs domain (name or id)
    #[arg(long, default_value = "pvfs")]
    pub(super) backend: String,
}

/// `pvfs share add`.
#[derive(Args)]
pub struct AddArgs {
    /// The guest (name or domain id; 0 is dom0)
    pub(super) domain: String,
    /// The tag the guest mounts (`mount -t 9p -o trans=xen TAG /mnt`)
    #[arg(long)]
    pub(super) tag: String,
    /// The exported directory, inside pvfs's volume
    #[arg(long)]
    pub(super) path: String,
    /// A template directory inside pvfs's volume: the guest sees it merged under --path,
    /// copy-on-write (README, "Template shares")
    #[arg(long, value_name = "PATH")]
    pub(super) template: Option<String>,
    #[command(flatten)]
    pub(super) policy: PolicyArgs,
    /// Quota: MiB of file data
    #[arg(long, value_name = "MIB")]
    pub(super) max_space: Option<u64>,
    /// Quota: number of files
    #[arg(long, value_name = "N")]
    pub(super) max_files: Option<u64>,
    /// Quota: files open at once
    #[arg(long, value_name = "N")]
    pub(super) max_open_files: Option<u64>,
    /// Rate limit: requests a second (pvfs holds the guest back, not its neighbours)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) max_iops: Option<u64>,
    /// Rate limit: bytes of file data read or written a second
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) max_bps: Option<u64>,
    #[command(flatten)]
    pub(super) be: BackendArg,
    /// Seconds to wait for pvfs's verdict
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub(super) timeout: u64,
    /// If pvfs's domain is short of xenstore nodes or watches, fail (exit 9) instead of raising
    /// xenstored's quota for unprivileged domains
    #[arg(long)]
    pub(super) no_raise_xenstore_quota: bool,
    /// Return once pvfs has accepted the device, without waiting for the guest's driver to
    /// connect (adding many shares from a script)
    #[arg(long)]
    pub(super) no_guest_wait: bool,
}

/// `pvfs share rm`.
#[derive(Args)]
pub struct RmArgs {
    /// The guest (name or domain id)
    pub(super) domain: String,
    /// The share's tag
    pub(super) tag: String,
    /// Detach even while the guest is connected (its mount, if any, stops working)
    #[arg(long)]
    pub(super) force: bool,
    #[command(flatten)]
    pub(super) be: BackendArg,
    /// Seconds to wait for pvfs to release the device
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub(super) timeout: u64,
}

/// `pvfs share ls`.
#[derive(Args)]
pub struct LsArgs {
    /// Only this guest (name or domain id)
    pub(super) domain: Option<String>,
    /// JSON instead of a table
    #[arg(long)]
    pub(super) json: bool,
    #[command(flatten)]
    pub(super) be: BackendArg,
}

/// `pvfs share set`.
#[derive(Args)]
pub struct SetArgs {
    /// The guest (name or domain id)
    pub(super) domain: String,
    /// The share's tag
    pub(super) tag: String,
    /// Quota: MiB of file data
    #[arg(long, value_name = "MIB", conflicts_with = "no_max_space")]
    pub(super) max_space: Option<u64>,
    /// Lift the max-space quota
    #[arg(long)]
    pub(super) no_max_space: bool,
    /// Quota: number of files
    #[arg(long, value_name = "N", conflicts_with = "no_max_files")]
    pub(super) max_files: Option<u64>,
    /// Lift the max-files quota
    #[arg(long)]
    pub(super) no_max_files: bool,
    /// Quota: files open at once
    #[arg(long, value_name = "N", conflicts_with = "no_max_open_files")]
    pub(super) max_open_files: Option<u64>,
    /// Lift the max-open-files quota
    #[arg(long)]
    pub(super) no_max_open_files: bool,
    /// Rate limit: requests a second
    #[arg(long, value_name = "N", conflicts_with = "no_max_iops", value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) max_iops: Option<u64>,
    /// Lift the max-iops limit
    #[arg(long)]
    pub(super) no_max_iops: bool,
    /// Rate limit: bytes of file data read or written a second
    #[arg(long, value_name = "BYTES", conflicts_with = "no_max_bps", value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) max_bps: Option<u64>,
    /// Lift the max-bps limit
    #[arg(long)]
    pub(super) no_max_bps: bool,
    #[command(flatten)]
    pub(super) policy: PolicyArgs,
    #[command(flatten)]
    pub(super) be: BackendArg,
}

/// `pvfs status`.
#[derive(Args)]
pub struct StatusArgs {
    /// JSON instead of text
    #[arg(long)]
    pub(super) json: bool,
    /// Wait up to SECS for the pvfs domain to appear and be ready (exit 10 if it is not)
    #[arg(long, value_name = "SECS")]
    pub(super) wait: Option<u64>,
    #[command(flatten)]
    pub(super) be: BackendArg,
}

/// `pvfs dedup`.
#[derive(Args)]
pub struct DedupArgs {
    /// Print pvfs's result as one JSON object
    #[arg(long)]
    pub(super) json: bool,
    /// Seconds to wait for the run to finish (exit 10 if it has not; it goes on in pvfs)
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub(super) wait: u64,
    #[command(flatten)]
    pub(super) be: BackendArg,
}

/// `pvfs top`.
#[derive(Args)]
pub struct TopArgs {
    /// Print every share's figures once, as JSON
    #[arg(long)]
    pub(super) json: bool,
    /// Seconds between refreshes
    #[arg(short, long, value_name = "SECS", default_value_t = 1)]
    pub(super) delay: u64,
    /// Refreshes before exiting (default: until interrupted)
    #[arg(short = 'n', long, value_name = "N")]
    pub(super) iterations: Option<u64>,
    /// Print the tables one after another instead of redrawing the screen (the default when
    /// the output is not a terminal)
    #[arg(short, long)]
    pub(super) batch: bool,
    #[command(flatten)]
    pub(super) be: BackendArg,
}

fn change(v: Option<u64>, lift: bool) -> Option<Option<u64>> {
    match (v, lift) {
        (Some(v), _) => Some(Some(v)),
        (None, true) => Some(None),
        (None, false) => None,
    }
}

fn quota_summary(sh: &Share) -> String {
    let parts: Vec<String> = QUOTA_KEYS
        .iter()
        .zip(&sh.quota)
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("none")))
        .collect();
    parts.join(" ")
}

/// Runs a `share` command on `s`; returns what to print on stdout.
pub fn run_share<S: Store + ?Sized>(s: &mut S, cmd: ShareCmd) -> Res<String> {
    match cmd {
        ShareCmd::Add(a) => {
            let policy = a.policy.changes()?;
            let be = pvfs_domain(s, &a.be.backend, true)?;
            let g = guest(s, &a.domain)?;
            let o = AddOpts {
                tag: a.tag,
                path: a.path,
                template: a.template,
                read_only: a.policy.ro,
                policy: policy
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, v?)))
                    .filter(|(k, _)| *k != MODE_KEY)
                    .collect(),
                max_space_mib: a.max_space,
                max_files: a.max_files,
                max_open_files: a.max_open_files,
                max_iops: a.max_iops,
                max_bps: a.max_bps,
                timeout_ms: a.timeout.saturating_mul(1000),
                no_raise_quota: a.no_raise_xenstore_quota,
                no_guest_wait: a.no_guest_wait,
            };
            let added = add(s, &be, &g, &o)?;
            let mut out = String::new();
            if let Headroom::Raised(sets) = &added.headroom {
                for (name, from, to) in sets {
                    let _ = writeln!(
                        out,
                        "raised xenstored's {name} quota for unprivileged domains from {from} to {to}, for pvfs's domain {} (until xenstored restarts: docs/pvfs-share.md says how to keep it)",
                        be.domid
                    );
                }
            }
            let _ = write!(
                out,
                "share {:?} of {}: device {}, path {}: ",
                o.tag,
                g.label(),
                added.devid,
                o.path
            );
            match added.verdict {
                Verdict::Connected => {
                    let _ = writeln!(
                        out,
                        "connected; mount it in the guest with `mount -t 9p -o trans=xen,version=9p2000.L {} /mnt`",
                        o.tag
                    );
                }
                Verdict::WaitingForGuest if o.no_guest_wait => out.push_str(
                    "accepted by pvfs; the guest has not connected yet; pvfs checks the path when it does\n",
                ),
                Verdict::WaitingForGuest => out.push_str(
                    "accepted by pvfs; the guest has not connected yet (paused, or 9pnet_xen not loaded); pvfs checks the path when it does\n",
                ),
            }
            Ok(out)
        }
        ShareCmd::Rm(a) => {
            let be = pvfs_domain(s, &a.be.backend, false)?;
            let g = guest(s, &a.domain)?;
            let sh = rm(s, &be, &g, &a.tag, a.force, a.timeout.saturating_mul(1000))?;
            Ok(format!(
                "share {:?} of {} (device {}) removed\n",
                a.tag,
                g.label(),
                sh.devid
            ))
        }
        ShareCmd::Ls(a) => {
            let be = pvfs_domain(s, &a.be.backend, false)?;
            let only = match &a.domain {
                Some(d) => Some(guest(s, d)?.domid),
                None => None,
            };
            let list = shares(s, be.domid, only)?;
            Ok(if a.json {
                ls_json(&list)
            } else {
                ls_table(&list)
            })
        }
        ShareCmd::Set(a) => {
            let policy = a.policy.changes()?;
            let be = pvfs_domain(s, &a.be.backend, false)?;
            let g = guest(s, &a.domain)?;
            let quota = [
                change(a.max_space, a.no_max_space),
                change(a.max_files, a.no_max_files),
                change(a.max_open_files, a.no_max_open_files),
                change(a.max_iops, a.no_max_iops),
                change(a.max_bps, a.no_max_bps),
            ];
            let sh = set(s, &be, &g, &a.tag, quota, &policy)?;
            Ok(format!(
                "share {:?} of {}: {} {} {}\n",
                a.tag,
                g.label(),
                if sh.read_only { "ro" } else { "rw" },
                quota_summary(&sh),
                policy_summary(&sh.policy)
            ))
        }
    }
}

/// Runs `pvfs status` on `s`.
pub fn run_status<S: Store + ?Sized>(s: &mut S, a: StatusArgs) -> Res<String> {
    let st = match a.wait {
        Some(secs) => wait_ready(s, &a.be.backend, secs.saturating_mul(1000))?,
        None => status(s, &a.be.backend)?,
    };
    Ok(if a.json {
        status_json(&st)
    } else {
        status_text(&st)
    })
}

/// Runs `pvfs dedup` on `s`.
pub fn run_dedup<S: Store + ?Sized>(s: &mut S, a: DedupArgs) -> Res<String> {
    super::dedup::run_dedup(s, &a.be.backend, a.wait.saturating_mul(1000), a.json)
}

/// Runs `pvfs top` on `s`, printing to stdout as it goes.
pub fn run_top<S: Store + ?Sized>(s: &mut S, a: TopArgs) -> Res<String> {
    use std::io::IsTerminal;
    let o = TopOpts {
        backend: a.be.backend,
        json: a.json,
        delay_s: a.delay,
        iterations: a.iterations,
        clear: !a.batch && std::io::stdout().is_terminal(),
    };
    top(s, &o, &mut std::io::stdout().lock())?;
    Ok(String::new())
}
