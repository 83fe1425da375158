//! Writes the report directory: `report.json`, `report.md` (tables and the verdict),
//! `oos_predictions.parquet` (ticker, week, fold, year, the model's p_up/trend per horizon, the
//! labels and their directions) and `train_windows.parquet` (fold, ticker, week, role
//! `train`|`val`, label_end: every window each fold was fit or validated on, so anyone can
//! check that no training label reaches a fold's test period).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float32Array, Int32Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use chrono::{Datelike, Duration};
use trendscore_schemas::dates::date_to_days;

use super::bootstrap::MetricSet;
use super::{HorizonReport, OosRow, Report, TrainWindow, Versus};
use crate::checkpoint::write_json;
use crate::error::{Result, TrainerError};

/// File names in the report directory.
pub mod files {
    /// The JSON report.
    pub const REPORT_JSON: &str = "report.json";
    /// The Markdown report.
    pub const REPORT_MD: &str = "report.md";
    /// Out-of-sample predictions.
    pub const OOS: &str = "oos_predictions.parquet";
    /// Fitting and validation windows per fold.
    pub const TRAIN_WINDOWS: &str = "train_windows.parquet";
    /// Accuracy and AUC per test year.
    pub const BY_YEAR_PNG: &str = "accuracy_auc_by_year.png";
    /// Calibration curve.
    pub const CALIBRATION_PNG: &str = "calibration.png";
    /// Mean attention per window step.
    pub const ATTENTION_PNG: &str = "attention.png";
    /// Weekly IC over time.
    pub const IC_PNG: &str = "ic_over_time.png";
}

fn batch(path: &Path, cols: Vec<(&str, DataType, ArrayRef)>) -> Result<RecordBatch> {
    let schema = Schema::new(
        cols.iter()
            .map(|(n, t, _)| Field::new(*n, t.clone(), false))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), cols.into_iter().map(|c| c.2).collect()).map_err(|e| {
        TrainerError::Output {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    })
}

/// Writes `oos_predictions.parquet`.
pub fn write_oos(path: &Path, rows: &[OosRow]) -> Result<()> {
    let f32s = |f: fn(&OosRow) -> f32| -> ArrayRef {
        Arc::new(Float32Array::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let b = batch(
        path,
        vec![
            (
                "ticker",
                DataType::Utf8,
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.ticker.as_str()).collect::<Vec<_>>(),
                )),
            ),
            (
                "week",
                DataType::Date32,
                Arc::new(Date32Array::from(
                    rows.iter()
                        .map(|r| date_to_days(r.week))
                        .collect::<Vec<_>>(),
                )),
            ),
            (
                "fold",
                DataType::Int32,
                Arc::new(Int32Array::from(
                    rows.iter().map(|r| r.fold as i32).collect::<Vec<_>>(),
                )),
            ),
            (
                "year",
                DataType::Int32,
                Arc::new(Int32Array::from(
                    rows.iter().map(|r| r.week.year()).collect::<Vec<_>>(),
                )),
            ),
            ("p_up_7d", DataType::Float32, f32s(|r| r.p_up_7d)),
            ("trend_7d", DataType::Float32, f32s(|r| r.trend_7d)),
            ("p_up_30d", DataType::Float32, f32s(|r| r.p_up_30d)),
            ("trend_30d", DataType::Float32, f32s(|r| r.trend_30d)),
            ("trend_7day", DataType::Float32, f32s(|r| r.trend_7day)),
            ("trend_30day", DataType::Float32, f32s(|r| r.trend_30day)),
            (
                "up_7d",
                DataType::Boolean,
                Arc::new(BooleanArray::from(
                    rows.iter().map(|r| r.trend_7day > 0.0).collect::<Vec<_>>(),
                )),
            ),
            (
                "up_30d",
                DataType::Boolean,
                Arc::new(BooleanArray::from(
                    rows.iter().map(|r| r.trend_30day > 0.0).collect::<Vec<_>>(),
                )),
            ),
        ],
    )?;
    crate::infer::write_parquet(path, &b)
}

/// Writes `train_windows.parquet`; `label_end` = week + `max_horizon_days`.
pub fn write_train_windows(path: &Path, ws: &[TrainWindow], max_horizon_days: i64) -> Result<()> {
    let b = batch(
        path,
        vec![
            (
                "fold",
                DataType::Int32,
                Arc::new(Int32Array::from(
                    ws.iter().map(|w| w.fold as i32).collect::<Vec<_>>(),
                )),
            ),
            (
                "ticker",
                DataType::Utf8,
                Arc::new(StringArray::from(
                    ws.iter().map(|w| w.ticker.as_str()).collect::<Vec<_>>(),
                )),
            ),
            (
                "week",
                DataType::Date32,
                Arc::new(Date32Array::from(
                    ws.iter().map(|w| date_to_days(w.week)).collect::<Vec<_>>(),
                )),
            ),
            (
                "role",
                DataType::Utf8,
                Arc::new(StringArray::from(
                    ws.iter().map(|w| w.role).collect::<Vec<_>>(),
                )),
            ),
            (
                "label_end",
                DataType::Date32,
                Arc::new(Date32Array::from(
                    ws.iter()
                        .map(|w| date_to_days(w.week + Duration::days(max_horizon_days)))
                        .collect::<Vec<_>>(),
                )),
            ),
        ],
    )?;
    crate::infer::write_parquet(path, &b)
}

fn f3(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.3}"))
}

fn ci(v: Option<[f64; 2]>) -> String {
    v.map_or(String::new(), |c| format!(" [{:.3}, {:.3}]", c[0], c[1]))
}

fn with_ci(v: Option<f64>, c: Option<[f64; 2]>) -> String {
    format!("{}{}", f3(v), ci(c))
}

fn horizon_name(h: &str) -> &'static str {
    if h == "7d" {
        "7-day"
    } else {
        "30-day"
    }
}

fn versus_sentence(metric: &str, v: &Versus) -> String {
    let verdict = if v.beats {
        "beats it (the interval lies above 0)"
    } else if v.diff_ci.is_some_and(|c| c[1] < 0.0) {
        "is worse (the interval lies below 0)"
    } else {
        "does not beat it (the interval includes 0)"
    };
    format!(
        "{metric} {} vs {} {} (difference {}{}): the model {verdict}",
        f3(v.model),
        v.baseline,
        f3(v.baseline_value),
        v.diff.map_or("–".into(), |d| format!("{d:+.3}")),
        ci(v.diff_ci)
    )
}

/// The verdict paragraph: per horizon, the model against the best baseline by AUC and by
/// accuracy, with the paired bootstrap interval of the difference, then a plain yes or no.
pub fn verdict(r: &Report) -> String {
    let mut s = String::new();
    let mut wins = Vec::new();
    for (h, hr) in [("7d", &r.horizons["7d"]), ("30d", &r.horizons["30d"])] {
        let vb = &hr.vs_best_baseline;
        let _ = write!(
            s,
            "{}: {}; {}. ",
            horizon_name(h),
            versus_sentence("AUC", &vb.auc),
            versus_sentence("accuracy", &vb.accuracy)
        );
        for (m, v) in [("AUC", &vb.auc), ("accuracy", &vb.accuracy)] {
            if v.beats {
                wins.push(format!("{} {m}", horizon_name(h)));
            }
        }
    }
    if wins.is_empty() {
        s.push_str(
            "Verdict: the model does NOT beat the best baseline on either horizon \
             (no 95% week-block interval of the difference excludes 0 on the favourable side).",
        );
    } else {
        let _ = write!(
            s,
            "Verdict: the model beats the best baseline, with the 95% week-block interval of the \
             difference above 0, on {}; elsewhere it does not.",
            wins.join(", ")
        );
    }
    s
}

fn metric_row(name: &str, m: &MetricSet) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        m.n,
        with_ci(m.accuracy, m.accuracy_ci),
        with_ci(m.auc, m.auc_ci),
        with_ci(m.brier, m.brier_ci),
        f3(m.log_loss),
        f3(m.trend_mae),
        f3(m.pearson),
        with_ci(m.ic_mean, m.ic_mean_ci),
        m.ic_t.map_or("–".into(), |t| format!("{t:.2}"))
    )
}

fn horizon_md(s: &mut String, h: &str, hr: &HorizonReport) {
    let _ = writeln!(s, "## {} horizon\n", horizon_name(h));
    let _ = writeln!(
        s,
        "All test rows: {} rows over {} weeks, up-share {:.3}.\n",
        hr.model.n, hr.model.weeks, hr.model.up_rate
    );
    s.push_str("| method | n | accuracy [95% CI] | AUC [95% CI] | Brier [95% CI] | log loss | trend MAE | Pearson | IC mean [95% CI] | IC t |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    s.push_str(&metric_row("**model**", &hr.model));
    for (n, m) in hr.baselines.named() {
        s.push_str(&metric_row(n, m));
    }
    let _ = writeln!(s, "\n### {} by test year\n", horizon_name(h));
    s.push_str("| year | n | up-share | model accuracy | model AUC | model IC | always_up acc | last_sign AUC | momentum_4w AUC | logistic acc | logistic AUC |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (y, g) in &hr.by_year {
        let b = &g.baselines;
        let _ = writeln!(
            s,
            "| {y} | {} | {:.3} | {} | {} | {} | {} | {} | {} | {} | {} |",
            g.model.n,
            g.model.up_rate,
            with_ci(g.model.accuracy, g.model.accuracy_ci),
            with_ci(g.model.auc, g.model.auc_ci),
            f3(g.model.ic_mean),
            f3(b.always_up.accuracy),
            f3(b.last_sign.auc),
            f3(b.momentum_4w.auc),
            f3(b.logistic.accuracy),
            f3(b.logistic.auc),
        );
    }
    s.push('\n');
}

/// The Markdown report.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    s.push_str("# trendscore evaluation report\n\n");
    let _ = writeln!(
        s,
        "Data `{}` (label target `{}`, cross-sectional features `{}`): {} rows, {} tickers. Folds: {} from {}, embargo {} days after the purge \
         (no training label ends within {} + {} days of a test period), seeds {:?}, up to {} \
         epochs per model. Intervals: 95%, {} week-block bootstrap resamples (whole weeks are \
         resampled, seed {}).\n",
        r.data,
        r.target,
        r.cross_sectional,
        r.rows,
        r.tickers,
        serde_json::to_value(r.folds_mode)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        r.test_from,
        r.embargo_days,
        r.max_horizon_days,
        r.embargo_days,
        r.seeds,
        r.epochs,
        r.bootstrap.resamples,
        r.bootstrap.seed
    );
    s.push_str("## Verdict\n\n");
    s.push_str(&r.verdict);
    s.push_str("\n\n");
    s.push_str("## Folds\n\n| fold | training weeks | last label ends | test period | fit / val / test windows | purged | training up-share 7d / 30d | epochs run |\n|---|---|---|---|---|---|---|---|\n");
    for f in &r.folds {
        let _ = writeln!(
            s,
            "| {} | {} .. {} | {} | {} .. {} | {} / {} / {} | {} | {:.3} / {:.3} | {:?} |",
            f.name,
            f.train_start,
            f.train_end,
            f.last_label_end,
            f.test_start,
            f.test_end,
            f.n_train,
            f.n_val,
            f.n_test,
            f.purged,
            f.base_rate_7d,
            f.base_rate_30d,
            f.epochs_run
        );
    }
    s.push('\n');
    for h in ["7d", "30d"] {
        horizon_md(&mut s, h, &r.horizons[h]);
    }
    s.push_str("## How to read this\n\n");
    s.push_str(
        "- always_up says up every week (its accuracy is the up-share; AUC 0.5); last_sign and \
         momentum_4w say the sign of last week's and the last four weeks' move; logistic is an \
         L2 logistic regression on the window's last week of features. All are fit on each \
         fold's training windows only.\n\
         - IC: the Spearman correlation, within one week, of the score and the realised trend \
         across tickers, averaged over weeks; t = mean / (sd / sqrt(weeks)).\n\
         - Per-ticker figures are in `report.json` (`horizons.*.by_ticker`).\n\n",
    );
    s.push_str("## Plots\n\n");
    for (t, f) in [
        ("accuracy and AUC by year", files::BY_YEAR_PNG),
        ("calibration", files::CALIBRATION_PNG),
        ("mean attention per step", files::ATTENTION_PNG),
        ("IC over time", files::IC_PNG),
    ] {
        let _ = writeln!(s, "![{t}]({f})\n");
    }
    s
}

/// Writes `report.json`, `report.md`, `oos_predictions.parquet` and `train_windows.parquet`.
pub fn write_all(dir: &Path, r: &Report, oos: &[OosRow], train: &[TrainWindow]) -> Result<()> {
    write_json(&dir.join(files::REPORT_JSON), r)?;
    let md = dir.join(files::REPORT_MD);
    std::fs::write(&md, markdown(r)).map_err(|e| TrainerError::io(&md, e))?;
    write_oos(&dir.join(files::OOS), oos)?;
    write_train_windows(&dir.join(files::TRAIN_WINDOWS), train, r.max_horizon_days)
}
