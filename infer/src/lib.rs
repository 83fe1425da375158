//! trendscore-infer: run the exported trendscore ONNX model behind one trait.
//!
//! Module map:
//! - [`error`]: [`InferError`], the one error type of this crate.
//! - [`info`]: [`ModelInfo`], read from the ONNX file's metadata properties and its input shape.
//! - [`outputs`]: [`ModelOutputs`], the five model outputs of a batch, with `p_up` helpers.
//! - [`tract_backend`]: the pure-Rust CPU backend (tract), always available.
//! - `chunks`: one batch run as chunks on several threads at once, each a single-threaded
//!   call (both CPU backends).
//! - [`ort_backend`]: ONNX Runtime loaded at run time (`load-dynamic`), CUDA or CPU execution
//!   provider, and the search for the ONNX Runtime shared library.
//!
//! [`load_model`] picks a backend from [`LoadOptions`] and returns a `Box<dyn InferenceModel>`;
//! no `ort` or `tract` type appears in the public signatures, so callers (the scorer) and the
//! parity suite treat every backend the same way.

pub mod allocator;
mod chunks;
pub mod error;
pub mod info;
pub mod ort_backend;
pub mod outputs;
pub mod tract_backend;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use error::InferError;
pub use info::ModelInfo;
pub use outputs::ModelOutputs;

/// The ONNX input name of the model contract.
pub const INPUT_NAME: &str = "features";
/// The ONNX output names of the model contract, in the order the exporter writes them.
pub const OUTPUT_NAMES: [&str; 5] = [
    "7day_trend",
    "7day_direction",
    "30day_trend",
    "30day_direction",
    "attention_weights",
];

/// The backend that actually runs a loaded model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// ONNX Runtime with the CUDA execution provider.
    OrtCuda,
    /// ONNX Runtime with its default CPU execution provider.
    OrtCpu,
    /// tract, pure Rust, CPU.
    Tract,
}

/// The explicit choice that runs a given backend: what a caller passes to load more copies of
/// a model on the backend `auto` resolved to, without probing again.
impl From<BackendKind> for BackendChoice {
    fn from(kind: BackendKind) -> Self {
        match kind {
            BackendKind::OrtCuda => BackendChoice::OrtCuda,
            BackendKind::OrtCpu => BackendChoice::OrtCpu,
            BackendKind::Tract => BackendChoice::Tract,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::OrtCuda => "ort-cuda",
            BackendKind::OrtCpu => "ort-cpu",
            BackendKind::Tract => "tract",
        })
    }
}

/// The backend a user asks for (config file, `--backend` flag).
///
/// `auto` tries ONNX Runtime with CUDA, then ONNX Runtime on the CPU, then tract (the fastest
/// backend this machine can run); the explicit choices never fall back: they load what was
/// asked for or return an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendChoice {
    /// ort + CUDA when a GPU and the CUDA provider are present, else ort on the CPU when the
    /// ONNX Runtime library loads, else tract.
    #[default]
    Auto,
    /// ort + CUDA execution provider; an error if it cannot be registered.
    OrtCuda,
    /// ort on CPU; an error if the ONNX Runtime library cannot be found.
    OrtCpu,
    /// tract on CPU.
    Tract,
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendChoice::Auto => "auto",
            BackendChoice::OrtCuda => "ort-cuda",
            BackendChoice::OrtCpu => "ort-cpu",
            BackendChoice::Tract => "tract",
        })
    }
}

impl FromStr for BackendChoice {
    type Err = InferError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(BackendChoice::Auto),
            "ort-cuda" | "cuda" => Ok(BackendChoice::OrtCuda),
            "ort-cpu" | "ort" => Ok(BackendChoice::OrtCpu),
            "tract" => Ok(BackendChoice::Tract),
            other => Err(InferError::UnknownBackend(other.to_string())),
        }
    }
}

/// How to load a model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadOptions {
    /// Which backend to run (default `auto`).
    pub backend: BackendChoice,
    /// Path of the ONNX Runtime shared library (`libonnxruntime.so.*`); when unset,
    /// `ORT_DYLIB_PATH` and then the Python `onnxruntime` package are searched
    /// (see [`ort_backend::find_ort_library`]).
    pub ort_dylib_path: Option<PathBuf>,
    /// Threads one inference call uses. On the CPU backends (ort-cpu, tract) a batch is cut
    /// into chunks scored by this many single-threaded sessions at once; on ort-cuda, ONNX
    /// Runtime's intra-op threads. `None` = all cores.
    pub intra_threads: Option<usize>,
}

/// A loaded model: one batch of raw windows in, the five outputs out.
///
/// Implementations are `Send + Sync`; `predict` may be called from several threads.
pub trait InferenceModel: Send + Sync {
    /// Metadata read from the ONNX file.
    fn info(&self) -> &ModelInfo;
    /// The backend that runs this model.
    fn backend(&self) -> BackendKind;
    /// Runs `batch` windows.
    ///
    /// `features`: RAW (not normalised) values, shape (batch, sequence_length, input_dim),
    /// row-major, so `features.len() == batch * sequence_length * input_dim`. The scaler is
    /// inside the ONNX graph. Returns outputs of shapes trend (batch), direction (batch, 2),
    /// attention (batch, sequence_length).
    fn predict(&self, features: &[f32], batch: usize) -> Result<ModelOutputs, InferError>;
}

/// Loads the ONNX model at `path` with the backend chosen in `opts`.
///
/// Logs (tracing, `info`) which backend runs and why. `auto`: ort with the CUDA execution
/// provider when the ONNX Runtime library is found and the CUDA provider registers (a GPU and
/// the CUDA provider library are present); otherwise ort on the CPU when the library loads;
/// otherwise tract. Each fallback logs the reason (the one to tract as a warning).
pub fn load_model(path: &Path, opts: &LoadOptions) -> Result<Box<dyn InferenceModel>, InferError> {
    let bytes = std::fs::read(path).map_err(|e| InferError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let info = ModelInfo::from_onnx_bytes(&bytes).map_err(|e| e.with_path(path))?;
    load_model_bytes(&bytes, info, path, opts)
}

/// [`load_model`] of ONNX bytes already in memory, described by `info`; `path` names the
/// model in logs only.
pub fn load_model_bytes(
    bytes: &[u8],
    info: ModelInfo,
    path: &Path,
    opts: &LoadOptions,
) -> Result<Box<dyn InferenceModel>, InferError> {
    match opts.backend {
        BackendChoice::Tract => {
            tracing::info!(model = %path.display(), backend = "tract", "loading model: tract requested");
            Ok(Box::new(tract_backend::TractModel::from_bytes(
                bytes, info, opts,
            )?))
        }
        BackendChoice::OrtCpu => {
            tracing::info!(model = %path.display(), backend = "ort-cpu", "loading model: ort-cpu requested");
            Ok(Box::new(ort_backend::OrtModel::from_bytes(
                bytes, info, opts, false,
            )?))
        }
        BackendChoice::OrtCuda => {
            tracing::info!(model = %path.display(), backend = "ort-cuda", "loading model: ort-cuda requested");
            Ok(Box::new(ort_backend::OrtModel::from_bytes(
                bytes, info, opts, true,
            )?))
        }
        BackendChoice::Auto => {
            let cuda = match ort_backend::OrtModel::from_bytes(bytes, info.clone(), opts, true) {
                Ok(m) => {
                    tracing::info!(
                        model = %path.display(),
                        backend = "ort-cuda",
                        "loading model: auto chose ONNX Runtime with the CUDA execution provider"
                    );
                    return Ok(Box::new(m));
                }
                Err(why) => why,
            };
            let cpu = match ort_backend::OrtModel::from_bytes(bytes, info.clone(), opts, false) {
                Ok(m) => {
                    tracing::info!(
                        model = %path.display(),
                        backend = "ort-cpu",
                        reason = %cuda,
                        "loading model: auto chose ONNX Runtime on the CPU because ort-cuda is unavailable"
                    );
                    return Ok(Box::new(m));
                }
                Err(why) => why,
            };
            // A warning: tract runs this model at about half ONNX Runtime's speed on a CPU
            // (README, Benchmarks), and a library that is present but fails to load (a wrong
            // `ort_dylib_path`, a version mismatch) should not go unnoticed.
            tracing::warn!(
                model = %path.display(),
                backend = "tract",
                reason = %cpu,
                "loading model: auto fell back to tract (slower than ONNX Runtime on a CPU) because ONNX Runtime is unavailable on this machine"
            );
            Ok(Box::new(tract_backend::TractModel::from_bytes(
                bytes, info, opts,
            )?))
        }
    }
}

/// Checks the length of a raw feature buffer against the model's window shape.
pub(crate) fn check_input(
    info: &ModelInfo,
    features: &[f32],
    batch: usize,
) -> Result<(), InferError> {
    let want = batch * info.sequence_length * info.input_dim;
    if batch == 0 || features.len() != want {
        return Err(InferError::InputShape {
            batch,
            sequence_length: info.sequence_length,
            input_dim: info.input_dim,
            got: features.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backend_kind_maps_to_the_choice_of_the_same_name() {
        for kind in [
            BackendKind::OrtCuda,
            BackendKind::OrtCpu,
            BackendKind::Tract,
        ] {
            let choice = BackendChoice::from(kind);
            assert_eq!(kind.to_string().parse::<BackendChoice>().unwrap(), choice);
            assert_ne!(choice, BackendChoice::Auto);
        }
    }

    #[test]
    fn backend_choice_parses_and_prints_the_config_names() {
        for (s, c) in [
            ("auto", BackendChoice::Auto),
            ("ort-cuda", BackendChoice::OrtCuda),
            ("ort-cpu", BackendChoice::OrtCpu),
            ("tract", BackendChoice::Tract),
        ] {
            assert_eq!(s.parse::<BackendChoice>().unwrap(), c);
            assert_eq!(c.to_string(), s);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{s}\""));
        }
        let err = "gpu-please".parse::<BackendChoice>().unwrap_err();
        assert!(err.to_string().contains("gpu-please"), "{err}");
    }

    #[test]
    fn backend_kind_display_matches_contract() {
        assert_eq!(BackendKind::OrtCuda.to_string(), "ort-cuda");
        assert_eq!(BackendKind::OrtCpu.to_string(), "ort-cpu");
        assert_eq!(BackendKind::Tract.to_string(), "tract");
    }

    #[test]
    fn load_options_reject_unknown_keys() {
        let ok: LoadOptions =
            serde_json::from_str(r#"{"backend":"ort-cpu","intra_threads":2}"#).unwrap();
        assert_eq!(ok.backend, BackendChoice::OrtCpu);
        assert_eq!(ok.intra_threads, Some(2));
        assert!(serde_json::from_str::<LoadOptions>(r#"{"backnd":"tract"}"#).is_err());
    }

    #[test]
    fn missing_model_file_is_a_clear_io_error() {
        let err = load_model(
            Path::new("/nonexistent/model.onnx"),
            &LoadOptions::default(),
        )
        .err()
        .expect("must fail");
        assert!(err.to_string().contains("/nonexistent/model.onnx"), "{err}");
    }

    #[test]
    fn garbage_file_is_rejected_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.onnx");
        std::fs::write(&p, b"this is not an onnx protobuf").unwrap();
        let err = load_model(
            &p,
            &LoadOptions {
                backend: BackendChoice::Tract,
                ..Default::default()
            },
        )
        .err()
        .expect("must fail");
        assert!(err.to_string().contains("bad.onnx"), "{err}");
    }
}
