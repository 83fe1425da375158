//! trendscore-scorer: scores weekly feature rows with the exported model, from Kafka
//! (`scorer run`) or from a Parquet file (`scorer backfill`), into Parquet and a topic.
//!
//! Module map:
//! - [`config`]: the layered service config (TOML file, then `SCORER__*` env, then flags).
//! - [`validate`]: input-message JSON -> validated row, or a dead-letter reason.
//! - [`window`]: the pure per-ticker window store (duplicates, late weeks, gaps).
//! - [`changelog`]: the window changelog's records, writer state and restore plan (pure).
//! - [`pipeline`]: the pure partition pipeline both drivers share: per-partition windows,
//!   restore, batcher, offset ledger, scoring.
//! - [`model`]: the model handle with probe and hot reload.
//! - [`sink`]: the [`sink::PredictionSink`] trait and the local Parquet directory sink
//!   (temp name, fsync, rename, rolling, Hive-style directories, open-writer cap).
//! - [`app`]: `scorer run` as a library call: `app::run(config, shutdown)`.
//! - [`service`]: the Kafka driver: consumer session, rebalance, restore reads, worker.
//! - [`kafka`]: client settings, producers with delivery reports, topics, `scorer replay`.
//! - [`backfill`]: `scorer backfill`, the offline driver over the same pipeline.
//! - [`health`], [`metrics`], [`http`]: liveness/readiness, Prometheus metrics, and the
//!   `/metrics`, `/healthz`, `/readyz` server.
//!
//! [`PredictionRow`]: trendscore_schemas::PredictionRow

pub mod app;
pub mod backfill;
pub mod changelog;
pub mod config;
pub mod health;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod model;
pub mod pipeline;
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
    /// An object-store operation failed (after the client's own retries).
    #[error("{url}: {source}")]
    ObjectStore {
        /// The store URL.
        url: String,
        /// What failed.
        #[source]
        source: Box<object_store::Error>,
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
    /// The broker refused a prediction or dead letter after the producer's retries. The
    /// offsets of its partition were not stored past the message, so a restart redoes it.
    #[error(
        "delivery to {topic} of the record for input partition {partition} offset {offset} \
         failed after retries: {error} (offsets of that partition were not stored past it; \
         a restart reprocesses from the committed offset)"
    )]
    Delivery {
        /// Topic of the record.
        topic: String,
        /// Input partition of the message it belongs to.
        partition: i32,
        /// Input offset of the message it belongs to.
        offset: i64,
        /// The producer's error.
        error: String,
    },
    /// The broker refused a window changelog record after the producer's retries; the next
    /// restore starts from the last complete marker and replays the input from there.
    #[error("window changelog delivery to {topic} failed after retries: {error}")]
    ChangelogDelivery {
        /// Changelog topic.
        topic: String,
        /// The producer's error.
        error: String,
    },
    /// Restoring newly assigned partitions failed; none of their messages was processed.
    #[error("restoring partitions {partitions:?}: {error}")]
    Restore {
        /// The partitions being assigned.
        partitions: Vec<i32>,
        /// What failed.
        error: Box<ScorerError>,
    },
    /// An internal invariant broke (a bug): the process should stop.
    #[error("internal: {0}")]
    Internal(String),
}

/// Whose fault an error is, which says what happens next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The user's to fix (configuration, a model that does not fit): retrying will not help.
    User,
    /// Outside the process (broker, disk, object store): a restart retries.
    External,
    /// A bug: stop loudly.
    Internal,
}

impl ScorerError {
    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            ScorerError::Config(_) | ScorerError::Model(_) => Fault::User,
            ScorerError::Io { .. }
            | ScorerError::Parquet { .. }
            | ScorerError::Kafka(_)
            | ScorerError::ObjectStore { .. }
            | ScorerError::Delivery { .. }
            | ScorerError::ChangelogDelivery { .. } => Fault::External,
            ScorerError::Schema(_) => Fault::User,
            ScorerError::Restore { error, .. } => error.fault(),
            ScorerError::Internal(_) => Fault::Internal,
        }
    }

    /// Whether running again (a restart) may succeed.
    pub fn retryable(&self) -> bool {
        self.fault() == Fault::External
    }
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
