//! The data module (the guide's `create_lstm_data_loaders`): weekly rows -> per-ticker series ->
//! windows of `sequence_length` consecutive ISO weeks -> a time-aware (or shuffled) split ->
//! a [`Scaler`] fit on the training rows only ([`fit_scaler`]) -> normalised tensors.
//!
//! Rules, all pure functions of the rows and the config (no clock, no I/O):
//! - A window is `sequence_length` rows of one ticker whose ISO weeks are consecutive; it never
//!   crosses tickers or gaps (a missing week restarts the run).
//! - A window's labels are those of its last week; windows whose last week lacks either label
//!   are not trained or evaluated on (they are still scored by `predict`).
//! - Time split: the distinct last-weeks of the labelled windows are cut at `train_ratio` and
//!   `train_ratio + val_ratio`. A training window is kept only if its last week plus the longest
//!   horizon (30 days) falls before the first validation week; a validation window likewise
//!   before the first test week. The dropped ("purged") windows are counted in [`SplitSummary`].
//! - Shuffled split: labelled windows are shuffled with the seed and cut by count.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{Days, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};
// `scaler.json` is part of the checkpoint contract.
pub use trendscore_schemas::checkpoint::Scaler;
use trendscore_schemas::{feature_names, iso_week_index, WeeklyRow};

use crate::config::{LossConfig, LossKind, SequenceConfig, SplitMode};
use crate::error::{Result, TrainerError};

/// One ticker's rows sorted by week, restricted to the selected features.
#[derive(Clone, Debug)]
pub struct Series {
    /// The ticker.
    pub ticker: String,
    /// Weeks, ascending.
    pub weeks: Vec<NaiveDate>,
    /// Selected raw features, row-major (len(weeks) x n_features).
    pub features: Vec<f32>,
    /// 7-day trend labels.
    pub trend_7d: Vec<Option<f32>>,
    /// 30-day trend labels.
    pub trend_30d: Vec<Option<f32>>,
}

/// A window: rows `end + 1 - seq ..= end` of series `series`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowRef {
    /// Index into [`Corpus::series`].
    pub series: usize,
    /// Row index (in the series) of the window's last week.
    pub end: usize,
}

/// All series of a data set plus the feature selection.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Per-ticker series, ordered by ticker.
    pub series: Vec<Series>,
    /// Selected feature names, in model-input order.
    pub feature_names: Vec<String>,
    /// Weeks per window.
    pub seq_len: usize,
}

impl Corpus {
    /// Groups rows by ticker, sorts by week and keeps the features named in `names`.
    /// `source` names the data in errors.
    pub fn new(
        rows: &[WeeklyRow],
        names: &[String],
        seq_len: usize,
        source: &Path,
    ) -> Result<Self> {
        let all = feature_names();
        let mut idx = Vec::with_capacity(names.len());
        for n in names {
            match all.iter().position(|a| a == n) {
                Some(i) => idx.push(i),
                None => {
                    return Err(TrainerError::data(
                        source,
                        format!(
                            "unknown feature `{n}`; weekly rows carry feature_0..feature_{}",
                            all.len() - 1
                        ),
                    ))
                }
            }
        }
        let mut by_ticker: BTreeMap<&str, Vec<&WeeklyRow>> = BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            if r.features.len() != all.len() {
                return Err(TrainerError::data(
                    source,
                    format!(
                        "row {}: {} features, expected {}",
                        i + 1,
                        r.features.len(),
                        all.len()
                    ),
                ));
            }
            by_ticker.entry(r.ticker.as_str()).or_default().push(r);
        }
        let series = by_ticker
            .into_iter()
            .map(|(ticker, mut rs)| {
                rs.sort_by_key(|r| r.week);
                let mut features = Vec::with_capacity(rs.len() * idx.len());
                for r in &rs {
                    features.extend(idx.iter().map(|&i| r.features[i]));
                }
                Series {
                    ticker: ticker.to_string(),
                    weeks: rs.iter().map(|r| r.week).collect(),
                    features,
                    trend_7d: rs.iter().map(|r| r.trend_7day).collect(),
                    trend_30d: rs.iter().map(|r| r.trend_30day).collect(),
                }
            })
            .collect();
        Ok(Self {
            series,
            feature_names: names.to_vec(),
            seq_len,
        })
    }

    /// Number of selected features.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Every full window (labelled or not), series by series, oldest first.
    pub fn windows(&self) -> Vec<WindowRef> {
        let mut out = Vec::new();
        for (si, s) in self.series.iter().enumerate() {
            let mut run = 0usize;
            for i in 0..s.weeks.len() {
                let consecutive =
                    i > 0 && iso_week_index(s.weeks[i]) - iso_week_index(s.weeks[i - 1]) == 1;
                run = if consecutive { run + 1 } else { 1 };
                if run >= self.seq_len {
                    out.push(WindowRef { series: si, end: i });
                }
            }
        }
        out
    }

    /// Whether the window's last week carries both labels.
    pub fn is_labelled(&self, w: WindowRef) -> bool {
        let s = &self.series[w.series];
        s.trend_7d[w.end].is_some() && s.trend_30d[w.end].is_some()
    }

    /// Last week of the window.
    pub fn end_week(&self, w: WindowRef) -> NaiveDate {
        self.series[w.series].weeks[w.end]
    }

    /// First week of the window.
    pub fn start_week(&self, w: WindowRef) -> NaiveDate {
        self.series[w.series].weeks[w.end + 1 - self.seq_len]
    }

    /// Raw features of the window, (seq_len x n_features) row-major.
    pub fn raw_window(&self, w: WindowRef) -> &[f32] {
        let f = self.n_features();
        let s = &self.series[w.series];
        &s.features[(w.end + 1 - self.seq_len) * f..(w.end + 1) * f]
    }
}

/// Train/validation/test windows.
#[derive(Clone, Debug, Default)]
pub struct Split {
    /// Training windows.
    pub train: Vec<WindowRef>,
    /// Validation windows.
    pub val: Vec<WindowRef>,
    /// Test windows.
    pub test: Vec<WindowRef>,
    /// Counts and boundaries, written to `metrics.json`.
    pub summary: SplitSummary,
}

/// What the split did, for logs and `metrics.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    /// Full windows found.
    pub windows: usize,
    /// Windows whose last week lacks a label (not trained on).
    pub unlabelled: usize,
    /// Windows dropped at the split boundaries so that no label reaches into the next split.
    pub purged: usize,
    /// Windows per split.
    pub train: usize,
    /// Validation windows.
    pub val: usize,
    /// Test windows.
    pub test: usize,
    /// First validation week (time split).
    pub val_start: Option<NaiveDate>,
    /// First test week (time split).
    pub test_start: Option<NaiveDate>,
}

/// Splits the labelled windows as `cfg` says (see the module docs).
pub fn split(corpus: &Corpus, cfg: &SequenceConfig, seed: u64, source: &Path) -> Result<Split> {
    let all = corpus.windows();
    let labelled: Vec<WindowRef> = all
        .iter()
        .copied()
        .filter(|w| corpus.is_labelled(*w))
        .collect();
    let mut summary = SplitSummary {
        windows: all.len(),
        unlabelled: all.len() - labelled.len(),
        ..Default::default()
    };
    if labelled.len() < 3 {
        return Err(TrainerError::data(
            source,
            format!(
                "only {} labelled windows of {} consecutive weeks (of {} windows, {} series); need at least 3",
                labelled.len(),
                corpus.seq_len,
                all.len(),
                corpus.series.len()
            ),
        ));
    }
    let max_h = u64::from(*cfg.horizons.iter().max().unwrap_or(&30));
    let (train, val, test) = match cfg.split {
        SplitMode::Shuffled => {
            let mut ws = labelled.clone();
            ws.shuffle(&mut StdRng::seed_from_u64(seed));
            let n = ws.len();
            let n_train = ((n as f64 * cfg.train_ratio).round() as usize).clamp(1, n - 2);
            let n_val = ((n as f64 * cfg.val_ratio).round() as usize).clamp(1, n - n_train - 1);
            let test = ws.split_off(n_train + n_val);
            let val = ws.split_off(n_train);
            (ws, val, test)
        }
        SplitMode::Time => {
            let dates: Vec<NaiveDate> = labelled
                .iter()
                .map(|w| corpus.end_week(*w))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let n = dates.len();
            if n < 3 {
                return Err(TrainerError::data(
                    source,
                    format!("labelled windows end on only {n} distinct weeks; a time split needs at least 3"),
                ));
            }
            let i_val = ((n as f64 * cfg.train_ratio).floor() as usize).clamp(1, n - 2);
            let i_test = ((n as f64 * (cfg.train_ratio + cfg.val_ratio)).floor() as usize)
                .clamp(i_val + 1, n - 1);
            let (val_start, test_start) = (dates[i_val], dates[i_test]);
            summary.val_start = Some(val_start);
            summary.test_start = Some(test_start);
            // A label's horizon runs to `end + max_h` days; no arithmetic can panic (a date
            // past chrono's range is never before a boundary).
            let clears = |end: NaiveDate, boundary: NaiveDate| {
                end.checked_add_days(Days::new(max_h))
                    .is_some_and(|d| d < boundary)
            };
            let (mut tr, mut va, mut te) = (Vec::new(), Vec::new(), Vec::new());
            for w in &labelled {
                let end = corpus.end_week(*w);
                if end < val_start {
                    if clears(end, val_start) {
                        tr.push(*w);
                    } else {
                        summary.purged += 1;
                    }
                } else if end < test_start {
                    if clears(end, test_start) {
                        va.push(*w);
                    } else {
                        summary.purged += 1;
                    }
                } else {
                    te.push(*w);
                }
            }
            (tr, va, te)
        }
    };
    for (name, ws) in [("training", &train), ("validation", &val), ("test", &test)] {
        if ws.is_empty() {
            return Err(TrainerError::data(
                source,
                format!(
                    "the {name} split is empty ({} labelled windows over too few weeks; add weeks or change sequence.train_ratio/val_ratio)",
                    labelled.len()
                ),
            ));
        }
    }
    summary.train = train.len();
    summary.val = val.len();
    summary.test = test.len();
    Ok(Split {
        train,
        val,
        test,
        summary,
    })
}

/// Fits the [`Scaler`] on the distinct rows covered by `windows` (the training split), so
/// validation and test rows never influence it. Rows are taken in (series, row) order.
pub fn fit_scaler(corpus: &Corpus, windows: &[WindowRef]) -> Scaler {
    let f = corpus.n_features();
    let mut rows: HashSet<(usize, usize)> = HashSet::new();
    for w in windows {
        for r in w.end + 1 - corpus.seq_len..=w.end {
            rows.insert((w.series, r));
        }
    }
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_unstable();
    let rows: Vec<&[f32]> = rows
        .iter()
        .map(|&(s, r)| &corpus.series[s].features[r * f..(r + 1) * f])
        .collect();
    Scaler::fit(corpus.feature_names.clone(), &rows)
}

/// Tensors of one split, on one device.
#[derive(Debug)]
pub struct SplitTensors {
    /// Normalised inputs (n, seq, n_features) float32.
    pub x: Tensor,
    /// 7-day trend labels (n) float32.
    pub trend_7d: Tensor,
    /// 30-day trend labels (n) float32.
    pub trend_30d: Tensor,
    /// 7-day direction (n) int64, 1 = up (trend > 0).
    pub dir_7d: Tensor,
    /// 30-day direction (n) int64.
    pub dir_30d: Tensor,
    /// Per-sample weights (n) float32 used by the weighted losses (1 for `lstm`).
    pub weight: Tensor,
    /// The windows, in row order.
    pub windows: Vec<WindowRef>,
}

impl SplitTensors {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.windows.len()
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

/// Per-sample loss weights (see the crate README): recency for `weighted`
/// (`0.5^(age_weeks / half_life)`, age from `newest`), inverse window volatility for
/// `volatility_aware` (`1 / (std over the window of the raw volatility feature + eps)`),
/// 1 for `lstm`.
pub fn sample_weights(
    corpus: &Corpus,
    windows: &[WindowRef],
    loss: &LossConfig,
    newest: NaiveDate,
) -> Vec<f32> {
    match loss.kind {
        LossKind::Lstm => vec![1.0; windows.len()],
        LossKind::Weighted => windows
            .iter()
            .map(|w| {
                let age = (newest - corpus.end_week(*w)).num_days() as f64 / 7.0;
                0.5f64.powf(age / loss.recency_half_life_weeks.max(1e-9)) as f32
            })
            .collect(),
        LossKind::VolatilityAware => {
            let f = corpus.n_features();
            let j = corpus
                .feature_names
                .iter()
                .position(|n| *n == loss.volatility_feature)
                .unwrap_or(0);
            windows
                .iter()
                .map(|w| {
                    let raw = corpus.raw_window(*w);
                    let vals: Vec<f64> = (0..corpus.seq_len)
                        .map(|t| f64::from(raw[t * f + j]))
                        .collect();
                    let m = vals.iter().sum::<f64>() / vals.len() as f64;
                    let sd = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>()
                        / vals.len() as f64)
                        .sqrt();
                    (1.0 / (sd + loss.volatility_epsilon)) as f32
                })
                .collect()
        }
    }
}

/// Builds the tensors of `windows`, normalised with `scaler`, on `device`.
pub fn to_tensors(
    corpus: &Corpus,
    windows: &[WindowRef],
    scaler: &Scaler,
    weights: &[f32],
    device: Device,
) -> SplitTensors {
    let (n, s, f) = (windows.len(), corpus.seq_len, corpus.n_features());
    let mut x = Vec::with_capacity(n * s * f);
    let (mut t7, mut t30) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for w in windows {
        x.extend(scaler.normalise(corpus.raw_window(*w)));
        let se = &corpus.series[w.series];
        t7.push(se.trend_7d[w.end].unwrap_or(0.0));
        t30.push(se.trend_30d[w.end].unwrap_or(0.0));
    }
    let dir =
        |t: &[f32]| Tensor::from_slice(&t.iter().map(|&v| i64::from(v > 0.0)).collect::<Vec<_>>());
    SplitTensors {
        x: Tensor::from_slice(&x)
            .view([n as i64, s as i64, f as i64])
            .to_device(device),
        dir_7d: dir(&t7).to_device(device),
        dir_30d: dir(&t30).to_device(device),
        trend_7d: Tensor::from_slice(&t7).to_device(device),
        trend_30d: Tensor::from_slice(&t30).to_device(device),
        weight: Tensor::from_slice(weights)
            .to_kind(Kind::Float)
            .to_device(device),
        windows: windows.to_vec(),
    }
}

/// Raw (unnormalised) windows stacked as (n, seq, n_features).
pub fn raw_tensor(corpus: &Corpus, windows: &[WindowRef]) -> Tensor {
    let mut x = Vec::with_capacity(windows.len() * corpus.seq_len * corpus.n_features());
    for w in windows {
        x.extend_from_slice(corpus.raw_window(*w));
    }
    Tensor::from_slice(&x).view([
        windows.len() as i64,
        corpus.seq_len as i64,
        corpus.n_features() as i64,
    ])
}

/// Seeded batch order for one epoch: a permutation of `0..n` that depends only on
/// (`seed`, `epoch`), so a resumed run sees the same batches as an uninterrupted one.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<i64> {
    let mut idx: Vec<i64> = (0..n as i64).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(
        seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
    ));
    idx
}

/// Tickers per split, for the leakage checks in tests and logs.
pub fn tickers_of(corpus: &Corpus, ws: &[WindowRef]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for w in ws {
        *m.entry(corpus.series[w.series].ticker.clone()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use trendscore_schemas::synth::synthetic_rows;
    use trendscore_schemas::{MAX_DATE, MIN_DATE};

    fn corpus(rows: &[WeeklyRow]) -> Corpus {
        Corpus::new(rows, &feature_names(), 12, Path::new("mem")).unwrap()
    }

    #[test]
    fn windows_never_cross_tickers_or_gaps() {
        let mut rows = synthetic_rows(3, 40, 1);
        // Remove week 20 of the first ticker: a gap.
        let gap_week = rows[20].week;
        rows.retain(|r| !(r.ticker == "SYN000" && r.week == gap_week));
        let c = corpus(&rows);
        let ws = c.windows();
        for w in &ws {
            let s = &c.series[w.series];
            let weeks = &s.weeks[w.end + 1 - 12..=w.end];
            for p in weeks.windows(2) {
                assert_eq!(
                    iso_week_index(p[1]) - iso_week_index(p[0]),
                    1,
                    "{} {:?}",
                    s.ticker,
                    p
                );
            }
        }
        // SYN000: runs of 20 and 19 weeks -> 9 + 8 windows; others 29 each.
        assert_eq!(ws.len(), 9 + 8 + 29 + 29);
    }

    #[test]
    fn time_split_leaks_no_label_and_purges_boundaries() {
        let rows = synthetic_rows(4, 120, 2);
        let c = corpus(&rows);
        let sp = split(&c, &SequenceConfig::default(), 0, Path::new("mem")).unwrap();
        let val_start = sp.summary.val_start.unwrap();
        let test_start = sp.summary.test_start.unwrap();
        for w in &sp.train {
            assert!(c.end_week(*w) + Duration::days(30) < val_start);
        }
        for w in &sp.val {
            assert!(c.end_week(*w) >= val_start);
            assert!(c.end_week(*w) + Duration::days(30) < test_start);
        }
        for w in &sp.test {
            assert!(c.end_week(*w) >= test_start);
        }
        assert!(sp.summary.purged > 0);
        assert_eq!(
            sp.summary.train
                + sp.summary.val
                + sp.summary.test
                + sp.summary.purged
                + sp.summary.unlabelled,
            sp.summary.windows
        );
        // Roughly 70/15/15 of the dates.
        let frac = sp.train.len() as f64 / (sp.train.len() + sp.val.len() + sp.test.len()) as f64;
        assert!((0.6..0.8).contains(&frac), "{frac}");
    }

    #[test]
    fn shuffled_split_is_seeded_and_disjoint() {
        let rows = synthetic_rows(3, 60, 3);
        let c = corpus(&rows);
        let cfg = SequenceConfig {
            split: SplitMode::Shuffled,
            ..Default::default()
        };
        let a = split(&c, &cfg, 7, Path::new("mem")).unwrap();
        let b = split(&c, &cfg, 7, Path::new("mem")).unwrap();
        let d = split(&c, &cfg, 8, Path::new("mem")).unwrap();
        assert_eq!(a.train, b.train);
        assert_ne!(a.train, d.train);
        let tr: HashSet<_> = a.train.iter().collect();
        assert!(a.val.iter().chain(&a.test).all(|w| !tr.contains(w)));
    }

    #[test]
    fn scaler_ignores_validation_and_test_rows() {
        let rows = synthetic_rows(3, 100, 4);
        let c = corpus(&rows);
        let sp = split(&c, &SequenceConfig::default(), 0, Path::new("mem")).unwrap();
        let s1 = fit_scaler(&c, &sp.train);
        // Poison every row from the first validation week on: the scaler must not move.
        let val_start = sp.summary.val_start.unwrap();
        let mut poisoned = rows.clone();
        for r in poisoned.iter_mut().filter(|r| r.week >= val_start) {
            r.features.iter_mut().for_each(|v| *v = 1e6);
        }
        let c2 = corpus(&poisoned);
        let sp2 = split(&c2, &SequenceConfig::default(), 0, Path::new("mem")).unwrap();
        assert_eq!(sp.train, sp2.train);
        let s2 = fit_scaler(&c2, &sp2.train);
        assert_eq!(s1, s2);
        // And it really is the training rows' statistics (feature_6 is a price level ~100s).
        assert!(s1.mean[6] > 10.0 && s1.std[6] > 0.0);
    }

    #[test]
    fn zero_std_reads_as_one() {
        let s = Scaler {
            feature_names: vec!["a".into(), "b".into()],
            mean: vec![1.0, 2.0],
            std: vec![0.0, 2.0],
        };
        assert_eq!(s.normalise(&[3.0, 6.0]), vec![2.0, 2.0]);
    }

    #[test]
    fn unknown_feature_and_too_little_data_are_clear_errors() {
        let rows = synthetic_rows(1, 20, 5);
        let e = Corpus::new(
            &rows,
            &["feature_99".to_string()],
            12,
            Path::new("x.parquet"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("x.parquet") && e.to_string().contains("feature_99"),
            "{e}"
        );
        let c = Corpus::new(&rows[..11], &feature_names(), 12, Path::new("x.parquet")).unwrap();
        let e = split(&c, &SequenceConfig::default(), 0, Path::new("x.parquet")).unwrap_err();
        assert!(e.to_string().contains("labelled windows"), "{e}");
    }

    #[test]
    fn dates_at_both_ends_of_the_accepted_range_split_without_panics() {
        let rows = synthetic_rows(3, 80, 6);
        let first = rows.iter().map(|r| r.week).min().unwrap();
        let last = rows.iter().map(|r| r.week).max().unwrap();
        // Fridays both: MIN_DATE + 4 days and MAX_DATE (9999-12-31).
        let first_friday = MIN_DATE + Duration::days(4);
        for shift in [MAX_DATE - last, first_friday - first] {
            let moved: Vec<WeeklyRow> = rows
                .iter()
                .map(|r| WeeklyRow {
                    week: r.week + shift,
                    ..r.clone()
                })
                .collect();
            assert!(moved
                .iter()
                .all(|r| (MIN_DATE..=MAX_DATE).contains(&r.week)));
            let c = corpus(&moved);
            let sp = split(&c, &SequenceConfig::default(), 0, Path::new("mem")).unwrap();
            assert!(!sp.train.is_empty() && !sp.test.is_empty());
            let newest = moved.iter().map(|r| r.week).max().unwrap();
            let loss = LossConfig {
                kind: LossKind::Weighted,
                ..Default::default()
            };
            let w = sample_weights(&c, &sp.train, &loss, newest);
            assert!(w.iter().all(|v| v.is_finite() && *v > 0.0));
            fit_scaler(&c, &sp.train).validate().unwrap();
        }
    }

    #[test]
    fn epoch_order_depends_on_seed_and_epoch_only() {
        assert_eq!(epoch_order(50, 1, 3), epoch_order(50, 1, 3));
        assert_ne!(epoch_order(50, 1, 3), epoch_order(50, 1, 4));
        let mut o = epoch_order(50, 1, 3);
        o.sort();
        assert_eq!(o, (0..50).collect::<Vec<_>>());
    }
}
