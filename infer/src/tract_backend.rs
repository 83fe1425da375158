//! The tract backend: pure Rust, CPU only, always available.
//!
//! The ONNX graph is parsed once into a tract inference model. Each batch size gets its own
//! plan, optimised with the batch dimension fixed (concretised), cached for up to
//! [`MAX_CACHED_PLANS`] sizes; other sizes run a plan optimised with a symbolic batch.
//! Concrete plans let tract pick matmul kernels and buffer sizes ahead of time (see
//! exporter/README.md for the measured effect).

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::{
    tvec, DatumExt, Framework, InferenceModel as TractInferenceModel, InferenceModelExt, IntoTValue, RunOptions, Tensor,
    TypedRunnableModel,
};

use crate::{check_input, BackendKind, InferError, InferenceModel, LoadOptions, ModelInfo, ModelOutputs, OUTPUT_NAMES};

/// How many batch sizes get their own concretised plan.
pub const MAX_CACHED_PLANS: usize = 16;

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
    /// Plan with a symbolic batch dimension, for sizes outside the cache.
    symbolic: Plan,
    /// Concretised plans by batch size.
    plans: Mutex<HashMap<usize, Plan>>,
    /// Positions of the contract outputs in the plan's outputs.
    output_order: [usize; 5],
    run_options: RunOptions,
}

impl TractModel {
    /// Parses `bytes` (an ONNX model described by `info`) and prepares the symbolic-batch plan.
    pub fn from_bytes(bytes: &[u8], info: ModelInfo, opts: &LoadOptions) -> Result<Self, InferError> {
        let inference = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(bytes))
            .map_err(terr)?;
        let mut output_order = [0usize; 5];
        let outlets = inference.output_outlets().map_err(terr)?;
        for (k, name) in OUTPUT_NAMES.iter().enumerate() {
            output_order[k] = outlets
                .iter()
                .position(|o| inference.node(o.node).name == *name || inference.outlet_label(*o) == Some(*name))
                .ok_or_else(|| terr(format!("output {name:?} not found in the tract graph")))?;
        }
        let run_options = RunOptions::default();
        let _ = opts.intra_threads; // tract runs single-threaded here (see README)
        let symbolic = inference
            .clone()
            .into_optimized()
            .map_err(terr)?
            .into_runnable_with_options(&run_options)
            .map_err(terr)?;
        Ok(TractModel {
            info,
            inference,
            symbolic,
            plans: Mutex::new(HashMap::new()),
            output_order,
            run_options,
        })
    }

    fn plan_for(&self, batch: usize) -> Result<Plan, InferError> {
        if let Some(p) = self.plans.lock().expect("plan cache poisoned").get(&batch) {
            return Ok(p.clone());
        }
        if self.plans.lock().expect("plan cache poisoned").len() >= MAX_CACHED_PLANS {
            return Ok(self.symbolic.clone());
        }
        let fact = f32::fact(&[batch, self.info.sequence_length, self.info.input_dim]);
        let plan = self
            .inference
            .clone()
            .with_input_fact(0, fact.into())
            .map_err(terr)?
            .into_optimized()
            .map_err(terr)?
            .into_runnable_with_options(&self.run_options)
            .map_err(terr)?;
        self.plans
            .lock()
            .expect("plan cache poisoned")
            .insert(batch, plan.clone());
        Ok(plan)
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
        let input = Tensor::from_shape(&[batch, self.info.sequence_length, self.info.input_dim], features).map_err(rerr)?;
        let plan = self.plan_for(batch)?;
        let outs = plan.run(tvec!(input.into_tvalue())).map_err(rerr)?;
        let take = |k: usize| -> Result<Vec<f32>, InferError> {
            let t = &outs[self.output_order[k]];
            Ok(t.try_as_plain_ram().map_err(rerr)?.as_slice::<f32>().map_err(rerr)?.to_vec())
        };
        ModelOutputs {
            batch,
            seq_len: self.info.sequence_length,
            trend_7d: take(0)?,
            direction_7d: take(1)?,
            trend_30d: take(2)?,
            direction_30d: take(3)?,
            attention: take(4)?,
        }
        .check("tract")
    }
}
