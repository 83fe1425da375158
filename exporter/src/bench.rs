//! `bench`: windows per second of each backend at given batch sizes (no assertions; the
//! numbers are printed, and tests/python/bench_inference.py puts them beside PyTorch and
//! Python onnxruntime).

use std::path::Path;
use std::time::{Duration, Instant};

use trendscore_infer::{load_model, BackendChoice, LoadOptions};

use crate::ExportError;

/// One measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchResult {
    /// Backend that ran.
    pub backend: String,
    /// Windows per call.
    pub batch: usize,
    /// Timed calls.
    pub iterations: usize,
    /// Windows per second (median over rounds).
    pub windows_per_s: f64,
}

/// Options of a bench run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Backends.
    pub backends: Vec<BackendChoice>,
    /// Batch sizes.
    pub batches: Vec<usize>,
    /// Intra-op threads.
    pub threads: Option<usize>,
    /// Time per (backend, batch), split over 5 rounds.
    pub seconds: f64,
    /// ONNX Runtime library.
    pub ort_dylib_path: Option<std::path::PathBuf>,
}

/// Measures every (backend, batch) on `inputs` (raw windows (n, seq, dim); cycled to fill a
/// batch). One warm-up call per batch size (this also builds tract's plan for that size).
pub fn bench(
    model_path: &Path,
    inputs: &[f32],
    opts: &BenchOptions,
) -> Result<Vec<BenchResult>, ExportError> {
    let mut results = Vec::new();
    for b in &opts.backends {
        let model = load_model(
            model_path,
            &LoadOptions {
                backend: *b,
                ort_dylib_path: opts.ort_dylib_path.clone(),
                intra_threads: opts.threads,
            },
        )?;
        let win = model.info().sequence_length * model.info().input_dim;
        let n = inputs.len() / win;
        for &batch in &opts.batches {
            let feats: Vec<f32> = (0..batch)
                .flat_map(|i| inputs[(i % n) * win..(i % n + 1) * win].iter().copied())
                .collect();
            model.predict(&feats, batch)?;
            let round = Duration::from_secs_f64(opts.seconds / 5.0);
            let mut rates = Vec::new();
            let mut iterations = 0;
            for _ in 0..5 {
                let start = Instant::now();
                let mut calls = 0usize;
                while start.elapsed() < round || calls == 0 {
                    std::hint::black_box(model.predict(&feats, batch)?);
                    calls += 1;
                }
                iterations += calls;
                rates.push((calls * batch) as f64 / start.elapsed().as_secs_f64());
            }
            rates.sort_by(|a, b| a.total_cmp(b));
            let r = BenchResult {
                backend: model.backend().to_string(),
                batch,
                iterations,
                windows_per_s: rates[2],
            };
            tracing::info!(backend = %r.backend, batch, windows_per_s = r.windows_per_s, "bench");
            results.push(r);
        }
    }
    Ok(results)
}
