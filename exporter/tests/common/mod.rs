//! Helpers shared by the exporter's integration tests.

use std::path::PathBuf;

/// The workspace root. `CARGO_MANIFEST_DIR` is read at run time first: cargo sets it when it
/// runs the tests, and a binary built from another checkout sharing the target dir (CI) must
/// not look into that checkout.
pub fn repo_root() -> PathBuf {
    let manifest: PathBuf = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    manifest.parent().unwrap().to_path_buf()
}
