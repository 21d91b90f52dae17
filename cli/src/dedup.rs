//! `pvfs image dedup`: merge identical regular files of an image into shared store files
//! (`pvfs_fs::dedup`), offline. Output formats are documented in `docs/pvfs-image.md`.

use crate::ext4fs::with_ext4;
use pvfs_fs::dedup::{dedup, DedupReport};
use std::path::Path;

/// The one-line summary (or, with `json`, one JSON object).
pub fn summary(r: &DedupReport, json: bool) -> String {
    if json {
        format!(
            "{{\"files_scanned\":{},\"files_merged\":{},\"stores_created\":{},\"mismatches\":{},\"bytes_saved\":{}}}\n",
            r.files_scanned, r.files_merged, r.stores_created, r.mismatches, r.bytes_saved
        )
    } else {
        format!(
            "merged {} files ({} new shared contents), saved {} bytes; {} files scanned\n",
            r.files_merged, r.stores_created, r.bytes_saved, r.files_scanned
        )
    }
}

/// Run `pvfs image dedup IMAGE [PATH…]`.
pub fn run(image: &Path, paths: &[String], json: bool) -> Result<String, String> {
    let roots: Vec<&[u8]> = if paths.is_empty() {
        vec![b"/".as_slice()]
    } else {
        paths.iter().map(|p| p.as_bytes()).collect()
    };
    let report = with_ext4(image, |fs| {
        dedup(fs, &roots).map_err(|e| format!("{}: dedup: {e}", image.display()))
    })?;
    Ok(summary(&report, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_formats() {
        let r = DedupReport {
            files_scanned: 5,
            files_merged: 3,
            stores_created: 1,
            mismatches: 0,
            bytes_saved: 8192,
        };
        assert_eq!(
            summary(&r, false),
            "merged 3 files (1 new shared contents), saved 8192 bytes; 5 files scanned\n"
        );
        assert_eq!(
            summary(&r, true),
            "{\"files_scanned\":5,\"files_merged\":3,\"stores_created\":1,\"mismatches\":0,\"bytes_saved\":8192}\n"
        );
    }
}
