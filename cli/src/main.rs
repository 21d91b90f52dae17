//! `pvfs`: the host-side command line. `pvfs image …` reads and edits ext4 images without root
//! or a mount; `pvfs serve` serves an image over 9P2000.L on a unix socket or loopback TCP.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod edit;
mod image;
mod serve;

#[derive(Parser)]
#[command(
    name = "pvfs",
    version,
    about = "pvfs host tools: ext4 images and 9P2000.L serving"
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Image(c) => image::run(c),
        Cmd::Serve(a) => serve::run(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pvfs: {e}");
            ExitCode::FAILURE
        }
    }
}
