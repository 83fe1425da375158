//! Throughput of one optimisation step (forward in training mode, loss, backward, clipping,
//! optimiser update), used by `trainer bench-step`, the criterion bench and
//! `tests/python/bench_train_step.py`.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::config::TrainConfig;
use crate::loss::{self, Targets};
use crate::model::TrendModel;
use crate::optim::Optimizer;

/// Result of [`bench_step`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepBench {
    /// Sequences per step.
    pub batch: usize,
    /// Timed steps.
    pub iters: usize,
    /// libtorch intra-op threads.
    pub threads: i32,
    /// Median seconds per step.
    pub median_step_s: f64,
    /// `batch / median_step_s`.
    pub sequences_per_s: f64,
}

/// A prepared model + optimiser + random batch, so that one step can be timed in isolation.
pub struct StepRig {
    _vs: nn::VarStore,
    model: TrendModel,
    opt: Optimizer,
    loss: Box<dyn loss::TrendLoss>,
    x: Tensor,
    t7: Tensor,
    t30: Tensor,
    d7: Tensor,
    d30: Tensor,
    w: Tensor,
    max_grad_norm: f64,
}

impl StepRig {
    /// Random inputs (batch, seq, input_dim) and labels, the model of `cfg` on `device`.
    pub fn new(cfg: &TrainConfig, batch: usize, device: Device) -> Self {
        tch::manual_seed(cfg.training.seed as i64);
        let vs = nn::VarStore::new(device);
        let model = TrendModel::new(&vs.root(), &cfg.model);
        let opt = Optimizer::for_model(&cfg.optimizer, &vs, &model);
        let b = batch as i64;
        let s = cfg.sequence.sequence_length as i64;
        let f = cfg.model.input_dim as i64;
        let opts = (Kind::Float, device);
        let t7 = Tensor::rand([b], opts) * 2.0 - 1.0;
        let t30 = Tensor::rand([b], opts) * 2.0 - 1.0;
        Self {
            x: Tensor::randn([b, s, f], opts),
            d7: t7.gt(0.0).to_kind(Kind::Int64),
            d30: t30.gt(0.0).to_kind(Kind::Int64),
            t7,
            t30,
            w: Tensor::ones([b], opts),
            loss: loss::build(&cfg.loss),
            model,
            opt,
            _vs: vs,
            max_grad_norm: cfg.training.max_grad_norm,
        }
    }

    /// One optimisation step; returns the loss.
    pub fn step(&mut self) -> f64 {
        let y = Targets {
            trend_7d: &self.t7,
            trend_30d: &self.t30,
            dir_7d: &self.d7,
            dir_30d: &self.d30,
            weight: &self.w,
        };
        let out = self.model.forward(&self.x, true);
        let parts = self.loss.compute(&out, &y);
        self.opt.zero_grad();
        parts.total.backward();
        self.opt.clip_grad_norm(self.max_grad_norm);
        self.opt.step();
        parts.total.double_value(&[])
    }
}

/// Times `iters` steps after `warmup` untimed ones.
pub fn bench_step(
    cfg: &TrainConfig,
    batch: usize,
    warmup: usize,
    iters: usize,
    device: Device,
) -> StepBench {
    let mut rig = StepRig::new(cfg, batch, device);
    for _ in 0..warmup {
        rig.step();
    }
    let mut times: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            rig.step();
            if let Device::Cuda(_) = device {
                tch::Cuda::synchronize(0);
            }
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    StepBench {
        batch,
        iters: times.len(),
        threads: tch::get_num_threads(),
        median_step_s: median,
        sequences_per_s: batch as f64 / median,
    }
}
