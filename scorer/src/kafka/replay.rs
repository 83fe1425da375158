//! `scorer replay`: a weekly-rows file into the input topic.

use std::path::Path;
use std::time::Duration;

use rdkafka::producer::Producer;
use trendscore_schemas::{read_rows, InputMessage};

use super::{producer, record, send_blocking, Delivery, Tag};
use crate::config::KafkaConfig;
use crate::{Result, ScorerError};

/// Produces every row of `input` (weekly rows: Parquet, CSV or CSV.gz) to `topic`, keyed
/// by ticker, ordered by (week, ticker) so tickers interleave and each ticker's weeks stay
/// in order; message timestamp = the week (midnight UTC). Returns the number of rows.
pub fn replay(input: &Path, k: &KafkaConfig, topic: &str) -> Result<usize> {
    let mut rows = read_rows(input)?;
    rows.sort_by(|a, b| (a.week, &a.ticker).cmp(&(b.week, &b.ticker)));
    let (producer, reports) = producer(k)?;
    for row in &rows {
        let msg = InputMessage {
            ticker: row.ticker.clone(),
            week: row.week.format("%Y-%m-%d").to_string(),
            features: row.features.iter().map(|&f| f64::from(f)).collect(),
            trend_7day: row.trend_7day.map(f64::from),
            trend_30day: row.trend_30day.map(f64::from),
        };
        let value = serde_json::to_vec(&msg).map_err(|e| ScorerError::Internal(e.to_string()))?;
        let ts = row
            .week
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0);
        send_blocking(
            &producer,
            record(topic, Tag::Untagged)
                .key(row.ticker.as_bytes())
                .payload(value.as_slice())
                .timestamp(ts),
        )?;
    }
    producer.flush(Duration::from_secs(120))?;
    let failed: Vec<Delivery> = reports.try_iter().filter(|d| d.error.is_some()).collect();
    if let Some(first) = failed.first() {
        return Err(ScorerError::Internal(format!(
            "{} rows failed to produce to {}; first error: {}",
            failed.len(),
            first.topic,
            first.error.as_deref().unwrap_or_default()
        )));
    }
    Ok(rows.len())
}
