//! `scorer backfill`: scores a weekly-rows file offline with the same window store, scoring
//! and sink code as `scorer run`. Rows are processed in (week, ticker) order, the order
//! `scorer replay` produces them in, so per-ticker windows match a streaming run.
//! Files are named `backfill-0-<first row index>.parquet`; `source_partition` and
//! `source_offset` are null. Earlier backfill files in the output directory are replaced.

use std::path::Path;
use std::time::Instant;

use trendscore_infer::InferenceModel;
use trendscore_schemas::{read_rows, WeeklyRow};

use crate::config::{GapPolicy, SinkConfig};
use crate::scoring::score;
use crate::sink::{ParquetDirSink, PredictionSink, SourceKey};
use crate::validate::ValidRow;
use crate::window::{Fate, Window, WindowStore};
use crate::Result;

/// What a backfill did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackfillReport {
    /// Input rows read.
    pub rows_in: usize,
    /// Predictions written.
    pub scored: usize,
    /// Rows after a week gap.
    pub gaps: usize,
    /// Duplicate rows dropped (read_rows already rejects duplicates, so normally 0).
    pub duplicates: usize,
    /// Files written.
    pub files: usize,
}

/// Reads `input` and backfills it into `sink_config.output_dir`.
pub fn backfill_file(
    model: &dyn InferenceModel,
    input: &Path,
    sink_config: &SinkConfig,
    gap_policy: GapPolicy,
    batch: usize,
) -> Result<BackfillReport> {
    let rows = read_rows(input)?;
    backfill_rows(model, rows, sink_config, gap_policy, batch)
}

/// Backfills rows already in memory.
pub fn backfill_rows(
    model: &dyn InferenceModel,
    mut rows: Vec<WeeklyRow>,
    sink_config: &SinkConfig,
    gap_policy: GapPolicy,
    batch: usize,
) -> Result<BackfillReport> {
    rows.sort_by(|a, b| (a.week, &a.ticker).cmp(&(b.week, &b.ticker)));
    let mut cfg = sink_config.clone();
    cfg.max_file_age_ms = u64::MAX / 4; // offline: roll by rows and bytes only
    let mut sink = ParquetDirSink::new(&cfg)?;
    let source = SourceKey {
        topic: "backfill".into(),
        partition: 0,
    };
    sink.discard_after(&source, 0)?;
    let mut store = WindowStore::new(gap_policy);
    let mut report = BackfillReport {
        rows_in: rows.len(),
        ..Default::default()
    };
    let batch = batch.max(1);
    let mut pending: Vec<(i64, Window)> = Vec::with_capacity(batch);
    let start = Instant::now();
    let flush = |pending: &mut Vec<(i64, Window)>,
                 sink: &mut ParquetDirSink,
                 report: &mut BackfillReport|
     -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let refs: Vec<&Window> = pending.iter().map(|(_, w)| w).collect();
        let preds = score(model, &refs, trendscore_schemas::now_ms())?;
        let offsets: Vec<i64> = pending.iter().map(|(o, _)| *o).collect();
        report.files += sink.write(&source, &preds, &offsets, start)?.len();
        report.scored += preds.len();
        pending.clear();
        Ok(())
    };
    for (i, row) in rows.into_iter().enumerate() {
        let pushed = store.push(ValidRow {
            ticker: row.ticker,
            week: row.week,
            features: row.features,
        });
        if pushed.gap {
            report.gaps += 1;
        }
        match pushed.fate {
            Fate::Ready(w) => pending.push((i as i64, w)),
            Fate::Duplicate => report.duplicates += 1,
            Fate::Filling(_) | Fate::Late(_) => {}
        }
        if pending.len() >= batch {
            flush(&mut pending, &mut sink, &mut report)?;
        }
    }
    flush(&mut pending, &mut sink, &mut report)?;
    report.files += sink.close_all()?.len();
    tracing::info!(
        rows = report.rows_in,
        scored = report.scored,
        files = report.files,
        secs = start.elapsed().as_secs_f64(),
        "backfill done"
    );
    Ok(report)
}
