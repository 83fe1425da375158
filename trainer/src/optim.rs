//! Optimisers (PyTorch semantics), gradient clipping, learning-rate schedules and early stopping.
//!
//! The optimisers are written on tensors rather than through libtorch's C++ optimisers so that
//! their state (moments, momentum buffers, step count) can be saved and restored exactly for
//! `--resume`.
//! - Adam: `g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//!   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)` (PyTorch's formula, eps outside).
//! - AdamW: as Adam without the L2 term, plus `p *= 1 - lr wd` first (decoupled decay).
//! - SGD: `g += wd p; buf = g` on the first step, else `buf = momentum buf + g`; `p -= lr buf`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::config::{OptimizerConfig, OptimizerKind, SchedulerConfig, SchedulerKind};
use crate::error::{Result, TrainerError};

/// An optimiser over named parameters.
#[derive(Debug)]
pub struct Optimizer {
    cfg: OptimizerConfig,
    params: Vec<(String, Tensor)>,
    /// First moment (Adam) or momentum buffer (SGD), per parameter.
    m: Vec<Option<Tensor>>,
    /// Second moment (Adam), per parameter.
    v: Vec<Option<Tensor>>,
    /// Steps taken.
    pub step: i64,
    /// Current learning rate.
    pub lr: f64,
}

impl Optimizer {
    /// Optimises `params` (name, trainable tensor), sorted by name for a stable state layout.
    pub fn new(cfg: &OptimizerConfig, mut params: Vec<(String, Tensor)>) -> Self {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let n = params.len();
        Self {
            cfg: cfg.clone(),
            params,
            m: (0..n).map(|_| None).collect(),
            v: (0..n).map(|_| None).collect(),
            step: 0,
            lr: cfg.learning_rate,
        }
    }

    /// Zeroes every gradient.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// Rescales gradients so their global L2 norm is at most `max_norm` (PyTorch's
    /// `clip_grad_norm_`: coefficient `max_norm / (norm + 1e-6)`, capped at 1). Returns the norm
    /// before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let _guard = tch::no_grad_guard();
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(|g| g.defined())
            .collect();
        if grads.is_empty() {
            return 0.0;
        }
        let sq: Vec<Tensor> = grads.iter().map(|g| g.square().sum(Kind::Float)).collect();
        let total = Tensor::stack(&sq, 0)
            .sum(Kind::Float)
            .sqrt()
            .double_value(&[]);
        if max_norm > 0.0 {
            let coef = (max_norm / (total + 1e-6)).min(1.0);
            if coef < 1.0 {
                for mut g in grads {
                    let _ = g.g_mul_scalar_(coef);
                }
            }
        }
        total
    }

    /// One update with the current gradients and `self.lr`.
    pub fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let c = &self.cfg;
        let (lr, wd) = (self.lr, c.weight_decay);
        for (i, (_, p)) in self.params.iter_mut().enumerate() {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            match c.kind {
                OptimizerKind::Adam | OptimizerKind::Adamw => {
                    let g = if c.kind == OptimizerKind::Adam && wd != 0.0 {
                        &g + &*p * wd
                    } else {
                        g
                    };
                    if c.kind == OptimizerKind::Adamw && wd != 0.0 {
                        let _ = p.g_mul_scalar_(1.0 - lr * wd);
                    }
                    let m = match &self.m[i] {
                        Some(m) => m * c.beta1 + &g * (1.0 - c.beta1),
                        None => &g * (1.0 - c.beta1),
                    };
                    let v = match &self.v[i] {
                        Some(v) => v * c.beta2 + g.square() * (1.0 - c.beta2),
                        None => g.square() * (1.0 - c.beta2),
                    };
                    let bc1 = 1.0 - c.beta1.powi(self.step as i32);
                    let bc2 = 1.0 - c.beta2.powi(self.step as i32);
                    let denom = v.sqrt() / bc2.sqrt() + c.eps;
                    let _ = p.g_sub_(&(&m / denom * (lr / bc1)));
                    self.m[i] = Some(m);
                    self.v[i] = Some(v);
                }
                OptimizerKind::Sgd => {
                    let g = if wd != 0.0 { &g + &*p * wd } else { g };
                    let upd = if c.momentum != 0.0 {
                        let buf = match &self.m[i] {
                            Some(b) => b * c.momentum + &g,
                            None => g.copy(),
                        };
                        self.m[i] = Some(buf.shallow_clone());
                        buf
                    } else {
                        g
                    };
                    let _ = p.g_sub_(&(upd * lr));
                }
            }
        }
    }

    /// Saves the moments/buffers to a safetensors file (`{param}.m`, `{param}.v`).
    pub fn save_state(&self, path: &Path) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            if let Some(m) = &self.m[i] {
                named.push((format!("{name}.m"), m.to_device(tch::Device::Cpu)));
            }
            if let Some(v) = &self.v[i] {
                named.push((format!("{name}.v"), v.to_device(tch::Device::Cpu)));
            }
        }
        if named.is_empty() {
            // safetensors needs at least a header; store a marker.
            named.push((
                "_empty".into(),
                Tensor::zeros([1], (Kind::Float, tch::Device::Cpu)),
            ));
        }
        Tensor::write_safetensors(&named, path).map_err(TrainerError::from)
    }

    /// Restores what [`Optimizer::save_state`] wrote; `step` comes from the training state.
    pub fn load_state(&mut self, path: &Path, step: i64) -> Result<()> {
        let named = Tensor::read_safetensors(path)?;
        let map: std::collections::HashMap<String, Tensor> = named.into_iter().collect();
        for (i, (name, p)) in self.params.iter().enumerate() {
            self.m[i] = map
                .get(&format!("{name}.m"))
                .map(|t| t.to_device(p.device()));
            self.v[i] = map
                .get(&format!("{name}.v"))
                .map(|t| t.to_device(p.device()));
        }
        self.step = step;
        Ok(())
    }
}

/// Cosine schedule with linear warm-up, per epoch (0-based `epoch` of `total` epochs):
/// `epoch < W`: `base * (epoch + 1) / W`; otherwise
/// `min + (base - min) * (1 + cos(pi * (epoch - W) / max(1, total - W))) / 2`.
pub fn cosine_warmup_lr(base: f64, min_lr: f64, warmup: usize, total: usize, epoch: usize) -> f64 {
    if epoch < warmup {
        return base * (epoch + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((epoch - warmup) as f64 / span).min(1.0);
    min_lr + (base - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Learning-rate scheduler state (serialisable for resume).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scheduler {
    cfg: SchedulerConfig,
    base_lr: f64,
    total_epochs: usize,
    /// Plateau: current rate.
    pub plateau_lr: f64,
    /// Plateau: best metric so far.
    pub plateau_best: Option<f64>,
    /// Plateau: epochs since the best.
    pub plateau_bad_epochs: usize,
}

impl Scheduler {
    /// A scheduler for `total_epochs` epochs starting from `base_lr`.
    pub fn new(cfg: &SchedulerConfig, base_lr: f64, total_epochs: usize) -> Self {
        Self {
            cfg: cfg.clone(),
            base_lr,
            total_epochs,
            plateau_lr: base_lr,
            plateau_best: None,
            plateau_bad_epochs: 0,
        }
    }

    /// The rate to use during `epoch` (0-based).
    pub fn lr(&self, epoch: usize) -> f64 {
        match self.cfg.kind {
            SchedulerKind::Cosine => cosine_warmup_lr(
                self.base_lr,
                self.cfg.min_lr,
                self.cfg.warmup_epochs,
                self.total_epochs,
                epoch,
            ),
            SchedulerKind::Plateau => self.plateau_lr,
            SchedulerKind::None => self.base_lr,
        }
    }

    /// Feeds the epoch's validation loss (PyTorch ReduceLROnPlateau, mode min, threshold rel:
    /// better when `loss < best * (1 - threshold)`; after more than `patience` bad epochs the
    /// rate becomes `max(lr * factor, min_lr)` and the count restarts).
    pub fn observe(&mut self, val_loss: f64) {
        if self.cfg.kind != SchedulerKind::Plateau {
            return;
        }
        let better = match self.plateau_best {
            None => true,
            Some(best) => val_loss < best * (1.0 - self.cfg.plateau_threshold),
        };
        if better {
            self.plateau_best = Some(val_loss);
            self.plateau_bad_epochs = 0;
        } else {
            self.plateau_bad_epochs += 1;
        }
        if self.plateau_bad_epochs > self.cfg.plateau_patience {
            let new = (self.plateau_lr * self.cfg.plateau_factor).max(self.cfg.min_lr);
            if self.plateau_lr - new > 1e-8 {
                self.plateau_lr = new;
            }
            self.plateau_bad_epochs = 0;
        }
    }
}

/// Early stopping on the validation loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement allowed; 0 = never stop early.
    pub patience: usize,
    /// Required decrease.
    pub min_delta: f64,
    /// Best loss so far.
    pub best: Option<f64>,
    /// Epoch (0-based) of the best loss.
    pub best_epoch: Option<usize>,
    /// Epochs since the best.
    pub bad_epochs: usize,
}

impl EarlyStopping {
    /// New tracker.
    pub fn new(patience: usize, min_delta: f64) -> Self {
        Self {
            patience,
            min_delta,
            best: None,
            best_epoch: None,
            bad_epochs: 0,
        }
    }

    /// Records `loss` of `epoch`; returns whether it is a new best (`loss < best - min_delta`).
    pub fn observe(&mut self, epoch: usize, loss: f64) -> bool {
        let improved = match self.best {
            None => loss.is_finite(),
            Some(b) => loss < b - self.min_delta,
        };
        if improved {
            self.best = Some(loss);
            self.best_epoch = Some(epoch);
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        improved
    }

    /// Whether training should stop now.
    pub fn should_stop(&self) -> bool {
        self.patience > 0 && self.bad_epochs >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn cosine_schedule_equals_its_formula() {
        let (base, min, w, total) = (1e-3, 1e-6, 5, 100);
        assert!((cosine_warmup_lr(base, min, w, total, 0) - base / 5.0).abs() < 1e-15);
        assert!((cosine_warmup_lr(base, min, w, total, 2) - base * 3.0 / 5.0).abs() < 1e-15);
        assert!((cosine_warmup_lr(base, min, w, total, 4) - base).abs() < 1e-15);
        assert!((cosine_warmup_lr(base, min, w, total, 5) - base).abs() < 1e-15);
        let e = 40;
        let want = min + (base - min) * 0.5 * (1.0 + (PI * 35.0 / 95.0).cos());
        assert!((cosine_warmup_lr(base, min, w, total, e) - want).abs() < 1e-15);
        // Half way through the decay: the midpoint.
        let mid = cosine_warmup_lr(1.0, 0.0, 0, 10, 5);
        assert!((mid - 0.5).abs() < 1e-12);
        // Last epoch approaches min.
        assert!(cosine_warmup_lr(base, min, w, total, 99) < base * 0.01);
    }

    #[test]
    fn plateau_halves_after_patience_bad_epochs() {
        let cfg = SchedulerConfig {
            kind: SchedulerKind::Plateau,
            plateau_patience: 2,
            plateau_factor: 0.5,
            min_lr: 0.1,
            ..Default::default()
        };
        let mut s = Scheduler::new(&cfg, 1.0, 100);
        let mut lrs = vec![];
        for loss in [
            1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95,
        ] {
            s.observe(loss);
            lrs.push(s.lr(0));
        }
        // best 0.9 at step 2; bad epochs 1,2,3 -> reduce at the 3rd bad one (index 4).
        assert_eq!(&lrs[..5], &[1.0, 1.0, 1.0, 1.0, 0.5]);
        assert_eq!(lrs[7], 0.25);
        assert_eq!(lrs[10], 0.125);
        // Never below min_lr.
        for _ in 0..20 {
            s.observe(0.95);
        }
        assert_eq!(s.lr(0), 0.1);
        let none = Scheduler::new(
            &SchedulerConfig {
                kind: SchedulerKind::None,
                ..Default::default()
            },
            0.3,
            10,
        );
        assert_eq!(none.lr(7), 0.3);
    }

    #[test]
    fn early_stopping_stops_after_patience() {
        let mut es = EarlyStopping::new(3, 0.01);
        let losses = [1.0, 0.8, 0.795, 0.79, 0.7, 0.71, 0.70, 0.695, 0.5];
        let mut stopped_at = None;
        for (e, l) in losses.iter().enumerate() {
            es.observe(e, *l);
            if es.should_stop() {
                stopped_at = Some(e);
                break;
            }
        }
        // 0.795 and 0.79 are within min_delta of 0.8, but 0.7 improves; then 3 bad epochs.
        assert_eq!(stopped_at, Some(7));
        assert_eq!(es.best_epoch, Some(4));
        assert_eq!(es.best, Some(0.7));
        let mut never = EarlyStopping::new(0, 0.0);
        for e in 0..50 {
            never.observe(e, 1.0);
        }
        assert!(!never.should_stop());
    }

    #[test]
    fn adam_matches_pytorch_formula_on_a_scalar() {
        let p = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let cfg = OptimizerConfig {
            weight_decay: 0.0,
            learning_rate: 0.1,
            ..Default::default()
        };
        let mut opt = Optimizer::new(&cfg, vec![("p".into(), p.shallow_clone())]);
        // loss = p^2, grad = 2p = 2; first Adam step moves by lr (m_hat/sqrt(v_hat) = 1).
        (&p * &p).sum(Kind::Float).backward();
        opt.step();
        let v = p.double_value(&[0]);
        assert!((v - (1.0 - 0.1 * 2.0 / (2.0 + 1e-8))).abs() < 1e-6, "{v}");
        // SGD with momentum: two steps with constant grad 1 -> p -= lr*1 then lr*(0.9+1).
        let q = Tensor::from_slice(&[0.0f32]).set_requires_grad(true);
        let cfg = OptimizerConfig {
            kind: OptimizerKind::Sgd,
            weight_decay: 0.0,
            learning_rate: 0.1,
            ..Default::default()
        };
        let mut sgd = Optimizer::new(&cfg, vec![("q".into(), q.shallow_clone())]);
        for _ in 0..2 {
            sgd.zero_grad();
            q.sum(Kind::Float).backward();
            sgd.step();
        }
        assert!((q.double_value(&[0]) + 0.1 * (1.0 + 1.9)).abs() < 1e-6);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let p = Tensor::from_slice(&[3.0f32, 4.0]).set_requires_grad(true);
        let mut opt = Optimizer::new(
            &OptimizerConfig::default(),
            vec![("p".into(), p.shallow_clone())],
        );
        (&p * &p).sum(Kind::Float).backward(); // grad (6, 8), norm 10
        let n = opt.clip_grad_norm(1.0);
        assert!((n - 10.0).abs() < 1e-5);
        let g = Vec::<f32>::try_from(p.grad()).unwrap();
        assert!(
            ((g[0] * g[0] + g[1] * g[1]).sqrt() - 1.0).abs() < 1e-4,
            "{g:?}"
        );
    }
}
