//! [`TrainerError`]: what can go wrong in the trainer library, saying whose fault it is.

use std::path::Path;

/// Trainer errors. Data and config errors name the file (and row/column where the schemas crate
/// knows them); tensor errors come from libtorch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainerError {
    /// Reading or validating weekly rows failed (names file, row, column).
    #[error(transparent)]
    Schema(#[from] trendscore_schemas::SchemaError),
    /// A config file or setting is invalid.
    #[error("config {path}: {message}")]
    Config { path: String, message: String },
    /// The data is valid but cannot be used as asked (e.g. too few windows, unknown feature).
    #[error("data {path}: {message}")]
    Data { path: String, message: String },
    /// A checkpoint directory is incomplete or inconsistent.
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },
    /// A checkpoint's `config.json` or `scaler.json` is missing, unreadable or breaks the
    /// checkpoint contract (names the file and the key).
    #[error("checkpoint {0}")]
    Contract(#[from] trendscore_schemas::checkpoint::CheckpointError),
    /// File-system error.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// libtorch error.
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
    /// JSON (de)serialisation error.
    #[error("{path}: json: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The requested device is not available.
    #[error("device: {0}")]
    Device(String),
    /// Writing Parquet or a plot failed.
    #[error("{path}: {message}")]
    Output { path: String, message: String },
}

impl TrainerError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        TrainerError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    pub(crate) fn json(path: &Path, source: serde_json::Error) -> Self {
        TrainerError::Json {
            path: path.display().to_string(),
            source,
        }
    }
    pub(crate) fn ckpt(path: &Path, message: impl Into<String>) -> Self {
        TrainerError::Checkpoint {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
    pub(crate) fn data(path: &Path, message: impl Into<String>) -> Self {
        TrainerError::Data {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = TrainerError> = std::result::Result<T, E>;
