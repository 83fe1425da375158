//! The contracts every trendscore crate shares.
//!
//! - [`weekly`]: the weekly feature row (`ticker`, `week`, `feature_0..feature_61`,
//!   `trend_7day`, `trend_30day`), its Arrow schema, and validated readers for Parquet and
//!   CSV (plain or gzip) plus a Parquet writer.
//! - [`prediction`]: the prediction row written to Parquet and to the predictions topic,
//!   its Arrow schema and Parquet reader.
//! - [`message`]: the JSON value of an input-topic message.
//! - [`checkpoint`]: the checkpoint directory's contract (file names, the model spec and the
//!   names and shapes of its tensors, `config.json`, `scaler.json`), shared by the trainer
//!   that writes it and the exporter that reads it.
//! - `synth` (feature `synth`): a seeded generator of weekly rows with a learnable signal, for
//!   tests and demos.
//! - [`dates`]: the accepted date range (0001-01-01..=9999-12-31), ISO week indices and
//!   Date32 conversions, all without panics.
//! - [`error`]: [`SchemaError`], which names the file, the row and the column at fault.
//! - `logging` (feature `logging`): the binaries' shared `tracing` set-up.
//!
//! This crate has no heavy dependencies beyond arrow/parquet, so every other crate (and the
//! torch-free scorer) can use it; `tracing-subscriber` and `rand` come only with the
//! `logging` and `synth` features.

pub mod checkpoint;
pub mod dates;
pub mod error;
#[cfg(feature = "logging")]
pub mod logging;
pub mod message;
pub mod prediction;
pub mod stats;
#[cfg(feature = "synth")]
pub mod synth;
pub mod weekly;

pub use dates::{check_date, iso_week_index, parse_date, MAX_DATE, MIN_DATE};
pub use error::SchemaError;
pub use message::InputMessage;
pub use prediction::{
    now_ms, prediction_schema, predictions_to_batch, read_predictions, read_predictions_batch,
    PredictionRow,
};
pub use weekly::{
    feature_names, is_rows_file, read_rows, read_rows_where, rows_to_batch, ticker_counts,
    weekly_schema, write_rows_parquet, WeeklyRow,
};

/// Number of features in a weekly row (feature set v1).
pub const NUM_FEATURES: usize = 62;
/// Number of consecutive weeks in one model window.
pub const SEQUENCE_LENGTH: usize = 12;
/// Prediction horizons in calendar days.
pub const HORIZONS: [u32; 2] = [7, 30];
