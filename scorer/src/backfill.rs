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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use trendscore_schemas::NUM_FEATURES;

    use crate::test_support::echo;

    fn rows(tickers: usize, weeks: usize, skip: Option<(usize, usize)>) -> Vec<WeeklyRow> {
        let base = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
        let mut out = Vec::new();
        for t in 0..tickers {
            for w in 0..weeks {
                if skip == Some((t, w)) {
                    continue;
                }
                let mut features = vec![0.0; NUM_FEATURES];
                features[0] = (t * 1000 + w) as f32;
                out.push(WeeklyRow {
                    ticker: format!("T{t}"),
                    week: base + chrono::Duration::weeks(w as i64),
                    features,
                    trend_7day: None,
                    trend_30day: None,
                });
            }
        }
        out
    }

    #[test]
    fn backfill_scores_every_full_window_once_in_small_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SinkConfig {
            output_dir: dir.path().to_path_buf(),
            max_rows_per_file: 7,
            ..SinkConfig::default()
        };
        let report = backfill_rows(&echo(), rows(3, 20, None), &cfg, GapPolicy::Reset, 5).unwrap();
        assert_eq!(report.scored, 3 * (20 - 11));
        let preds = crate::sink::read_all_predictions(dir.path()).unwrap();
        assert_eq!(preds.len(), 27);
        for p in &preds {
            let t: usize = p.ticker[1..].parse().unwrap();
            let w = (p.week - NaiveDate::from_ymd_opt(2024, 1, 5).unwrap()).num_weeks() as usize;
            assert_eq!(
                p.trend_7d,
                (t * 1000 + w) as f32,
                "newest row of the window"
            );
            assert_eq!(
                p.trend_30d,
                (t * 1000 + w - 11) as f32,
                "oldest row of the window"
            );
            assert_eq!(p.window_start, p.week - chrono::Duration::weeks(11));
            assert_eq!(p.model_version, "echo-1");
            assert_eq!(p.p_up_7d, 0.5);
            assert!(p.source_partition.is_none() && p.source_offset.is_none());
        }
        // running again replaces, never duplicates
        backfill_rows(&echo(), rows(3, 20, None), &cfg, GapPolicy::Reset, 64).unwrap();
        assert_eq!(
            crate::sink::read_all_predictions(dir.path()).unwrap().len(),
            27
        );
    }

    #[test]
    fn backfill_gap_policy_reset_and_carry() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SinkConfig {
            output_dir: dir.path().join("reset"),
            ..SinkConfig::default()
        };
        // ticker 0 misses week 5: reset -> weeks 6..19 (14 rows) give 3 windows
        let r = backfill_rows(
            &echo(),
            rows(1, 20, Some((0, 5))),
            &cfg,
            GapPolicy::Reset,
            8,
        )
        .unwrap();
        assert_eq!((r.scored, r.gaps), (3, 1));
        let cfg = SinkConfig {
            output_dir: dir.path().join("carry"),
            ..SinkConfig::default()
        };
        // carry: 19 rows in one run -> 8 windows
        let r = backfill_rows(
            &echo(),
            rows(1, 20, Some((0, 5))),
            &cfg,
            GapPolicy::Carry,
            8,
        )
        .unwrap();
        assert_eq!((r.scored, r.gaps), (8, 1));
    }
}
