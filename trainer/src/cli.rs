//! The `trainer` command line: argument structs (clap) and the functions each subcommand runs.
//! `main.rs` only sets up tracing and calls [`run`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::bench::bench_step;
use crate::checkpoint::{self, CheckpointConfig};
use crate::config::TrainConfig;
use crate::ensemble;
use crate::infer::{self, EvalSplit};
use crate::train::{self, resolve_device};

/// Train, evaluate and apply the trendscore model.
#[derive(Debug, Parser)]
#[command(name = "trainer", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train on weekly rows and write a checkpoint directory.
    Fit(FitArgs),
    /// Loss and metrics of a checkpoint on weekly rows (JSON on stdout).
    Evaluate(EvaluateArgs),
    /// Score every full window and write prediction rows as Parquet.
    Predict(PredictArgs),
    /// Write synthetic weekly rows with a learnable signal (for demos and tests).
    Synth(SynthArgs),
    /// Time one optimisation step on random data (JSON on stdout).
    BenchStep(BenchArgs),
    /// Walk-forward out-of-sample evaluation beside naive baselines, with week-block
    /// bootstrap intervals: report.json, report.md, oos_predictions.parquet, plots.
    Report(ReportArgs),
}

/// `trainer fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// Weekly rows (Parquet, CSV or CSV.gz).
    #[arg(long)]
    pub data: PathBuf,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// TOML config (missing fields take defaults). With --resume and no --config, the
    /// checkpoint's own config.json is used.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Overrides training.epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Overrides training.device: auto, cpu or cuda.
    #[arg(long)]
    pub device: Option<String>,
    /// Overrides training.batch_size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Overrides optimizer.learning_rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Overrides training.seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Overrides training.num_threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Continue the run saved in --out (last weights, optimiser, schedule, history).
    #[arg(long)]
    pub resume: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Train a seed ensemble of this many members (seeds training.seed, +1, ...) on one split:
    /// --out gets one checkpoint per member (seed<s>/) and ensemble.json, which the exporter
    /// turns into one ONNX graph averaging the members. 1 (default) trains one checkpoint.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
}

/// `trainer evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Checkpoint directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Weekly rows.
    #[arg(long)]
    pub data: PathBuf,
    /// Which windows: the test split (default), the validation split, or all labelled ones.
    #[arg(long, value_enum, default_value = "test")]
    pub split: EvalSplit,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Also write the JSON report here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `trainer predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Checkpoint directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Weekly rows.
    #[arg(long)]
    pub data: PathBuf,
    /// Parquet file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// `trainer synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Parquet (or .csv) file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of tickers.
    #[arg(long, default_value_t = 20)]
    pub tickers: usize,
    /// Weeks per ticker.
    #[arg(long, default_value_t = 260)]
    pub weeks: usize,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// `trainer bench-step`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Sequences per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// libtorch intra-op threads (0 = libtorch default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// TOML config for the model sizes (defaults otherwise).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `trainer report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Weekly rows (Parquet, CSV or CSV.gz).
    #[arg(long)]
    pub data: PathBuf,
    /// Report directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// TOML training config (missing fields take defaults), as for `fit`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// walk-forward: one fold per calendar year, expanding training window; single: one split.
    #[arg(long, value_enum, default_value = "walk-forward")]
    pub folds: crate::report::FoldMode,
    /// First test day (YYYY-MM-DD); default: January 1 of the year in which `fit` would start
    /// its test split (walk-forward), or that day (single).
    #[arg(long)]
    pub test_from: Option<chrono::NaiveDate>,
    /// Models per fold (seeds training.seed, +1, ...), outputs averaged.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Overrides training.epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Overrides training.device: auto, cpu or cuda.
    #[arg(long)]
    pub device: Option<String>,
    /// Overrides training.seed (the first seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Overrides training.num_threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Days between the last training label's end and the test start; default: the longest
    /// horizon (30).
    #[arg(long)]
    pub embargo_days: Option<i64>,
    /// Week-block bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// L2 penalty of the logistic-regression baseline.
    #[arg(long, default_value_t = 1e-2)]
    pub logistic_l2: f64,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fit(a) => fit(a),
        Command::Evaluate(a) => evaluate(a),
        Command::Predict(a) => predict(a),
        Command::Synth(a) => synth(a),
        Command::BenchStep(a) => bench(a),
        Command::Report(a) => report(a),
    }
}

/// Config for `fit`: file (or the checkpoint's config when resuming), then flags.
pub fn fit_config(a: &FitArgs) -> Result<TrainConfig> {
    let mut cfg = match (&a.config, a.resume) {
        (Some(p), _) => TrainConfig::from_toml_file(p)?,
        (None, true) => {
            CheckpointConfig::load(&a.out)
                .with_context(|| format!("--resume: reading {}", a.out.display()))?
                .training
        }
        (None, false) => TrainConfig::default(),
    };
    if let Some(e) = a.epochs {
        cfg.training.epochs = e;
    }
    if let Some(d) = &a.device {
        cfg.training.device = d.clone();
    }
    if let Some(b) = a.batch_size {
        cfg.training.batch_size = b;
    }
    if let Some(lr) = a.lr {
        cfg.optimizer.learning_rate = lr;
    }
    if let Some(s) = a.seed {
        cfg.training.seed = s;
    }
    if let Some(t) = a.threads {
        cfg.training.num_threads = t;
    }
    if a.no_progress {
        cfg.training.progress = false;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn fit(a: FitArgs) -> Result<()> {
    let cfg = fit_config(&a)?;
    let rows = trendscore_schemas::read_rows(&a.data)?;
    tracing::info!(rows = rows.len(), data = %a.data.display(), "read weekly rows");
    if a.seeds != 1 {
        let (manifest, m) =
            ensemble::fit_ensemble(&rows, &a.data, &cfg, &a.out, a.seeds, a.resume)?;
        println!("{}", serde_json::to_string_pretty(&manifest)?);
        tracing::info!(
            out = %a.out.display(), members = manifest.members.len(),
            test_acc_7d = m.ensemble.test.h7.direction_accuracy,
            test_auc_7d = ?m.ensemble.test.h7.roc_auc, "ensemble written"
        );
        return Ok(());
    }
    let report = train::fit(&rows, &a.data, &cfg, &a.out, a.resume)?;
    let m = &report.metrics;
    println!("{}", serde_json::to_string_pretty(m)?);
    tracing::info!(
        out = %report.out.display(), epochs = m.epochs_run, best_epoch = ?m.best_epoch,
        test_acc_7d = m.test.metrics.h7.direction_accuracy, "checkpoint written"
    );
    Ok(())
}

fn load(dir: &Path, device: &str) -> Result<checkpoint::LoadedModel> {
    if trendscore_schemas::checkpoint::EnsembleManifest::is_ensemble(dir) {
        anyhow::bail!(
            "{} is a seed ensemble (ensemble.json, which holds the combined model's validation and \
             test metrics): give one member's directory, or export the ensemble with \
             `exporter --checkpoint {}`",
            dir.display(),
            dir.display()
        );
    }
    let device = resolve_device(device)?;
    Ok(checkpoint::load(dir, device)?)
}

fn evaluate(a: EvaluateArgs) -> Result<()> {
    let m = load(&a.checkpoint, &a.device)?;
    let rows = trendscore_schemas::read_rows(&a.data)?;
    let report = infer::evaluate(&m, &rows, &a.data, a.split)?;
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(p) = &a.out {
        std::fs::write(p, &text).with_context(|| format!("writing {}", p.display()))?;
    }
    println!("{text}");
    Ok(())
}

fn predict(a: PredictArgs) -> Result<()> {
    let m = load(&a.checkpoint, &a.device)?;
    let rows = trendscore_schemas::read_rows(&a.data)?;
    let preds = infer::predict(&m, &rows, &a.data)?;
    infer::write_predictions(&a.out, &preds)?;
    tracing::info!(rows = preds.len(), out = %a.out.display(), model_version = %m.model_version, "predictions written");
    Ok(())
}

fn synth(a: SynthArgs) -> Result<()> {
    let rows = trendscore_schemas::synth::synthetic_rows(a.tickers, a.weeks, a.seed);
    let meta = vec![(
        "generator".to_string(),
        format!(
            "trendscore synth seed={} tickers={} weeks={}",
            a.seed, a.tickers, a.weeks
        ),
    )];
    trendscore_schemas::write_rows_parquet(&a.out, &rows, &meta)?;
    tracing::info!(rows = rows.len(), out = %a.out.display(), "synthetic rows written");
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    let cfg = match &a.config {
        Some(p) => TrainConfig::from_toml_file(p)?,
        None => TrainConfig::default(),
    };
    if a.threads > 0 {
        tch::set_num_threads(a.threads as i32);
    }
    let device = resolve_device(&a.device)?;
    let r = bench_step(&cfg, a.batch, a.warmup, a.iters, device);
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

/// Config for `report`: file, then flags.
pub fn report_config(a: &ReportArgs) -> Result<TrainConfig> {
    let mut cfg = match &a.config {
        Some(p) => TrainConfig::from_toml_file(p)?,
        None => TrainConfig::default(),
    };
    if let Some(e) = a.epochs {
        cfg.training.epochs = e;
    }
    if let Some(d) = &a.device {
        cfg.training.device = d.clone();
    }
    if let Some(s) = a.seed {
        cfg.training.seed = s;
    }
    if let Some(t) = a.threads {
        cfg.training.num_threads = t;
    }
    if a.no_progress {
        cfg.training.progress = false;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn report(a: ReportArgs) -> Result<()> {
    let cfg = report_config(&a)?;
    let opts = crate::report::ReportOptions {
        folds: a.folds,
        test_from: a.test_from,
        seeds: a.seeds,
        embargo_days: a.embargo_days,
        bootstrap: a.bootstrap,
        logistic_l2: a.logistic_l2,
        ..Default::default()
    };
    let rows = trendscore_schemas::read_rows(&a.data)?;
    tracing::info!(rows = rows.len(), data = %a.data.display(), "read weekly rows");
    let out = crate::report::run(&rows, &a.data, &cfg, &opts, &a.out)?;
    println!("{}", out.report.verdict);
    tracing::info!(out = %out.out.display(), oos_rows = out.oos.len(), "report written");
    Ok(())
}
