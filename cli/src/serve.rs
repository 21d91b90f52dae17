//! `pvfs serve`.

use clap::Args;

#[derive(Args)]
pub struct ServeArgs {
    /// ext4 image to serve
    #[arg(long)]
    image: std::path::PathBuf,
}

pub fn run(a: ServeArgs) -> Result<(), String> {
    Err(format!("{}: serve not supported yet", a.image.display()))
}
