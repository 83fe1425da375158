//! The prediction row of DESIGN.md, shared by the Parquet files and the predictions topic.
//!
//! JSON (the topic value): dates as `YYYY-MM-DD`, `scored_at` as RFC 3339 with milliseconds
//! (`2026-11-30T12:00:00.123Z`). Parquet: `scored_at` is `timestamp(ms, UTC)` so Spark, DuckDB
//! and pandas read it; `attention` is `list<float32>` of sequence_length items.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float32Type, Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{
    Array, ArrayRef, Date32Array, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::dates::{date_to_days, days_to_date};
use crate::error::parquet_reader;
use crate::SchemaError;

/// One prediction: the scores of one (ticker, week) window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionRow {
    pub ticker: String,
    /// The week scored: the last week of the window.
    pub week: NaiveDate,
    /// sha256 of the model weights (the ONNX `model_version` property).
    pub model_version: String,
    pub trend_7d: f32,
    /// softmax(direction_7d)[1].
    pub p_up_7d: f32,
    pub trend_30d: f32,
    pub p_up_30d: f32,
    /// Attention over the window's weeks, oldest first (sums to 1).
    pub attention: Vec<f32>,
    /// First week of the window.
    pub window_start: NaiveDate,
    #[serde(with = "rfc3339_ms")]
    pub scored_at: DateTime<Utc>,
    /// Input-topic partition of the row scored; `None` in backfill.
    pub source_partition: Option<i32>,
    /// Input-topic offset of the row scored; `None` in backfill.
    pub source_offset: Option<i64>,
}

/// The current time truncated to milliseconds (what Parquet and JSON keep).
pub fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("in range")
}

mod rfc3339_ms {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// The Arrow schema of the prediction row.
pub fn prediction_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("ticker", DataType::Utf8, false),
                Field::new("week", DataType::Date32, false),
                Field::new("model_version", DataType::Utf8, false),
                Field::new("trend_7d", DataType::Float32, false),
                Field::new("p_up_7d", DataType::Float32, false),
                Field::new("trend_30d", DataType::Float32, false),
                Field::new("p_up_30d", DataType::Float32, false),
                Field::new(
                    "attention",
                    DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
                    false,
                ),
                Field::new("window_start", DataType::Date32, false),
                Field::new(
                    "scored_at",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    false,
                ),
                Field::new("source_partition", DataType::Int32, true),
                Field::new("source_offset", DataType::Int64, true),
            ]))
        })
        .clone()
}

/// One Arrow batch of the prediction schema.
pub fn predictions_to_batch(rows: &[PredictionRow]) -> Result<RecordBatch, SchemaError> {
    let f32col = |f: fn(&PredictionRow) -> f32| -> ArrayRef {
        Arc::new(Float32Array::from_iter_values(rows.iter().map(f)))
    };
    let mut att = ListBuilder::new(Float32Builder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Float32,
        true,
    )));
    for r in rows {
        att.values().append_slice(&r.attention);
        att.append(true);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.ticker.as_str()),
        )),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| date_to_days(r.week)),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.model_version.as_str()),
        )),
        f32col(|r| r.trend_7d),
        f32col(|r| r.p_up_7d),
        f32col(|r| r.trend_30d),
        f32col(|r| r.p_up_30d),
        Arc::new(att.finish()),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| date_to_days(r.window_start)),
        )),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.scored_at.timestamp_millis()),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(Int32Array::from_iter(
            rows.iter().map(|r| r.source_partition),
        )),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.source_offset))),
    ];
    Ok(RecordBatch::try_new(prediction_schema(), cols)?)
}

/// Converts one batch of the prediction schema back into rows.
pub fn read_predictions_batch(batch: &RecordBatch) -> Result<Vec<PredictionRow>, SchemaError> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| SchemaError::InvalidRows(format!("missing column `{name}`")))
    };
    let ticker = col("ticker")?.as_string::<i32>();
    let week = col("week")?.as_primitive::<Date32Type>();
    let version = col("model_version")?.as_string::<i32>();
    let t7 = col("trend_7d")?.as_primitive::<Float32Type>();
    let p7 = col("p_up_7d")?.as_primitive::<Float32Type>();
    let t30 = col("trend_30d")?.as_primitive::<Float32Type>();
    let p30 = col("p_up_30d")?.as_primitive::<Float32Type>();
    let att = col("attention")?.as_list::<i32>();
    let start = col("window_start")?.as_primitive::<Date32Type>();
    let scored = col("scored_at")?.as_primitive::<TimestampMillisecondType>();
    let part = col("source_partition")?.as_primitive::<Int32Type>();
    let off = col("source_offset")?.as_primitive::<Int64Type>();
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let a = att.value(i);
        let a = a.as_primitive::<Float32Type>();
        out.push(PredictionRow {
            ticker: ticker.value(i).to_string(),
            week: days_to_date(week.value(i)).map_err(SchemaError::InvalidRows)?,
            model_version: version.value(i).to_string(),
            trend_7d: t7.value(i),
            p_up_7d: p7.value(i),
            trend_30d: t30.value(i),
            p_up_30d: p30.value(i),
            attention: a.values().to_vec(),
            window_start: days_to_date(start.value(i)).map_err(SchemaError::InvalidRows)?,
            scored_at: DateTime::from_timestamp_millis(scored.value(i))
                .ok_or_else(|| SchemaError::InvalidRows("scored_at out of range".into()))?,
            source_partition: (!part.is_null(i)).then(|| part.value(i)),
            source_offset: (!off.is_null(i)).then(|| off.value(i)),
        });
    }
    Ok(out)
}

/// Reads every prediction row of one Parquet file.
pub fn read_predictions(path: &Path) -> Result<Vec<PredictionRow>, SchemaError> {
    let reader = parquet_reader(path)?
        .build()
        .map_err(SchemaError::parquet(path))?;
    let mut out = Vec::new();
    for batch in reader {
        out.extend(read_predictions_batch(&batch?)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::ArrowWriter;
    use std::fs::File;

    fn sample(partition: Option<i32>) -> PredictionRow {
        PredictionRow {
            ticker: "AAPL".into(),
            week: NaiveDate::from_ymd_opt(2024, 3, 22).unwrap(),
            model_version: "abc123".into(),
            trend_7d: 0.25,
            p_up_7d: 0.6,
            trend_30d: -0.1,
            p_up_30d: 0.45,
            attention: vec![1.0 / 12.0; 12],
            window_start: NaiveDate::from_ymd_opt(2024, 1, 5).unwrap(),
            scored_at: now_ms(),
            source_partition: partition,
            source_offset: partition.map(|p| i64::from(p) * 100),
        }
    }

    #[test]
    fn json_round_trip_uses_dates_and_millisecond_timestamps() {
        let r = sample(Some(3));
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.contains("\"week\":\"2024-03-22\""), "{s}");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let ts = v["scored_at"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && ts.len() == "2026-11-30T12:00:00.123Z".len(),
            "{ts}"
        );
        assert_eq!(serde_json::from_str::<PredictionRow>(&s).unwrap(), r);
    }

    #[test]
    fn parquet_round_trip_with_and_without_source() {
        let rows = vec![sample(Some(1)), sample(None)];
        let batch = predictions_to_batch(&rows).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.parquet");
        let mut w = ArrowWriter::try_new(File::create(&p).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        assert_eq!(read_predictions(&p).unwrap(), rows);
        let schema = prediction_schema();
        assert_eq!(
            schema.field_with_name("scored_at").unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
    }
}
