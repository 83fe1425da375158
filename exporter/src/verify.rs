//! `verify`: the parity suite for any checkpoint + ONNX file, on every requested backend.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use trendscore_infer::{load_model, BackendChoice, InferenceModel, LoadOptions};

use trendscore_schemas::checkpoint::EnsembleManifest;

use crate::checkpoint::Checkpoint;
use crate::ensemble::{check_against_members, Ensemble};
use crate::parity::{check_probe, compare_outputs, ParityCase};
use crate::{reference, ExportError};

/// Batch sizes the probe windows are run at (cycled to fill the batch), besides the full probe.
pub const BATCH_SIZES: [usize; 3] = [1, 7, 1024];
/// Generated windows checked against the float64 reference implementation.
pub const GENERATED_VS_REFERENCE: usize = 32;
/// Generated windows compared across backends.
pub const GENERATED_CROSS: usize = 1024;

/// Options of a verify run.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Backends to run (`auto` is resolved by [`load_model`]).
    pub backends: Vec<BackendChoice>,
    /// Tolerance (absolute).
    pub tolerance: f32,
    /// Intra-op threads for the backends.
    pub threads: Option<usize>,
    /// ONNX Runtime library, when not found by the default search.
    pub ort_dylib_path: Option<std::path::PathBuf>,
    /// Seed of the generated windows.
    pub seed: u64,
}

impl VerifyOptions {
    /// `backends` at the DESIGN.md tolerance (1e-5), the backends' default threads, the
    /// default ONNX Runtime search, generated windows from `seed`.
    pub fn on(backends: Vec<BackendChoice>, seed: u64) -> Self {
        VerifyOptions {
            backends,
            tolerance: crate::parity::TOLERANCE,
            threads: None,
            ort_dylib_path: None,
            seed,
        }
    }

    fn load_options(&self, backend: BackendChoice) -> LoadOptions {
        LoadOptions {
            backend,
            ort_dylib_path: self.ort_dylib_path.clone(),
            intra_threads: self.threads,
        }
    }
}

/// Loads `model_path` with `load`, refusing a file whose `model_version` is not `expected`
/// (`of` says what it should have been exported from).
fn load_checked(
    model_path: &Path,
    load: &LoadOptions,
    expected: &str,
    of: &str,
) -> Result<Box<dyn InferenceModel>, ExportError> {
    let model = load_model(model_path, load)?;
    if model.info().model_version != expected {
        return Err(ExportError::Inconsistent {
            path: model_path.to_path_buf(),
            reason: format!(
                "model_version {} is not {expected}, {of}: this ONNX file was exported from another checkpoint",
                model.info().model_version,
            ),
        });
    }
    Ok(model)
}

/// All comparisons of a verify run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VerifyReport {
    /// Every case, in run order.
    pub cases: Vec<ParityCase>,
    /// The tolerance applied.
    pub tolerance: f32,
}

impl VerifyReport {
    /// True when every case is within tolerance.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.passed(self.tolerance))
    }

    /// The largest difference of all cases.
    pub fn worst(&self) -> f32 {
        self.cases.iter().map(|c| c.worst()).fold(0.0, f32::max)
    }
}

/// `n` raw windows: the scaler's mean plus std times N(0, 2), with every 8th window scaled
/// to extreme z-scores (x100) -- shape (n, seq, dim).
pub fn generated_windows(ckpt: &Checkpoint, n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (s, d) = (
        ckpt.config.sequence.sequence_length,
        ckpt.config.model.input_dim,
    );
    let std = ckpt.effective_std();
    let mut out = Vec::with_capacity(n * s * d);
    for w in 0..n {
        let amp = if w % 8 == 7 { 100.0 } else { 2.0 };
        for _t in 0..s {
            for (j, sd) in std.iter().enumerate().take(d) {
                // Box-Muller from two uniforms: no extra distribution crate needed.
                let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                out.push((ckpt.scaler.mean[j] + *sd as f64 * amp * z) as f32);
            }
        }
    }
    out
}

/// Runs the parity suite: for every backend, the probe at its own size and at
/// [`BATCH_SIZES`] against the trainer's outputs, generated windows against the float64
/// reference, and (with two or more backends) generated windows against the first backend.
pub fn verify(
    ckpt_dir: &Path,
    model_path: &Path,
    opts: &VerifyOptions,
) -> Result<VerifyReport, ExportError> {
    if EnsembleManifest::is_ensemble(ckpt_dir) {
        return verify_ensemble(ckpt_dir, model_path, opts);
    }
    let ckpt = Checkpoint::load(ckpt_dir)?;
    let mut cases = Vec::new();
    let mut models: Vec<Box<dyn InferenceModel>> = Vec::new();
    for b in &opts.backends {
        let of = format!("the sha256 of {}/model.safetensors", ckpt_dir.display());
        let model = load_checked(
            model_path,
            &opts.load_options(*b),
            &ckpt.weights_sha256,
            &of,
        )?;
        models.push(model);
    }
    let gen_ref = generated_windows(&ckpt, GENERATED_VS_REFERENCE, opts.seed);
    let expected_ref = reference::forward(&ckpt, &gen_ref, GENERATED_VS_REFERENCE);
    let gen_cross = generated_windows(&ckpt, GENERATED_CROSS, opts.seed.wrapping_add(1));
    let mut first_cross = None;
    for model in &models {
        let m = model.as_ref();
        cases.push(check_probe(m, &ckpt.probe, ckpt.probe.len())?);
        for b in BATCH_SIZES {
            cases.push(check_probe(m, &ckpt.probe, b)?);
        }
        let got = m.predict(&gen_ref, GENERATED_VS_REFERENCE)?;
        cases.push(ParityCase {
            backend: m.backend().to_string(),
            case: format!("generated batch={GENERATED_VS_REFERENCE} vs f64 reference"),
            windows: GENERATED_VS_REFERENCE,
            max_abs_diff: compare_outputs(&got, &expected_ref),
        });
        if models.len() > 1 {
            let got = m.predict(&gen_cross, GENERATED_CROSS)?;
            match &first_cross {
                None => first_cross = Some((m.backend().to_string(), got)),
                Some((name, reference)) => cases.push(ParityCase {
                    backend: m.backend().to_string(),
                    case: format!("generated batch={GENERATED_CROSS} vs {name}"),
                    windows: GENERATED_CROSS,
                    max_abs_diff: compare_outputs(&got, reference),
                }),
            }
        }
    }
    Ok(VerifyReport {
        cases,
        tolerance: opts.tolerance,
    })
}

/// The parity suite of a seed ensemble: on every backend, the ensemble graph against the
/// combining rule applied to the members' own graphs on the same backend (the first member's
/// probe at its size and at [`BATCH_SIZES`], and generated windows), and against the combined
/// float64 references of the members.
fn verify_ensemble(
    dir: &Path,
    model_path: &Path,
    opts: &VerifyOptions,
) -> Result<VerifyReport, ExportError> {
    let ens = Ensemble::load(dir)?;
    let first = &ens.members[0];
    let gen_ref = generated_windows(first, GENERATED_VS_REFERENCE, opts.seed);
    let expected_ref = ens.reference(&gen_ref, GENERATED_VS_REFERENCE);
    let gen_cross = generated_windows(first, GENERATED_CROSS, opts.seed.wrapping_add(1));
    let mut cases = Vec::new();
    for b in &opts.backends {
        let load = opts.load_options(*b);
        let of = format!("the version of the ensemble {}", dir.display());
        let model = load_checked(model_path, &load, &ens.model_version, &of)?;
        // the members' graphs in the unrolled form: an ensemble exported in the default op
        // form is checked against the other form as well
        let members = ens.member_models(&load, crate::graph::LstmForm::Unrolled)?;
        let m = model.as_ref();
        let n = first.probe.len();
        for batch in std::iter::once(n).chain(BATCH_SIZES) {
            let (feats, _) = crate::parity::cycled_probe(&first.probe, batch);
            cases.push(check_against_members(m, &members, &feats, batch, "probe")?);
        }
        cases.push(check_against_members(
            m,
            &members,
            &gen_cross,
            GENERATED_CROSS,
            "generated",
        )?);
        let got = m.predict(&gen_ref, GENERATED_VS_REFERENCE)?;
        cases.push(ParityCase {
            backend: m.backend().to_string(),
            case: format!(
                "ensemble generated batch={GENERATED_VS_REFERENCE} vs combined f64 references"
            ),
            windows: GENERATED_VS_REFERENCE,
            max_abs_diff: compare_outputs(&got, &expected_ref),
        });
    }
    Ok(VerifyReport {
        cases,
        tolerance: opts.tolerance,
    })
}
