//! trendscore-trainer: trains the trendscore model (DESIGN.md) with tch/libtorch.
//!
//! Module map:
//! - [`config`]: the TOML training config (model, training, loss, optimizer, scheduler,
//!   sequence, features sections), every field documented and defaulted; the model, sequence
//!   and features sections are the checkpoint contract's types.
//! - [`data`]: rows -> per-ticker series -> windows of consecutive weeks -> time-aware split
//!   with purge -> StandardScaler on the training rows -> tensors.
//! - [`model`]: BiLSTM + multi-head temporal attention + 7d/30d heads, PyTorch parameter names.
//! - [`loss`]: `LSTMLoss`, `WeightedLSTMLoss`, `VolatilityAwareLoss`.
//! - [`optim`]: Adam/AdamW/SGD, gradient clipping, cosine-warmup and plateau schedules, early stopping.
//! - [`metrics`]: per-horizon regression and direction metrics.
//! - [`train`]: the loop, checkpoints, resume; [`history`]: the `history.json` records;
//!   [`checkpoint`]: the checkpoint directory's tensors (its config and scaler contract is
//!   `trendscore_schemas::checkpoint`).
//! - [`ensemble`]: seed ensembles (`fit --seeds N`): members and `ensemble.json`.
//! - [`infer`]: `evaluate` and `predict` with a checkpoint.
//! - [`plot`]: `history.png` and attention plots.
//! - [`report`]: `trainer report`, walk-forward out-of-sample evaluation against baselines.
//! - [`bench`]: one-step throughput; [`cli`]: the `trainer` command line.

pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod ensemble;
pub mod error;
pub mod history;
pub mod infer;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plot;
pub mod report;
pub mod train;

pub use config::TrainConfig;
pub use error::TrainerError;
