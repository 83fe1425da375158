//! `trainer report`: metrics and bootstrap intervals recomputed by hand on small fixtures,
//! baselines on a hand-made series, and an end-to-end run of the `trainer` binary on synthetic
//! rows whose written folds, training windows and out-of-sample predictions are checked for
//! leakage (no training label may reach its fold's test period).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::Path;
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float32Type, Int32Type};
use arrow_array::Array;
use chrono::{Duration, NaiveDate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use trendscore_schemas::synth::synthetic_rows;
use trendscore_schemas::{write_rows_parquet, WeeklyRow, NUM_FEATURES};
use trendscore_trainer::data::{Corpus, WindowRef};
use trendscore_trainer::report::baseline_forecasts;
use trendscore_trainer::report::baselines::{
    fit_logistic, last_sign_signal, momentum_4w_signal, AlwaysUp, SignRule,
};
use trendscore_trainer::report::bootstrap::{evaluate, WeekBlocks};
use trendscore_trainer::report::metrics::{Forecast, Truth};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

macro_rules! assert_close {
    ($a:expr, $b:expr) => {{
        let (a, b): (f64, f64) = ($a, $b);
        assert!(close(a, b, 1e-9), "{} = {a}, expected {b}", stringify!($a));
    }};
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Two weeks of three tickers. Week A: rows 0-2; week B: rows 3-5.
fn fixture() -> (Forecast, Truth, WeekBlocks) {
    let p = vec![0.9, 0.6, 0.6, 0.3, 0.6, 0.2];
    let f = Forecast {
        pred_up: p.iter().map(|&v| v > 0.5).collect(),
        p_up: p.clone(),
        score: p.clone(),
        trend: vec![0.4, 0.1, 0.2, -0.3, 0.2, -0.2],
    };
    let t = Truth::from_trend(vec![0.5, -0.2, 0.1, -0.4, 0.3, -0.1]);
    let weeks = [
        day("2020-01-03"),
        day("2020-01-03"),
        day("2020-01-03"),
        day("2020-01-10"),
        day("2020-01-10"),
        day("2020-01-10"),
    ];
    (f, t, WeekBlocks::from_keys(&weeks))
}

#[test]
fn metrics_match_hand_computation() {
    let (f, t, blocks) = fixture();
    let m = evaluate(&f, &t, &blocks, &[]);
    assert_eq!((m.n, m.weeks), (6, 2));
    assert_close!(m.up_rate, 3.0 / 6.0);
    // Calls up,up,up,down,up,down against up,down,up,down,up,down: only row 1 is wrong.
    assert_close!(m.accuracy.unwrap(), 5.0 / 6.0);
    // Positives score 0.9, 0.6, 0.6; negatives 0.6, 0.3, 0.2. The 0.9 wins 3 pairs, each 0.6
    // wins 2 and ties 1 (half): (3 + 2.5 + 2.5) / 9.
    assert_close!(m.auc.unwrap(), 8.0 / 9.0);
    // (0.1^2 + 0.6^2 + 0.4^2 + 0.3^2 + 0.4^2 + 0.2^2) / 6.
    assert_close!(
        m.brier.unwrap(),
        (0.01 + 0.36 + 0.16 + 0.09 + 0.16 + 0.04) / 6.0
    );
    let ll =
        -(0.9f64.ln() + 0.4f64.ln() + 0.6f64.ln() + 0.7f64.ln() + 0.6f64.ln() + 0.8f64.ln()) / 6.0;
    assert_close!(m.log_loss.unwrap(), ll);
    assert_close!(
        m.trend_mae.unwrap(),
        (0.1 + 0.3 + 0.1 + 0.1 + 0.1 + 0.1) / 6.0
    );
    // Week A: score ranks (3, 1.5, 1.5), label ranks (3, 1, 2): r = 1.5 / sqrt(1.5 * 2).
    // Week B: score ranks (2, 3, 1), label ranks (1, 3, 2): r = 1 / 2.
    let (a, b) = (1.5 / 3.0f64.sqrt(), 0.5);
    assert_close!(m.ic_mean.unwrap(), (a + b) / 2.0);
    let sd = (a - b).abs() / 2.0f64.sqrt();
    assert_close!(m.ic_t.unwrap(), ((a + b) / 2.0) / (sd / 2.0f64.sqrt()));
    assert_eq!(m.ic_weeks, 2);
    // No resamples, no intervals.
    assert_eq!(m.accuracy_ci, None);
}

#[test]
fn bootstrap_interval_matches_hand_computation_for_fixed_resamples() {
    let (f, t, blocks) = fixture();
    // Week multiplicities: only A twice, only B twice, each once (twice).
    let resamples = vec![vec![2, 0], vec![0, 2], vec![1, 1], vec![1, 1]];
    let m = evaluate(&f, &t, &blocks, &resamples);
    // Accuracy per resample: A alone 2/3, B alone 1, both 5/6 -> sorted (2/3, 5/6, 5/6, 1).
    // Percentiles with linear interpolation at (n-1)q = 0.075 and 2.925.
    let (lo, hi) = (
        2.0 / 3.0 + 0.075 * (5.0 / 6.0 - 2.0 / 3.0),
        5.0 / 6.0 + 0.925 * (1.0 - 5.0 / 6.0),
    );
    let ci = m.accuracy_ci.unwrap();
    assert_close!(ci[0], lo);
    assert_close!(ci[1], hi);
    // AUC: A alone (1 + 0.5) / 2 = 0.75, B alone 1, both 8/9.
    let ci = m.auc_ci.unwrap();
    assert_close!(ci[0], 0.75 + 0.075 * (8.0 / 9.0 - 0.75));
    assert_close!(ci[1], 8.0 / 9.0 + 0.925 * (1.0 - 8.0 / 9.0));
    // IC mean: A alone a, B alone b, both (a + b) / 2.
    let (a, b) = (1.5 / 3.0f64.sqrt(), 0.5);
    let mid = (a + b) / 2.0;
    let ci = m.ic_mean_ci.unwrap();
    assert_close!(ci[0], b + 0.075 * (mid - b));
    assert_close!(ci[1], mid + 0.925 * (a - mid));
    // The rows of one week move together: weighting week A twice equals duplicating its rows.
    let idx = [0usize, 1, 2, 0, 1, 2];
    let dup = evaluate(
        &f.subset(&idx),
        &t.subset(&idx),
        &WeekBlocks::from_keys(&[0, 0, 0, 1, 1, 1]),
        &[],
    );
    let once = evaluate(&f, &t, &blocks, &[vec![2, 0]]);
    assert_close!(once.boot_auc[0].unwrap(), dup.auc.unwrap());
}

#[test]
fn sign_and_momentum_rules_by_hand() {
    assert_eq!(last_sign_signal(&[Some(0.1), Some(-0.3)]), Some(false));
    assert_eq!(last_sign_signal(&[Some(-0.1), Some(0.3)]), Some(true));
    assert_eq!(last_sign_signal(&[]), None);
    // atanh(0.9) - 2 atanh(0.5) + 0 = 1.472 - 1.099 > 0 although the labels sum to -0.1:
    // the labels are tanh-squashed returns, and momentum sums the returns.
    assert_eq!(
        momentum_4w_signal(&[Some(-0.9), Some(0.9), Some(-0.5), Some(-0.5), Some(0.0)]),
        Some(true)
    );
    assert_eq!(momentum_4w_signal(&[Some(0.2), Some(0.2), Some(0.2)]), None);
    assert_eq!(
        momentum_4w_signal(&[Some(0.2), None, Some(0.2), Some(0.2)]),
        None
    );

    let y = [0.2, -0.1, 0.3, -0.2, 0.4];
    let a = AlwaysUp::fit(&y);
    assert_close!(a.base_rate, 3.0 / 5.0);
    assert_close!(a.mean_trend, 0.6 / 5.0);
    let s = [Some(true), Some(true), Some(true), Some(false), Some(false)];
    let r = SignRule::fit(&s, &y);
    assert_close!(r.p_up_if_up, 2.0 / 3.0);
    assert_close!(r.trend_if_up, 0.4 / 3.0);
    assert_close!(r.p_up_if_down, 1.0 / 2.0);
    assert_close!(r.trend_if_down, 0.1);
    let f = r.predict(&[Some(true), Some(false), None]);
    assert_eq!(f.pred_up, vec![true, false, true]);
    assert_eq!(f.score, vec![1.0, 0.0, 0.5]);
    assert_close!(f.p_up[2], 3.0 / 5.0);
}

#[test]
fn logistic_regression_recovers_the_hand_worked_log_odds() {
    // x = +1: 3 up, 1 down; x = -1: 1 up, 3 down. Unpenalised MLE: p(+1) = 3/4, p(-1) = 1/4,
    // so w = logit(3/4) = ln 3 and the intercept is 0.
    let x = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0];
    let y = [true, true, true, false, true, false, false, false];
    let m = fit_logistic(&x, 1, &y, 0.0);
    assert!(close(m.coef[0], 3.0f64.ln(), 1e-7), "{:?}", m.coef);
    assert!(close(m.coef[1], 0.0, 1e-7), "{:?}", m.coef);
    // The penalty shrinks the weight.
    let s = fit_logistic(&x, 1, &y, 0.5);
    assert!(
        s.coef[0] > 0.0 && s.coef[0] < 0.9 * 3.0f64.ln(),
        "{:?}",
        s.coef
    );
}

/// One ticker, ten consecutive weeks, hand-chosen labels; 5-week windows end at weeks 4..=9.
fn hand_series() -> Corpus {
    let l7 = [0.2, -0.1, 0.3, 0.4, -0.2, 0.1, -0.3, 0.5, -0.4, 0.2];
    let l30 = [0.1, 0.1, -0.1, 0.2, 0.3, -0.2, 0.1, 0.2, -0.1, 0.3];
    let rows: Vec<WeeklyRow> = (0..10)
        .map(|i| {
            let mut features = vec![0.0f32; NUM_FEATURES];
            features[0] = if i % 2 == 0 { 1.0 } else { -1.0 };
            WeeklyRow {
                ticker: "A".into(),
                week: day("2020-01-03") + Duration::weeks(i as i64),
                features,
                trend_7day: Some(l7[i]),
                trend_30day: Some(l30[i]),
            }
        })
        .collect();
    Corpus::new(&rows, &["feature_0".to_string()], 5, Path::new("hand")).unwrap()
}

#[test]
fn baselines_on_a_hand_made_series() {
    let c = hand_series();
    let w = |end| WindowRef { series: 0, end };
    let (train, test) = ([w(4), w(5), w(6), w(7)], [w(8), w(9)]);
    let scaler = trendscore_trainer::data::fit_scaler(&c, &train);
    let [always, last, mom, logistic] = baseline_forecasts(&c, &train, &test, &scaler, 1e-2);
    // 7 days. Training labels (weeks 4..=7): -0.2, 0.1, -0.3, 0.5 -> base rate 1/2, mean 0.025.
    let f = &always[0];
    assert_eq!(f.pred_up, vec![true, true]);
    assert!(f.p_up.iter().all(|&p| close(p, 0.5, 1e-12)));
    assert!(f.trend.iter().all(|&t| close(t, 0.025, 1e-7)));
    // last_sign: signals (labels of weeks 3..=6) up, down, up, down; the up-signal windows went
    // down (-0.2, -0.3), the down-signal ones up (0.1, 0.5): p(up|up) = 0, p(up|down) = 1.
    // Test: week 8's signal is week 7's 0.5 (up), week 9's is week 8's -0.4 (down).
    let f = &last[0];
    assert_eq!(f.pred_up, vec![true, false]);
    assert_eq!(f.p_up, vec![0.0, 1.0]);
    assert!(
        close(f.trend[0], -0.25, 1e-7) && close(f.trend[1], 0.3, 1e-7),
        "{:?}",
        f.trend
    );
    // momentum_4w: training sums of atanh(labels of the 4 weeks before): 0.836, 0.430, 0.631 and
    // 0.0117 (week 7: atanh .4 - atanh .2 + atanh .1 - atanh .3; the plain sum is 0): all up, so
    // p(up|up) = 2/4 and the unseen down class falls back to the base rate 1/2.
    // Test: week 8: -0.203 + 0.100 - 0.310 + 0.549 > 0 (up); week 9: 0.100 - 0.310 + 0.549 - 0.424 < 0.
    let f = &mom[0];
    assert_eq!(f.pred_up, vec![true, false]);
    assert_eq!(f.p_up, vec![0.5, 0.5]);
    // 30 days: training labels 0.3, -0.2, 0.1, 0.2 -> base rate 3/4; last_sign up-signal windows
    // (weeks 4, 6) both went up, down-signal ones (5, 7) half.
    assert!(always[1].p_up.iter().all(|&p| close(p, 0.75, 1e-12)));
    assert_eq!(last[1].p_up, vec![1.0, 0.5]);
    assert!(close(last[1].trend[0], 0.2, 1e-7) && close(last[1].trend[1], 0.0, 1e-7));
    // Logistic: feature_0 alternates +1/-1 and is standardised by the training scaler; the
    // forecast is a probability per test window.
    assert_eq!(logistic[0].len(), 2);
    assert!(logistic[0].p_up.iter().all(|p| (0.0..=1.0).contains(p)));

    // Scored: always-up is right on week 9 only; last_sign and momentum wrong on both.
    let t = Truth::from_trend(vec![-0.4, 0.2]);
    let blocks = WeekBlocks::from_keys(&[8, 9]);
    let acc = |f: &Forecast| evaluate(f, &t, &blocks, &[]).accuracy.unwrap();
    assert_close!(acc(&always[0]), 0.5);
    assert_close!(acc(&last[0]), 0.0);
    assert_close!(acc(&mom[0]), 0.0);
    // last_sign's probabilities were right even though its calls were wrong: Brier 0.
    assert_close!(evaluate(&last[0], &t, &blocks, &[]).brier.unwrap(), 0.0);
}

fn read_parquet(path: &Path) -> Vec<arrow_array::RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn dates(b: &arrow_array::RecordBatch, name: &str) -> Vec<NaiveDate> {
    let epoch = day("1970-01-01");
    b.column_by_name(name)
        .unwrap()
        .as_primitive::<Date32Type>()
        .values()
        .iter()
        .map(|d| epoch + Duration::days(i64::from(*d)))
        .collect()
}

fn strings(b: &arrow_array::RecordBatch, name: &str) -> Vec<String> {
    let a = b.column_by_name(name).unwrap().as_string::<i32>();
    (0..a.len()).map(|i| a.value(i).to_string()).collect()
}

fn ints(b: &arrow_array::RecordBatch, name: &str) -> Vec<i32> {
    b.column_by_name(name)
        .unwrap()
        .as_primitive::<Int32Type>()
        .values()
        .to_vec()
}

fn floats(b: &arrow_array::RecordBatch, name: &str) -> Vec<f32> {
    b.column_by_name(name)
        .unwrap()
        .as_primitive::<Float32Type>()
        .values()
        .to_vec()
}

const TINY: &str = "[model]\nhidden_dim = 8\nnum_lstm_layers = 1\nnum_attention_heads = 2\n\
head_hidden_dims = [8]\n[training]\nbatch_size = 128\nepochs = 3\ndevice = \"cpu\"\n\
progress = false\n[scheduler]\nwarmup_epochs = 1\n";

#[test]
fn report_end_to_end_writes_leak_free_folds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rows.parquet");
    // 6 tickers x 260 weeks from 2015-01-02: test years 2018 and 2019.
    write_rows_parquet(&data, &synthetic_rows(6, 260, 5), &[]).unwrap();
    let cfg = dir.path().join("tiny.toml");
    std::fs::write(&cfg, TINY).unwrap();
    let out = dir.path().join("report");
    let status = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["report", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .arg("--config")
        .arg(&cfg)
        .args([
            "--test-from",
            "2018-01-01",
            "--epochs",
            "1",
            "--bootstrap",
            "40",
        ])
        .status()
        .unwrap();
    assert!(status.success());

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let folds = report["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 2);
    let embargo = report["embargo_days"].as_i64().unwrap();
    assert_eq!(embargo, 30);
    let bounds: Vec<(NaiveDate, NaiveDate, NaiveDate)> = folds
        .iter()
        .map(|f| {
            let d = |k: &str| day(f[k].as_str().unwrap());
            (d("train_end"), d("test_start"), d("test_end"))
        })
        .collect();
    assert_eq!(bounds[0].1, day("2018-01-01"));
    assert_eq!(bounds[1].2, day("2019-12-31"));
    for (train_end, test_start, _) in &bounds {
        assert!(*train_end + Duration::days(30 + embargo) < *test_start);
    }
    for h in ["7d", "30d"] {
        let hz = &report["horizons"][h];
        for (name, m) in std::iter::once(("model", &hz["model"])).chain(
            ["always_up", "last_sign", "momentum_4w", "logistic"]
                .iter()
                .map(|b| (*b, &hz["baselines"][b])),
        ) {
            for k in ["accuracy", "auc", "brier", "ic_mean"] {
                // always_up's score is constant: it has no rank correlation (null, not absent).
                let ok = if name == "always_up" && k == "ic_mean" {
                    m[k].is_null() && m.get(k).is_some()
                } else {
                    m[k].as_f64().is_some()
                };
                assert!(ok, "{h} {name} lacks {k}: {m}");
            }
            for k in ["accuracy_ci", "auc_ci"] {
                let ci = m[k].as_array().unwrap();
                assert!(ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap());
            }
            assert!(m["n"].as_u64().unwrap() > 0);
        }
        assert_eq!(hz["baselines"]["always_up"]["auc"].as_f64(), Some(0.5));
        assert!(hz["by_year"]["2018"]["model"]["accuracy"]
            .as_f64()
            .is_some());
        assert!(hz["by_ticker"]["SYN000"]["baselines"]["logistic"]["auc"]
            .as_f64()
            .is_some());
    }

    // Out-of-sample rows: each (ticker, week) once, inside its fold's test period.
    let oos = read_parquet(&out.join("oos_predictions.parquet"));
    let (mut n, mut correct, mut seen) = (0usize, 0usize, HashSet::new());
    for b in &oos {
        let (t, w, fold) = (strings(b, "ticker"), dates(b, "week"), ints(b, "fold"));
        let (p7, l7) = (floats(b, "p_up_7d"), floats(b, "trend_7day"));
        for col in [
            "trend_7d",
            "p_up_30d",
            "trend_30d",
            "trend_30day",
            "up_7d",
            "up_30d",
        ] {
            assert!(
                b.column_by_name(col).is_some(),
                "oos_predictions lacks {col}"
            );
        }
        for i in 0..b.num_rows() {
            let (_, start, end) = bounds[fold[i] as usize];
            assert!(
                w[i] >= start && w[i] <= end,
                "{} {} outside fold {}",
                t[i],
                w[i],
                fold[i]
            );
            assert!(seen.insert((t[i].clone(), w[i])), "{} {} twice", t[i], w[i]);
            n += 1;
            correct += usize::from((p7[i] > 0.5) == (l7[i] > 0.0));
        }
    }
    assert_eq!(
        n as u64,
        report["horizons"]["7d"]["model"]["n"].as_u64().unwrap()
    );
    let acc = report["horizons"]["7d"]["model"]["accuracy"]
        .as_f64()
        .unwrap();
    assert!(close(acc, correct as f64 / n as f64, 1e-9), "{acc}");

    // Training windows: every label ends, plus the embargo, before its fold's test start,
    // recomputed from the week (not from the written label_end); none is a test row.
    let tw = read_parquet(&out.join("train_windows.parquet"));
    let mut per_fold: HashMap<i32, usize> = HashMap::new();
    for b in &tw {
        let (t, w, fold, role) = (
            strings(b, "ticker"),
            dates(b, "week"),
            ints(b, "fold"),
            strings(b, "role"),
        );
        for i in 0..b.num_rows() {
            let (_, start, _) = bounds[fold[i] as usize];
            let label_end = w[i] + Duration::days(30);
            assert!(
                label_end + Duration::days(embargo) < start,
                "fold {} trains on {} {}",
                fold[i],
                t[i],
                w[i]
            );
            assert!(role[i] == "train" || role[i] == "val");
            *per_fold.entry(fold[i]).or_default() += 1;
        }
    }
    // Expanding window: the 2019 fold trains on more than the 2018 fold.
    assert!(per_fold[&1] > per_fold[&0], "{per_fold:?}");

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("Verdict") && md.contains("| **model** |"),
        "{md}"
    );
    for png in [
        "accuracy_auc_by_year.png",
        "calibration.png",
        "attention.png",
        "ic_over_time.png",
    ] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{png}");
    }
    assert!(out.join("folds/2018/seed42/model.safetensors").is_file());
}
