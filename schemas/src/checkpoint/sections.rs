//! The `sequence` and `features` sections of `config.json` (also the trainer's TOML
//! sections of the same names), and [`check_spec`], the rules that tie them to the model.

use serde::{Deserialize, Serialize};

use super::{ModelConfig, SpecError};
use crate::{feature_names, HORIZONS, SEQUENCE_LENGTH};

/// How the trainer splits windows into training, validation and test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMode {
    /// By date, train < validation < test, with a purge gap so no label leaks forward.
    Time,
    /// Windows shuffled (seeded) then cut; labels may overlap across splits.
    Shuffled,
}

/// Windowing and split (`sequence`). `evaluate --split test` re-derives the split from it,
/// so it is part of the checkpoint, not only of the training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SequenceConfig {
    /// Weeks per window (the ONNX contract fixes 12).
    pub sequence_length: usize,
    /// Label horizons in calendar days (fixed: 7 and 30).
    pub horizons: Vec<u32>,
    /// Fraction of (dates of) windows for training.
    pub train_ratio: f64,
    /// Fraction for validation; the rest is the test split.
    pub val_ratio: f64,
    /// `time` or `shuffled`.
    pub split: SplitMode,
}

impl Default for SequenceConfig {
    fn default() -> Self {
        Self {
            sequence_length: SEQUENCE_LENGTH,
            horizons: HORIZONS.to_vec(),
            train_ratio: 0.70,
            val_ratio: 0.15,
            split: SplitMode::Time,
        }
    }
}

impl SequenceConfig {
    /// Keys a `config.json` sequence section must carry.
    pub const REQUIRED_KEYS: [&'static str; 1] = ["sequence_length"];
}

/// Feature selection (`features`): the weekly-row columns that feed the model, in
/// model-input order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeaturesConfig {
    /// Feature names (columns of the weekly rows) in model-input order.
    pub names: Vec<String>,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        Self {
            names: feature_names(),
        }
    }
}

impl FeaturesConfig {
    /// Keys a `config.json` features section must carry.
    pub const REQUIRED_KEYS: [&'static str; 1] = ["names"];
}

/// The `features` section of `config.json` (the same struct as the TOML section).
pub type FeatureSection = FeaturesConfig;

/// The rules a model, its windows and its features obey together: the model's own
/// ([`ModelConfig::validate`]), a window of at least one week, the two horizons 7 and 30,
/// a non-empty feature list without repeats, exactly `input_dim` long.
pub fn check_spec(
    model: &ModelConfig,
    sequence: &SequenceConfig,
    features: &FeaturesConfig,
) -> Result<(), SpecError> {
    model.validate()?;
    if sequence.sequence_length == 0 {
        return Err(SpecError::Zero {
            key: "sequence.sequence_length",
        });
    }
    if sequence.horizons != HORIZONS {
        return Err(SpecError::Horizons(sequence.horizons.clone()));
    }
    if features.names.is_empty() {
        return Err(SpecError::NoFeatures);
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = features.names.iter().find(|n| !seen.insert(*n)) {
        return Err(SpecError::DuplicateFeature(dup.clone()));
    }
    if model.input_dim != features.names.len() {
        return Err(SpecError::InputDim {
            input_dim: model.input_dim,
            names: features.names.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_each_rule_is_named() {
        let (m, s, f) = (
            ModelConfig::default(),
            SequenceConfig::default(),
            FeaturesConfig::default(),
        );
        check_spec(&m, &s, &f).unwrap();
        let e = |m: &ModelConfig, s: &SequenceConfig, f: &FeaturesConfig| {
            check_spec(m, s, f).unwrap_err().to_string()
        };
        let short = FeaturesConfig {
            names: f.names[..10].to_vec(),
        };
        assert!(e(&m, &s, &short).contains("model.input_dim is 62"));
        let dup = FeaturesConfig {
            names: vec!["a".into(), "a".into()],
        };
        assert!(e(&m, &s, &dup).contains("`a` twice"));
        let h = SequenceConfig {
            horizons: vec![7],
            ..s.clone()
        };
        assert!(e(&m, &h, &f).contains("sequence.horizons"));
        let z = SequenceConfig {
            sequence_length: 0,
            ..s
        };
        assert!(e(&m, &z, &f).contains("sequence.sequence_length"));
    }
}
