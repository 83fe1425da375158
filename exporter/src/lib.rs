//! trendscore-exporter: one self-contained ONNX file from a trendscore checkpoint, and the
//! parity suite that proves ONNX Runtime and tract reproduce the trainer.
//!
//! Module map:
//! - [`checkpoint`]: read and validate a checkpoint directory (config, scaler, weights, probe).
//! - [`graph`]: build the opset-17 ONNX graph (scaler, LSTM, attention, heads) with prost.
//! - [`ensemble`]: seed ensembles: one graph combining the members, and the rule it follows.
//! - [`export`]: checkpoint -> model.onnx + model card, refusing models that fail the probe.
//! - [`parity`]: max-abs-diff comparisons of model outputs.
//! - [`reference`]: an independent float64 forward pass from the PyTorch-layout weights.
//! - [`verify`]: the parity suite over backends and batch sizes (`exporter verify`).
//! - [`bench`]: windows/s per backend and batch size (`exporter bench`).
//! - [`error`] holds [`ExportError`].
//!
//! This crate does not link libtorch; the trainer's outputs reach it through the checkpoint's
//! `probe.safetensors`.

pub mod bench;
pub mod checkpoint;
pub mod ensemble;
pub mod error;
pub mod export;
pub mod graph;
pub mod parity;
pub mod reference;
pub mod verify;

pub use error::ExportError;
pub use export::{export, ExportOptions, ExportReport};
