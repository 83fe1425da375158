//! [`ExportError`]: every way an export or a parity check can fail, naming the file and item.

use std::path::PathBuf;

/// Errors of the exporter library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A required checkpoint file is missing.
    #[error("checkpoint file missing: {0}")]
    MissingFile(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON file does not parse or lacks a required key.
    #[error("{path}: invalid JSON for the checkpoint contract: {reason}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde's message (with line and column).
        reason: String,
    },
    /// A safetensors file is truncated or corrupt.
    #[error("{path}: not a readable safetensors file (truncated or corrupt?): {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A tensor is missing, has the wrong dtype or shape, or is not expected for the config.
    #[error("{path}: tensor {name:?}: {reason}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// What is wrong (expected vs found).
        reason: String,
    },
    /// The config, scaler and weights do not agree, or a value is out of range.
    #[error("{path}: {reason}")]
    Inconsistent {
        /// The file at fault.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// The exported graph does not reproduce the checkpoint's probe outputs.
    #[error("parity check failed on {backend}: {details}")]
    Parity {
        /// Backend that ran the model.
        backend: String,
        /// Per-output max abs differences and the tolerance.
        details: String,
    },
    /// An inference backend failed.
    #[error(transparent)]
    Infer(#[from] trendscore_infer::InferError),
}

impl From<trendscore_schemas::checkpoint::CheckpointError> for ExportError {
    /// The contract's errors keep their kind: a missing file, an I/O error, bad JSON, or
    /// values that break a rule (an inconsistency in that file).
    fn from(e: trendscore_schemas::checkpoint::CheckpointError) -> Self {
        use trendscore_schemas::checkpoint::CheckpointError as C;
        match e {
            C::MissingFile(path) => ExportError::MissingFile(path),
            C::Io { path, source } => ExportError::Io { path, source },
            C::Json { path, reason } => ExportError::Json { path, reason },
            C::Invalid { path, source } => ExportError::Inconsistent {
                path,
                reason: source.to_string(),
            },
            other => ExportError::Inconsistent {
                path: other.path().to_path_buf(),
                reason: other.to_string(),
            },
        }
    }
}
