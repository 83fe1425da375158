//! Seed ensembles (`trainer fit --seeds N`): N models on one split (the base seed's), each a
//! complete checkpoint in `OUT/seed<s>/`, and `OUT/ensemble.json` naming them, with every
//! member's metrics and the combined model's. The combined model averages the members'
//! outputs by the contract's rule ([`COMBINE_RULE`]: trends and attention averaged, direction
//! probabilities averaged); the exporter turns the directory into one ONNX graph that does
//! the same.

use std::path::Path;

use serde::Serialize;
use tch::{Device, Kind, Tensor};
use trendscore_schemas::checkpoint::{EnsembleManifest, COMBINE_RULE};
use trendscore_schemas::WeeklyRow;

use crate::checkpoint::{self, files};
use crate::config::TrainConfig;
use crate::data::SplitTensors;
use crate::error::{Result, TrainerError};
use crate::metrics::{horizon_metrics, Metrics};
use crate::train::{self, FitMetrics, Prepared};

/// The metrics `ensemble.json` carries.
#[derive(Clone, Debug, Serialize)]
pub struct EnsembleMetrics {
    /// The combined model on the validation and test splits.
    pub ensemble: SplitMetrics,
    /// Each member's `metrics.json`, in member order.
    pub members: Vec<FitMetrics>,
}

/// Metrics of the validation and the test split.
#[derive(Clone, Debug, Serialize)]
pub struct SplitMetrics {
    /// Validation split.
    pub val: Metrics,
    /// Test split.
    pub test: Metrics,
}

/// The member directory of `seed`.
pub fn member_name(seed: u64) -> String {
    format!("seed{seed}")
}

/// Trains `seeds` members on `rows` into `out` (see the module docs). With `resume`, a member
/// whose `metrics.json` exists is kept as it is, and one with a saved loop state continues.
pub fn fit_ensemble(
    rows: &[WeeklyRow],
    source: &Path,
    cfg: &TrainConfig,
    out: &Path,
    seeds: usize,
    resume: bool,
) -> Result<(EnsembleManifest, EnsembleMetrics)> {
    if seeds == 0 {
        return Err(TrainerError::Config {
            path: "(command line)".into(),
            message: "--seeds must be at least 1".into(),
        });
    }
    cfg.validate()?;
    if cfg.training.num_threads > 0 {
        tch::set_num_threads(cfg.training.num_threads as i32);
    }
    let device = train::resolve_device(&cfg.training.device)?;
    std::fs::create_dir_all(out).map_err(|e| TrainerError::io(out, e))?;
    // One split and one scaler for every member: the members differ by their seed only.
    let prep = train::prepare(rows, source, cfg, device)?;
    let seed_list: Vec<u64> = (0..seeds as u64)
        .map(|k| cfg.training.seed.wrapping_add(k))
        .collect();
    let mut members = Vec::new();
    for (k, &seed) in seed_list.iter().enumerate() {
        let dir = out.join(member_name(seed));
        let done = dir.join(files::METRICS);
        let metrics = if resume && done.is_file() {
            tracing::info!(member = k, seed, "member already trained: kept");
            let text = std::fs::read_to_string(&done).map_err(|e| TrainerError::io(&done, e))?;
            serde_json::from_str(&text).map_err(|e| TrainerError::json(&done, e))?
        } else {
            let mut c = cfg.clone();
            c.training.seed = seed;
            tracing::info!(member = k, seed, of = seeds, "training ensemble member");
            let again = resume && dir.join(files::STATE).is_file();
            train::fit_prepared(&prep, source, &c, &dir, again)?.metrics
        };
        members.push(metrics);
    }
    let names: Vec<String> = seed_list.iter().map(|s| member_name(*s)).collect();
    let ensemble = combined_metrics(&prep, &names, out)?;
    let metrics = EnsembleMetrics { ensemble, members };
    let manifest = EnsembleManifest {
        format_version: 1,
        members: names,
        seeds: seed_list,
        combine: COMBINE_RULE.into(),
        metrics: serde_json::to_value(&metrics).map_err(|e| TrainerError::Data {
            path: out.display().to_string(),
            message: e.to_string(),
        })?,
    };
    manifest.save(out)?;
    Ok((manifest, metrics))
}

/// The members' mean outputs on the validation and test windows of `prep`, scored.
fn combined_metrics(prep: &Prepared, names: &[String], out: &Path) -> Result<SplitMetrics> {
    let device = prep.train.x.device();
    let mut sums: [Option<(Tensor, Tensor, Tensor, Tensor)>; 2] = [None, None];
    for name in names {
        let m = checkpoint::load(&out.join(name), device)?;
        for (slot, split) in sums.iter_mut().zip([&prep.val, &prep.test]) {
            let o = train::run_batched(&m.model, &split.x, 1024);
            let p = |d: &Tensor| d.softmax(-1, Kind::Float).select(1, 1);
            let part = (
                o.trend_7d.shallow_clone(),
                p(&o.direction_7d),
                o.trend_30d.shallow_clone(),
                p(&o.direction_30d),
            );
            *slot = Some(match slot.take() {
                None => part,
                Some(s) => (s.0 + part.0, s.1 + part.1, s.2 + part.2, s.3 + part.3),
            });
        }
    }
    let n = names.len() as f64;
    let score = |sum: &(Tensor, Tensor, Tensor, Tensor), split: &SplitTensors| {
        let (t7, p7, t30, p30) = (
            to_vec(&(&sum.0 / n)),
            to_vec(&(&sum.1 / n)),
            to_vec(&(&sum.2 / n)),
            to_vec(&(&sum.3 / n)),
        );
        let (y7, y30) = (to_vec(&split.trend_7d), to_vec(&split.trend_30d));
        let up = |t: &[f32]| t.iter().map(|&x| x > 0.0).collect::<Vec<_>>();
        Metrics {
            h7: horizon_metrics(&t7, &y7, &p7, &up(&y7)),
            h30: horizon_metrics(&t30, &y30, &p30, &up(&y30)),
        }
    };
    let [val, test] = sums;
    let (val, test) = (
        val.expect("one member at least"),
        test.expect("one member at least"),
    );
    Ok(SplitMetrics {
        val: score(&val, &prep.val),
        test: score(&test, &prep.test),
    })
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))
        .unwrap_or_default()
}
