//! A seed ensemble directory (`trainer fit --seeds N`): `ensemble.json` beside one complete
//! checkpoint directory per member. The exporter turns it into one ONNX graph whose outputs
//! are the members' combined by [`COMBINE_RULE`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{read, write_json};
use super::CheckpointError;

/// `ensemble.json`, in an ensemble directory.
pub const ENSEMBLE_FILE: &str = "ensemble.json";

/// How the members' outputs are combined (the exporter's graph and every Rust-side check
/// use this rule): the trends and the attention weights are averaged; the direction
/// probabilities softmax(direction) are averaged, and the combined direction output is
/// their logarithm (floored at the smallest normal float32, so it stays finite), so that
/// softmax(combined direction) is the members' mean probability.
pub const COMBINE_RULE: &str = "mean of trends and attention; direction = ln(mean of member softmax(direction)), floored at 1.18e-38";

/// `ensemble.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnsembleManifest {
    /// Layout version (1).
    pub format_version: u32,
    /// Member checkpoint directories, relative to the ensemble directory, in member order.
    pub members: Vec<String>,
    /// Each member's training seed.
    pub seeds: Vec<u64>,
    /// [`COMBINE_RULE`].
    pub combine: String,
    /// Metrics of the members and of the combined model (written by the trainer; opaque here).
    #[serde(default)]
    pub metrics: serde_json::Value,
}

impl EnsembleManifest {
    /// True when `dir` holds an `ensemble.json`.
    pub fn is_ensemble(dir: &Path) -> bool {
        dir.join(ENSEMBLE_FILE).is_file()
    }

    /// Reads and checks `dir/ensemble.json`: at least one member, one seed per member, every
    /// member a directory below `dir`.
    pub fn load(dir: &Path) -> Result<Self, CheckpointError> {
        let path = dir.join(ENSEMBLE_FILE);
        let m: Self = serde_json::from_slice(&read(&path)?)
            .map_err(|e| CheckpointError::json(&path, e.to_string()))?;
        let bad = |reason: String| Err(CheckpointError::json(&path, reason));
        if m.format_version != 1 {
            return bad(format!(
                "format_version {} is not 1 (written by a newer trainer?)",
                m.format_version
            ));
        }
        if m.members.is_empty() {
            return bad("an ensemble needs at least one member".into());
        }
        if m.seeds.len() != m.members.len() {
            return bad(format!(
                "{} members but {} seeds",
                m.members.len(),
                m.seeds.len()
            ));
        }
        for name in &m.members {
            let rel = Path::new(name);
            if rel.is_absolute() || rel.components().any(|c| c.as_os_str() == "..") {
                return bad(format!(
                    "member {name:?} must be a directory inside the ensemble directory"
                ));
            }
            if !dir.join(rel).is_dir() {
                return bad(format!("member directory {name:?} does not exist"));
            }
        }
        Ok(m)
    }

    /// The members' directories.
    pub fn member_dirs(&self, dir: &Path) -> Vec<PathBuf> {
        self.members.iter().map(|m| dir.join(m)).collect()
    }

    /// Writes `dir/ensemble.json`.
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        write_json(&dir.join(ENSEMBLE_FILE), self)
    }
}
