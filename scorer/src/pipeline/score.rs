//! Scoring: windows -> model -> [`PredictionRow`]s, grouped by input partition.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use trendscore_infer::InferenceModel;
use trendscore_schemas::{PredictionRow, NUM_FEATURES, SEQUENCE_LENGTH};

use crate::pipeline::ReadyWindow;
use crate::window::Window;
use crate::{Result, ScorerError};

/// Scores `windows` in one model call. Input to the model: (windows.len(), 12, 62) raw
/// features. `source_partition` / `source_offset` are left `None`.
pub fn score_windows(
    model: &dyn InferenceModel,
    windows: &[&Window],
    scored_at: DateTime<Utc>,
) -> Result<Vec<PredictionRow>> {
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let mut input = Vec::with_capacity(windows.len() * SEQUENCE_LENGTH * NUM_FEATURES);
    for w in windows {
        if w.features.len() != SEQUENCE_LENGTH * NUM_FEATURES {
            return Err(ScorerError::Internal(format!(
                "window of {} has {} values",
                w.ticker,
                w.features.len()
            )));
        }
        input.extend_from_slice(&w.features);
    }
    let out = model
        .predict(&input, windows.len())
        .map_err(|e| ScorerError::Model(e.to_string()))?;
    let version = &model.info().model_version;
    Ok(windows
        .iter()
        .enumerate()
        .map(|(i, w)| PredictionRow {
            ticker: w.ticker.clone(),
            week: w.week,
            model_version: version.clone(),
            trend_7d: out.trend_7d[i],
            p_up_7d: out.p_up_7d(i),
            trend_30d: out.trend_30d[i],
            p_up_30d: out.p_up_30d(i),
            attention: out.attention_row(i).to_vec(),
            window_start: w.window_start,
            scored_at,
            source_partition: None,
            source_offset: None,
        })
        .collect())
}

/// Whether prediction rows name the Kafka message they came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lineage {
    /// `source_partition` / `source_offset` set (the stream).
    Kafka,
    /// Both null (the offline backfill).
    Offline,
}

/// The rows of one input partition, in offset order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartitionRows {
    /// Prediction rows.
    pub rows: Vec<PredictionRow>,
    /// The input offset of each row.
    pub offsets: Vec<i64>,
    /// Live message timestamps of the rows (for the latency metric).
    pub live_ts_ms: Vec<i64>,
}

/// Scores a batch in one model call and groups the rows by partition (offset order kept).
pub fn score_batch(
    model: &dyn InferenceModel,
    windows: &[ReadyWindow],
    scored_at: DateTime<Utc>,
    lineage: Lineage,
) -> Result<BTreeMap<i32, PartitionRows>> {
    let refs: Vec<&Window> = windows.iter().map(|w| &w.window).collect();
    let rows = score_windows(model, &refs, scored_at)?;
    let mut out: BTreeMap<i32, PartitionRows> = BTreeMap::new();
    for (mut row, w) in rows.into_iter().zip(windows) {
        if lineage == Lineage::Kafka {
            row.source_partition = Some(w.partition);
            row.source_offset = Some(w.offset);
        }
        let e = out.entry(w.partition).or_default();
        e.rows.push(row);
        e.offsets.push(w.offset);
        e.live_ts_ms.extend(w.live_ts_ms);
    }
    Ok(out)
}
