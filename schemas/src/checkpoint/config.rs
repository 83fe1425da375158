//! `config.json`: [`CheckpointConfig`], written by the trainer, read by the trainer (evaluate,
//! predict, resume) and the exporter.
//!
//! Reading is lenient where the contract says so and strict where a wrong model would follow:
//! unknown keys are ignored at every level (docs/contracts.md), so newer writers stay
//! readable; but the `model` section must carry every size ([`ModelConfig::REQUIRED_KEYS`]),
//! `sequence` its `sequence_length`, `features` its `names`, and a `training` section must be
//! present. Missing optional keys take their defaults. The values are then checked with
//! [`check_spec`].

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::error::{read, write_json};
use super::{
    check_spec, files, CheckpointError, DataSection, FeatureSection, ModelConfig, SequenceConfig,
    SpecError,
};

/// The layout version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// `config.json`. `T` is the `training` section: the trainer's full run configuration
/// (`TrainConfig`), or an opaque [`serde_json::Value`] for readers that only carry it along
/// (the exporter copies it into the model card).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckpointConfig<T = Value> {
    /// Layout version of the directory ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Model sizes.
    pub model: ModelConfig,
    /// The full training configuration used.
    pub training: T,
    /// Windowing and split.
    pub sequence: SequenceConfig,
    /// Feature names, model-input order.
    pub features: FeatureSection,
    /// What the rows were: the label target and feature transform of their manifest
    /// (optional on read: a checkpoint without it reads as `unknown`).
    pub data: DataSection,
    /// When training finished (RFC 3339, UTC); empty while training.
    pub trained_at: String,
    /// The seed.
    pub seed: u64,
}

/// A run configuration that repeats the checkpoint's model, sequence and feature sections,
/// so that `config.json` can be made from it ([`CheckpointConfig::from_train`]).
pub trait TrainingSection {
    /// Model sizes.
    fn model(&self) -> &ModelConfig;
    /// Windowing and split.
    fn sequence(&self) -> &SequenceConfig;
    /// Feature selection.
    fn features(&self) -> &FeatureSection;
    /// The run's seed.
    fn seed(&self) -> u64;
}

/// The seed a config without one is read with.
const DEFAULT_SEED: u64 = 42;

impl<T: TrainingSection + Clone> CheckpointConfig<T> {
    /// The config.json of a run with `cfg` on rows described by `data`.
    pub fn from_train(cfg: &T, data: DataSection, trained_at: String) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            model: cfg.model().clone(),
            training: cfg.clone(),
            sequence: cfg.sequence().clone(),
            features: cfg.features().clone(),
            data,
            trained_at,
            seed: cfg.seed(),
        }
    }
}

impl<T: Serialize> CheckpointConfig<T> {
    /// Writes `config.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        write_json(&dir.join(files::CONFIG), self)
    }
}

impl<T: Serialize + DeserializeOwned + Default> CheckpointConfig<T> {
    /// Reads and checks `dir/config.json`.
    pub fn load(dir: &Path) -> Result<Self, CheckpointError> {
        Self::read(&dir.join(files::CONFIG))
    }

    /// Reads and checks the config file at `path`.
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let doc: Value = serde_json::from_slice(&read(path)?)
            .map_err(|e| CheckpointError::json(path, e.to_string()))?;
        Self::from_json(path, &doc)
    }

    /// Parses a config document; `path` names it in errors.
    pub fn from_json(path: &Path, doc: &Value) -> Result<Self, CheckpointError> {
        let err = |reason: String| CheckpointError::json(path, reason);
        if !doc.is_object() {
            return Err(err("expected a JSON object".into()));
        }
        let format_version = match doc.get("format_version") {
            None => FORMAT_VERSION,
            Some(v) => match v.as_u64() {
                Some(v) if v == u64::from(FORMAT_VERSION) => FORMAT_VERSION,
                Some(v) => return Err(CheckpointError::invalid(path)(SpecError::FormatVersion(v))),
                None => return Err(err(format!("format_version: expected an integer, got {v}"))),
            },
        };
        let model: ModelConfig = section(path, doc, "model", &ModelConfig::REQUIRED_KEYS)?;
        let training: T = section(path, doc, "training", &[])?;
        let sequence: SequenceConfig =
            section(path, doc, "sequence", &SequenceConfig::REQUIRED_KEYS)?;
        let features: FeatureSection =
            section(path, doc, "features", &FeatureSection::REQUIRED_KEYS)?;
        let data: DataSection = match doc.get("data") {
            None | Some(Value::Null) => DataSection::default(),
            Some(_) => section(path, doc, "data", &[])?,
        };
        let trained_at = match doc.get("trained_at") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => return Err(err(format!("trained_at: expected a string, got {v}"))),
        };
        let seed = match doc.get("seed") {
            None | Some(Value::Null) => DEFAULT_SEED,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| err(format!("seed: expected an unsigned integer, got {v}")))?,
        };
        let cfg = Self {
            format_version,
            model,
            training,
            sequence,
            features,
            data,
            trained_at,
            seed,
        };
        cfg.validate().map_err(CheckpointError::invalid(path))?;
        Ok(cfg)
    }
}

impl<T> CheckpointConfig<T> {
    /// The contract's rules over the model, sequence and feature sections ([`check_spec`]).
    pub fn validate(&self) -> Result<(), SpecError> {
        check_spec(&self.model, &self.sequence, &self.features)
    }
}

/// Section `key` of `doc` as `S`: it must be present and hold `required`; keys that `S`'s
/// default does not serialise are dropped (recursively), the rest deserialised, so absent
/// optional keys take `S`'s defaults.
fn section<S: Serialize + DeserializeOwned + Default>(
    path: &Path,
    doc: &Value,
    key: &str,
    required: &[&str],
) -> Result<S, CheckpointError> {
    let err = |reason: String| CheckpointError::json(path, format!("section {key:?}: {reason}"));
    let v = doc
        .get(key)
        .ok_or_else(|| CheckpointError::json(path, format!("missing section {key:?}")))?;
    let known = serde_json::to_value(S::default()).map_err(|e| err(e.to_string()))?;
    if known.is_object() && !v.is_object() {
        return Err(err(format!("expected an object, got {v}")));
    }
    if let Some(missing) = required.iter().find(|k| v.get(**k).is_none()) {
        return Err(err(format!("missing field `{missing}`")));
    }
    serde_json::from_value(known_keys(v, &known)).map_err(|e| err(e.to_string()))
}

/// `v` without the object keys that `known` lacks, at every level where both are objects.
/// A non-object `known` (an opaque [`Value`] section) keeps `v` whole.
fn known_keys(v: &Value, known: &Value) -> Value {
    match (v, known) {
        (Value::Object(o), Value::Object(k)) => Value::Object(
            o.iter()
                .filter_map(|(key, val)| Some((key.clone(), known_keys(val, k.get(key)?))))
                .collect(),
        ),
        _ => v.clone(),
    }
}
