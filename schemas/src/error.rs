//! Errors of the schemas crate. Each names the file and, where one is at fault, the row
//! (1-based data row, header not counted) and the column, so a user can go straight to it.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

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
    Arrow(#[from] arrow_schema::ArrowError),
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

impl SchemaError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| SchemaError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A Parquet error on `path`.
    pub(crate) fn parquet(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> Self + '_ {
        move |source| SchemaError::Parquet {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Opens `path`, naming it in the error.
pub(crate) fn open_file(path: &Path) -> Result<File, SchemaError> {
    File::open(path).map_err(SchemaError::io(path))
}

/// Opens `path` as a Parquet file for the arrow reader, naming it in the error.
pub(crate) fn parquet_reader(
    path: &Path,
) -> Result<ParquetRecordBatchReaderBuilder<File>, SchemaError> {
    ParquetRecordBatchReaderBuilder::try_new(open_file(path)?).map_err(SchemaError::parquet(path))
}
