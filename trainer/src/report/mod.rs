//! `trainer report`: an honest out-of-sample evaluation of the model beside naive baselines.
//!
//! Module map:
//! - [`folds`]: walk-forward (yearly, expanding, purged + embargoed) or single fold plans;
//! - [`baselines`]: always-up, last week's sign, 4-week momentum sign, logistic regression;
//! - [`metrics`]: accuracy, AUC, Brier, log loss, trend MAE/Pearson, weekly IC (pure);
//! - [`bootstrap`]: week-block bootstrap intervals ([`bootstrap::MetricSet`]);
//! - [`write`]: `report.json`, `report.md`, `oos_predictions.parquet`, `train_windows.parquet`;
//! - [`plots`]: the PNGs.
//!
//! Each fold trains the model with the trainer's own loop ([`crate::train::fit_prepared`]: the
//! fold's training windows, early stopping on its validation tail, the scaler fit on its
//! training windows only), once per seed, and averages the seeds' outputs on its test windows;
//! the baselines are fit on the same training windows. Every checkpoint is kept under
//! `DIR/folds/<fold>/seed<k>/`.
//!
//! # `DIR/report.json`
//! - `format_version` (1), `data`, `target` and `cross_sectional` (the rows' label target and
//!   feature transform, from their manifest), `rows`, `tickers`, `folds_mode` (`walk-forward`|`single`),
//!   `test_from`, `embargo_days`, `max_horizon_days`, `seeds` (list), `epochs` (the budget),
//!   `bootstrap` (`resamples`, `seed`, `block` = `"week"`);
//! - `folds`: one object per fold: `fold`, `name` (test year or `single`), `train_start`,
//!   `train_end` (last week of a training or validation window), `val_start`, `last_label_end`
//!   (`train_end` + the longest horizon: the last price any training label reads), `test_start`,
//!   `test_end` (the period's first and last day), `first_test_week`, `last_test_week`,
//!   `n_train`, `n_val`, `n_test`, `purged`, `val_purged`, `base_rate_7d`, `base_rate_30d`
//!   (training up-shares), `epochs_run` and `best_epoch` (per seed);
//! - `horizons.7d` and `horizons.30d`, each: `model` and `baselines.{always_up, last_sign,
//!   momentum_4w, logistic}`, each a metric set over all test rows: `n`, `weeks`, `up_rate`,
//!   `accuracy`, `auc`, `brier`, `log_loss`, `pearson`, `ic_mean` each with a `*_ci` ([lo, hi],
//!   95%, week-block bootstrap), `trend_mae`, `ic_t`, `ic_weeks`; `vs_best_baseline.accuracy`
//!   and `.auc`: the best baseline by that metric (`baseline`), both values, the paired
//!   bootstrap interval of model minus baseline (`diff`, `diff_ci`), `model_ci_excludes_baseline`
//!   and `beats` (the difference's interval lies above 0); `by_year` and `by_ticker`: the same
//!   `{model, baselines}` per test year and per ticker; `calibration` (ten equal-width bins of
//!   the model's `p_up`: `lo`, `hi`, `n`, `mean_p`, `observed`); `ic_weekly` (`week`, `ic`,
//!   `n` of the model per test week);
//! - `attention_mean`: the model's attention per window step (oldest first) averaged over all
//!   test windows; `verdict`: the sentence of `report.md`.
//!
//! What each method's score, probability and trend are: [`baselines`]; metric definitions:
//! [`metrics`]; undefined values are `null`.

pub mod baselines;
pub mod bootstrap;
pub mod folds;
pub mod metrics;
pub mod plots;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use trendscore_schemas::WeeklyRow;

use crate::checkpoint;
use crate::config::{SequenceConfig, SplitMode, TrainConfig};
use crate::data::{self, Corpus, Scaler, WindowRef};
use crate::error::{Result, TrainerError};
use crate::train::{self, predictions_of, resolve_device, run_batched};
use bootstrap::{draw_resamples, evaluate, paired_diff_ci, MetricSet, WeekBlocks};
pub use folds::FoldMode;
use metrics::{Forecast, Truth};

/// The baseline names, in report order.
pub const BASELINES: [&str; 4] = ["always_up", "last_sign", "momentum_4w", "logistic"];

/// What `trainer report` does besides the training config.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportOptions {
    /// Walk-forward (default) or single.
    pub folds: FoldMode,
    /// First test day; default: January 1 of the year in which `fit`'s time split would start
    /// its test split (walk-forward), or that day itself (single).
    pub test_from: Option<NaiveDate>,
    /// Models per fold (seeds `training.seed`, `+1`, ...); their outputs are averaged.
    pub seeds: usize,
    /// Embargo in days; default: the longest horizon (30).
    pub embargo_days: Option<i64>,
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// Bootstrap seed.
    pub bootstrap_seed: u64,
    /// L2 penalty of the logistic baseline (and its ridge trend).
    pub logistic_l2: f64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            folds: FoldMode::WalkForward,
            test_from: None,
            seeds: 1,
            embargo_days: None,
            bootstrap: 1000,
            bootstrap_seed: 20_240_101,
            logistic_l2: 1e-2,
        }
    }
}

/// `report.json` (see the module docs for every key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// 1.
    pub format_version: u32,
    /// The rows' file.
    pub data: String,
    /// What the labels measure, from the rows' feature manifest (`raw`, `excess`, `xs` or
    /// `unknown`): the model and the baselines all predict this.
    pub target: String,
    /// The rows' cross-sectional feature transform (`none`, `rank`, `zscore` or `unknown`).
    pub cross_sectional: String,
    /// Rows read.
    pub rows: usize,
    /// Tickers among them.
    pub tickers: usize,
    /// Fold mode.
    pub folds_mode: FoldMode,
    /// First test day.
    pub test_from: NaiveDate,
    /// Embargo (days).
    pub embargo_days: i64,
    /// Longest label horizon (days).
    pub max_horizon_days: i64,
    /// Training seeds of every fold.
    pub seeds: Vec<u64>,
    /// Epoch budget per model.
    pub epochs: usize,
    /// Bootstrap settings.
    pub bootstrap: BootstrapInfo,
    /// The folds.
    pub folds: Vec<FoldRecord>,
    /// `7d` and `30d`.
    pub horizons: BTreeMap<String, HorizonReport>,
    /// Mean attention per window step over all test windows.
    pub attention_mean: Vec<f64>,
    /// The verdict sentence(s).
    pub verdict: String,
}

/// Bootstrap settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapInfo {
    /// Resamples.
    pub resamples: usize,
    /// Seed (each row group mixes in its name).
    pub seed: u64,
    /// `"week"`: whole weeks are resampled.
    pub block: String,
}

/// One fold in `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldRecord {
    /// 0-based.
    pub fold: usize,
    /// Test year or `single`.
    pub name: String,
    /// First training window's last week.
    pub train_start: NaiveDate,
    /// Last week of a training or validation window.
    pub train_end: NaiveDate,
    /// First validation week.
    pub val_start: NaiveDate,
    /// `train_end` + the longest horizon.
    pub last_label_end: NaiveDate,
    /// First day of the test period.
    pub test_start: NaiveDate,
    /// Last day of the test period.
    pub test_end: NaiveDate,
    /// First test week present.
    pub first_test_week: NaiveDate,
    /// Last test week present.
    pub last_test_week: NaiveDate,
    /// Fitting windows.
    pub n_train: usize,
    /// Validation windows.
    pub n_val: usize,
    /// Test windows.
    pub n_test: usize,
    /// Windows before the test period dropped by purge and embargo.
    pub purged: usize,
    /// Training-period windows dropped at the validation boundary.
    pub val_purged: usize,
    /// Training up-share, 7 days.
    pub base_rate_7d: f64,
    /// Training up-share, 30 days.
    pub base_rate_30d: f64,
    /// Epochs run per seed.
    pub epochs_run: Vec<usize>,
    /// Best epoch per seed.
    pub best_epoch: Vec<Option<usize>>,
}

/// The model and the baselines on one group of rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The model.
    pub model: MetricSet,
    /// The baselines.
    pub baselines: Baselines,
}

/// One metric set per baseline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Always up.
    pub always_up: MetricSet,
    /// Last week's sign.
    pub last_sign: MetricSet,
    /// 4-week momentum sign.
    pub momentum_4w: MetricSet,
    /// Logistic regression.
    pub logistic: MetricSet,
}

impl Baselines {
    /// `(name, metrics)` in [`BASELINES`] order.
    pub fn named(&self) -> [(&'static str, &MetricSet); 4] {
        [
            ("always_up", &self.always_up),
            ("last_sign", &self.last_sign),
            ("momentum_4w", &self.momentum_4w),
            ("logistic", &self.logistic),
        ]
    }
}

/// The model against the best baseline on one metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Versus {
    /// The baseline with the best point value.
    pub baseline: String,
    /// The model's value.
    pub model: Option<f64>,
    /// The baseline's value.
    pub baseline_value: Option<f64>,
    /// Model minus baseline.
    pub diff: Option<f64>,
    /// Paired week-block bootstrap 95% interval of the difference.
    pub diff_ci: Option<[f64; 2]>,
    /// Whether the model's own interval excludes the baseline's value (lies above it).
    pub model_ci_excludes_baseline: bool,
    /// Whether the difference's interval lies above 0.
    pub beats: bool,
}

/// The model against the best baseline, by accuracy and by AUC.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// By direction accuracy.
    pub accuracy: Versus,
    /// By ROC AUC.
    pub auc: Versus,
}

/// One calibration bin of the model's `p_up`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Rows in the bin.
    pub n: usize,
    /// Mean predicted probability.
    pub mean_p: Option<f64>,
    /// Observed up-share.
    pub observed: Option<f64>,
}

/// The model's IC of one test week.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeeklyIc {
    /// The week.
    pub week: NaiveDate,
    /// Spearman correlation of the score with the realised trend.
    pub ic: Option<f64>,
    /// Rows that week.
    pub n: usize,
}

/// One horizon's section of `report.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HorizonReport {
    /// The model over all test rows.
    pub model: MetricSet,
    /// The baselines over the same rows.
    pub baselines: Baselines,
    /// The model against the best baseline.
    pub vs_best_baseline: Comparison,
    /// Per test year.
    pub by_year: BTreeMap<String, GroupReport>,
    /// Per ticker.
    pub by_ticker: BTreeMap<String, GroupReport>,
    /// Calibration of the model's `p_up`.
    pub calibration: Vec<CalibrationBin>,
    /// The model's weekly IC.
    pub ic_weekly: Vec<WeeklyIc>,
}

/// One out-of-sample prediction (a row of `oos_predictions.parquet`).
#[derive(Clone, Debug, PartialEq)]
pub struct OosRow {
    /// Ticker.
    pub ticker: String,
    /// The window's last week.
    pub week: NaiveDate,
    /// Fold index.
    pub fold: usize,
    /// Model (seed mean) `p_up`, 7 days.
    pub p_up_7d: f32,
    /// Model trend, 7 days.
    pub trend_7d: f32,
    /// Model `p_up`, 30 days.
    pub p_up_30d: f32,
    /// Model trend, 30 days.
    pub trend_30d: f32,
    /// The 7-day label.
    pub trend_7day: f32,
    /// The 30-day label.
    pub trend_30day: f32,
}

/// A fitting or validation window of a fold (a row of `train_windows.parquet`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainWindow {
    /// Fold index.
    pub fold: usize,
    /// Ticker.
    pub ticker: String,
    /// The window's last week.
    pub week: NaiveDate,
    /// `train` or `val`.
    pub role: &'static str,
}

/// Everything [`run`] computed, also written to `out`.
#[derive(Debug)]
pub struct ReportOutput {
    /// `report.json`.
    pub report: Report,
    /// `oos_predictions.parquet` rows.
    pub oos: Vec<OosRow>,
    /// The directory written.
    pub out: PathBuf,
}

/// Forecasts of every method on the OOS rows: index 0 = 7 days, 1 = 30 days.
#[derive(Debug, Default)]
struct Collected {
    rows: Vec<OosRow>,
    model: [Forecast; 2],
    baselines: [[Forecast; 2]; 4],
    attention_sum: Vec<f64>,
    attention_n: usize,
}

fn extend(f: &mut Forecast, g: Forecast) {
    f.pred_up.extend(g.pred_up);
    f.p_up.extend(g.p_up);
    f.score.extend(g.score);
    f.trend.extend(g.trend);
}

fn label(c: &Corpus, w: WindowRef, h: usize) -> f64 {
    let s = &c.series[w.series];
    let v = if h == 0 {
        s.trend_7d[w.end]
    } else {
        s.trend_30d[w.end]
    };
    f64::from(v.expect("labelled window"))
}

/// The 7-day labels of a window's weeks before its last (oldest first).
fn past_labels(c: &Corpus, w: WindowRef) -> &[Option<f32>] {
    &c.series[w.series].trend_7d[w.end + 1 - c.seq_len..w.end]
}

/// The window's last week of features, normalised with `scaler`, as f64 (n x f).
fn last_week_inputs(c: &Corpus, ws: &[WindowRef], scaler: &Scaler) -> Vec<f64> {
    let f = c.n_features();
    let mut out = Vec::with_capacity(ws.len() * f);
    for w in ws {
        let raw = c.raw_window(*w);
        out.extend(
            scaler
                .normalise(&raw[(c.seq_len - 1) * f..])
                .into_iter()
                .map(f64::from),
        );
    }
    out
}

/// Fits the four baselines on `train` and forecasts `test`: `[always_up, last_sign, momentum_4w,
/// logistic][horizon]`, horizon 0 = 7 days, 1 = 30 days.
pub fn baseline_forecasts(
    c: &Corpus,
    train: &[WindowRef],
    test: &[WindowRef],
    scaler: &Scaler,
    l2: f64,
) -> [[Forecast; 2]; 4] {
    let sig = |ws: &[WindowRef], f: fn(&[Option<f32>]) -> Option<bool>| {
        ws.iter().map(|w| f(past_labels(c, *w))).collect::<Vec<_>>()
    };
    let (last_tr, last_te) = (
        sig(train, baselines::last_sign_signal),
        sig(test, baselines::last_sign_signal),
    );
    let (mom_tr, mom_te) = (
        sig(train, baselines::momentum_4w_signal),
        sig(test, baselines::momentum_4w_signal),
    );
    let (x_tr, x_te) = (
        last_week_inputs(c, train, scaler),
        last_week_inputs(c, test, scaler),
    );
    let d = c.n_features();
    let per_horizon = |h: usize| {
        let y: Vec<f64> = train.iter().map(|w| label(c, *w, h)).collect();
        [
            baselines::AlwaysUp::fit(&y).predict(test.len()),
            baselines::SignRule::fit(&last_tr, &y).predict(&last_te),
            baselines::SignRule::fit(&mom_tr, &y).predict(&mom_te),
            baselines::Logistic::fit(&x_tr, d, &y, l2).predict(&x_te),
        ]
    };
    let [a7, l7, m7, g7] = per_horizon(0);
    let [a30, l30, m30, g30] = per_horizon(1);
    [[a7, a30], [l7, l30], [m7, m30], [g7, g30]]
}

fn group_seed(base: u64, key: &str) -> u64 {
    // FNV-1a of the group's name, so each group has its own fixed resamples.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    base ^ h
}

fn group_report(
    idx: &[usize],
    key: &str,
    weeks: &[NaiveDate],
    truth: &Truth,
    model: &Forecast,
    base: &[Forecast],
    opts: &ReportOptions,
) -> GroupReport {
    let keys: Vec<NaiveDate> = idx.iter().map(|&i| weeks[i]).collect();
    let blocks = WeekBlocks::from_keys(&keys);
    let resamples = draw_resamples(
        blocks.n_weeks,
        opts.bootstrap,
        group_seed(opts.bootstrap_seed, key),
    );
    let t = truth.subset(idx);
    let ev = |f: &Forecast| evaluate(&f.subset(idx), &t, &blocks, &resamples);
    GroupReport {
        model: ev(model),
        baselines: Baselines {
            always_up: ev(&base[0]),
            last_sign: ev(&base[1]),
            momentum_4w: ev(&base[2]),
            logistic: ev(&base[3]),
        },
    }
}

fn versus(
    g: &GroupReport,
    get: fn(&MetricSet) -> Option<f64>,
    ci: fn(&MetricSet) -> Option<[f64; 2]>,
    boot: fn(&MetricSet) -> &[Option<f64>],
) -> Versus {
    let (name, best) = g
        .baselines
        .named()
        .into_iter()
        .max_by(|a, b| {
            get(a.1)
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&get(b.1).unwrap_or(f64::NEG_INFINITY))
        })
        .expect("four baselines");
    let diff_ci = paired_diff_ci(boot(&g.model), boot(best));
    let (m, b) = (get(&g.model), get(best));
    Versus {
        baseline: name.to_string(),
        model: m,
        baseline_value: b,
        diff: m.zip(b).map(|(m, b)| m - b),
        diff_ci,
        model_ci_excludes_baseline: matches!((ci(&g.model), b), (Some(c), Some(b)) if c[0] > b),
        beats: diff_ci.is_some_and(|c| c[0] > 0.0),
    }
}

fn get_accuracy(m: &MetricSet) -> Option<f64> {
    m.accuracy
}
fn get_accuracy_ci(m: &MetricSet) -> Option<[f64; 2]> {
    m.accuracy_ci
}
fn get_boot_accuracy(m: &MetricSet) -> &[Option<f64>] {
    &m.boot_accuracy
}
fn get_auc(m: &MetricSet) -> Option<f64> {
    m.auc
}
fn get_auc_ci(m: &MetricSet) -> Option<[f64; 2]> {
    m.auc_ci
}
fn get_boot_auc(m: &MetricSet) -> &[Option<f64>] {
    &m.boot_auc
}

fn calibration(f: &Forecast, t: &Truth) -> Vec<CalibrationBin> {
    (0..10)
        .map(|b| {
            let (lo, hi) = (b as f64 / 10.0, (b + 1) as f64 / 10.0);
            let rows: Vec<usize> = (0..f.len())
                .filter(|&i| {
                    let p = f.p_up[i];
                    p >= lo && (p < hi || (b == 9 && p <= hi))
                })
                .collect();
            let n = rows.len();
            let mean = |v: &dyn Fn(usize) -> f64| {
                (n > 0).then(|| rows.iter().map(|&i| v(i)).sum::<f64>() / n as f64)
            };
            CalibrationBin {
                lo,
                hi,
                n,
                mean_p: mean(&|i| f.p_up[i]),
                observed: mean(&|i| f64::from(u8::from(t.up[i]))),
            }
        })
        .collect()
}

fn horizon_report(c: &Collected, h: usize, opts: &ReportOptions) -> HorizonReport {
    let rows = &c.rows;
    let weeks: Vec<NaiveDate> = rows.iter().map(|r| r.week).collect();
    let truth = Truth::from_trend(
        rows.iter()
            .map(|r| f64::from(if h == 0 { r.trend_7day } else { r.trend_30day }))
            .collect(),
    );
    let base: Vec<Forecast> = c.baselines.iter().map(|b| b[h].clone()).collect();
    let model = &c.model[h];
    let hz = if h == 0 { "7d" } else { "30d" };
    let all: Vec<usize> = (0..rows.len()).collect();
    let overall = group_report(
        &all,
        &format!("{hz}/all"),
        &weeks,
        &truth,
        model,
        &base,
        opts,
    );
    let mut by_year: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut by_ticker: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_year
            .entry(r.week.year().to_string())
            .or_default()
            .push(i);
        by_ticker.entry(r.ticker.clone()).or_default().push(i);
    }
    let sub = |m: BTreeMap<String, Vec<usize>>, kind: &str| {
        m.into_iter()
            .map(|(k, idx)| {
                let key = format!("{hz}/{kind}/{k}");
                let g = group_report(&idx, &key, &weeks, &truth, model, &base, opts);
                (k, g)
            })
            .collect::<BTreeMap<String, GroupReport>>()
    };
    let blocks = WeekBlocks::from_keys(&weeks);
    let mut distinct = weeks.clone();
    distinct.sort();
    distinct.dedup();
    let ics = bootstrap::weekly_ics(model, &truth, &blocks);
    let counts = blocks.rows_of_week();
    let ic_weekly = distinct
        .iter()
        .zip(ics)
        .zip(counts)
        .map(|((w, ic), rows)| WeeklyIc {
            week: *w,
            ic,
            n: rows.len(),
        })
        .collect();
    HorizonReport {
        vs_best_baseline: Comparison {
            accuracy: versus(&overall, get_accuracy, get_accuracy_ci, get_boot_accuracy),
            auc: versus(&overall, get_auc, get_auc_ci, get_boot_auc),
        },
        model: overall.model,
        baselines: overall.baselines,
        by_year: sub(by_year, "year"),
        by_ticker: sub(by_ticker, "ticker"),
        calibration: calibration(model, &truth),
        ic_weekly,
    }
}

/// The default first test day: January 1 of the year in which `fit`'s time split starts its
/// test split (walk-forward), or that day itself (single).
fn default_test_from(
    c: &Corpus,
    cfg: &TrainConfig,
    mode: FoldMode,
    source: &Path,
) -> Result<NaiveDate> {
    let seq = SequenceConfig {
        split: SplitMode::Time,
        ..cfg.sequence.clone()
    };
    let sp = data::split(c, &seq, cfg.training.seed, source)?;
    let start = sp.summary.test_start.expect("time split");
    Ok(match mode {
        FoldMode::Single => start,
        FoldMode::WalkForward => NaiveDate::from_ymd_opt(start.year(), 1, 1).expect("valid"),
    })
}

/// Runs the evaluation over `rows` and writes everything to `out` (see the module docs).
pub fn run(
    rows: &[WeeklyRow],
    source: &Path,
    cfg: &TrainConfig,
    opts: &ReportOptions,
    out: &Path,
) -> Result<ReportOutput> {
    cfg.validate()?;
    if opts.seeds == 0 {
        return Err(TrainerError::Config {
            path: "(flags)".into(),
            message: "--seeds must be at least 1".into(),
        });
    }
    if cfg.training.num_threads > 0 {
        tch::set_num_threads(cfg.training.num_threads as i32);
    }
    let device = resolve_device(&cfg.training.device)?;
    std::fs::create_dir_all(out).map_err(|e| TrainerError::io(out, e))?;
    let corpus = Corpus::new(
        rows,
        &cfg.features.names,
        cfg.sequence.sequence_length,
        source,
    )?;
    let all_windows = corpus.windows();
    let labelled: Vec<WindowRef> = all_windows
        .iter()
        .copied()
        .filter(|w| corpus.is_labelled(*w))
        .collect();
    let test_from = match opts.test_from {
        Some(d) => d,
        None => default_test_from(&corpus, cfg, opts.folds, source)?,
    };
    let max_h = i64::from(*cfg.sequence.horizons.iter().max().unwrap_or(&30));
    let embargo = opts.embargo_days.unwrap_or(max_h);
    let settings = folds::FoldSettings {
        mode: opts.folds,
        test_from,
        embargo_days: embargo,
        max_horizon_days: max_h,
        train_ratio: cfg.sequence.train_ratio,
        val_ratio: cfg.sequence.val_ratio,
    };
    let plans =
        folds::plan(&corpus, &labelled, &settings).map_err(|m| TrainerError::data(source, m))?;
    let seeds: Vec<u64> = (0..opts.seeds as u64)
        .map(|k| cfg.training.seed.wrapping_add(k))
        .collect();
    tracing::info!(
        folds = plans.len(), %test_from, embargo_days = embargo, seeds = seeds.len(),
        "walk-forward report"
    );

    let mut col = Collected {
        attention_sum: vec![0.0; corpus.seq_len],
        ..Default::default()
    };
    let mut fold_records = Vec::new();
    let mut train_windows = Vec::new();
    for plan in &plans {
        let summary = data::SplitSummary {
            windows: all_windows.len(),
            unlabelled: all_windows.len() - labelled.len(),
            purged: plan.purged + plan.val_purged,
            train: plan.train.len(),
            val: plan.val.len(),
            test: plan.test.len(),
            val_start: Some(plan.val_start),
            test_start: Some(plan.test_start),
        };
        let split = data::Split {
            train: plan.train.clone(),
            val: plan.val.clone(),
            test: plan.test.clone(),
            summary,
        };
        tracing::info!(
            fold = %plan.name, train = plan.train.len(), val = plan.val.len(),
            test = plan.test.len(), purged = plan.purged, "fold"
        );
        let prep = train::prepare_split(corpus.clone(), split, cfg, device);
        let n = plan.test.len();
        let mut sums = [vec![0.0f64; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]];
        let (mut epochs_run, mut best_epoch) = (Vec::new(), Vec::new());
        for &seed in &seeds {
            let mut c = cfg.clone();
            c.training.seed = seed;
            let dir = out
                .join("folds")
                .join(&plan.name)
                .join(format!("seed{seed}"));
            let fit = train::fit_prepared(&prep, source, &c, &dir, false)?;
            epochs_run.push(fit.metrics.epochs_run);
            best_epoch.push(fit.metrics.best_epoch);
            let m = checkpoint::load(&dir, device)?;
            let p = predictions_of(&run_batched(&m.model, &prep.test.x, 1024));
            for (s, v) in sums
                .iter_mut()
                .zip([&p.p_up_7d, &p.trend_7d, &p.p_up_30d, &p.trend_30d])
            {
                for (a, b) in s.iter_mut().zip(v.iter()) {
                    *a += f64::from(*b) / seeds.len() as f64;
                }
            }
            for (i, a) in p.attention.iter().enumerate() {
                col.attention_sum[i % corpus.seq_len] += f64::from(*a) / seeds.len() as f64;
            }
        }
        col.attention_n += n;
        for (i, w) in plan.test.iter().enumerate() {
            col.rows.push(OosRow {
                ticker: corpus.series[w.series].ticker.clone(),
                week: corpus.end_week(*w),
                fold: plan.index,
                p_up_7d: sums[0][i] as f32,
                trend_7d: sums[1][i] as f32,
                p_up_30d: sums[2][i] as f32,
                trend_30d: sums[3][i] as f32,
                trend_7day: label(&corpus, *w, 0) as f32,
                trend_30day: label(&corpus, *w, 1) as f32,
            });
        }
        for h in 0..2 {
            let (p, t) = (&sums[2 * h], &sums[2 * h + 1]);
            extend(
                &mut col.model[h],
                Forecast {
                    pred_up: p.iter().map(|&v| v > 0.5).collect(),
                    p_up: p.clone(),
                    score: p.clone(),
                    trend: t.clone(),
                },
            );
        }
        let base = baseline_forecasts(
            &corpus,
            &plan.train,
            &plan.test,
            &prep.scaler,
            opts.logistic_l2,
        );
        for (acc, b) in col.baselines.iter_mut().zip(base) {
            for (h, f) in b.into_iter().enumerate() {
                extend(&mut acc[h], f);
            }
        }
        for (ws, role) in [(&plan.train, "train"), (&plan.val, "val")] {
            for w in ws {
                train_windows.push(TrainWindow {
                    fold: plan.index,
                    ticker: corpus.series[w.series].ticker.clone(),
                    week: corpus.end_week(*w),
                    role,
                });
            }
        }
        let rate = |h: usize| {
            plan.train
                .iter()
                .filter(|w| label(&corpus, **w, h) > 0.0)
                .count() as f64
                / plan.train.len() as f64
        };
        let test_weeks = plan.test.iter().map(|w| corpus.end_week(*w));
        let train_end = plan.train_end(&corpus);
        fold_records.push(FoldRecord {
            fold: plan.index,
            name: plan.name.clone(),
            train_start: plan.train_start(&corpus),
            train_end,
            val_start: plan.val_start,
            last_label_end: train_end + Duration::days(max_h),
            test_start: plan.test_start,
            test_end: plan.test_end,
            first_test_week: test_weeks.clone().min().expect("non-empty"),
            last_test_week: test_weeks.max().expect("non-empty"),
            n_train: plan.train.len(),
            n_val: plan.val.len(),
            n_test: plan.test.len(),
            purged: plan.purged,
            val_purged: plan.val_purged,
            base_rate_7d: rate(0),
            base_rate_30d: rate(1),
            epochs_run,
            best_epoch,
        });
    }

    tracing::info!(
        rows = col.rows.len(),
        resamples = opts.bootstrap,
        "metrics and bootstrap"
    );
    let mut horizons = BTreeMap::new();
    horizons.insert("7d".to_string(), horizon_report(&col, 0, opts));
    horizons.insert("30d".to_string(), horizon_report(&col, 1, opts));
    let attention_mean = col
        .attention_sum
        .iter()
        .map(|s| s / col.attention_n.max(1) as f64)
        .collect();
    let mut tickers: Vec<&str> = rows.iter().map(|r| r.ticker.as_str()).collect();
    tickers.sort_unstable();
    tickers.dedup();
    let (labels, _) = trendscore_schemas::checkpoint::DataSection::of_rows(source);
    let mut report = Report {
        format_version: 1,
        data: source.display().to_string(),
        target: labels.target,
        cross_sectional: labels.cross_sectional,
        rows: rows.len(),
        tickers: tickers.len(),
        folds_mode: opts.folds,
        test_from,
        embargo_days: embargo,
        max_horizon_days: max_h,
        seeds,
        epochs: cfg.training.epochs,
        bootstrap: BootstrapInfo {
            resamples: opts.bootstrap,
            seed: opts.bootstrap_seed,
            block: "week".into(),
        },
        folds: fold_records,
        horizons,
        attention_mean,
        verdict: String::new(),
    };
    report.verdict = write::verdict(&report);
    write::write_all(out, &report, &col.rows, &train_windows)?;
    plots::draw_all(out, &report);
    Ok(ReportOutput {
        report,
        oos: col.rows,
        out: out.to_path_buf(),
    })
}
