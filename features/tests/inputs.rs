//! Input handling: long vs wide vs Parquet give identical output, and bad input gives an error
//! naming file, row and column (or its documented fate).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use trendscore_features::build::{build_files, sidecar_path, MANIFEST_KEY};
use trendscore_features::synth::{write_long_csv, write_wide_csv};
use trendscore_features::{
    build_rows, generate, read_prices, BuildConfig, DailySeries, FeaturesError, PriceColumn,
    SynthConfig,
};

fn small_synth() -> Vec<DailySeries> {
    let mut s = generate(&SynthConfig {
        tickers: 3,
        days: 420,
        seed: 11,
        ..Default::default()
    })
    .series;
    // Stagger the starts so the wide file has empty cells (listed later) and round to the
    // CSV's 6 decimals so every route sees the same numbers.
    s[1].dates.drain(..30);
    s[1].closes.drain(..30);
    s[2].dates.truncate(400);
    s[2].closes.truncate(400);
    for t in &mut s {
        for c in &mut t.closes {
            *c = (*c * 1e6).round() / 1e6;
        }
    }
    s
}

fn write_parquet_long(path: &Path, series: &[DailySeries]) {
    let mut dates = Vec::new();
    let mut tick = Vec::new();
    let mut close = Vec::new();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    for s in series {
        for (d, c) in s.dates.iter().zip(&s.closes) {
            dates.push((*d - epoch).num_days() as i32);
            tick.push(s.ticker.clone());
            close.push(*c);
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, false),
        Field::new("ticker", DataType::Utf8, false),
        Field::new("close", DataType::Float64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(dates)),
        Arc::new(StringArray::from(tick)),
        Arc::new(Float64Array::from(close)),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn long_wide_gzip_and_parquet_inputs_give_identical_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = small_synth();
    let long = dir.path().join("long.csv");
    let wide = dir.path().join("wide.csv.gz");
    let pq = dir.path().join("long.parquet");
    write_long_csv(&long, &s).unwrap();
    write_wide_csv(&wide, &s).unwrap();
    write_parquet_long(&pq, &s);
    let cfg = BuildConfig::default();
    let a = read_prices(&long, PriceColumn::Auto).unwrap();
    let b = read_prices(&wide, PriceColumn::Auto).unwrap();
    let c = read_prices(&pq, PriceColumn::Auto).unwrap();
    assert_eq!(a.series, s);
    assert_eq!(a.series, b.series);
    assert_eq!(a.series, c.series);
    assert_eq!(b.missing_cells, 30 + 20); // staggered start + early end
    let ra = build_rows(&a.series, None, &cfg).unwrap();
    let rb = build_rows(&b.series, None, &cfg).unwrap();
    assert!(!ra.rows.is_empty());
    assert_eq!(ra.rows, rb.rows);
    // End to end through the files: the Parquet outputs hold identical rows.
    let (oa, ob) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    build_files(&long, None, &oa, &cfg).unwrap();
    build_files(&wide, None, &ob, &cfg).unwrap();
    let (xa, xb) = (
        trendscore_schemas::read_rows(&oa).unwrap(),
        trendscore_schemas::read_rows(&ob).unwrap(),
    );
    assert_eq!(xa, ra.rows);
    assert_eq!(xa, xb);
}

#[test]
fn output_has_manifest_in_footer_and_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let s = small_synth();
    let long = dir.path().join("p.csv");
    write_long_csv(&long, &s).unwrap();
    let out = dir.path().join("sub/rows.parquet");
    let man = build_files(&long, None, &out, &BuildConfig::default()).unwrap();
    assert_eq!(man.features.len(), 62);
    assert_eq!(man.features[0].column, "feature_0");
    assert_eq!(man.features[61].column, "feature_61");
    assert!(man
        .features
        .iter()
        .all(|f| f.version == "v1" && !f.definition.is_empty()));
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sidecar_path(&out)).unwrap()).unwrap();
    assert_eq!(side["feature_set_version"], "v1");
    assert_eq!(
        side["report"]["rows"].as_u64().unwrap() as usize,
        man.report.rows
    );
    let f = std::fs::File::open(&out).unwrap();
    let r = parquet::file::reader::SerializedFileReader::new(f).unwrap();
    use parquet::file::reader::FileReader;
    let kv = r.metadata().file_metadata().key_value_metadata().unwrap();
    let m = kv.iter().find(|k| k.key == MANIFEST_KEY).unwrap();
    let footer: serde_json::Value = serde_json::from_str(m.value.as_ref().unwrap()).unwrap();
    assert_eq!(footer, side);
    // Rows: never NaN/Inf, sorted, and the report counts add up.
    let rows = trendscore_schemas::read_rows(&out).unwrap();
    assert!(rows
        .iter()
        .all(|r| r.features.iter().all(|v| v.is_finite())));
    assert_eq!(
        man.report.rows
            + man.report.rows_without_history
            + man.report.rows_without_market
            + man.report.rows_non_finite,
        man.report.weeks_in
    );
    assert_eq!(man.report.market, "cross_sectional_mean");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn err_text(path: &Path) -> String {
    match read_prices(path, PriceColumn::Auto) {
        Ok(t) => panic!("{} was accepted: {} series", path.display(), t.series.len()),
        Err(e) => e.to_string(),
    }
}

fn assert_names(msg: &str, file: &str, row: Option<usize>, column: &str) {
    assert!(msg.contains(file), "{msg:?} does not name the file {file}");
    if let Some(r) = row {
        assert!(
            msg.contains(&format!("row {r},")),
            "{msg:?} does not name row {r}"
        );
    }
    assert!(
        msg.contains(&format!("`{column}`")),
        "{msg:?} does not name column {column}"
    );
}

#[test]
fn bad_input_errors_name_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path();
    let h = "date,ticker,close\n";
    // Unsorted dates for one ticker (row 3 is before row 2 for A).
    let p = write(
        dp,
        "unsorted.csv",
        &format!("{h}2020-01-02,A,1\n2020-01-03,A,2\n2020-01-01,A,3\n"),
    );
    let m = err_text(&p);
    assert_names(&m, "unsorted.csv", Some(3), "date");
    assert!(m.contains("not sorted"), "{m}");
    // Duplicate date.
    let p = write(
        dp,
        "dup.csv",
        &format!("{h}2020-01-02,A,1\n2020-01-02,B,1\n2020-01-02,A,2\n"),
    );
    let m = err_text(&p);
    assert_names(&m, "dup.csv", Some(3), "date");
    assert!(
        m.contains("duplicate date 2020-01-02") && m.contains("row 1"),
        "{m}"
    );
    // Wide: duplicate and unsorted dates.
    let p = write(dp, "wdup.csv", "Date,A,B\n2020-01-02,1,2\n2020-01-02,1,2\n");
    assert_names(&err_text(&p), "wdup.csv", Some(2), "Date");
    let p = write(dp, "wuns.csv", "Date,A,B\n2020-01-03,1,2\n2020-01-02,1,2\n");
    assert_names(&err_text(&p), "wuns.csv", Some(2), "Date");
    // Non-positive prices, long and wide.
    let p = write(
        dp,
        "zero.csv",
        &format!("{h}2020-01-02,A,1\n2020-01-03,A,0\n"),
    );
    let m = err_text(&p);
    assert_names(&m, "zero.csv", Some(2), "close");
    assert!(m.contains("non-positive"), "{m}");
    let p = write(
        dp,
        "wneg.csv",
        "date,A,B\n2020-01-02,1,2\n2020-01-03,1,-2\n",
    );
    assert_names(&err_text(&p), "wneg.csv", Some(2), "B");
    // Missing price in a long file: error; unparsable: error; infinite: error.
    let p = write(
        dp,
        "miss.csv",
        &format!("{h}2020-01-02,A,1\n2020-01-03,A,\n"),
    );
    let m = err_text(&p);
    assert_names(&m, "miss.csv", Some(2), "close");
    assert!(m.contains("missing price"), "{m}");
    let p = write(dp, "text.csv", &format!("{h}2020-01-02,A,abc\n"));
    assert_names(&err_text(&p), "text.csv", Some(1), "close");
    let p = write(dp, "inf.csv", &format!("{h}2020-01-02,A,inf\n"));
    assert_names(&err_text(&p), "inf.csv", Some(1), "close");
    // Bad date, missing ticker.
    let p = write(
        dp,
        "bdate.csv",
        &format!("{h}2020-01-02,A,1\n02/01/2020,A,2\n"),
    );
    assert_names(&err_text(&p), "bdate.csv", Some(2), "date");
    let p = write(dp, "ntick.csv", &format!("{h}2020-01-02,,1\n"));
    assert_names(&err_text(&p), "ntick.csv", Some(1), "ticker");
    // Unknown and missing columns.
    let p = write(dp, "unk.csv", "date,ticker,close,foo\n2020-01-02,A,1,2\n");
    assert_names(&err_text(&p), "unk.csv", None, "foo");
    let p = write(dp, "nodate.csv", "day,ticker,close\n2020-01-02,A,1\n");
    assert_names(&err_text(&p), "nodate.csv", None, "date");
    let p = write(dp, "noclose.csv", "date,ticker,open\n2020-01-02,A,1\n");
    assert_names(&err_text(&p), "noclose.csv", None, "close");
    let p = write(dp, "notick.csv", "date,close\n2020-01-02,1\n");
    assert_names(&err_text(&p), "notick.csv", None, "close");
    assert!(err_text(&p).contains("ticker"));
    let p = write(dp, "dupcol.csv", "date,A,a\n2020-01-02,1,2\n");
    assert!(err_text(&p).contains("duplicate column"));
    // Empty file and header only.
    let p = write(dp, "empty.csv", "");
    let m = err_text(&p);
    assert!(m.contains("empty.csv") && m.contains("empty file"), "{m}");
    let p = write(dp, "header.csv", h);
    let m = err_text(&p);
    assert!(
        m.contains("header.csv") && m.contains("no data rows"),
        "{m}"
    );
    // Ragged CSV.
    let p = write(dp, "ragged.csv", &format!("{h}2020-01-02,A,1,5\n"));
    assert!(err_text(&p).contains("ragged.csv"));
}

#[test]
fn missing_wide_cells_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "w.csv",
        "date,A,B\n2020-01-02,1,\n2020-01-03,NaN,2\n2020-01-06,3,4\n",
    );
    let t = read_prices(&p, PriceColumn::Auto).unwrap();
    assert_eq!(t.missing_cells, 2);
    assert_eq!(t.series[0].closes, vec![1.0, 3.0]);
    assert_eq!(t.series[1].closes, vec![2.0, 4.0]);
}

#[test]
fn adj_close_is_preferred_and_columns_match_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "bokeh.csv",
        "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\nAAPL,2000-03-01,1,2,1,130.31,9,4.18\nAAPL,2000-03-02,1,2,1,122,9,3.91\n",
    );
    let t = read_prices(&p, PriceColumn::Auto).unwrap();
    assert_eq!(t.series[0].closes, vec![4.18, 3.91]);
    assert_eq!(t.price_column, "adj_close");
    let t = read_prices(&p, PriceColumn::Close).unwrap();
    assert_eq!(t.series[0].closes, vec![130.31, 122.0]);
}

#[test]
fn too_little_history_is_left_out_and_reported() {
    let s = small_synth();
    let mut short = s[0].clone();
    short.ticker = "SHORT".into();
    short.dates.truncate(200);
    short.closes.truncate(200);
    let mut all = s.clone();
    all.push(short);
    let b = build_rows(&all, None, &BuildConfig::default()).unwrap();
    assert!(b.rows.iter().all(|r| r.ticker != "SHORT"));
    assert_eq!(b.report.tickers_without_rows.len(), 1);
    assert_eq!(b.report.tickers_without_rows[0].ticker, "SHORT");
    assert!(b.report.tickers_without_rows[0]
        .reason
        .contains("too little history"));
    // Only short tickers: a clear error.
    let e = build_rows(&all[3..], None, &BuildConfig::default()).unwrap_err();
    assert!(matches!(e, FeaturesError::NoRows(_)), "{e}");
    assert!(e.to_string().contains("SHORT (200 days)"), "{e}");
}

#[test]
fn market_file_formats() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "idx.csv",
        "Date,SP500\n2020-01-02,1\n2020-01-03,2\n",
    );
    let m = trendscore_features::read_market(&a, PriceColumn::Auto).unwrap();
    assert_eq!((m.ticker.as_str(), m.closes.len()), ("SP500", 2));
    let b = write(
        dir.path(),
        "ohlc.csv",
        "date,open,close\n2020-01-02,1,5\n2020-01-03,2,6\n",
    );
    let m = trendscore_features::read_market(&b, PriceColumn::Auto).unwrap();
    assert_eq!(m.closes, vec![5.0, 6.0]);
    let c = write(dir.path(), "two.csv", "date,A,B\n2020-01-02,1,2\n");
    let e = trendscore_features::read_market(&c, PriceColumn::Auto).unwrap_err();
    assert!(e.to_string().contains("one series, found 2"), "{e}");
}

#[test]
fn bad_config_keys_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "b.toml", "vol_floor = 0.01\nbogus = 1\n");
    let e = BuildConfig::from_file(&p).unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
    let p = write(dir.path(), "ok.toml", "vol_floor = 0.01\n");
    assert_eq!(BuildConfig::from_file(&p).unwrap().vol_floor, 0.01);
}

/// `series` with every date moved by the same whole number of weeks (weekdays kept).
fn shifted(series: &[DailySeries], weeks: i64) -> Vec<DailySeries> {
    series
        .iter()
        .map(|s| DailySeries {
            dates: s
                .dates
                .iter()
                .map(|d| *d + chrono::Duration::weeks(weeks))
                .collect(),
            ..s.clone()
        })
        .collect()
}

#[test]
fn prices_at_both_ends_of_the_date_range_build_without_panics() {
    let s = small_synth();
    let first = s.iter().map(|t| t.dates[0]).min().unwrap();
    let last = s.iter().map(|t| *t.dates.last().unwrap()).max().unwrap();
    let to_end = (trendscore_schemas::MAX_DATE - last).num_weeks();
    let to_start = -((first - trendscore_schemas::MIN_DATE).num_weeks());
    for weeks in [to_end, to_start] {
        let moved = shifted(&s, weeks);
        let built = build_rows(&moved, None, &BuildConfig::default()).unwrap();
        assert!(!built.rows.is_empty());
        let newest = built.rows.iter().map(|r| r.week).max().unwrap();
        assert!(newest <= trendscore_schemas::MAX_DATE);
        // The last week's horizons run past the data: unlabelled, not a panic.
        let r = built.rows.iter().find(|r| r.week == newest).unwrap();
        assert_eq!((r.trend_7day, r.trend_30day), (None, None));
        // And the rows go out and back through the shared writer and reader.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rows.parquet");
        trendscore_schemas::write_rows_parquet(&p, &built.rows, &[]).unwrap();
        assert_eq!(trendscore_schemas::read_rows(&p).unwrap(), built.rows);
    }
}

#[test]
fn extreme_date32_prices_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let days = |d: chrono::NaiveDate| (d - epoch).num_days() as i32;
    for bad in [
        i32::MIN,
        i32::MAX,
        days(chrono::NaiveDate::MAX),
        days(chrono::NaiveDate::MIN),
        days(trendscore_schemas::MAX_DATE) + 1,
    ] {
        let schema = Arc::new(Schema::new(vec![
            Field::new("date", DataType::Date32, false),
            Field::new("ticker", DataType::Utf8, false),
            Field::new("close", DataType::Float64, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(vec![days(epoch), bad])),
            Arc::new(StringArray::from(vec!["A", "A"])),
            Arc::new(Float64Array::from(vec![1.0, 2.0])),
        ];
        let p = dir.path().join(format!("d{bad}.parquet"));
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&p).unwrap(),
            schema.clone(),
            None,
        )
        .unwrap();
        w.write(&RecordBatch::try_new(schema, cols).unwrap())
            .unwrap();
        w.close().unwrap();
        let m = err_text(&p);
        assert_names(&m, &format!("d{bad}.parquet"), Some(2), "date");
        assert!(m.contains("outside 0001-01-01..=9999-12-31"), "{m}");
    }
    // The same dates as text.
    let p = write(
        dir.path(),
        "far.csv",
        "date,ticker,close\n2020-01-02,A,1\n+262143-12-31,A,2\n",
    );
    assert_names(&err_text(&p), "far.csv", Some(2), "date");
}
