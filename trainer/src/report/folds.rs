//! Fold plans of `trainer report`: which labelled windows each fold trains, validates and tests
//! on. Pure: windows and dates in, windows out.
//!
//! A window's label ends `max_horizon_days` (30) after its last week: that is the last price its
//! labels read. For a test period starting on `test_start`, the fold's training period is every
//! labelled window whose label ends before `test_start - embargo_days` (the purge: no training
//! label reaches into the test period; the embargo leaves a further gap, by default the longest
//! horizon). Inside the training period, as `fit` does, the last
//! `val_ratio / (train_ratio + val_ratio)` of its distinct weeks are the validation tail (early
//! stopping, best-epoch choice) and the windows whose label reaches into that tail are purged
//! from the fitting windows.
//!
//! - walk-forward: one fold per calendar year from `test_from`'s year to the last labelled
//!   week's; fold `Y` tests the windows whose last week lies in `[max(Jan 1 Y, test_from), Dec 31 Y]`
//!   and trains on everything before it (an expanding window, refit every year);
//! - single: one fold testing every window from `test_from` on.

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::data::{Corpus, WindowRef};

/// How the test periods are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FoldMode {
    /// One fold per calendar year, expanding training window.
    WalkForward,
    /// One time split: test from `test_from` to the end.
    Single,
}

/// What the fold plan depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldSettings {
    /// Walk-forward or single.
    pub mode: FoldMode,
    /// First day of the first test period.
    pub test_from: NaiveDate,
    /// Extra days between the end of the last training label and the test start.
    pub embargo_days: i64,
    /// The longest label horizon in days (a label ends this long after its week).
    pub max_horizon_days: i64,
    /// `sequence.train_ratio` (with `val_ratio`, sets the validation tail's share).
    pub train_ratio: f64,
    /// `sequence.val_ratio`.
    pub val_ratio: f64,
}

/// One fold's windows and boundaries.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldPlan {
    /// 0-based fold number.
    pub index: usize,
    /// `"2018"` (walk-forward) or `"single"`.
    pub name: String,
    /// First day of the test period.
    pub test_start: NaiveDate,
    /// Last day of the test period (inclusive).
    pub test_end: NaiveDate,
    /// Windows the model (and every baseline) is fit on.
    pub train: Vec<WindowRef>,
    /// The validation tail of the training period (early stopping only).
    pub val: Vec<WindowRef>,
    /// Test windows.
    pub test: Vec<WindowRef>,
    /// First validation week.
    pub val_start: NaiveDate,
    /// Labelled windows before the test period left out by the purge and the embargo.
    pub purged: usize,
    /// Training-period windows left out because their label reaches the validation tail.
    pub val_purged: usize,
}

impl FoldPlan {
    /// Last week of any training or validation window (the end of the training period).
    pub fn train_end(&self, c: &Corpus) -> NaiveDate {
        self.train
            .iter()
            .chain(&self.val)
            .map(|w| c.end_week(*w))
            .max()
            .expect("non-empty fold")
    }
    /// First week of a training window.
    pub fn train_start(&self, c: &Corpus) -> NaiveDate {
        self.train
            .iter()
            .map(|w| c.end_week(*w))
            .min()
            .expect("non-empty fold")
    }
}

/// The end of a window's labels: its last week plus the longest horizon.
pub fn label_end(c: &Corpus, w: WindowRef, max_horizon_days: i64) -> NaiveDate {
    c.end_week(w) + Duration::days(max_horizon_days)
}

/// Plans the folds over the labelled windows. Folds with no test window are skipped; a fold
/// whose training period is too short to split is an error naming it.
pub fn plan(c: &Corpus, labelled: &[WindowRef], s: &FoldSettings) -> Result<Vec<FoldPlan>, String> {
    let last = labelled
        .iter()
        .map(|w| c.end_week(*w))
        .max()
        .ok_or("no labelled windows")?;
    let periods: Vec<(String, NaiveDate, NaiveDate)> = match s.mode {
        FoldMode::Single => vec![("single".into(), s.test_from, last)],
        FoldMode::WalkForward => (s.test_from.year()..=last.year())
            .map(|y| {
                let jan1 = NaiveDate::from_ymd_opt(y, 1, 1).expect("valid");
                let dec31 = NaiveDate::from_ymd_opt(y, 12, 31).expect("valid");
                (y.to_string(), jan1.max(s.test_from), dec31)
            })
            .collect(),
    };
    let mut out = Vec::new();
    for (name, start, end) in periods {
        let test: Vec<WindowRef> = labelled
            .iter()
            .copied()
            .filter(|w| (start..=end).contains(&c.end_week(*w)))
            .collect();
        if test.is_empty() {
            continue;
        }
        let cutoff = start - Duration::days(s.embargo_days);
        let (eligible, before): (Vec<WindowRef>, usize) = {
            let before: Vec<WindowRef> = labelled
                .iter()
                .copied()
                .filter(|w| c.end_week(*w) < start)
                .collect();
            let e: Vec<WindowRef> = before
                .iter()
                .copied()
                .filter(|w| label_end(c, *w, s.max_horizon_days) < cutoff)
                .collect();
            let n = before.len();
            (e, n)
        };
        let mut dates: Vec<NaiveDate> = eligible.iter().map(|w| c.end_week(*w)).collect();
        dates.sort();
        dates.dedup();
        if dates.len() < 2 {
            return Err(format!(
                "fold {name} (test from {start}): only {} training week(s) end their labels before {cutoff} \
                 (test start - {} days embargo); choose a later --test-from",
                dates.len(),
                s.embargo_days
            ));
        }
        let n = dates.len();
        let fit_share = s.train_ratio / (s.train_ratio + s.val_ratio);
        let i_val = ((n as f64 * fit_share).floor() as usize).clamp(1, n - 1);
        let val_start = dates[i_val];
        let (mut train, mut val, mut val_purged) = (Vec::new(), Vec::new(), 0);
        for w in &eligible {
            if c.end_week(*w) >= val_start {
                val.push(*w);
            } else if label_end(c, *w, s.max_horizon_days) < val_start {
                train.push(*w);
            } else {
                val_purged += 1;
            }
        }
        if train.is_empty() {
            return Err(format!(
                "fold {name}: no training window ends its label before the validation tail ({val_start}); \
                 choose a later --test-from"
            ));
        }
        out.push(FoldPlan {
            index: out.len(),
            name,
            test_start: start,
            test_end: end,
            train,
            val,
            test,
            val_start,
            purged: before - eligible.len(),
            val_purged,
        });
    }
    if out.is_empty() {
        return Err(format!(
            "no labelled window ends on or after --test-from {} (the last ends {last})",
            s.test_from
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use trendscore_schemas::feature_names;
    use trendscore_schemas::synth::synthetic_rows;

    fn settings(mode: FoldMode, embargo: i64) -> FoldSettings {
        FoldSettings {
            mode,
            test_from: NaiveDate::from_ymd_opt(2017, 1, 1).unwrap(),
            embargo_days: embargo,
            max_horizon_days: 30,
            train_ratio: 0.7,
            val_ratio: 0.15,
        }
    }

    #[test]
    fn walk_forward_folds_are_yearly_purged_and_embargoed() {
        let rows = synthetic_rows(3, 260, 1); // 2015-01-02 .. 2019-12-27
        let c = Corpus::new(&rows, &feature_names(), 12, Path::new("mem")).unwrap();
        let labelled: Vec<_> = c
            .windows()
            .into_iter()
            .filter(|w| c.is_labelled(*w))
            .collect();
        for embargo in [0, 30] {
            let folds = plan(&c, &labelled, &settings(FoldMode::WalkForward, embargo)).unwrap();
            let names: Vec<_> = folds.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(names, ["2017", "2018", "2019"]);
            for f in &folds {
                for w in f.train.iter().chain(&f.val) {
                    let le = label_end(&c, *w, 30);
                    assert!(
                        le + Duration::days(embargo) < f.test_start,
                        "{} {le}",
                        f.name
                    );
                }
                for w in &f.train {
                    assert!(label_end(&c, *w, 30) < f.val_start);
                }
                for w in &f.test {
                    assert_eq!(c.end_week(*w).year().to_string(), f.name);
                }
                assert!(f.purged > 0 && !f.val.is_empty());
            }
            // Expanding: each fold trains on at least as much as the one before.
            assert!(folds
                .windows(2)
                .all(|p| p[1].train.len() > p[0].train.len()));
            // Every labelled window from 2017 on is tested exactly once.
            let tested: usize = folds.iter().map(|f| f.test.len()).sum();
            let from = settings(FoldMode::WalkForward, 0).test_from;
            assert_eq!(
                tested,
                labelled.iter().filter(|w| c.end_week(**w) >= from).count()
            );
        }
        // The embargo removes about a month more of training weeks.
        let a = plan(&c, &labelled, &settings(FoldMode::WalkForward, 0)).unwrap();
        let b = plan(&c, &labelled, &settings(FoldMode::WalkForward, 30)).unwrap();
        assert!(b[0].purged > a[0].purged);
    }

    #[test]
    fn single_fold_and_clear_errors() {
        let rows = synthetic_rows(2, 200, 2);
        let c = Corpus::new(&rows, &feature_names(), 12, Path::new("mem")).unwrap();
        let labelled: Vec<_> = c
            .windows()
            .into_iter()
            .filter(|w| c.is_labelled(*w))
            .collect();
        let f = plan(&c, &labelled, &settings(FoldMode::Single, 30)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, "single");
        let mut s = settings(FoldMode::WalkForward, 30);
        s.test_from = NaiveDate::from_ymd_opt(2015, 2, 1).unwrap();
        let e = plan(&c, &labelled, &s).unwrap_err();
        assert!(e.contains("--test-from"), "{e}");
        s.test_from = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
        assert!(plan(&c, &labelled, &s)
            .unwrap_err()
            .contains("no labelled window"));
    }
}
