//! trendscore-scorer: scores weekly feature rows with the exported model, from Kafka
//! (`scorer run`) or from a Parquet file (`scorer backfill`), into Parquet and a topic.
//!
//! Module map:
//! - [`config`]: the layered service config (TOML file, then `SCORER__*` env, then flags).
//! - [`validate`]: input-message JSON -> validated row, or a dead-letter reason.
//! - [`window`]: the pure per-ticker window store (duplicates, late weeks, gaps).
//! - [`changelog`]: the window changelog's records, writer state and restore plan (pure).
//! - [`scoring`]: windows -> model -> [`PredictionRow`]s; the model handle with hot reload.
//! - [`sink`]: the [`sink::PredictionSink`] trait and the local Parquet directory sink
//!   (temp name, fsync, rename, rolling, Hive-style directories, open-writer cap).
//! - [`service`]: the Kafka consumer/worker pipeline behind `scorer run`.
//! - [`kafka`]: client settings, topic creation and `scorer replay`.
//! - [`backfill`]: `scorer backfill`, the same window and sink code offline.
//! - [`metrics`]: Prometheus metrics and the `/metrics`, `/healthz`, `/readyz` server.
//!
//! [`PredictionRow`]: trendscore_schemas::PredictionRow

pub mod backfill;
pub mod changelog;
pub mod config;
pub mod kafka;
pub mod metrics;
pub mod scoring;
pub mod service;
pub mod sink;
pub mod validate;
pub mod window;

#[cfg(test)]
mod test_support;

/// Errors of the scorer library. Bad input data is never an error here (it is dead-lettered
/// or counted); these are broker, disk, model and configuration failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScorerError {
    /// The configuration could not be read or is invalid (the user's to fix).
    #[error("config: {0}")]
    Config(String),
    /// A file-system operation failed (retry or fix the disk).
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing or reading Parquet failed.
    #[error("{path}: parquet: {source}")]
    Parquet {
        path: std::path::PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A schema-level failure (reading rows, building batches); boxed, it is large.
    #[error(transparent)]
    Schema(Box<trendscore_schemas::SchemaError>),
    /// The model failed to load or to run.
    #[error("model: {0}")]
    Model(String),
    /// The broker or the Kafka client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// An internal invariant broke (a bug): the process should stop.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<trendscore_schemas::SchemaError> for ScorerError {
    fn from(e: trendscore_schemas::SchemaError) -> Self {
        ScorerError::Schema(Box::new(e))
    }
}

/// Result alias for the scorer library.
pub type Result<T, E = ScorerError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path, source: std::io::Error) -> ScorerError {
    ScorerError::Io {
        path: path.to_path_buf(),
        source,
    }
}
