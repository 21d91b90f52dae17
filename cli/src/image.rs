//! `pvfs image …` subcommands.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Print the image's features, sizes and state.
    Info {
        /// ext4 image file
        image: std::path::PathBuf,
    },
}

pub fn run(cmd: ImageCmd) -> Result<(), String> {
    match cmd {
        ImageCmd::Info { image } => Err(format!("{}: not supported yet", image.display())),
    }
}
