//! Parity checks: an [`InferenceModel`] against the checkpoint's probe (the trainer's outputs)
//! and against other backends, output by output, as max absolute differences.

use std::fmt;

use trendscore_infer::{InferError, InferenceModel, ModelOutputs, OUTPUT_NAMES};

use crate::checkpoint::Probe;

/// The DESIGN.md parity tolerance (absolute).
pub const TOLERANCE: f32 = 1e-5;

/// One parity comparison: which backend, on what, and the max abs diff of each output.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ParityCase {
    /// Backend that produced the outputs checked.
    pub backend: String,
    /// What was compared, e.g. "probe batch=7 vs trainer".
    pub case: String,
    /// Windows in the batch.
    pub windows: usize,
    /// (output name, max abs diff); NaN/Inf anywhere counts as an infinite difference.
    pub max_abs_diff: Vec<(String, f32)>,
}

impl ParityCase {
    /// The largest difference over all outputs.
    pub fn worst(&self) -> f32 {
        self.max_abs_diff
            .iter()
            .map(|(_, d)| *d)
            .fold(0.0, f32::max)
    }

    /// True when every output is within `tol`.
    pub fn passed(&self, tol: f32) -> bool {
        self.worst() <= tol
    }
}

impl fmt::Display for ParityCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<9} {:<34} n={:<5}",
            self.backend, self.case, self.windows
        )?;
        for (name, d) in &self.max_abs_diff {
            write!(f, " {name}={d:.2e}")?;
        }
        Ok(())
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (x - y).abs();
            if d.is_finite() {
                d
            } else {
                f32::INFINITY
            }
        })
        .fold(0.0, f32::max)
}

/// Max abs differences between two sets of outputs, per output name.
pub fn compare_outputs(a: &ModelOutputs, b: &ModelOutputs) -> Vec<(String, f32)> {
    OUTPUT_NAMES
        .iter()
        .map(|n| {
            let d = max_abs_diff(a.by_name(n).unwrap_or(&[]), b.by_name(n).unwrap_or(&[]));
            (n.to_string(), d)
        })
        .collect()
}

/// The windows `i % n` for i in 0..batch, and the probe's outputs for them.
pub fn cycled_probe(probe: &Probe, batch: usize) -> (Vec<f32>, ModelOutputs) {
    let n = probe.len();
    let win = probe.features.data.len() / n;
    let seq = probe.outputs["attention_weights"].shape[1];
    let mut feats = Vec::with_capacity(batch * win);
    let pick = |name: &str, width: usize| -> Vec<f32> {
        let t = &probe.outputs[name];
        (0..batch)
            .flat_map(|i| t.data[(i % n) * width..(i % n + 1) * width].iter().copied())
            .collect()
    };
    for i in 0..batch {
        feats.extend_from_slice(&probe.features.data[(i % n) * win..(i % n + 1) * win]);
    }
    let expected = ModelOutputs {
        batch,
        seq_len: seq,
        trend_7d: pick("7day_trend", 1),
        direction_7d: pick("7day_direction", 2),
        trend_30d: pick("30day_trend", 1),
        direction_30d: pick("30day_direction", 2),
        attention: pick("attention_weights", seq),
    };
    (feats, expected)
}

/// Runs `batch` probe windows (cycled when `batch` exceeds the probe) through `model` and
/// compares with the trainer's outputs stored in the probe.
pub fn check_probe(
    model: &dyn InferenceModel,
    probe: &Probe,
    batch: usize,
) -> Result<ParityCase, InferError> {
    let (feats, expected) = cycled_probe(probe, batch);
    let got = model.predict(&feats, batch)?;
    Ok(ParityCase {
        backend: model.backend().to_string(),
        case: format!("probe batch={batch} vs trainer"),
        windows: batch,
        max_abs_diff: compare_outputs(&got, &expected),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_counts_as_infinite_difference() {
        assert_eq!(max_abs_diff(&[1.0, f32::NAN], &[1.0, 2.0]), f32::INFINITY);
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.0]), f32::INFINITY);
        assert!((max_abs_diff(&[1.0, 2.0], &[1.5, 2.0]) - 0.5).abs() < 1e-7);
    }
}
