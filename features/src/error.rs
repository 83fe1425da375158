//! [`FeaturesError`]: what can go wrong turning prices into weekly rows. Input errors name the
//! file and, where one is at fault, the row (1-based data row, header not counted, the same
//! convention as `trendscore-schemas`) and the column, so a user can go straight to it.

use std::path::PathBuf;

/// Everything the features crate can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeaturesError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CSV could not be parsed (bad quoting, ragged rows, bad UTF-8).
    #[error("{path}: csv: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    /// The Parquet file could not be read.
    #[error("{path}: parquet: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An Arrow column could not be converted.
    #[error("{path}: arrow: {source}")]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// One cell is wrong: unparsable, missing, non-positive, out of order or duplicated.
    #[error("{path}: row {row}, column `{column}`: {message}")]
    Cell {
        path: PathBuf,
        row: usize,
        column: String,
        message: String,
    },
    /// The file as a whole is wrong: empty, missing or unknown columns, wrong layout.
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// Nothing could be built (e.g. no ticker has enough history).
    #[error("no weekly rows: {0}")]
    NoRows(String),
    /// A configuration file is unreadable or invalid.
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    /// `fetch-data` failed (pip, a wheel, a checksum).
    #[error("fetch-data: {0}")]
    Fetch(String),
    /// Writing the output through the schemas crate failed.
    #[error(transparent)]
    Schema(#[from] trendscore_schemas::SchemaError),
}

/// Shorthand used across the crate.
pub type Result<T, E = FeaturesError> = std::result::Result<T, E>;

impl FeaturesError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn cell(
        path: &std::path::Path,
        row: usize,
        column: &str,
        message: impl Into<String>,
    ) -> Self {
        Self::Cell {
            path: path.to_path_buf(),
            row,
            column: column.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn file(path: &std::path::Path, message: impl Into<String>) -> Self {
        Self::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
