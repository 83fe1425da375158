//! The weekly feature row: one row per (ticker, week), 62 raw features and two optional labels.
//!
//! Readers accept Parquet (any compression), CSV and gzip CSV; feature and label columns may be
//! float32 or float64; `week` may be a date, a timestamp or an ISO `YYYY-MM-DD` string; `ticker`
//! any string type. Every value is checked: a missing column, a wrong type, a null, NaN/Inf, an
//! unparsable date, an empty ticker or a duplicate (ticker, week) is an error that names the
//! file, the 1-based data row and the column. Extra columns are ignored.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::builder::Float32Builder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float32Type, Float64Type};
use arrow_array::{Array, ArrayRef, Date32Array, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::dates::{date_to_days, days_to_date, parse_date};
use crate::error::{open_file, parquet_reader};
use crate::{SchemaError, NUM_FEATURES};

/// One weekly row of one ticker. `week` is the last trading day of the ISO week; `features`
/// are raw (not normalised); labels are absent where the horizon runs past the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeeklyRow {
    pub ticker: String,
    pub week: NaiveDate,
    pub features: Vec<f32>,
    pub trend_7day: Option<f32>,
    pub trend_30day: Option<f32>,
}

/// `feature_0` .. `feature_61`: the column names of the features in the row contract.
pub fn feature_names() -> Vec<String> {
    (0..NUM_FEATURES).map(|i| format!("feature_{i}")).collect()
}

/// The Arrow schema of the weekly-row contract (what the writers produce).
pub fn weekly_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields = vec![
                Field::new("ticker", DataType::Utf8, false),
                Field::new("week", DataType::Date32, false),
            ];
            for name in feature_names() {
                fields.push(Field::new(name, DataType::Float32, false));
            }
            fields.push(Field::new("trend_7day", DataType::Float32, true));
            fields.push(Field::new("trend_30day", DataType::Float32, true));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Builds one Arrow batch of the weekly schema. Fails if a row has the wrong feature count.
pub fn rows_to_batch(rows: &[WeeklyRow]) -> Result<RecordBatch, SchemaError> {
    for (i, r) in rows.iter().enumerate() {
        if r.features.len() != NUM_FEATURES {
            return Err(SchemaError::InvalidRows(format!(
                "row {} ({} {}) has {} features, expected {NUM_FEATURES}",
                i + 1,
                r.ticker,
                r.week,
                r.features.len()
            )));
        }
    }
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(NUM_FEATURES + 4);
    cols.push(Arc::new(StringArray::from_iter_values(
        rows.iter().map(|r| r.ticker.as_str()),
    )));
    cols.push(Arc::new(Date32Array::from_iter_values(
        rows.iter().map(|r| date_to_days(r.week)),
    )));
    for j in 0..NUM_FEATURES {
        cols.push(Arc::new(Float32Array::from_iter_values(
            rows.iter().map(|r| r.features[j]),
        )));
    }
    let mut t7 = Float32Builder::with_capacity(rows.len());
    let mut t30 = Float32Builder::with_capacity(rows.len());
    for r in rows {
        t7.append_option(r.trend_7day);
        t30.append_option(r.trend_30day);
    }
    cols.push(Arc::new(t7.finish()));
    cols.push(Arc::new(t30.finish()));
    Ok(RecordBatch::try_new(weekly_schema(), cols)?)
}

/// Writes rows as zstd Parquet with the weekly schema; `metadata` goes into the file footer's
/// key/value metadata (e.g. the feature manifest).
pub fn write_rows_parquet(
    path: &Path,
    rows: &[WeeklyRow],
    metadata: &[(String, String)],
) -> Result<(), SchemaError> {
    let batch = rows_to_batch(rows)?;
    let kv: Vec<KeyValue> = metadata
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata(if kv.is_empty() { None } else { Some(kv) })
        .build();
    let pq = || SchemaError::parquet(path);
    let file = File::create(path).map_err(SchemaError::io(path))?;
    let mut writer = ArrowWriter::try_new(file, weekly_schema(), Some(props)).map_err(pq())?;
    writer.write(&batch).map_err(pq())?;
    writer.close().map_err(pq())?;
    Ok(())
}

/// Parquet footer key of the feature manifest that `features build` writes (JSON; also in
/// the `<rows>.manifest.json` sidecar).
pub const FEATURE_MANIFEST_KEY: &str = "trendscore.features.manifest";

/// The value of footer key `key` of a Parquet rows file; `None` for a key the file lacks or
/// a file that is not Parquet (CSV has no footer).
pub fn footer_metadata(path: &Path, key: &str) -> Result<Option<String>, SchemaError> {
    if !matches!(Format::of(path)?, Format::Parquet) {
        return Ok(None);
    }
    let builder = parquet_reader(path)?;
    Ok(builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == key))
        .and_then(|e| e.value.clone()))
}

/// Reads and validates weekly rows from Parquet (`.parquet`, `.pq`), CSV (`.csv`) or gzip CSV
/// (`.csv.gz`). Rows keep file order.
pub fn read_rows(path: &Path) -> Result<Vec<WeeklyRow>, SchemaError> {
    read_rows_where(path, &|_| true)
}

/// [`read_rows`] of only the rows whose ticker `keep` accepts; the others are skipped
/// before they are converted (and validated), so memory holds only the kept rows.
pub fn read_rows_where(
    path: &Path,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<WeeklyRow>, SchemaError> {
    let rows = match Format::of(path)? {
        Format::Parquet => read_parquet(path, keep)?,
        Format::Csv => read_csv(path, BufReader::new(open_file(path)?), keep)?,
        Format::CsvGz => read_csv(
            path,
            flate2::read::MultiGzDecoder::new(BufReader::new(open_file(path)?)),
            keep,
        )?,
    };
    check_duplicates(path, &rows)?;
    Ok(rows)
}

/// How many rows each ticker has in `path`, reading only the ticker column of a Parquet
/// file (a CSV file is read whole).
pub fn ticker_counts(path: &Path) -> Result<HashMap<String, usize>, SchemaError> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    match Format::of(path)? {
        Format::Parquet => {
            let builder = parquet_reader(path)?;
            let Some(leaf) = builder
                .parquet_schema()
                .columns()
                .iter()
                .position(|c| c.path().parts() == ["ticker"])
            else {
                return Err(SchemaError::MissingColumn {
                    path: path.to_path_buf(),
                    column: "ticker".into(),
                });
            };
            let mask = parquet::arrow::ProjectionMask::leaves(builder.parquet_schema(), [leaf]);
            let reader = builder
                .with_projection(mask)
                .with_batch_size(65_536)
                .build()
                .map_err(SchemaError::parquet(path))?;
            for batch in reader {
                let batch = batch?;
                let col = arrow_cast::cast(batch.column(0), &DataType::Utf8)?;
                let col = col.as_string::<i32>();
                for t in col.iter().flatten() {
                    *counts.entry(t.to_string()).or_default() += 1;
                }
            }
        }
        Format::Csv | Format::CsvGz => {
            for r in read_rows(path)? {
                *counts.entry(r.ticker).or_default() += 1;
            }
        }
    }
    Ok(counts)
}

enum Format {
    Parquet,
    Csv,
    CsvGz,
}

impl Format {
    fn of(path: &Path) -> Result<Self, SchemaError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if name.ends_with(".parquet") || name.ends_with(".pq") {
            Ok(Format::Parquet)
        } else if name.ends_with(".csv") {
            Ok(Format::Csv)
        } else if name.ends_with(".csv.gz") {
            Ok(Format::CsvGz)
        } else {
            Err(SchemaError::UnsupportedFormat {
                path: path.to_path_buf(),
            })
        }
    }
}

/// Whether `path` names a file [`read_rows`] reads (by its extension).
pub fn is_rows_file(path: &Path) -> bool {
    Format::of(path).is_ok()
}

fn check_duplicates(path: &Path, rows: &[WeeklyRow]) -> Result<(), SchemaError> {
    let mut seen: HashMap<(&str, NaiveDate), usize> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        if let Some(first) = seen.insert((r.ticker.as_str(), r.week), i + 1) {
            return Err(SchemaError::Duplicate {
                path: path.to_path_buf(),
                row: i + 1,
                ticker: r.ticker.clone(),
                week: r.week,
                first_row: first,
            });
        }
    }
    Ok(())
}

fn check_finite(path: &Path, row: usize, column: &str, v: f64) -> Result<f32, SchemaError> {
    let f = v as f32;
    if !v.is_finite() || !f.is_finite() {
        return Err(SchemaError::NonFinite {
            path: path.to_path_buf(),
            row,
            column: column.to_string(),
            value: v,
        });
    }
    Ok(f)
}

fn check_ticker(path: &Path, row: usize, t: &str) -> Result<(), SchemaError> {
    if t.trim().is_empty() {
        return Err(SchemaError::BadValue {
            path: path.to_path_buf(),
            row,
            column: "ticker".into(),
            value: t.into(),
            reason: "empty ticker".into(),
        });
    }
    Ok(())
}

fn read_csv<R: Read>(
    path: &Path,
    reader: R,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<WeeklyRow>, SchemaError> {
    let csv_err = |source| SchemaError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = rdr.headers().map_err(csv_err)?.clone();
    let index: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    let col = |name: &str| {
        index
            .get(name)
            .copied()
            .ok_or_else(|| SchemaError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
            })
    };
    let ticker_i = col("ticker")?;
    let week_i = col("week")?;
    let names = feature_names();
    let feat_i: Vec<usize> = names.iter().map(|n| col(n)).collect::<Result<_, _>>()?;
    let t7_i = index.get("trend_7day").copied();
    let t30_i = index.get("trend_30day").copied();

    let mut rows = Vec::new();
    for (k, rec) in rdr.records().enumerate() {
        let row = k + 1;
        let rec = rec.map_err(csv_err)?;
        if rec.len() != headers.len() {
            return Err(SchemaError::Width {
                path: path.to_path_buf(),
                row,
                expected: headers.len(),
                found: rec.len(),
            });
        }
        if !keep(&rec[ticker_i]) {
            continue;
        }
        let ticker = rec[ticker_i].to_string();
        check_ticker(path, row, &ticker)?;
        let week = parse_date(&rec[week_i]).map_err(|reason| SchemaError::BadValue {
            path: path.to_path_buf(),
            row,
            column: "week".into(),
            value: rec[week_i].to_string(),
            reason,
        })?;
        let num = |i: usize, column: &str| -> Result<Option<f32>, SchemaError> {
            let s = &rec[i];
            if s.is_empty() {
                return Ok(None);
            }
            let v: f64 = s.parse().map_err(|e| SchemaError::BadValue {
                path: path.to_path_buf(),
                row,
                column: column.to_string(),
                value: s.to_string(),
                reason: format!("not a number: {e}"),
            })?;
            check_finite(path, row, column, v).map(Some)
        };
        let mut features = Vec::with_capacity(NUM_FEATURES);
        for (j, &i) in feat_i.iter().enumerate() {
            match num(i, &names[j])? {
                Some(v) => features.push(v),
                None => {
                    return Err(SchemaError::Null {
                        path: path.to_path_buf(),
                        row,
                        column: names[j].clone(),
                    })
                }
            }
        }
        let trend_7day = match t7_i {
            Some(i) => num(i, "trend_7day")?,
            None => None,
        };
        let trend_30day = match t30_i {
            Some(i) => num(i, "trend_30day")?,
            None => None,
        };
        rows.push(WeeklyRow {
            ticker,
            week,
            features,
            trend_7day,
            trend_30day,
        });
    }
    Ok(rows)
}

/// A float column of a Parquet batch, read as f64 whatever its width.
enum FloatCol<'a> {
    F32(&'a arrow_array::PrimitiveArray<Float32Type>),
    F64(&'a arrow_array::PrimitiveArray<Float64Type>),
}

impl FloatCol<'_> {
    fn get(&self, i: usize) -> Option<f64> {
        match self {
            FloatCol::F32(a) => (!a.is_null(i)).then(|| f64::from(a.value(i))),
            FloatCol::F64(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }
}

fn float_col<'a>(path: &Path, name: &str, arr: &'a ArrayRef) -> Result<FloatCol<'a>, SchemaError> {
    match arr.data_type() {
        DataType::Float32 => Ok(FloatCol::F32(arr.as_primitive::<Float32Type>())),
        DataType::Float64 => Ok(FloatCol::F64(arr.as_primitive::<Float64Type>())),
        other => Err(SchemaError::WrongType {
            path: path.to_path_buf(),
            column: name.to_string(),
            found: other.to_string(),
            expected: "float32 or float64",
        }),
    }
}

fn read_parquet(path: &Path, keep: &dyn Fn(&str) -> bool) -> Result<Vec<WeeklyRow>, SchemaError> {
    let builder = parquet_reader(path)?;
    let schema = builder.schema().clone();
    let names = feature_names();
    for required in ["ticker", "week"]
        .iter()
        .map(|s| s.to_string())
        .chain(names.iter().cloned())
    {
        if schema.index_of(&required).is_err() {
            return Err(SchemaError::MissingColumn {
                path: path.to_path_buf(),
                column: required,
            });
        }
    }
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(SchemaError::parquet(path))?;
    let mut rows = Vec::new();
    let mut base = 0usize;
    for batch in reader {
        let batch = batch?;
        let n = batch.num_rows();
        let ticker_arr = batch.column_by_name("ticker").expect("checked");
        let ticker = match ticker_arr.data_type() {
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Dictionary(_, _) => arrow_cast::cast(ticker_arr, &DataType::Utf8)?,
            other => {
                return Err(SchemaError::WrongType {
                    path: path.to_path_buf(),
                    column: "ticker".into(),
                    found: other.to_string(),
                    expected: "string",
                })
            }
        };
        let ticker = ticker.as_string::<i32>();
        let week_arr = batch.column_by_name("week").expect("checked");
        let week_strings;
        let week_days;
        match week_arr.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                week_strings = Some(arrow_cast::cast(week_arr, &DataType::Utf8)?);
                week_days = None;
            }
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => {
                week_strings = None;
                week_days = Some(arrow_cast::cast(week_arr, &DataType::Date32)?);
            }
            other => {
                return Err(SchemaError::WrongType {
                    path: path.to_path_buf(),
                    column: "week".into(),
                    found: other.to_string(),
                    expected: "date, timestamp or YYYY-MM-DD string",
                })
            }
        }
        let feats: Vec<FloatCol> = names
            .iter()
            .map(|nm| float_col(path, nm, batch.column_by_name(nm).expect("checked")))
            .collect::<Result<_, _>>()?;
        let t7 = batch
            .column_by_name("trend_7day")
            .map(|a| float_col(path, "trend_7day", a))
            .transpose()?;
        let t30 = batch
            .column_by_name("trend_30day")
            .map(|a| float_col(path, "trend_30day", a))
            .transpose()?;
        for i in 0..n {
            let row = base + i + 1;
            let null = |column: &str| SchemaError::Null {
                path: path.to_path_buf(),
                row,
                column: column.to_string(),
            };
            if ticker.is_null(i) {
                return Err(null("ticker"));
            }
            let t = ticker.value(i);
            if !keep(t) {
                continue;
            }
            check_ticker(path, row, t)?;
            let week = if let Some(s) = &week_strings {
                let s = s.as_string::<i32>();
                if s.is_null(i) {
                    return Err(null("week"));
                }
                parse_date(s.value(i)).map_err(|reason| SchemaError::BadValue {
                    path: path.to_path_buf(),
                    row,
                    column: "week".into(),
                    value: s.value(i).to_string(),
                    reason,
                })?
            } else {
                let d = week_days
                    .as_ref()
                    .expect("one of the two")
                    .as_primitive::<Date32Type>();
                if d.is_null(i) {
                    return Err(null("week"));
                }
                days_to_date(d.value(i)).map_err(|reason| SchemaError::BadValue {
                    path: path.to_path_buf(),
                    row,
                    column: "week".into(),
                    value: d.value(i).to_string(),
                    reason,
                })?
            };
            let mut features = Vec::with_capacity(NUM_FEATURES);
            for (j, c) in feats.iter().enumerate() {
                let v = c.get(i).ok_or_else(|| null(&names[j]))?;
                features.push(check_finite(path, row, &names[j], v)?);
            }
            let label = |c: &Option<FloatCol>, column: &str| -> Result<Option<f32>, SchemaError> {
                match c.as_ref().and_then(|c| c.get(i)) {
                    Some(v) => check_finite(path, row, column, v).map(Some),
                    None => Ok(None),
                }
            };
            rows.push(WeeklyRow {
                ticker: t.to_string(),
                week,
                features,
                trend_7day: label(&t7, "trend_7day")?,
                trend_30day: label(&t30, "trend_30day")?,
            });
        }
        base += n;
    }
    Ok(rows)
}

/// Path helper for tests and tools: a sibling path with another extension.
pub fn with_extension(path: &Path, ext: &str) -> PathBuf {
    let mut p = path.to_path_buf();
    p.set_extension(ext);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::io::Write;

    fn row(t: &str, week: &str, v: f32) -> WeeklyRow {
        WeeklyRow {
            ticker: t.into(),
            week: NaiveDate::parse_from_str(week, "%Y-%m-%d").unwrap(),
            features: (0..NUM_FEATURES).map(|i| v + i as f32).collect(),
            trend_7day: Some(0.5),
            trend_30day: None,
        }
    }

    fn csv_text(rows: &[WeeklyRow]) -> String {
        let mut s = String::from("ticker,week,");
        s.push_str(&feature_names().join(","));
        s.push_str(",trend_7day,trend_30day\n");
        for r in rows {
            s.push_str(&format!("{},{}", r.ticker, r.week));
            for f in &r.features {
                s.push_str(&format!(",{f}"));
            }
            let o = |x: Option<f32>| x.map(|v| v.to_string()).unwrap_or_default();
            s.push_str(&format!(",{},{}\n", o(r.trend_7day), o(r.trend_30day)));
        }
        s
    }

    #[test]
    fn parquet_round_trip_keeps_rows_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rows.parquet");
        let rows = vec![
            row("AAPL", "2024-01-05", 1.0),
            row("MSFT", "2024-01-05", -2.5),
        ];
        write_rows_parquet(&p, &rows, &[("manifest".into(), "{}".into())]).unwrap();
        assert_eq!(read_rows(&p).unwrap(), rows);
        let f = File::open(&p).unwrap();
        let meta = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
        let kv = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap();
        assert!(kv.iter().any(|k| k.key == "manifest"));
    }

    #[test]
    fn csv_and_gzip_csv_read_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            row("AAPL", "2024-01-05", 1.0),
            row("AAPL", "2024-01-12", 2.0),
        ];
        let text = csv_text(&rows);
        let p = dir.path().join("rows.csv");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(read_rows(&p).unwrap(), rows);
        let gz = dir.path().join("rows.csv.gz");
        let mut enc =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap();
        assert_eq!(read_rows(&gz).unwrap(), rows);
    }

    #[test]
    fn csv_errors_name_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.csv");
        let good = csv_text(&[row("A", "2024-01-05", 1.0)]);
        // NaN in feature_3 of data row 1.
        let bad = good.replacen(",4,", ",NaN,", 1);
        std::fs::write(&p, &bad).unwrap();
        let e = read_rows(&p).unwrap_err().to_string();
        assert!(
            e.contains("row 1") && e.contains("feature_3") && e.contains("NaN"),
            "{e}"
        );
        // Bad date.
        std::fs::write(&p, good.replace("2024-01-05", "2024-13-05")).unwrap();
        let e = read_rows(&p).unwrap_err().to_string();
        assert!(e.contains("row 1") && e.contains("`week`"), "{e}");
        // Missing column.
        std::fs::write(&p, good.replace("feature_61", "feature_x")).unwrap();
        let e = read_rows(&p).unwrap_err().to_string();
        assert!(e.contains("missing column `feature_61`"), "{e}");
        // Duplicate (ticker, week).
        std::fs::write(
            &p,
            csv_text(&[row("A", "2024-01-05", 1.0), row("A", "2024-01-05", 2.0)]),
        )
        .unwrap();
        let e = read_rows(&p).unwrap_err().to_string();
        assert!(
            e.contains("row 2") && e.contains("duplicate") && e.contains("row 1"),
            "{e}"
        );
        // Empty ticker.
        std::fs::write(&p, csv_text(&[row(" ", "2024-01-05", 1.0)])).unwrap();
        let e = read_rows(&p).unwrap_err().to_string();
        assert!(e.contains("empty ticker"), "{e}");
    }

    #[test]
    fn parquet_accepts_float64_and_string_dates_and_rejects_wrong_types() {
        use arrow_array::{Float64Array, StringArray};
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, feature_type: DataType, bad_value: Option<f64>| -> PathBuf {
            let mut fields = vec![
                Field::new("ticker", DataType::Utf8, false),
                Field::new("week", DataType::Utf8, false),
            ];
            let mut cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(vec!["A", "A"])),
                Arc::new(StringArray::from(vec!["2024-01-05", "2024-01-12"])),
            ];
            for (i, n) in feature_names().into_iter().enumerate() {
                fields.push(Field::new(&n, feature_type.clone(), false));
                let v1 = if i == 7 {
                    bad_value.unwrap_or(1.0)
                } else {
                    1.0
                };
                cols.push(match feature_type {
                    DataType::Float64 => Arc::new(Float64Array::from(vec![1.5, v1])),
                    _ => Arc::new(StringArray::from(vec!["x", "y"])),
                });
            }
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
            let p = dir.path().join(name);
            let mut w =
                ArrowWriter::try_new(File::create(&p).unwrap(), batch.schema(), None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            p
        };
        let rows = read_rows(&write("f64.parquet", DataType::Float64, None)).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].features[0], 1.5);
        assert_eq!(rows[1].week, NaiveDate::from_ymd_opt(2024, 1, 12).unwrap());
        assert_eq!(rows[0].trend_7day, None);
        let e = read_rows(&write(
            "inf.parquet",
            DataType::Float64,
            Some(f64::INFINITY),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("row 2") && e.contains("feature_7"), "{e}");
        let e = read_rows(&write("str.parquet", DataType::Utf8, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("feature_0") && e.contains("float32 or float64"),
            "{e}"
        );
    }

    #[test]
    fn extreme_date32_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = rows_to_batch(&[row("A", "2024-01-05", 1.0)]).unwrap();
        let week_idx = good.schema().index_of("week").unwrap();
        for days in [
            i32::MIN,
            i32::MAX,
            date_to_days(NaiveDate::MIN),
            date_to_days(NaiveDate::MAX),
            date_to_days(crate::MAX_DATE) + 1,
        ] {
            let mut cols = good.columns().to_vec();
            cols[week_idx] = Arc::new(Date32Array::from(vec![days]));
            let batch = RecordBatch::try_new(good.schema(), cols).unwrap();
            let path = dir.path().join(format!("d{days}.parquet"));
            let mut w =
                ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            let e = read_rows(&path).unwrap_err().to_string();
            assert!(e.contains("row 1") && e.contains("week"), "{e}");
            assert!(e.contains("outside 0001-01-01..=9999-12-31"), "{e}");
        }
    }

    #[test]
    fn unknown_extension_is_a_clear_error() {
        let e = read_rows(Path::new("rows.xlsx")).unwrap_err().to_string();
        assert!(e.contains("unsupported file type"), "{e}");
    }
}
