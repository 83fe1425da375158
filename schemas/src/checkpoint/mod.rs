//! The checkpoint contract (docs/contracts.md), defined once for the trainer that writes a
//! checkpoint directory and the exporter that reads it. No tensors here: the weights and the
//! probe are safetensors files each side reads with its own library; this module says what
//! they must hold.
//!
//! - [`files`]: the file names inside a checkpoint directory.
//! - [`model`]: [`ModelConfig`], the `model` section, with the PyTorch name and shape of every
//!   tensor of `model.safetensors` ([`ModelConfig::expected_tensors`]).
//! - [`sections`]: the `sequence` and `features` sections and [`check_spec`], the rules that
//!   tie them to the model.
//! - [`data`]: [`DataSection`], what the rows were (label target, feature transform).
//! - [`ensemble`]: [`EnsembleManifest`], `ensemble.json` of a seed ensemble directory.
//! - [`config`]: [`CheckpointConfig`], `config.json` itself, read leniently where the contract
//!   allows and checked.
//! - [`scaler`]: [`Scaler`], `scaler.json` and the normalisation rule.
//! - [`error`]: [`SpecError`] (which rule) and [`CheckpointError`] (which file).
//!
//! [`CheckpointSpec::load`] reads `config.json` and `scaler.json` and checks them against
//! each other; [`OUTPUT_NAMES`] and [`probe_outputs`] name the tensors of `probe.safetensors`.

use std::path::Path;

pub mod config;
pub mod data;
pub mod ensemble;
pub mod error;
pub mod model;
pub mod scaler;
pub mod sections;

pub use config::{CheckpointConfig, TrainingSection, FORMAT_VERSION};
pub use data::DataSection;
pub use ensemble::{EnsembleManifest, COMBINE_RULE, ENSEMBLE_FILE};
pub use error::{CheckpointError, SpecError};
pub use model::{direction_suffixes, ModelConfig};
pub use scaler::Scaler;
pub use sections::{check_spec, FeatureSection, FeaturesConfig, SequenceConfig, SplitMode};

/// File names inside a checkpoint directory.
pub mod files {
    /// Best weights (PyTorch names).
    pub const MODEL: &str = "model.safetensors";
    /// Run configuration.
    pub const CONFIG: &str = "config.json";
    /// StandardScaler.
    pub const SCALER: &str = "scaler.json";
    /// Probe inputs and CPU outputs.
    pub const PROBE: &str = "probe.safetensors";
    /// Final metrics.
    pub const METRICS: &str = "metrics.json";
    /// Per-epoch history.
    pub const HISTORY: &str = "history.json";
    /// History plot.
    pub const HISTORY_PNG: &str = "history.png";
    /// Best weights so far (during training).
    pub const BEST: &str = "best.safetensors";
    /// Weights after the last finished epoch.
    pub const LAST: &str = "last.safetensors";
    /// Optimiser moments after the last finished epoch.
    pub const OPTIMIZER: &str = "optimizer.safetensors";
    /// Loop state after the last finished epoch (for `--resume`).
    pub const STATE: &str = "train_state.json";
}

/// The model's five outputs in ONNX output order; `probe.safetensors` holds one tensor of
/// each name besides [`PROBE_FEATURES`].
pub const OUTPUT_NAMES: [&str; 5] = [
    "7day_trend",
    "7day_direction",
    "30day_trend",
    "30day_direction",
    "attention_weights",
];

/// The probe's raw input windows, (n, sequence_length, input_dim) float32.
pub const PROBE_FEATURES: &str = "features";

/// Each output name with its width: (n, width) for a window length of `seq`.
pub fn probe_outputs(seq: usize) -> [(&'static str, usize); 5] {
    let [t7, d7, t30, d30, att] = OUTPUT_NAMES;
    [(t7, 1), (d7, 2), (t30, 1), (d30, 2), (att, seq)]
}

/// `config.json` and `scaler.json` of one checkpoint, each checked and both checked against
/// each other (the scaler covers exactly `features.names`).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointSpec<T = serde_json::Value> {
    /// `config.json`.
    pub config: CheckpointConfig<T>,
    /// `scaler.json`.
    pub scaler: Scaler,
}

impl<T> CheckpointSpec<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    /// Reads `dir/config.json` and `dir/scaler.json`.
    pub fn load(dir: &Path) -> Result<Self, CheckpointError> {
        let config = CheckpointConfig::<T>::load(dir)?;
        let path = dir.join(files::SCALER);
        let scaler = Scaler::load(&path)?;
        let input_dim = config.model.input_dim;
        if scaler.feature_names.len() != input_dim {
            return Err(CheckpointError::invalid(&path)(SpecError::ScalerLength {
                what: "feature_names",
                len: scaler.feature_names.len(),
                against: "config.json model.input_dim",
                expected: input_dim,
            }));
        }
        if scaler.feature_names != config.features.names {
            return Err(CheckpointError::invalid(&path)(SpecError::ScalerNames));
        }
        Ok(Self { config, scaler })
    }
}

#[cfg(test)]
mod tests;
