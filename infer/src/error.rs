//! The error type of trendscore-infer.

use std::path::PathBuf;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    /// The model file could not be read.
    #[error("cannot read model {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not an ONNX model of the trendscore contract (bad protobuf, missing
    /// metadata property, wrong input shape, missing output).
    #[error("{path}: not a trendscore ONNX model: {reason}")]
    BadModel {
        /// The file ("<memory>" when loaded from bytes).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An unknown backend name.
    #[error("unknown backend {0:?} (expected auto, ort-cuda, ort-cpu or tract)")]
    UnknownBackend(String),
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("ONNX Runtime library unavailable: {0}")]
    OrtLibrary(String),
    /// The CUDA execution provider could not be registered.
    #[error("CUDA execution provider unavailable: {0}")]
    CudaUnavailable(String),
    /// A backend failed to build a session / plan for the model.
    #[error("{backend} could not load the model: {reason}")]
    Backend {
        /// The backend name.
        backend: &'static str,
        /// The backend's message.
        reason: String,
    },
    /// The feature buffer does not hold `batch` windows.
    #[error(
        "input holds {got} values, expected batch {batch} x sequence_length {sequence_length} x input_dim {input_dim} (batch must be >= 1)"
    )]
    InputShape {
        /// Requested batch.
        batch: usize,
        /// Model window length.
        sequence_length: usize,
        /// Model feature count.
        input_dim: usize,
        /// Values passed.
        got: usize,
    },
    /// Running the model failed.
    #[error("{backend} inference failed: {reason}")]
    Run {
        /// The backend name.
        backend: &'static str,
        /// The backend's message.
        reason: String,
    },
}

impl InferError {
    /// Attaches the model path to a [`InferError::BadModel`] created from bytes.
    pub(crate) fn with_path(self, p: &std::path::Path) -> Self {
        match self {
            InferError::BadModel { reason, .. } => InferError::BadModel {
                path: p.to_path_buf(),
                reason,
            },
            other => other,
        }
    }
}
