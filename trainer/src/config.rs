//! The training configuration: a TOML file mirroring the guide's `LSTMModelConfig` and
//! `LSTMTrainingConfig`, split into `model`, `training`, `loss`, `optimizer`, `scheduler`,
//! `sequence` and `features` sections. Every field has a doc comment and a default; unknown keys
//! are rejected so that a typo is an error, not a silently ignored setting.
//!
//! The `model`, `sequence` and `features` sections are also sections of a checkpoint's
//! `config.json`, so their types live in `trendscore_schemas::checkpoint` (re-exported here);
//! the training-only sections are defined here.

use std::path::Path;

use serde::{Deserialize, Serialize};
use trendscore_schemas::checkpoint::{check_spec, TrainingSection};
// The sections a checkpoint shares with this config are the checkpoint contract's.
pub use trendscore_schemas::checkpoint::{FeaturesConfig, ModelConfig, SequenceConfig, SplitMode};

use crate::error::TrainerError;

/// Everything `trainer fit` needs besides the data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Model sizes (DESIGN.md's architecture).
    pub model: ModelConfig,
    /// Loop settings: epochs, batch size, early stopping, clipping, device, seed.
    pub training: TrainingConfig,
    /// Which loss and its four component weights.
    pub loss: LossConfig,
    /// Optimiser and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    pub scheduler: SchedulerConfig,
    /// Windowing and the train/validation/test split.
    pub sequence: SequenceConfig,
    /// Which feature columns feed the model, by name, in order.
    pub features: FeaturesConfig,
}

/// The training loop (the guide's `LSTMTrainingConfig`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Sequences per optimisation step.
    pub batch_size: usize,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Epochs without an improvement of `early_stopping_metric` before stopping; 0 disables
    /// early stopping.
    pub early_stopping_patience: usize,
    /// What "improvement" means for early stopping and for the best weights that are kept:
    /// `val_loss` (the validation loss decreases), `val_auc_7d` or `val_auc_30d` (the
    /// validation direction AUC of that horizon increases).
    pub early_stopping_metric: StopMetric,
    /// Smallest change of the early-stopping metric that counts as an improvement.
    pub min_delta: f64,
    /// Gradients are rescaled so that their global L2 norm is at most this; 0 disables clipping.
    pub max_grad_norm: f64,
    /// Seed for weight initialisation, dropout, shuffling and the shuffled split.
    pub seed: u64,
    /// `auto` (CUDA when available), `cpu` or `cuda`.
    pub device: String,
    /// Intra-op threads for libtorch on CPU; 0 keeps libtorch's default.
    pub num_threads: usize,
    /// Show a progress bar with the live loss (drawn only on a terminal).
    pub progress: bool,
    /// Shuffle the training windows each epoch (a seeded permutation). `false` takes the
    /// batches in the training split's order (tickers by name, then weeks), the same every
    /// epoch: for reproducing a run step by step in another framework
    /// (tests/python/test_trainer_lockstep.py), not for real training.
    pub shuffle: bool,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            batch_size: 32,
            epochs: 100,
            early_stopping_patience: 15,
            early_stopping_metric: StopMetric::ValLoss,
            min_delta: 0.0,
            max_grad_norm: 1.0,
            seed: 42,
            device: "auto".to_string(),
            num_threads: 0,
            progress: true,
            shuffle: true,
        }
    }
}

/// The validation figure early stopping and best-weight selection follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopMetric {
    /// The validation loss (the weighted total the model is trained on); lower is better.
    #[default]
    #[serde(rename = "val_loss")]
    ValLoss,
    /// The validation ROC AUC of the 7-day direction; higher is better.
    #[serde(rename = "val_auc_7d")]
    ValAuc7d,
    /// The validation ROC AUC of the 30-day direction; higher is better.
    #[serde(rename = "val_auc_30d")]
    ValAuc30d,
}

impl StopMetric {
    /// The value early stopping minimises: the loss, or 1 - AUC (an undefined AUC, a
    /// validation split of one class, counts as 0).
    pub fn score(self, loss_total: f64, auc_7d: Option<f64>, auc_30d: Option<f64>) -> f64 {
        match self {
            Self::ValLoss => loss_total,
            Self::ValAuc7d => 1.0 - auc_7d.unwrap_or(0.0),
            Self::ValAuc30d => 1.0 - auc_30d.unwrap_or(0.0),
        }
    }
}

/// Which loss to minimise. All three return the total and the four components (trend and
/// direction of each horizon); see the crate README for the formulas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// `LSTMLoss`: weighted MSE on the trends plus cross-entropy on the directions.
    Lstm,
    /// `WeightedLSTMLoss`: the same per sample, weighted by recency (newer weeks weigh more).
    Weighted,
    /// `VolatilityAwareLoss`: per sample weights inversely proportional to volatility.
    VolatilityAware,
}

/// Loss section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// `lstm`, `weighted` or `volatility_aware`.
    pub kind: LossKind,
    /// Weight of the 7-day trend MSE.
    pub trend_7d_weight: f64,
    /// Weight of the 7-day direction cross-entropy.
    pub direction_7d_weight: f64,
    /// Weight of the 30-day trend MSE.
    pub trend_30d_weight: f64,
    /// Weight of the 30-day direction cross-entropy.
    pub direction_30d_weight: f64,
    /// `weighted`: a sample `h` weeks older than the newest training week weighs `0.5^(h / half_life)`.
    pub recency_half_life_weeks: f64,
    /// `volatility_aware`: the feature whose standard deviation over the window is the sample's volatility.
    pub volatility_feature: String,
    /// `volatility_aware`: added to the volatility before inverting it.
    pub volatility_epsilon: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            kind: LossKind::Lstm,
            trend_7d_weight: 1.0,
            direction_7d_weight: 0.5,
            trend_30d_weight: 1.0,
            direction_30d_weight: 0.5,
            recency_half_life_weeks: 52.0,
            volatility_feature: "feature_1".to_string(),
            volatility_epsilon: 1e-3,
        }
    }
}

/// Optimiser kinds (PyTorch semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam, weight decay added to the gradient (L2).
    Adam,
    /// AdamW, decoupled weight decay.
    Adamw,
    /// SGD with momentum, weight decay added to the gradient.
    Sgd,
}

/// Optimiser section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    /// `adam`, `adamw` or `sgd`.
    pub kind: OptimizerKind,
    /// Base learning rate.
    pub learning_rate: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Adam/AdamW beta1.
    pub beta1: f64,
    /// Adam/AdamW beta2.
    pub beta2: f64,
    /// Adam/AdamW epsilon.
    pub eps: f64,
    /// SGD momentum.
    pub momentum: f64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Adam,
            learning_rate: 1e-3,
            weight_decay: 1e-5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            momentum: 0.9,
        }
    }
}

/// Learning-rate schedule kinds; the rate is set once per epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    /// Linear warm-up to the base rate, then cosine decay to `min_lr` at the last epoch.
    Cosine,
    /// PyTorch's ReduceLROnPlateau on the validation loss.
    Plateau,
    /// Constant learning rate.
    None,
}

/// Scheduler section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// `cosine`, `plateau` or `none`.
    pub kind: SchedulerKind,
    /// Cosine: epochs of linear warm-up.
    pub warmup_epochs: usize,
    /// Cosine and plateau: the rate never goes below this.
    pub min_lr: f64,
    /// Plateau: multiply the rate by this on a plateau.
    pub plateau_factor: f64,
    /// Plateau: epochs without improvement before reducing.
    pub plateau_patience: usize,
    /// Plateau: relative improvement threshold (PyTorch `threshold`, mode `rel`).
    pub plateau_threshold: f64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            kind: SchedulerKind::Cosine,
            warmup_epochs: 5,
            min_lr: 1e-6,
            plateau_factor: 0.5,
            plateau_patience: 5,
            plateau_threshold: 1e-4,
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file; missing fields take their defaults, unknown ones are errors.
    pub fn from_toml_file(path: &Path) -> Result<Self, TrainerError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainerError::io(path, e))?;
        let cfg: TrainConfig = toml::from_str(&text).map_err(|e| TrainerError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the combinations that serde cannot: the checkpoint contract's rules
    /// ([`check_spec`]: sizes, horizons, feature list), then ratios and the training-only sections.
    pub fn validate(&self) -> Result<(), TrainerError> {
        let bad = |m: String| {
            Err(TrainerError::Config {
                path: "(config)".into(),
                message: m,
            })
        };
        if let Err(e) = check_spec(&self.model, &self.sequence, &self.features) {
            return bad(e.to_string());
        }
        let s = &self.sequence;
        if !(s.train_ratio > 0.0 && s.val_ratio > 0.0 && s.train_ratio + s.val_ratio < 1.0) {
            return bad(format!(
                "sequence.train_ratio ({}) and val_ratio ({}) must be > 0 and sum to < 1",
                s.train_ratio, s.val_ratio
            ));
        }
        let t = &self.training;
        if t.batch_size == 0 {
            return bad("training.batch_size must be > 0".into());
        }
        if !["auto", "cpu", "cuda"].contains(&t.device.as_str()) && !t.device.starts_with("cuda:") {
            return bad(format!(
                "training.device must be auto, cpu or cuda, got `{}`",
                t.device
            ));
        }
        let o = &self.optimizer;
        if !(o.learning_rate >= 0.0 && o.learning_rate.is_finite()) || o.weight_decay < 0.0 {
            return bad("optimizer.learning_rate and weight_decay must be finite and >= 0".into());
        }
        if self.loss.kind == LossKind::VolatilityAware
            && !self.features.names.contains(&self.loss.volatility_feature)
        {
            return bad(format!(
                "loss.volatility_feature `{}` is not one of features.names",
                self.loss.volatility_feature
            ));
        }
        Ok(())
    }
}

impl TrainingSection for TrainConfig {
    fn model(&self) -> &ModelConfig {
        &self.model
    }
    fn sequence(&self) -> &SequenceConfig {
        &self.sequence
    }
    fn features(&self) -> &FeaturesConfig {
        &self.features
    }
    fn seed(&self) -> u64 {
        self.training.seed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_guides() {
        let c = TrainConfig::default();
        assert_eq!(c.training.batch_size, 32);
        assert_eq!(c.training.epochs, 100);
        assert_eq!(c.training.early_stopping_patience, 15);
        assert_eq!(c.training.max_grad_norm, 1.0);
        assert_eq!(c.optimizer.learning_rate, 1e-3);
        assert_eq!(c.optimizer.weight_decay, 1e-5);
        assert_eq!(c.scheduler.kind, SchedulerKind::Cosine);
        assert_eq!(c.scheduler.warmup_epochs, 5);
        assert_eq!(
            [
                c.loss.trend_7d_weight,
                c.loss.direction_7d_weight,
                c.loss.trend_30d_weight,
                c.loss.direction_30d_weight
            ],
            [1.0, 0.5, 1.0, 0.5]
        );
        assert_eq!(c.model.hidden_dim, 128);
        assert_eq!(c.model.head_hidden_dims, vec![64, 32]);
        c.validate().unwrap();
    }

    #[test]
    fn early_stopping_metric_parses_and_scores() {
        let c: TrainConfig =
            toml::from_str("[training]\nearly_stopping_metric = \"val_auc_7d\"\n").unwrap();
        assert_eq!(c.training.early_stopping_metric, StopMetric::ValAuc7d);
        assert!(
            toml::from_str::<TrainConfig>("[training]\nearly_stopping_metric = \"auc\"\n").is_err()
        );
        assert_eq!(StopMetric::ValLoss.score(0.7, Some(0.6), None), 0.7);
        assert!((StopMetric::ValAuc7d.score(0.7, Some(0.6), None) - 0.4).abs() < 1e-12);
        assert_eq!(StopMetric::ValAuc30d.score(0.7, Some(0.6), None), 1.0);
        // a higher AUC is a lower score: early stopping keeps the epoch with the best AUC
        assert!(
            StopMetric::ValAuc7d.score(9.0, Some(0.55), None)
                < StopMetric::ValAuc7d.score(0.1, Some(0.52), None)
        );
    }

    #[test]
    fn partial_toml_takes_defaults_and_unknown_keys_fail() {
        let c: TrainConfig =
            toml::from_str("[model]\nhidden_dim = 16\nnum_attention_heads = 2\n").unwrap();
        assert_eq!(c.model.hidden_dim, 16);
        assert_eq!(c.model.num_lstm_layers, 2);
        let err = toml::from_str::<TrainConfig>("[model]\nhiden_dim = 16\n").unwrap_err();
        assert!(err.to_string().contains("hiden_dim"), "{err}");
    }

    #[test]
    fn invalid_combinations_are_named() {
        let mut c = TrainConfig::default();
        c.model.num_attention_heads = 3;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("num_attention_heads"), "{e}");
        let mut c = TrainConfig::default();
        c.features.names.truncate(10);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("input_dim"), "{e}");
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn example_toml_parses_to_the_defaults() {
        let manifest: std::path::PathBuf = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
            || env!("CARGO_MANIFEST_DIR").into(),
            std::path::PathBuf::from,
        );
        let path = manifest.join("train.example.toml");
        let c = super::TrainConfig::from_toml_file(&path).unwrap();
        assert_eq!(c, super::TrainConfig::default());
    }
}
