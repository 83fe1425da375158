//! Dates at and past the ends of the accepted range (0001-01-01..=9999-12-31) through the
//! trainer: a Parquet `week` column with extreme Date32 values is a clear error from `fit`,
//! `evaluate` and `predict` (naming the file, the row, the column and the range), never a
//! panic; rows at the very ends of the range train and predict.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::{Date32Array, RecordBatch};
use chrono::{Duration, NaiveDate};
use parquet::arrow::ArrowWriter;
use trendscore_schemas::dates::date_to_days;
use trendscore_schemas::synth::synthetic_rows;
use trendscore_schemas::{rows_to_batch, WeeklyRow, MAX_DATE, MIN_DATE};
use trendscore_trainer::config::TrainConfig;
use trendscore_trainer::{checkpoint, infer, train};

fn tiny_config() -> TrainConfig {
    let mut c = TrainConfig::default();
    c.model.hidden_dim = 8;
    c.model.num_lstm_layers = 1;
    c.model.num_attention_heads = 2;
    c.model.head_hidden_dims = vec![8];
    c.training.epochs = 1;
    c.training.device = "cpu".into();
    c.training.progress = false;
    c
}

/// `rows` moved so that their newest week is `last` (a Friday, like the synthetic weeks).
fn ending_on(rows: &[WeeklyRow], last: NaiveDate) -> Vec<WeeklyRow> {
    let newest = rows.iter().map(|r| r.week).max().unwrap();
    rows.iter()
        .map(|r| WeeklyRow {
            week: r.week + (last - newest),
            ..r.clone()
        })
        .collect()
}

/// Writes `rows` as Parquet with the `week` of row `at` (0-based) replaced by `days`.
fn write_with_week(path: &Path, rows: &[WeeklyRow], at: usize, days: i32) {
    let good = rows_to_batch(rows).unwrap();
    let i = good.schema().index_of("week").unwrap();
    let mut weeks: Vec<i32> = rows.iter().map(|r| date_to_days(r.week)).collect();
    weeks[at] = days;
    let mut cols = good.columns().to_vec();
    cols[i] = Arc::new(Date32Array::from(weeks));
    let batch = RecordBatch::try_new(good.schema(), cols).unwrap();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trainer"))
}

#[test]
fn extreme_date32_weeks_are_clear_errors_in_fit_evaluate_and_predict() {
    let dir = tempfile::tempdir().unwrap();
    let rows = synthetic_rows(2, 60, 3);
    let ckpt = dir.path().join("ckpt");
    train::fit(&rows, Path::new("synthetic"), &tiny_config(), &ckpt, false).unwrap();
    for days in [
        i32::MIN,
        i32::MAX,
        date_to_days(NaiveDate::MAX),
        date_to_days(MAX_DATE) + 1,
        date_to_days(MIN_DATE) - 1,
    ] {
        let name = format!("week{days}.parquet");
        let data = dir.path().join(&name);
        write_with_week(&data, &rows, 4, days);
        let out = dir.path().join("out");
        let preds = out.join("p.parquet");
        let runs: [Vec<&std::ffi::OsStr>; 3] = [
            vec![
                "fit".as_ref(),
                "--no-progress".as_ref(),
                "--out".as_ref(),
                out.as_ref(),
            ],
            vec!["evaluate".as_ref(), "--checkpoint".as_ref(), ckpt.as_ref()],
            vec![
                "predict".as_ref(),
                "--checkpoint".as_ref(),
                ckpt.as_ref(),
                "--out".as_ref(),
                preds.as_os_str(),
            ],
        ];
        for args in runs {
            let o = Command::new(bin())
                .args(&args)
                .args(["--device", "cpu", "--data"])
                .arg(&data)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            let what = format!("{:?} on {name}", args[0]);
            // 101 is Rust's panic exit code: the error must be handled.
            assert_eq!(o.status.code(), Some(1), "{what}: {err}");
            assert!(
                err.contains(&name)
                    && err.contains("row 5")
                    && err.contains("`week`")
                    && err.contains("outside 0001-01-01..=9999-12-31"),
                "{what}: {err}"
            );
            assert!(!err.contains("panicked"), "{what}: {err}");
        }
    }
}

#[test]
fn weeks_at_the_ends_of_the_range_train_evaluate_and_predict() {
    let rows = synthetic_rows(2, 60, 4);
    let first_friday = MIN_DATE + Duration::days(4);
    let span =
        rows.iter().map(|r| r.week).max().unwrap() - rows.iter().map(|r| r.week).min().unwrap();
    for last in [MAX_DATE, first_friday + span] {
        let moved = ending_on(&rows, last);
        let dir = tempfile::tempdir().unwrap();
        train::fit(&moved, Path::new("edge"), &tiny_config(), dir.path(), false).unwrap();
        let m = checkpoint::load(dir.path(), tch::Device::Cpu).unwrap();
        let preds = infer::predict(&m, &moved, Path::new("edge")).unwrap();
        assert_eq!(preds.iter().map(|p| p.week).max(), Some(last));
        assert!(preds.iter().all(|p| p.window_start >= MIN_DATE));
        infer::evaluate(&m, &moved, Path::new("edge"), infer::EvalSplit::All).unwrap();
    }
}
