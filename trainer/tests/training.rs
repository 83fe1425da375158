//! Integration tests of the trainer: real libtorch training on synthetic rows with signal,
//! checkpoints, resume, early stopping, predict/evaluate and the `trainer` binary.
//! Models are small so the whole file runs in about a minute on 2 cores.

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{Device, Tensor};
use trendscore_schemas::synth::synthetic_rows;
use trendscore_schemas::{read_predictions, write_rows_parquet, WeeklyRow};
use trendscore_trainer::checkpoint::{self, files};
use trendscore_trainer::config::{SchedulerKind, TrainConfig};
use trendscore_trainer::infer::{self, EvalSplit};
use trendscore_trainer::train;

fn small_config(epochs: usize) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.model.hidden_dim = 16;
    c.model.num_lstm_layers = 1;
    c.model.num_attention_heads = 2;
    c.model.head_hidden_dims = vec![16];
    c.model.dropout_rate = 0.1;
    c.training.epochs = epochs;
    c.training.batch_size = 64;
    c.training.device = "cpu".into();
    c.training.progress = false;
    c.optimizer.learning_rate = 3e-3;
    c.scheduler.warmup_epochs = 1;
    c
}

fn rows(tickers: usize, weeks: usize) -> Vec<WeeklyRow> {
    synthetic_rows(tickers, weeks, 11)
}

/// libtorch's RNG is global: tests that train run one at a time so seeds stay meaningful.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn src() -> &'static Path {
    Path::new("synthetic")
}

#[test]
fn training_lowers_loss_and_beats_chance_on_held_out_data() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(6);
    cfg.model.hidden_dim = 32;
    cfg.model.dropout_rate = 0.3;
    cfg.optimizer.kind = trendscore_trainer::config::OptimizerKind::Adamw;
    cfg.optimizer.learning_rate = 2e-3;
    cfg.optimizer.weight_decay = 0.05;
    cfg.training.early_stopping_patience = 3;
    let data = rows(32, 120);
    let rep = train::fit(&data, src(), &cfg, dir.path(), false).unwrap();
    let h = &rep.history;
    assert!(h.len() >= 3, "ran {} epochs", h.len());
    assert!(
        h.last().unwrap().train.total < 0.8 * h[0].train.total,
        "train loss {:?}",
        h.iter().map(|r| r.train.total).collect::<Vec<_>>()
    );
    let best_val = h.iter().map(|r| r.val.total).fold(f64::INFINITY, f64::min);
    assert!(best_val <= h[0].val.total);
    let t = &rep.metrics.test.metrics;
    // Synthetic drift predicts next week's sign well above chance; the test split is later
    // dates than anything trained on. Chance = the majority share of the test labels.
    let majority = t.h7.up_rate.max(1.0 - t.h7.up_rate);
    let msg = format!("7d {:?}\n30d {:?}", t.h7, t.h30);
    assert!(t.h7.direction_accuracy > 0.62, "{msg}");
    assert!(t.h7.direction_accuracy > majority + 0.08, "{msg}");
    assert!(t.h7.roc_auc.unwrap() > 0.68, "{msg}");
    assert!(t.h30.roc_auc.unwrap() > 0.62, "{msg}");
    assert!(t.h7.pearson.unwrap() > 0.3, "{msg}");
    for f in [
        files::MODEL,
        files::CONFIG,
        files::SCALER,
        files::PROBE,
        files::METRICS,
        files::HISTORY,
        files::HISTORY_PNG,
        files::BEST,
        files::LAST,
    ] {
        assert!(dir.path().join(f).is_file(), "missing {f}");
    }
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(files::HISTORY)).unwrap())
            .unwrap();
    let e0 = &history[0];
    for key in ["lr", "seconds", "grad_norm"] {
        assert!(e0[key].as_f64().is_some(), "history lacks {key}");
    }
    for part in [
        "total",
        "trend_7d",
        "direction_7d",
        "trend_30d",
        "direction_30d",
    ] {
        assert!(
            e0["train"][part].as_f64().is_some() && e0["val"][part].as_f64().is_some(),
            "history lacks {part}"
        );
    }
    for m in [
        "mse",
        "rmse",
        "mae",
        "pearson",
        "direction_accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
    ] {
        assert!(
            !e0["val_metrics"]["7d"][m].is_null() && !e0["val_metrics"]["30d"][m].is_null(),
            "history lacks {m}"
        );
    }
    // The PNG is a real image of the size drawn.
    let png = std::fs::read(dir.path().join(files::HISTORY_PNG)).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

fn tensors(path: &Path) -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

fn same_weights(a: &Path, b: &Path) -> bool {
    let (ta, tb) = (tensors(a), tensors(b));
    ta.len() == tb.len()
        && ta
            .iter()
            .all(|(k, v)| tb.get(k).is_some_and(|w| v.equal(w)))
}

#[test]
fn same_seed_same_result_and_checkpoint_reloads_to_identical_outputs() {
    let _g = serial();
    let data = rows(4, 60);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = small_config(2);
    train::fit(&data, src(), &cfg, a.path(), false).unwrap();
    train::fit(&data, src(), &cfg, b.path(), false).unwrap();
    assert!(same_weights(
        &a.path().join(files::MODEL),
        &b.path().join(files::MODEL)
    ));
    let mut other = cfg.clone();
    other.training.seed = 43;
    let c = tempfile::tempdir().unwrap();
    train::fit(&data, src(), &other, c.path(), false).unwrap();
    assert!(!same_weights(
        &a.path().join(files::MODEL),
        &c.path().join(files::MODEL)
    ));

    // Reload: the probe's raw windows give exactly the stored outputs.
    let m = checkpoint::load(a.path(), Device::Cpu).unwrap();
    let probe = tensors(&a.path().join(files::PROBE));
    let raw = &probe["features"];
    assert!(raw.size()[0] >= 64 && raw.size()[1] == 12);
    let max_abs = raw.abs().max().double_value(&[]);
    assert!(
        max_abs > 50.0,
        "probe has no extreme values (max |x| = {max_abs})"
    );
    let x = infer::normalise_tensor(&m.scaler, raw);
    let out = tch::no_grad(|| m.model.forward(&x, false));
    for (name, t) in out.named() {
        let diff = (t - &probe[name]).abs().max().double_value(&[]);
        assert!(diff == 0.0, "{name} differs by {diff}");
    }
    assert_eq!(
        m.model_version,
        checkpoint::sha256_file(&a.path().join(files::MODEL)).unwrap()
    );
}

#[test]
fn resume_continues_exactly_where_it_stopped() {
    let _g = serial();
    let data = rows(4, 60);
    let mut cfg = small_config(4);
    cfg.scheduler.kind = SchedulerKind::Plateau;
    cfg.training.early_stopping_patience = 0;
    let (full, parts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train::fit(&data, src(), &cfg, full.path(), false).unwrap();
    let mut first = cfg.clone();
    first.training.epochs = 2;
    train::fit(&data, src(), &first, parts.path(), false).unwrap();
    let rep = train::fit(&data, src(), &cfg, parts.path(), true).unwrap();
    assert_eq!(rep.history.len(), 4);
    assert!(
        same_weights(
            &full.path().join(files::LAST),
            &parts.path().join(files::LAST)
        ),
        "resumed run diverged"
    );
    assert!(same_weights(
        &full.path().join(files::MODEL),
        &parts.path().join(files::MODEL)
    ));
    // Resuming with another model is refused with a clear error.
    let mut bigger = cfg.clone();
    bigger.model.hidden_dim = 32;
    let e = train::fit(&data, src(), &bigger, parts.path(), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("model or features differ"), "{e}");
}

#[test]
fn early_stopping_stops_after_patience_and_restores_best() {
    let _g = serial();
    let data = rows(4, 60);
    let mut cfg = small_config(50);
    cfg.optimizer.learning_rate = 0.0; // the validation loss cannot improve after epoch 0
    cfg.scheduler.kind = SchedulerKind::None;
    cfg.training.early_stopping_patience = 3;
    let dir = tempfile::tempdir().unwrap();
    let rep = train::fit(&data, src(), &cfg, dir.path(), false).unwrap();
    assert_eq!(rep.metrics.epochs_run, 4);
    assert!(rep.metrics.stopped_early);
    assert_eq!(rep.metrics.best_epoch, Some(0));

    // Now real learning with a tiny patience: the final model is the best epoch's, not the last.
    let mut cfg = small_config(12);
    cfg.optimizer.learning_rate = 3e-2; // noisy enough to overshoot
    cfg.scheduler.kind = SchedulerKind::None;
    cfg.training.early_stopping_patience = 2;
    let dir = tempfile::tempdir().unwrap();
    let rep = train::fit(&data, src(), &cfg, dir.path(), false).unwrap();
    let best = rep.metrics.best_epoch.unwrap();
    let best_val = rep.history[best].val.total;
    assert!(rep.history.iter().all(|r| r.val.total >= best_val));
    assert!(
        (rep.metrics.val.loss.total - best_val).abs() < 1e-6,
        "restored model is not the best epoch's"
    );
    if rep.metrics.stopped_early {
        assert_eq!(rep.history.len(), best + 1 + 2);
    }
    assert!(same_weights(
        &dir.path().join(files::MODEL),
        &dir.path().join(files::BEST)
    ));
}

#[test]
fn predict_and_evaluate_use_the_checkpoint() {
    let _g = serial();
    let data = rows(3, 60);
    let dir = tempfile::tempdir().unwrap();
    train::fit(&data, src(), &small_config(1), dir.path(), false).unwrap();
    let m = checkpoint::load(dir.path(), Device::Cpu).unwrap();
    let preds = infer::predict(&m, &data, src()).unwrap();
    assert_eq!(preds.len(), 3 * (60 - 11));
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("preds.parquet");
    infer::write_predictions(&path, &preds).unwrap();
    let back = read_predictions(&path).unwrap();
    assert_eq!(back.len(), preds.len());
    let p = &back[0];
    assert_eq!(p.attention.len(), 12);
    assert!((p.attention.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    assert_eq!((p.week - p.window_start).num_days(), 77);
    assert_eq!(p.model_version, m.model_version);
    assert!(p.source_partition.is_none() && p.source_offset.is_none());
    assert!((0.0..=1.0).contains(&p.p_up_7d));
    let all = infer::evaluate(&m, &data, src(), EvalSplit::All).unwrap();
    let test = infer::evaluate(&m, &data, src(), EvalSplit::Test).unwrap();
    assert!(all.windows > test.windows && test.windows > 0);
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trainer"))
}

/// Runs `cmd` and asserts it succeeded (its stderr in the failure message).
fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn cli_fit_evaluate_predict_and_clear_errors() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rows.parquet");
    let st = Command::new(bin())
        .args(["synth", "--tickers", "3", "--weeks", "50", "--out"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(st.success());
    let cfg = dir.path().join("train.toml");
    std::fs::write(&cfg, "[model]\nhidden_dim = 8\nnum_lstm_layers = 1\nnum_attention_heads = 2\nhead_hidden_dims = [8]\n[training]\nepochs = 5\n").unwrap();
    let ckpt = dir.path().join("ckpt");
    run_ok(
        Command::new(bin())
            .args([
                "fit",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--no-progress",
                "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(&ckpt)
            .arg("--config")
            .arg(&cfg),
    );
    // The flag overrides the file's epochs = 5.
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ckpt.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["epochs_run"], 1);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ckpt.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["hidden_dim"], 8);
    assert_eq!(config["features"]["names"].as_array().unwrap().len(), 62);
    assert_eq!(config["sequence"]["sequence_length"], 12);

    let out = run_ok(
        Command::new(bin())
            .args([
                "evaluate",
                "--device",
                "cpu",
                "--split",
                "all",
                "--checkpoint",
            ])
            .arg(&ckpt)
            .arg("--data")
            .arg(&data),
    );
    let ev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(ev["metrics"]["7d"]["direction_accuracy"].as_f64().is_some());

    let preds = dir.path().join("preds.parquet");
    run_ok(
        Command::new(bin())
            .args(["predict", "--device", "cpu", "--checkpoint"])
            .arg(&ckpt)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&preds),
    );
    assert_eq!(read_predictions(&preds).unwrap().len(), 3 * (50 - 11));

    // Bad config: the unknown key is named, with the file.
    std::fs::write(&cfg, "[model]\nhiden_dim = 8\n").unwrap();
    let out = Command::new(bin())
        .args(["fit", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("x"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("hiden_dim") && err.contains("train.toml"),
        "{err}"
    );

    // Bad data: a NaN feature is reported with file, row and column.
    let mut bad = rows(2, 30);
    bad[5].features[3] = f32::NAN;
    let bad_path = dir.path().join("bad.parquet");
    write_rows_parquet(&bad_path, &bad, &[]).unwrap();
    let out = Command::new(bin())
        .args(["fit", "--data"])
        .arg(&bad_path)
        .arg("--out")
        .arg(dir.path().join("y"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("bad.parquet")
            && err.contains("feature_3")
            && err.contains("row 6"),
        "{err}"
    );

    // Too little data for a split.
    let short = dir.path().join("short.parquet");
    write_rows_parquet(&short, &rows(1, 14), &[]).unwrap();
    let out = Command::new(bin())
        .args(["fit", "--no-progress", "--data"])
        .arg(&short)
        .arg("--out")
        .arg(dir.path().join("z"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("short.parquet") && err.contains("labelled windows"),
        "{err}"
    );

    // Missing checkpoint.
    let out = Command::new(bin())
        .args(["predict", "--checkpoint", "/nonexistent/ckpt", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&preds)
        .output()
        .unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ckpt")
    );

    // CUDA asked for on a machine without it is an error, not a silent CPU run.
    if !tch::Cuda::is_available() {
        let out = Command::new(bin())
            .args(["fit", "--device", "cuda", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join("w"))
            .output()
            .unwrap();
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("CUDA"));
    }
}
