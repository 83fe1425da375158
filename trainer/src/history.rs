//! `history.json`: one [`EpochRecord`] per finished epoch, with its [`LossValues`]. Written by
//! the training loop ([`crate::train`]) and drawn by [`crate::plot`], so the plot needs nothing
//! of the loop (the loop calls the plot, never the other way round).

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// The five loss values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LossValues {
    /// Weighted total.
    pub total: f64,
    /// 7-day trend MSE.
    pub trend_7d: f64,
    /// 7-day direction cross-entropy.
    pub direction_7d: f64,
    /// 30-day trend MSE.
    pub trend_30d: f64,
    /// 30-day direction cross-entropy.
    pub direction_30d: f64,
}

impl From<[f64; 5]> for LossValues {
    fn from(v: [f64; 5]) -> Self {
        Self {
            total: v[0],
            trend_7d: v[1],
            direction_7d: v[2],
            trend_30d: v[3],
            direction_30d: v[4],
        }
    }
}

/// One line of `history.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
    /// Mean training loss over the epoch's batches (sample-weighted).
    pub train: LossValues,
    /// Validation loss (eval mode).
    pub val: LossValues,
    /// Validation metrics.
    pub val_metrics: Metrics,
    /// Mean global gradient norm before clipping.
    pub grad_norm: f64,
    /// Whether this epoch set a new best validation loss.
    pub best: bool,
}
