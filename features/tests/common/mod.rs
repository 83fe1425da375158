//! Helpers shared by the integration tests.
#![allow(dead_code)]

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use trendscore_features::DailySeries;

pub fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// `n` weekdays (Mon-Fri, no holidays) from `start`.
pub fn weekdays(start: NaiveDate, n: usize) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut x = start;
    while out.len() < n {
        if !matches!(x.weekday(), Weekday::Sat | Weekday::Sun) {
            out.push(x);
        }
        x += Duration::days(1);
    }
    out
}

pub fn series(ticker: &str, dates: &[NaiveDate], closes: Vec<f64>) -> DailySeries {
    DailySeries {
        ticker: ticker.to_string(),
        dates: dates.to_vec(),
        closes,
    }
}

/// Index of a feature by key.
pub fn fi(key: &str) -> usize {
    trendscore_features::FEATURES
        .iter()
        .position(|f| f.key == key)
        .unwrap_or_else(|| panic!("no feature {key}"))
}

pub fn assert_close(got: f32, want: f64, tol: f64, what: &str) {
    assert!(
        (f64::from(got) - want).abs() <= tol,
        "{what}: got {got}, want {want} (tol {tol})"
    );
}

/// The repository's data dir (`TRENDSCORE_DATA_DIR` or `<workspace>/data`).
pub fn data_dir() -> std::path::PathBuf {
    std::env::var_os("TRENDSCORE_DATA_DIR")
        .map(Into::into)
        .unwrap_or_else(|| {
            // run-time CARGO_MANIFEST_DIR first: a test binary may come from another checkout
            let manifest: std::path::PathBuf = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
                || env!("CARGO_MANIFEST_DIR").into(),
                std::path::PathBuf::from,
            );
            manifest.join("../data")
        })
}
