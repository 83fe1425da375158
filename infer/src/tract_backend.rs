//! The tract backend: pure Rust, CPU only, always available.
//!
//! The ONNX graph is parsed once into a tract inference model. Each batch size gets its own
//! plan, optimised with the batch dimension fixed (concretised); the [`MAX_CACHED_PLANS`] most
//! recently used plans are kept. tract's ONNX LSTM needs a concrete batch to build its zero
//! initial state, and concrete plans let tract pick matmul kernels and buffer sizes ahead of
//! time. The plan for the first call of a new size is built on that call (tens of ms).

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::{
    tvec, DatumExt, Framework, InferenceModel as TractInferenceModel, InferenceModelExt,
    IntoTValue, RunOptions, Tensor, TypedRunnableModel,
};

use crate::{
    check_input, BackendKind, InferError, InferenceModel, LoadOptions, ModelInfo, ModelOutputs,
    OUTPUT_NAMES,
};

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
    /// Concretised plans by batch size, most recently used last.
    plans: Mutex<VecDeque<(usize, Plan)>>,
    /// Positions of the contract outputs in the plan's outputs.
    output_order: [usize; 5],
    run_options: RunOptions,
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
        let mut run_options = RunOptions::default();
        if let Some(n) = opts.intra_threads.filter(|n| *n > 1) {
            // A private rayon pool of n threads for tract's matrix products.
            run_options.executor = Some(tract_linalg::multithread::Executor::multithread(n));
        }
        let model = TractModel {
            info,
            inference,
            plans: Mutex::new(VecDeque::new()),
            output_order,
            run_options,
        };
        // Build the batch-1 plan now, so a model tract cannot run fails at load time.
        model.plan_for(1)?;
        Ok(model)
    }

    fn plan_for(&self, batch: usize) -> Result<Plan, InferError> {
        {
            let mut plans = self.plans.lock().expect("plan cache poisoned");
            if let Some(pos) = plans.iter().position(|(b, _)| *b == batch) {
                let entry = plans.remove(pos).expect("position is valid");
                let plan = entry.1.clone();
                plans.push_back(entry);
                return Ok(plan);
            }
        }
        let fact = f32::fact([batch, self.info.sequence_length, self.info.input_dim]);
        // tract unwraps in places; a panic while planning becomes an error, not a crash.
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.inference
                .clone()
                .with_input_fact(0, fact.into())?
                .into_optimized()?
                .into_runnable_with_options(&self.run_options)
        }));
        let plan = match built {
            Ok(r) => r.map_err(terr)?,
            Err(_) => return Err(terr(format!("tract panicked while planning batch {batch}"))),
        };
        let mut plans = self.plans.lock().expect("plan cache poisoned");
        if plans.len() >= MAX_CACHED_PLANS {
            plans.pop_front();
        }
        plans.push_back((batch, plan.clone()));
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
        let input = Tensor::from_shape(
            &[batch, self.info.sequence_length, self.info.input_dim],
            features,
        )
        .map_err(rerr)?;
        let plan = self.plan_for(batch)?;
        let outs = plan.run(tvec!(input.into_tvalue())).map_err(rerr)?;
        let take = |k: usize| -> Result<Vec<f32>, InferError> {
            let t = &outs[self.output_order[k]];
            Ok(t.try_as_plain_ram()
                .map_err(rerr)?
                .as_slice::<f32>()
                .map_err(rerr)?
                .to_vec())
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
