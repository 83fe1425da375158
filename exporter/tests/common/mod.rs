//! Helpers shared by the exporter's integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Writes a random-init checkpoint of `preset` (with `seed`, else the script's default) to
/// `out` with tests/python/make_checkpoint.py (python3 with torch, numpy, safetensors).
pub fn make_checkpoint(out: &Path, preset: &str, seed: Option<u64>) {
    let script = repo_root().join("tests/python/make_checkpoint.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .args(["--out", out.to_str().unwrap(), "--preset", preset]);
    if let Some(seed) = seed {
        cmd.args(["--seed", &seed.to_string()]);
    }
    let o = cmd
        .output()
        .expect("python3 must be installed to make test checkpoints");
    assert!(
        o.status.success(),
        "make_checkpoint.py failed (python3 with torch, numpy, safetensors needed): {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
