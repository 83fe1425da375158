//! Losses. Each returns the total and the four weighted-in components
//! (7-day trend MSE, 7-day direction cross-entropy, 30-day trend MSE, 30-day direction CE):
//!
//! `total = w_t7 * L(trend_7d) + w_d7 * L(dir_7d) + w_t30 * L(trend_30d) + w_d30 * L(dir_30d)`
//!
//! where for a batch of per-sample losses `l_i` and sample weights `s_i`:
//! - [`LstmLoss`]: `L = mean_i l_i`;
//! - [`WeightedLstmLoss`]: `L = sum_i s_i l_i / sum_i s_i` with caller-supplied weights (the
//!   data module supplies recency weights, `0.5^(age_weeks / half_life)`);
//! - [`VolatilityAwareLoss`]: the weighted form with `s_i = 1 / (sigma_i + eps)`, `sigma_i` the
//!   sample's volatility, so calmer samples weigh more; normalising by `sum s_i` keeps the loss
//!   on the scale of the unweighted one.

use tch::{Kind, Tensor};

use crate::config::{LossConfig, LossKind};
use crate::model::ModelOutput;

/// Targets of one batch (all on the model's device).
#[derive(Debug)]
pub struct Targets<'a> {
    /// (b) float32.
    pub trend_7d: &'a Tensor,
    /// (b) float32.
    pub trend_30d: &'a Tensor,
    /// (b) int64 in {0, 1}.
    pub dir_7d: &'a Tensor,
    /// (b) int64 in {0, 1}.
    pub dir_30d: &'a Tensor,
    /// (b) float32 per-sample weight (recency, or inverse volatility for VolatilityAwareLoss).
    pub weight: &'a Tensor,
}

/// The total (scalar, differentiable) and the four unweighted components (scalars).
#[derive(Debug)]
pub struct LossParts {
    /// Weighted sum of the components.
    pub total: Tensor,
    /// 7-day trend MSE.
    pub trend_7d: Tensor,
    /// 7-day direction cross-entropy.
    pub direction_7d: Tensor,
    /// 30-day trend MSE.
    pub trend_30d: Tensor,
    /// 30-day direction cross-entropy.
    pub direction_30d: Tensor,
}

impl LossParts {
    /// `[total, trend_7d, direction_7d, trend_30d, direction_30d]` as f64.
    pub fn values(&self) -> [f64; 5] {
        [
            &self.total,
            &self.trend_7d,
            &self.direction_7d,
            &self.trend_30d,
            &self.direction_30d,
        ]
        .map(|t| t.double_value(&[]))
    }
}

/// A loss function over model outputs and targets.
pub trait TrendLoss: Send {
    /// Computes the loss parts.
    fn compute(&self, out: &ModelOutput, y: &Targets) -> LossParts;
}

/// Per-sample components: (trend_7d, dir_7d, trend_30d, dir_30d), each (b).
fn per_sample(out: &ModelOutput, y: &Targets) -> [Tensor; 4] {
    let mse = |p: &Tensor, t: &Tensor| (p.squeeze_dim(1) - t).square();
    let ce = |logits: &Tensor, t: &Tensor| {
        logits
            .log_softmax(-1, Kind::Float)
            .gather(1, &t.unsqueeze(1), false)
            .squeeze_dim(1)
            .neg()
    };
    [
        mse(&out.trend_7d, y.trend_7d),
        ce(&out.direction_7d, y.dir_7d),
        mse(&out.trend_30d, y.trend_30d),
        ce(&out.direction_30d, y.dir_30d),
    ]
}

fn combine(w: &[f64; 4], parts: [Tensor; 4]) -> LossParts {
    let total = &parts[0] * w[0] + &parts[1] * w[1] + &parts[2] * w[2] + &parts[3] * w[3];
    let [t7, d7, t30, d30] = parts;
    LossParts {
        total,
        trend_7d: t7,
        direction_7d: d7,
        trend_30d: t30,
        direction_30d: d30,
    }
}

fn weights_of(cfg: &LossConfig) -> [f64; 4] {
    [
        cfg.trend_7d_weight,
        cfg.direction_7d_weight,
        cfg.trend_30d_weight,
        cfg.direction_30d_weight,
    ]
}

/// `LSTMLoss`: MSE on trends + cross-entropy on directions, batch means.
#[derive(Clone, Debug)]
pub struct LstmLoss {
    /// Component weights (trend_7d, direction_7d, trend_30d, direction_30d).
    pub weights: [f64; 4],
}

impl TrendLoss for LstmLoss {
    fn compute(&self, out: &ModelOutput, y: &Targets) -> LossParts {
        let parts = per_sample(out, y).map(|l| l.mean(Kind::Float));
        combine(&self.weights, parts)
    }
}

/// `WeightedLSTMLoss`: per-sample weights from the targets (`y.weight`).
#[derive(Clone, Debug)]
pub struct WeightedLstmLoss {
    /// Component weights.
    pub weights: [f64; 4],
}

fn weighted_mean(l: &Tensor, w: &Tensor) -> Tensor {
    (l * w).sum(Kind::Float) / w.sum(Kind::Float).clamp_min(1e-12)
}

impl TrendLoss for WeightedLstmLoss {
    fn compute(&self, out: &ModelOutput, y: &Targets) -> LossParts {
        let parts = per_sample(out, y).map(|l| weighted_mean(&l, y.weight));
        combine(&self.weights, parts)
    }
}

/// `VolatilityAwareLoss`: `y.weight` holds `1 / (sigma_i + eps)` (built by the data module from
/// the window's volatility), so lower volatility weighs more.
#[derive(Clone, Debug)]
pub struct VolatilityAwareLoss {
    /// Component weights.
    pub weights: [f64; 4],
}

impl VolatilityAwareLoss {
    /// Turns volatilities (b) into the sample weights this loss expects.
    pub fn weights_from_volatility(sigma: &Tensor, eps: f64) -> Tensor {
        (sigma + eps).reciprocal()
    }
}

impl TrendLoss for VolatilityAwareLoss {
    fn compute(&self, out: &ModelOutput, y: &Targets) -> LossParts {
        let parts = per_sample(out, y).map(|l| weighted_mean(&l, y.weight));
        combine(&self.weights, parts)
    }
}

/// The loss the config names.
pub fn build(cfg: &LossConfig) -> Box<dyn TrendLoss> {
    let weights = weights_of(cfg);
    match cfg.kind {
        LossKind::Lstm => Box::new(LstmLoss { weights }),
        LossKind::Weighted => Box::new(WeightedLstmLoss { weights }),
        LossKind::VolatilityAware => Box::new(VolatilityAwareLoss { weights }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out() -> ModelOutput {
        ModelOutput {
            trend_7d: Tensor::from_slice(&[0.5f32, -0.5]).view([2, 1]),
            direction_7d: Tensor::from_slice(&[0.0f32, 0.0, 1.0, -1.0]).view([2, 2]),
            trend_30d: Tensor::from_slice(&[0.0f32, 0.0]).view([2, 1]),
            direction_30d: Tensor::from_slice(&[0.0f32, 2.0, 0.0, 2.0]).view([2, 2]),
            attention: Tensor::ones([2, 12], (Kind::Float, tch::Device::Cpu)) / 12.0,
        }
    }

    /// The targets both loss tests use (two samples), with per-sample `weight`.
    struct Fixture {
        t7: Tensor,
        t30: Tensor,
        d7: Tensor,
        d30: Tensor,
        w: Tensor,
    }

    impl Fixture {
        fn new(weight: [f32; 2]) -> Self {
            Self {
                t7: Tensor::from_slice(&[1.0f32, 0.5]),
                t30: Tensor::from_slice(&[0.5f32, 0.5]),
                d7: Tensor::from_slice(&[1i64, 0]),
                d30: Tensor::from_slice(&[1i64, 0]),
                w: Tensor::from_slice(&weight),
            }
        }

        fn targets(&self) -> Targets<'_> {
            Targets {
                trend_7d: &self.t7,
                trend_30d: &self.t30,
                dir_7d: &self.d7,
                dir_30d: &self.d30,
                weight: &self.w,
            }
        }
    }

    #[test]
    fn lstm_loss_matches_hand_computation() {
        let f = Fixture::new([1.0, 1.0]);
        let y = f.targets();
        let loss = LstmLoss {
            weights: [1.0, 0.5, 1.0, 0.5],
        };
        let v = loss.compute(&out(), &y).values();
        let mse7 = (0.25 + 1.0) / 2.0;
        let ce7 = (2f64.ln() + (1.0 + (-2f64).exp()).ln()) / 2.0;
        let mse30 = 0.25;
        let ce30 = ((1.0 + (-2f64).exp()).ln() + (1.0 + 2f64.exp()).ln()) / 2.0;
        let want = [
            mse7 + 0.5 * ce7 + mse30 + 0.5 * ce30,
            mse7,
            ce7,
            mse30,
            ce30,
        ];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{v:?} vs {want:?}");
        }
    }

    #[test]
    fn weighted_losses_follow_their_weights() {
        // All weight on sample 0: trend_7d MSE is sample 0's (0.25).
        let f = Fixture::new([1.0, 0.0]);
        let y = f.targets();
        let v = WeightedLstmLoss {
            weights: [1.0, 0.5, 1.0, 0.5],
        }
        .compute(&out(), &y)
        .values();
        assert!((v[1] - 0.25).abs() < 1e-6, "{v:?}");
        // Volatility: sample 1 is ten times calmer -> weighs ten times more.
        let sigma = Tensor::from_slice(&[1.0f32, 0.1]);
        let w = VolatilityAwareLoss::weights_from_volatility(&sigma, 0.0);
        let y = Targets { weight: &w, ..y };
        let v = VolatilityAwareLoss {
            weights: [1.0, 0.5, 1.0, 0.5],
        }
        .compute(&out(), &y)
        .values();
        let want = (0.25 * 1.0 + 1.0 * 10.0) / 11.0;
        assert!((v[1] - want).abs() < 1e-5, "{v:?}");
    }
}
