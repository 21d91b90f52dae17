//! `pvfs`: the host-side command line. `pvfs image …` reads and edits ext4 images without root
//! or a mount; `pvfs serve` serves an image over 9P2000.L on a unix socket or loopback TCP;
//! `pvfs share …`, `pvfs status`, `pvfs top` and `pvfs dedup` run in dom0 and manage what the pvfs domain serves, through
//! xenstore.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod dedup;
mod edit;
mod ext4_put;
mod ext4fs;
mod fatfs;
mod format;
mod host_xattrs;
mod image;
mod imagefs;
mod put;
mod resize;
mod serve;
mod share;
mod xs;
#[cfg(test)]
mod xs_fake;

#[derive(Parser)]
#[command(
    name = "pvfs",
    version,
    about = "pvfs host tools: ext4 images, 9P2000.L serving, and shares from dom0"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Read and edit ext4 images directly (no root, no mount).
    #[command(subcommand)]
    Image(image::ImageCmd),
    /// Serve an image over 9P2000.L on a unix socket or loopback TCP.
    Serve(serve::ServeArgs),
    /// In dom0: attach, detach, list and tune the shares pvfs serves to guests.
    #[command(subcommand)]
    Share(share::ShareCmd),
    /// In dom0: the pvfs domain, its volume, version and counters.
    Status(share::StatusArgs),
    /// In dom0: each share's requests, throughput, errors, latency and space, refreshed
    /// like xentop (or once with --json).
    Top(share::TopArgs),
    /// In dom0: merge the identical files of pvfs's volume while guests use it (live dedup),
    /// and print what was saved.
    Dedup(share::DedupArgs),
}

/// Runs a dom0 command on a fresh xenstore connection; exit statuses in docs/pvfs-share.md.
fn run_dom0(
    f: impl FnOnce(&mut xs::XsConn<xs::Transport>) -> Result<String, share::Failure>,
) -> ExitCode {
    let res = xs::XsConn::open()
        .map_err(share::Failure::from)
        .and_then(|mut c| f(&mut c));
    match res {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pvfs: {}", e.msg);
            ExitCode::from(e.code())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Image(c) => image::run(c),
        Cmd::Serve(a) => serve::run(a),
        Cmd::Share(c) => return run_dom0(|s| share::run_share(s, c)),
        Cmd::Status(a) => return run_dom0(|s| share::run_status(s, a)),
        Cmd::Top(a) => return run_dom0(|s| share::run_top(s, a)),
        Cmd::Dedup(a) => return run_dom0(|s| share::run_dedup(s, a)),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pvfs: {e}");
            ExitCode::FAILURE
        }
    }
}
