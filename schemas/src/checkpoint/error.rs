//! Errors of the checkpoint contract: [`SpecError`] says which rule a model spec, a section of
//! `config.json` or a scaler breaks (no path: it is about values); [`CheckpointError`] adds the
//! file that holds them.

use std::path::{Path, PathBuf};

/// A rule of the checkpoint contract that a value breaks. The messages name the
/// `config.json` key (`model.hidden_dim`) or the `scaler.json` field at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A size that must be at least 1 is 0.
    #[error("{key} must be >= 1")]
    Zero {
        /// The key, e.g. `model.hidden_dim`.
        key: &'static str,
    },
    /// `num_attention_heads` does not divide `hidden_dim`.
    #[error("model.num_attention_heads ({heads}) must divide model.hidden_dim ({hidden})")]
    HeadsDoNotDivide {
        /// `model.num_attention_heads`.
        heads: usize,
        /// `model.hidden_dim`.
        hidden: usize,
    },
    /// `dropout_rate` is outside `[0, 1)`.
    #[error("model.dropout_rate must be in [0, 1), got {0}")]
    Dropout(f64),
    /// A head width is 0.
    #[error("model.head_hidden_dims must not contain 0, got {0:?}")]
    ZeroHeadWidth(Vec<usize>),
    /// The horizons are not the two model heads.
    #[error("sequence.horizons must be [7, 30] (the two model heads), got {0:?}")]
    Horizons(Vec<u32>),
    /// No feature is selected.
    #[error("features.names must not be empty")]
    NoFeatures,
    /// A feature is listed twice.
    #[error("features.names lists `{0}` twice")]
    DuplicateFeature(String),
    /// The model input width differs from the number of features.
    #[error(
        "model.input_dim is {input_dim} but features.names lists {names} features; make them equal"
    )]
    InputDim {
        /// `model.input_dim`.
        input_dim: usize,
        /// `features.names.len()`.
        names: usize,
    },
    /// A scaler vector has the wrong length.
    #[error("{what} has {len} entries but {against} is {expected}")]
    ScalerLength {
        /// `feature_names`, `mean` or `std`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// What it must match (`the number of feature_names`, `config.json model.input_dim`).
        against: &'static str,
        /// The length it must have.
        expected: usize,
    },
    /// A scaler statistic is not finite, or a std is negative.
    #[error("feature {index} ({name}): mean {mean} / std {std} must be finite with std >= 0")]
    ScalerValue {
        /// 0-based feature index.
        index: usize,
        /// Its name.
        name: String,
        /// The mean.
        mean: f64,
        /// The standard deviation.
        std: f64,
    },
    /// The scaler was fit on other features than the config names.
    #[error("feature_names differ from config.json features.names")]
    ScalerNames,
    /// `format_version` is newer than this build understands.
    #[error("format_version {0} is not supported (this build reads version 1)")]
    FormatVersion(u64),
}

/// Reading or writing a checkpoint's `config.json` or `scaler.json` failed. Every variant
/// names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A required file is missing.
    #[error("checkpoint file missing: {0}")]
    MissingFile(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file does not parse, lacks a required key or has a value of the wrong type.
    #[error("{path}: invalid JSON for the checkpoint contract: {reason}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde's message (with the section and, where known, line and column).
        reason: String,
    },
    /// The file parses but breaks a rule of the contract.
    #[error("{path}: {source}")]
    Invalid {
        /// The file at fault.
        path: PathBuf,
        /// The rule.
        #[source]
        source: SpecError,
    },
}

impl CheckpointError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            CheckpointError::MissingFile(path)
            | CheckpointError::Io { path, .. }
            | CheckpointError::Json { path, .. }
            | CheckpointError::Invalid { path, .. } => path,
        }
    }

    pub(crate) fn json(path: &Path, reason: impl Into<String>) -> Self {
        CheckpointError::Json {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(path: &Path) -> impl FnOnce(SpecError) -> Self + '_ {
        move |source| CheckpointError::Invalid {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Reads a whole file; a missing one is [`CheckpointError::MissingFile`].
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CheckpointError::MissingFile(path.to_path_buf())
        } else {
            CheckpointError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Writes `v` as pretty JSON.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<(), CheckpointError> {
    let text =
        serde_json::to_string_pretty(v).map_err(|e| CheckpointError::json(path, e.to_string()))?;
    std::fs::write(path, text).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}
