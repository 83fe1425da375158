//! Errors of the schemas crate. Each names the file and, where one is at fault, the row
//! (1-based data row, header not counted) and the column, so a user can go straight to it.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing the shared formats.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: parquet: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{path}: unsupported file type (expected .parquet, .csv or .csv.gz)")]
    UnsupportedFormat { path: PathBuf },
    #[error("{path}: missing column `{column}`")]
    MissingColumn { path: PathBuf, column: String },
    #[error("{path}: column `{column}` has type {found}, expected {expected}")]
    WrongType {
        path: PathBuf,
        column: String,
        found: String,
        expected: &'static str,
    },
    #[error(
        "{path}: row {row}, column `{column}`: value is {value} (NaN and infinity are not allowed)"
    )]
    NonFinite {
        path: PathBuf,
        row: usize,
        column: String,
        value: f64,
    },
    #[error("{path}: row {row}, column `{column}`: cannot parse {value:?} ({reason})")]
    BadValue {
        path: PathBuf,
        row: usize,
        column: String,
        value: String,
        reason: String,
    },
    #[error("{path}: row {row}, column `{column}`: missing value")]
    Null {
        path: PathBuf,
        row: usize,
        column: String,
    },
    #[error("{path}: row {row}: duplicate (ticker, week) = ({ticker}, {week}), first seen at row {first_row}")]
    Duplicate {
        path: PathBuf,
        row: usize,
        ticker: String,
        week: chrono::NaiveDate,
        first_row: usize,
    },
    #[error("{path}: row {row}: expected {expected} fields, found {found}")]
    Width {
        path: PathBuf,
        row: usize,
        expected: usize,
        found: usize,
    },
    #[error("{path}: csv: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("invalid rows: {0}")]
    InvalidRows(String),
}
