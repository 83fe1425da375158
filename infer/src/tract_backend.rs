//! The tract backend: pure Rust, CPU only, always available.
//!
//! The ONNX graph is parsed once into a tract inference model, and run in *chunks* of the
//! sizes of a fixed ladder (1, 2, 4, ... [`MAX_CHUNK`]): a batch is cut into chunks of one
//! ladder size (the last one padded with copies of the first window, its outputs dropped),
//! and the chunks run on `intra_threads` threads at once, each a single-threaded tract plan
//! ([`crate::chunks`], shared with the ONNX Runtime CPU backend).
//! Why: tract's own thread pool barely speeds up this model (measured 2,532 -> 2,790
//! windows/s at batch 64 from one to two threads), while independent chunks scale with the
//! cores; and a plan is optimised for one concrete batch (tract's ONNX LSTM needs a concrete
//! batch for its zero initial state; concrete plans pick kernels and buffers ahead of time),
//! so the ladder bounds the plans to a handful whatever batch sizes the stream brings,
//! where one plan per distinct size meant tens of ms of planning on every new size.
//! Chunks of [`MAX_CHUNK`] are also faster per window than one plan over a large batch
//! (2,532 windows/s at 64 against 1,850 at 1,024 on one thread). Each ladder plan is built
//! on first use.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::{
    tvec, DatumExt, Framework, InferenceModel as TractInferenceModel, InferenceModelExt,
    IntoTValue, RunOptions, Tensor, TypedRunnableModel,
};

use crate::chunks::{self, lock, ChunkResult, Cut};
use crate::{
    check_input, BackendKind, InferError, InferenceModel, LoadOptions, ModelInfo, ModelOutputs,
    OUTPUT_NAMES,
};

/// The largest chunk a batch is cut into (the top of the ladder 1, 2, 4, ..., MAX_CHUNK).
pub const MAX_CHUNK: usize = 64;

/// The ladder size chunks of a `batch` take on `threads` threads: the batch spread evenly
/// over the threads, rounded up to a power of two, at most [`MAX_CHUNK`].
pub fn chunk_size(batch: usize, threads: usize) -> usize {
    let per_thread = batch.div_ceil(threads.max(1)).max(1);
    per_thread.next_power_of_two().min(MAX_CHUNK)
}

type Plan = Arc<TypedRunnableModel>;

fn terr(e: impl std::fmt::Display) -> InferError {
    InferError::Backend {
        backend: "tract",
        reason: format!("{e:#}"),
    }
}

fn rerr(e: impl std::fmt::Display) -> InferError {
    InferError::Run {
        backend: "tract",
        reason: format!("{e:#}"),
    }
}

/// A model run by tract.
pub struct TractModel {
    info: ModelInfo,
    /// The parsed (not yet typed) model, kept to concretise the batch per size.
    inference: TractInferenceModel,
    /// Concretised plans by chunk size (ladder sizes only).
    plans: Mutex<Vec<(usize, Plan)>>,
    /// Positions of the contract outputs in the plan's outputs.
    output_order: [usize; 5],
    /// Chunks run at once.
    threads: usize,
}

impl TractModel {
    /// Parses `bytes` (an ONNX model described by `info`) and prepares the batch-1 plan.
    pub fn from_bytes(
        bytes: &[u8],
        info: ModelInfo,
        opts: &LoadOptions,
    ) -> Result<Self, InferError> {
        let inference = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(bytes))
            .map_err(terr)?;
        let mut output_order = [0usize; 5];
        let outlets = inference.output_outlets().map_err(terr)?;
        for (k, name) in OUTPUT_NAMES.iter().enumerate() {
            output_order[k] = outlets
                .iter()
                .position(|o| {
                    inference.node(o.node).name == *name
                        || inference.outlet_label(*o) == Some(*name)
                })
                .ok_or_else(|| terr(format!("output {name:?} not found in the tract graph")))?;
        }
        let model = TractModel {
            info,
            inference,
            plans: Mutex::new(Vec::new()),
            output_order,
            threads: chunks::workers(opts.intra_threads),
        };
        // Build the batch-1 plan now, so a model tract cannot run fails at load time.
        model.plan_for(1)?;
        Ok(model)
    }

    fn plan_for(&self, batch: usize) -> Result<Plan, InferError> {
        if let Some((_, plan)) = lock(&self.plans).iter().find(|(b, _)| *b == batch) {
            return Ok(plan.clone());
        }
        let fact = f32::fact([batch, self.info.sequence_length, self.info.input_dim]);
        // tract unwraps in places; a panic while planning becomes an error, not a crash.
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.inference
                .clone()
                .with_input_fact(0, fact.into())?
                .into_optimized()?
                .into_runnable_with_options(&RunOptions::default())
        }));
        let plan = match built {
            Ok(r) => r.map_err(terr)?,
            Err(_) => return Err(terr(format!("tract panicked while planning batch {batch}"))),
        };
        lock(&self.plans).push((batch, plan.clone()));
        Ok(plan)
    }

    /// Runs one chunk of exactly `chunk` windows; returns its five outputs in contract order.
    fn run_chunk(&self, features: &[f32], chunk: usize) -> ChunkResult {
        let input = Tensor::from_shape(
            &[chunk, self.info.sequence_length, self.info.input_dim],
            features,
        )
        .map_err(rerr)?;
        let plan = self.plan_for(chunk)?;
        let outs = plan.run(tvec!(input.into_tvalue())).map_err(rerr)?;
        let take = |k: usize| -> Result<Vec<f32>, InferError> {
            let t = &outs[self.output_order[k]];
            Ok(t.try_as_plain_ram()
                .map_err(rerr)?
                .as_slice::<f32>()
                .map_err(rerr)?
                .to_vec())
        };
        Ok([take(0)?, take(1)?, take(2)?, take(3)?, take(4)?])
    }
}

impl InferenceModel for TractModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn backend(&self) -> BackendKind {
        BackendKind::Tract
    }

    fn predict(&self, features: &[f32], batch: usize) -> Result<ModelOutputs, InferError> {
        check_input(&self.info, features, batch)?;
        let cut = Cut {
            chunk: chunk_size(batch, self.threads),
            pad: true,
            workers: self.threads,
        };
        chunks::run(features, batch, &self.info, cut, "tract", |_, x, n| {
            self.run_chunk(x, n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_climb_a_fixed_ladder() {
        assert_eq!(chunk_size(1, 2), 1);
        assert_eq!(chunk_size(7, 2), 4);
        assert_eq!(chunk_size(7, 1), 8);
        assert_eq!(chunk_size(64, 2), 32);
        assert_eq!(chunk_size(100, 2), 64);
        assert_eq!(chunk_size(1024, 16), 64);
        assert_eq!(chunk_size(5, 0), 8, "0 threads count as 1");
    }
}
