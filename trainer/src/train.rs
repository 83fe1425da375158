//! The training loop: batches, loss, clipping, optimiser and schedule steps, validation,
//! early stopping with best-weight restore, best/last checkpoints, resume, history and the
//! final checkpoint directory (docs/contracts.md).

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};
use trendscore_schemas::checkpoint::DataSection;
use trendscore_schemas::WeeklyRow;

use crate::checkpoint::{self, files, CheckpointConfig};
use crate::config::TrainConfig;
use crate::data::{self, Corpus, Scaler, SplitSummary, SplitTensors};
use crate::error::{Result, TrainerError};
use crate::loss::{self, Targets, TrendLoss};
// history.json's records; re-exported so `train::EpochRecord` keeps working.
pub use crate::history::{EpochRecord, LossValues};
use crate::metrics::{horizon_metrics, Metrics};
use crate::model::{ModelOutput, TrendModel};
use crate::optim::{EarlyStopping, Optimizer, Scheduler};
use crate::plot;

/// Resolves `auto|cpu|cuda|cuda:N`; `auto` is CUDA when libtorch sees a GPU.
pub fn resolve_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available()),
        "cuda" | "gpu" => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err(TrainerError::Device(
                    "--device cuda was asked for but libtorch sees no CUDA device (use auto or cpu)".into(),
                ))
            }
        }
        other => match other
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<usize>().ok())
        {
            Some(i) if (i as i64) < tch::Cuda::device_count() => Ok(Device::Cuda(i)),
            Some(i) => Err(TrainerError::Device(format!(
                "cuda:{i} asked for but libtorch sees {} CUDA device(s)",
                tch::Cuda::device_count()
            ))),
            None => Err(TrainerError::Device(format!(
                "unknown device `{other}` (auto, cpu, cuda, cuda:N)"
            ))),
        },
    }
}

/// `train_state.json`: what `--resume` needs besides the weights and optimiser moments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// First epoch still to run.
    pub next_epoch: usize,
    /// Optimiser steps taken.
    pub optimizer_step: i64,
    /// Scheduler state.
    pub scheduler: Scheduler,
    /// Early-stopping state.
    pub early_stopping: EarlyStopping,
    /// History so far.
    pub history: Vec<EpochRecord>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
}

/// `metrics.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitMetrics {
    /// Validation loss and metrics of the restored best weights.
    pub val: EvalSummary,
    /// Test loss and metrics of the restored best weights.
    pub test: EvalSummary,
    /// Epoch (0-based) of the best `training.early_stopping_metric` (the weights kept).
    pub best_epoch: Option<usize>,
    /// Epochs run.
    pub epochs_run: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Split counts and boundaries.
    pub split: SplitSummary,
    /// Device used.
    pub device: String,
}

/// Loss and metrics of one split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// Loss values.
    pub loss: LossValues,
    /// Metrics per horizon.
    pub metrics: Metrics,
}

/// Model outputs of a whole split, on the CPU.
#[derive(Debug)]
pub struct Predictions {
    /// (n) 7-day trend.
    pub trend_7d: Vec<f32>,
    /// (n) softmax(direction_7d)[1].
    pub p_up_7d: Vec<f32>,
    /// (n) 30-day trend.
    pub trend_30d: Vec<f32>,
    /// (n) softmax(direction_30d)[1].
    pub p_up_30d: Vec<f32>,
    /// (n * seq) attention, row-major.
    pub attention: Vec<f32>,
}

/// Runs the model in eval mode over `x` (n, seq, f) in chunks; returns outputs concatenated
/// on the model's device.
pub fn run_batched(model: &TrendModel, x: &Tensor, batch: i64) -> ModelOutput {
    tch::no_grad(|| {
        let n = x.size()[0];
        let mut parts: Vec<ModelOutput> = Vec::new();
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            parts.push(model.forward(&x.narrow(0, start, len), false));
            start += len;
        }
        let cat = |f: fn(&ModelOutput) -> &Tensor| {
            Tensor::cat(&parts.iter().map(f).collect::<Vec<_>>(), 0)
        };
        ModelOutput {
            trend_7d: cat(|o| &o.trend_7d),
            direction_7d: cat(|o| &o.direction_7d),
            trend_30d: cat(|o| &o.trend_30d),
            direction_30d: cat(|o| &o.direction_30d),
            attention: cat(|o| &o.attention),
        }
    })
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))
        .unwrap_or_default()
}

/// Outputs as plain vectors (p_up = softmax(direction)[1]).
pub fn predictions_of(out: &ModelOutput) -> Predictions {
    let p_up = |d: &Tensor| to_vec(&d.softmax(-1, Kind::Float).select(1, 1));
    Predictions {
        trend_7d: to_vec(&out.trend_7d),
        p_up_7d: p_up(&out.direction_7d),
        trend_30d: to_vec(&out.trend_30d),
        p_up_30d: p_up(&out.direction_30d),
        attention: to_vec(&out.attention),
    }
}

/// Loss and metrics of the model on a split.
pub fn evaluate_split(
    model: &TrendModel,
    data: &SplitTensors,
    loss: &dyn TrendLoss,
) -> EvalSummary {
    let out = run_batched(model, &data.x, 1024);
    let y = Targets {
        trend_7d: &data.trend_7d,
        trend_30d: &data.trend_30d,
        dir_7d: &data.dir_7d,
        dir_30d: &data.dir_30d,
        weight: &data.weight,
    };
    let parts = tch::no_grad(|| loss.compute(&out, &y));
    let p = predictions_of(&out);
    let t7 = to_vec(&data.trend_7d);
    let t30 = to_vec(&data.trend_30d);
    let up = |t: &[f32]| t.iter().map(|&v| v > 0.0).collect::<Vec<_>>();
    EvalSummary {
        loss: parts.values().into(),
        metrics: Metrics {
            h7: horizon_metrics(&p.trend_7d, &t7, &p.p_up_7d, &up(&t7)),
            h30: horizon_metrics(&p.trend_30d, &t30, &p.p_up_30d, &up(&t30)),
        },
    }
}

/// Everything prepared from the rows for a run.
#[derive(Debug)]
pub struct Prepared {
    /// The series.
    pub corpus: Corpus,
    /// The split.
    pub split: data::Split,
    /// Fit on the training windows.
    pub scaler: Scaler,
    /// Training tensors.
    pub train: SplitTensors,
    /// Validation tensors.
    pub val: SplitTensors,
    /// Test tensors.
    pub test: SplitTensors,
}

/// Builds corpus, split, scaler and tensors for `cfg` (on `device`).
pub fn prepare(
    rows: &[WeeklyRow],
    source: &Path,
    cfg: &TrainConfig,
    device: Device,
) -> Result<Prepared> {
    let corpus = Corpus::new(
        rows,
        &cfg.features.names,
        cfg.sequence.sequence_length,
        source,
    )?;
    let split = data::split(&corpus, &cfg.sequence, cfg.training.seed, source)?;
    Ok(prepare_split(corpus, split, cfg, device))
}

/// Scaler (fit on `split.train` only), sample weights and tensors of a split made elsewhere
/// (the walk-forward folds of `trainer report`).
pub fn prepare_split(
    corpus: Corpus,
    split: data::Split,
    cfg: &TrainConfig,
    device: Device,
) -> Prepared {
    let scaler = data::fit_scaler(&corpus, &split.train);
    let newest = split
        .train
        .iter()
        .map(|w| corpus.end_week(*w))
        .max()
        .expect("train split is non-empty");
    let mk = |ws: &[data::WindowRef]| {
        let w = data::sample_weights(&corpus, ws, &cfg.loss, newest);
        data::to_tensors(&corpus, ws, &scaler, &w, device)
    };
    let (train, val, test) = (mk(&split.train), mk(&split.val), mk(&split.test));
    Prepared {
        corpus,
        split,
        scaler,
        train,
        val,
        test,
    }
}

/// What [`fit`] returns.
#[derive(Debug)]
pub struct FitReport {
    /// The checkpoint directory.
    pub out: PathBuf,
    /// metrics.json contents.
    pub metrics: FitMetrics,
    /// history.json contents.
    pub history: Vec<EpochRecord>,
}

/// Trains on `rows` and writes the checkpoint directory `out`. With `resume`, continues from
/// the `last` state in `out` (weights, optimiser moments, scheduler, early stopping, history);
/// because each epoch's batch order and dropout seed depend only on (seed, epoch), a resumed
/// run reproduces an uninterrupted one on the CPU.
pub fn fit(
    rows: &[WeeklyRow],
    source: &Path,
    cfg: &TrainConfig,
    out: &Path,
    resume: bool,
) -> Result<FitReport> {
    cfg.validate()?;
    if cfg.training.num_threads > 0 {
        tch::set_num_threads(cfg.training.num_threads as i32);
    }
    let device = resolve_device(&cfg.training.device)?;
    tracing::info!(?device, threads = tch::get_num_threads(), "training device");
    std::fs::create_dir_all(out).map_err(|e| TrainerError::io(out, e))?;

    let prep = prepare(rows, source, cfg, device)?;
    fit_prepared(&prep, source, cfg, out, resume)
}

/// [`fit`] on data already prepared (a split made by the caller): trains on `prep.train`, stops
/// early on `prep.val`, reports `prep.test`, and writes the checkpoint directory `out`.
pub fn fit_prepared(
    prep: &Prepared,
    source: &Path,
    cfg: &TrainConfig,
    out: &Path,
    resume: bool,
) -> Result<FitReport> {
    cfg.validate()?;
    let device = prep.train.x.device();
    std::fs::create_dir_all(out).map_err(|e| TrainerError::io(out, e))?;
    let s = &prep.split.summary;
    tracing::info!(
        windows = s.windows, train = s.train, val = s.val, test = s.test, purged = s.purged,
        unlabelled = s.unlabelled, val_start = ?s.val_start, test_start = ?s.test_start, "split"
    );
    prep.scaler.save(&out.join(files::SCALER))?;

    let seed = cfg.training.seed;
    tch::manual_seed(seed as i64);
    let mut vs = nn::VarStore::new(device);
    let model = TrendModel::new(&vs.root(), &cfg.model);
    let mut opt = Optimizer::for_model(&cfg.optimizer, &vs, &model);
    let loss_fn = loss::build(&cfg.loss);
    let epochs = cfg.training.epochs;

    let mut state = TrainState {
        next_epoch: 0,
        optimizer_step: 0,
        scheduler: Scheduler::new(&cfg.scheduler, cfg.optimizer.learning_rate, epochs),
        early_stopping: EarlyStopping::new(
            cfg.training.early_stopping_patience,
            cfg.training.min_delta,
        ),
        history: Vec::new(),
        stopped_early: false,
    };
    if resume {
        let sp = out.join(files::STATE);
        let text = std::fs::read_to_string(&sp).map_err(|e| {
            TrainerError::ckpt(out, format!("cannot resume: {}: {e}", sp.display()))
        })?;
        state = serde_json::from_str(&text).map_err(|e| TrainerError::json(&sp, e))?;
        let saved = CheckpointConfig::load(out)?;
        if saved.model != cfg.model || saved.features.names != cfg.features.names {
            return Err(TrainerError::ckpt(
                out,
                "cannot resume: model or features differ from the checkpoint's config.json",
            ));
        }
        checkpoint::load_weights(&mut vs, &out.join(files::LAST))?;
        opt.load_state(&out.join(files::OPTIMIZER), state.optimizer_step)?;
        // The schedule follows the (possibly changed) epoch budget.
        state.scheduler = rescheduled(&state.scheduler, cfg, epochs);
        state.early_stopping.patience = cfg.training.early_stopping_patience;
        if state.stopped_early {
            tracing::info!("the checkpoint's run had stopped early; continuing anyway");
            state.stopped_early = false;
        }
        tracing::info!(next_epoch = state.next_epoch, "resuming");
    }
    let (data_section, why) = DataSection::of_rows(source);
    if let Some(why) = why {
        tracing::warn!(rows = %source.display(), "{why}: the checkpoint's label target is recorded as unknown");
    }
    CheckpointConfig::from_train(cfg, data_section.clone(), String::new()).save(out)?;

    let n = prep.train.len();
    let bs = cfg.training.batch_size;
    let n_batches = n.div_ceil(bs);
    for epoch in state.next_epoch..epochs {
        let t0 = Instant::now();
        tch::manual_seed(seed.wrapping_add(1 + epoch as u64) as i64);
        opt.lr = state.scheduler.lr(epoch);
        let order = if cfg.training.shuffle {
            data::epoch_order(n, seed, epoch)
        } else {
            (0..n as i64).collect()
        };
        let pb = progress_bar(n_batches as u64, cfg.training.progress, epoch, epochs);
        let mut sums = [0.0f64; 5];
        let mut grad_norm_sum = 0.0;
        for (b, chunk) in order.chunks(bs).enumerate() {
            let idx = Tensor::from_slice(chunk).to_device(device);
            let xb = prep.train.x.index_select(0, &idx);
            let (t7, t30) = (
                prep.train.trend_7d.index_select(0, &idx),
                prep.train.trend_30d.index_select(0, &idx),
            );
            let (d7, d30) = (
                prep.train.dir_7d.index_select(0, &idx),
                prep.train.dir_30d.index_select(0, &idx),
            );
            let w = prep.train.weight.index_select(0, &idx);
            let y = Targets {
                trend_7d: &t7,
                trend_30d: &t30,
                dir_7d: &d7,
                dir_30d: &d30,
                weight: &w,
            };
            let outb = model.forward(&xb, true);
            let parts = loss_fn.compute(&outb, &y);
            opt.zero_grad();
            parts.total.backward();
            grad_norm_sum += opt.clip_grad_norm(cfg.training.max_grad_norm);
            opt.step();
            let v = parts.values();
            if !v[0].is_finite() {
                return Err(TrainerError::Data {
                    path: source.display().to_string(),
                    message: format!("training loss became {} at epoch {epoch}, batch {b}; lower the learning rate", v[0]),
                });
            }
            for (s, x) in sums.iter_mut().zip(v) {
                *s += x * chunk.len() as f64;
            }
            pb.set_message(format!(
                "loss {:.4}",
                sums[0] / ((b * bs + chunk.len()) as f64)
            ));
            pb.inc(1);
        }
        pb.finish_and_clear();
        let train_loss: LossValues = sums.map(|s| s / n as f64).into();
        let val = evaluate_split(&model, &prep.val, loss_fn.as_ref());
        state.scheduler.observe(val.loss.total);
        let score = cfg.training.early_stopping_metric.score(
            val.loss.total,
            val.metrics.h7.roc_auc,
            val.metrics.h30.roc_auc,
        );
        let best = state.early_stopping.observe(epoch, score);
        if best {
            checkpoint::save_weights(&vs, &out.join(files::BEST))?;
        }
        let rec = EpochRecord {
            epoch,
            lr: opt.lr,
            seconds: t0.elapsed().as_secs_f64(),
            train: train_loss,
            val: val.loss,
            val_metrics: val.metrics.clone(),
            grad_norm: grad_norm_sum / n_batches.max(1) as f64,
            best,
        };
        tracing::info!(
            epoch,
            lr = rec.lr,
            train_loss = rec.train.total,
            val_loss = rec.val.total,
            val_acc_7d = rec.val_metrics.h7.direction_accuracy,
            val_acc_30d = rec.val_metrics.h30.direction_accuracy,
            seconds = rec.seconds,
            best,
            "epoch"
        );
        state.history.push(rec);
        state.next_epoch = epoch + 1;
        state.optimizer_step = opt.step;
        state.stopped_early = state.early_stopping.should_stop();
        checkpoint::save_weights(&vs, &out.join(files::LAST))?;
        opt.save_state(&out.join(files::OPTIMIZER))?;
        checkpoint::write_json(&out.join(files::STATE), &state)?;
        checkpoint::write_json(&out.join(files::HISTORY), &state.history)?;
        if state.stopped_early {
            tracing::info!(epoch, best_epoch = ?state.early_stopping.best_epoch, "early stopping");
            break;
        }
    }

    // Restore the best weights (falls back to the last ones if no epoch ran in this call).
    let best_path = out.join(files::BEST);
    if best_path.exists() {
        checkpoint::load_weights(&mut vs, &best_path)?;
    }
    finish(
        &vs,
        &model,
        prep,
        cfg,
        out,
        device,
        &state,
        loss_fn.as_ref(),
        data_section,
    )
}

fn rescheduled(s: &Scheduler, cfg: &TrainConfig, epochs: usize) -> Scheduler {
    let mut n = Scheduler::new(&cfg.scheduler, cfg.optimizer.learning_rate, epochs);
    n.plateau_lr = s.plateau_lr;
    n.plateau_best = s.plateau_best;
    n.plateau_bad_epochs = s.plateau_bad_epochs;
    n
}

fn progress_bar(len: u64, show: bool, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(format!("epoch {}/{}", epoch + 1, epochs));
    pb
}

#[allow(clippy::too_many_arguments)]
fn finish(
    vs: &nn::VarStore,
    model: &TrendModel,
    prep: &Prepared,
    cfg: &TrainConfig,
    out: &Path,
    device: Device,
    state: &TrainState,
    loss_fn: &dyn TrendLoss,
    data_section: DataSection,
) -> Result<FitReport> {
    let val = evaluate_split(model, &prep.val, loss_fn);
    let test = evaluate_split(model, &prep.test, loss_fn);
    tracing::info!(
        test_acc_7d = test.metrics.h7.direction_accuracy,
        test_acc_30d = test.metrics.h30.direction_accuracy,
        test_loss = test.loss.total,
        "best model on the test split"
    );
    let weights = out.join(files::MODEL);
    checkpoint::save_weights(vs, &weights)?;
    let trained_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    CheckpointConfig::from_train(cfg, data_section, trained_at).save(out)?;
    prep.scaler.save(&out.join(files::SCALER))?;

    // Probe: up to 48 real windows (test first) + 16 extreme ones, evaluated on the CPU.
    let mut probe_ws: Vec<_> = prep
        .split
        .test
        .iter()
        .chain(&prep.split.val)
        .chain(&prep.split.train)
        .copied()
        .take(48)
        .collect();
    let base = probe_ws.len();
    while probe_ws.len() < 48 {
        let w = probe_ws[probe_ws.len() % base];
        probe_ws.push(w);
    }
    let real = data::raw_tensor(&prep.corpus, &probe_ws);
    let (s, f) = (prep.corpus.seq_len as i64, prep.corpus.n_features() as i64);
    let extreme = Tensor::from_slice(&checkpoint::extreme_windows(
        &prep.scaler,
        prep.corpus.seq_len,
    ))
    .view([16, s, f]);
    let raw = Tensor::cat(&[real, extreme], 0);
    let mut cpu_vs = nn::VarStore::new(Device::Cpu);
    let cpu_model = TrendModel::new(&cpu_vs.root(), &cfg.model);
    checkpoint::load_weights(&mut cpu_vs, &weights)?;
    checkpoint::write_probe(&cpu_model, &prep.scaler, &raw, &out.join(files::PROBE))?;

    let metrics = FitMetrics {
        val,
        test,
        best_epoch: state.early_stopping.best_epoch,
        epochs_run: state.history.len(),
        stopped_early: state.stopped_early,
        split: prep.split.summary.clone(),
        device: format!("{device:?}"),
    };
    checkpoint::write_json(&out.join(files::METRICS), &metrics)?;
    checkpoint::write_json(&out.join(files::HISTORY), &state.history)?;
    if let Err(e) = plot::history_png(&state.history, &out.join(files::HISTORY_PNG)) {
        tracing::warn!(error = %e, "could not draw history.png");
    }
    Ok(FitReport {
        out: out.to_path_buf(),
        metrics,
        history: state.history.clone(),
    })
}
