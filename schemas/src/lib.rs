//! The contracts every trendscore crate shares.
//!
//! - [`weekly`]: the weekly feature row (`ticker`, `week`, `feature_0..feature_61`,
//!   `trend_7day`, `trend_30day`), its Arrow schema, and validated readers for Parquet and
//!   CSV (plain or gzip) plus a Parquet writer.
//! - [`prediction`]: the prediction row written to Parquet and to the predictions topic,
//!   its Arrow schema and Parquet reader.
//! - [`message`]: the JSON value of an input-topic message.
//! - [`synth`]: a seeded generator of weekly rows with a learnable signal, for tests and demos.
//! - [`error`]: [`SchemaError`], which names the file, the row and the column at fault.
//! - [`logging`]: the binaries' shared `tracing` set-up.
//!
//! This crate has no heavy dependencies beyond arrow/parquet (and tracing-subscriber), so every other crate (and the
//! torch-free scorer) can use it.

pub mod error;
pub mod logging;
pub mod message;
pub mod prediction;
pub mod synth;
pub mod weekly;

pub use error::SchemaError;
pub use message::InputMessage;
pub use prediction::{
    now_ms, prediction_schema, predictions_to_batch, read_predictions, read_predictions_batch,
    PredictionRow,
};
pub use weekly::{
    feature_names, read_rows, rows_to_batch, weekly_schema, write_rows_parquet, WeeklyRow,
};

/// Number of features in a weekly row (feature set v1).
pub const NUM_FEATURES: usize = 62;
/// Number of consecutive weeks in one model window.
pub const SEQUENCE_LENGTH: usize = 12;
/// Prediction horizons in calendar days.
pub const HORIZONS: [u32; 2] = [7, 30];

/// Index of the ISO week that contains `d`: consecutive ISO weeks differ by exactly 1, also
/// across year boundaries (it counts Mondays since 1970-01-05).
pub fn iso_week_index(d: chrono::NaiveDate) -> i64 {
    use chrono::Datelike;
    let monday = d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday()));
    let epoch_monday = chrono::NaiveDate::from_ymd_opt(1970, 1, 5).expect("valid date");
    (monday - epoch_monday).num_days().div_euclid(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn iso_week_index_is_consecutive_across_years() {
        let fri = NaiveDate::from_ymd_opt(2020, 12, 31).unwrap(); // Thursday, ISO week 53
        let next = NaiveDate::from_ymd_opt(2021, 1, 8).unwrap(); // Friday, ISO week 1
        assert_eq!(iso_week_index(next) - iso_week_index(fri), 1);
        // Monday and Sunday of one ISO week share the index.
        let mon = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let sun = NaiveDate::from_ymd_opt(2024, 1, 7).unwrap();
        assert_eq!(iso_week_index(mon), iso_week_index(sun));
        assert_eq!(
            iso_week_index(sun + chrono::Duration::days(1)),
            iso_week_index(mon) + 1
        );
    }
}
