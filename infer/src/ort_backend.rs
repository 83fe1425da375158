//! The ONNX Runtime backend (`ort`, `load-dynamic`): CUDA or CPU execution provider.
//!
//! The ONNX Runtime shared library is loaded at run time, once per process. Search order
//! ([`find_ort_library`]):
//! 1. [`LoadOptions::ort_dylib_path`] (config),
//! 2. the `ORT_DYLIB_PATH` environment variable,
//! 3. the Python `onnxruntime` package: `onnxruntime/capi/libonnxruntime.so*` under the
//!    directory `python3` reports for it (`importlib.util.find_spec`, no import), then under
//!    the usual site/dist-packages directories.
//!
//! When none is found, `ort-cpu` / `ort-cuda` fail with [`InferError::OrtLibrary`] and `auto`
//! falls back to tract (see [`crate::load_model`]). The CUDA execution provider is
//! registered with `error_on_failure`, so `ort-cuda` never silently runs on the CPU: without a
//! GPU, or with the CPU-only `onnxruntime` wheel, it fails with [`InferError::CudaUnavailable`].

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::ep::ExecutionProvider;
use ort::session::Session;
use ort::value::TensorRef;

use crate::chunks::{self, lock, ChunkResult, Cut};
use crate::{
    check_input, BackendKind, InferError, InferenceModel, LoadOptions, ModelInfo, ModelOutputs,
    OUTPUT_NAMES,
};

/// The loaded ONNX Runtime environment (or why loading failed), with the library path.
static ENVIRONMENT: OnceLock<Result<(Environment, PathBuf), String>> = OnceLock::new();

/// Where the ONNX Runtime library was searched, in order, and what was found.
///
/// Returns the first existing file; the error lists every place tried.
pub fn find_ort_library(configured: Option<&Path>) -> Result<PathBuf, InferError> {
    let mut tried: Vec<String> = Vec::new();
    if let Some(p) = configured {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        tried.push(format!(
            "config ort_dylib_path {} (not a file)",
            p.display()
        ));
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(format!("ORT_DYLIB_PATH {} (not a file)", p.display()));
    }
    let mut package_dirs: Vec<PathBuf> = Vec::new();
    match std::process::Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u; s = u.find_spec('onnxruntime'); print(s.submodule_search_locations[0] if s else '')",
        ])
        .output()
    {
        Ok(out) if out.status.success() => {
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if s.is_empty() {
                tried.push("python3: no onnxruntime package".to_string());
            } else {
                package_dirs.push(PathBuf::from(s));
            }
        }
        Ok(out) => tried.push(format!("python3 exited with {}", out.status)),
        Err(e) => tried.push(format!("python3 not runnable ({e})")),
    }
    for root in ["/usr/local/lib", "/usr/lib"] {
        if let Ok(rd) = std::fs::read_dir(root) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("python3") {
                    for sub in ["dist-packages", "site-packages"] {
                        package_dirs.push(e.path().join(sub).join("onnxruntime"));
                    }
                }
            }
        }
    }
    for dir in package_dirs {
        let capi = dir.join("capi");
        let mut found: Vec<PathBuf> = std::fs::read_dir(&capi)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .map(|n| n.to_string_lossy().starts_with("libonnxruntime.so"))
                            .unwrap_or(false)
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Prefer the versioned file (libonnxruntime.so.1.32.0) over links.
        found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        if let Some(p) = found.into_iter().next() {
            return Ok(p);
        }
        tried.push(format!("{}/libonnxruntime.so* (none)", capi.display()));
    }
    Err(InferError::OrtLibrary(format!(
        "libonnxruntime not found; set ORT_DYLIB_PATH or ort_dylib_path, or `pip install onnxruntime`. Tried: {}",
        tried.join("; ")
    )))
}

/// Loads ONNX Runtime once per process and returns its environment.
fn environment(configured: Option<&Path>) -> Result<&'static Environment, InferError> {
    let res = ENVIRONMENT.get_or_init(|| {
        let path = find_ort_library(configured).map_err(|e| e.to_string())?;
        let env = ort::init_from(&path)
            .map_err(|e| format!("loading {}: {e}", path.display()))?
            .with_name("trendscore")
            .build()
            .map_err(|e| format!("creating the environment from {}: {e}", path.display()))?;
        tracing::info!(library = %path.display(), "loaded ONNX Runtime");
        Ok((env, path))
    });
    match res {
        Ok((env, path)) => {
            if let Some(c) = configured {
                if c != path.as_path() {
                    tracing::warn!(
                        requested = %c.display(),
                        loaded = %path.display(),
                        "ONNX Runtime is already loaded in this process from another path; using it"
                    );
                }
            }
            Ok(env)
        }
        Err(e) => Err(InferError::OrtLibrary(e.clone())),
    }
}

fn berr(e: impl std::fmt::Display) -> InferError {
    InferError::Backend {
        backend: "ort",
        reason: e.to_string(),
    }
}

/// Windows per chunk at most on ort-cpu: one thread scores 64-window chunks faster than
/// larger ones (measured 5,239 windows/s at 64 against 4,463 at 1,024 on one thread).
pub const CPU_MAX_CHUNK: usize = 64;

/// A model run by ONNX Runtime.
///
/// On the CPU, `sessions` holds one single-threaded session per worker and a batch runs as
/// chunks on all of them at once ([`crate::chunks`]): ONNX Runtime's own intra-op pool waits
/// for its slowest thread in every parallel section, so on a machine shared with the broker
/// and the Parquet encoder it lost more than half its speed, where independent sessions
/// lose only the time their own core is taken. A batch smaller than the worker count cannot
/// keep every worker busy that way, so it runs on `pooled`, one session with ONNX Runtime's
/// own pool of that many threads (its LSTM runs the two directions in parallel): at batch 1
/// that is what Python onnxruntime with the same threads does. On CUDA, one session takes
/// the whole batch.
pub struct OrtModel {
    info: ModelInfo,
    kind: BackendKind,
    /// `Session::run` needs `&mut`: one call at a time per session; worker `k` uses session `k`.
    sessions: Vec<Mutex<Session>>,
    /// CPU with two or more workers: one session on `sessions.len()` intra-op threads, for
    /// batches of fewer windows than workers.
    pooled: Option<Mutex<Session>>,
}

impl OrtModel {
    /// Creates the session(s) for the ONNX `bytes`; with `cuda`, the CUDA execution provider
    /// must register or this fails with [`InferError::CudaUnavailable`].
    pub fn from_bytes(
        bytes: &[u8],
        info: ModelInfo,
        opts: &LoadOptions,
        cuda: bool,
    ) -> Result<Self, InferError> {
        let env = environment(opts.ort_dylib_path.as_deref())?;
        if cuda {
            let session = cuda_session(env, bytes, opts)?;
            return Ok(OrtModel {
                info,
                kind: BackendKind::OrtCuda,
                sessions: vec![Mutex::new(session)],
                pooled: None,
            });
        }
        let workers = chunks::workers(opts.intra_threads);
        let cpu_session = |threads: usize| -> Result<Mutex<Session>, InferError> {
            let mut builder = Session::builder(env)
                .map_err(berr)?
                .with_intra_threads(threads)
                .map_err(berr)?
                .with_inter_threads(1)
                .map_err(berr)?;
            Ok(Mutex::new(builder.commit_from_memory(bytes).map_err(berr)?))
        };
        let sessions = (0..workers)
            .map(|_| cpu_session(1))
            .collect::<Result<Vec<_>, _>>()?;
        let pooled = (workers > 1).then(|| cpu_session(workers)).transpose()?;
        Ok(OrtModel {
            info,
            kind: BackendKind::OrtCpu,
            sessions,
            pooled,
        })
    }

    fn backend_name(&self) -> &'static str {
        if self.kind == BackendKind::OrtCuda {
            "ort-cuda"
        } else {
            "ort-cpu"
        }
    }

    /// Scores `batch` windows on session `k`; the five outputs in contract order.
    fn run_on(&self, k: usize, features: &[f32], batch: usize) -> ChunkResult {
        self.run_session(&self.sessions[k % self.sessions.len()], features, batch)
    }

    /// Scores `batch` windows on `session`; the five outputs in contract order.
    fn run_session(&self, session: &Mutex<Session>, features: &[f32], batch: usize) -> ChunkResult {
        let backend = self.backend_name();
        let rerr = |e: ort::Error| InferError::Run {
            backend,
            reason: e.to_string(),
        };
        let input = TensorRef::from_array_view((
            [batch, self.info.sequence_length, self.info.input_dim],
            features,
        ))
        .map_err(rerr)?;
        let mut session = lock(session);
        let outputs = session
            .run(ort::inputs![crate::INPUT_NAME => input])
            .map_err(rerr)?;
        let take = |name: &str| -> Result<Vec<f32>, InferError> {
            let v = outputs.get(name).ok_or_else(|| InferError::Run {
                backend,
                reason: format!("output {name:?} missing"),
            })?;
            let (_shape, data) = v.try_extract_tensor::<f32>().map_err(rerr)?;
            Ok(data.to_vec())
        };
        let [a, b, c, d, e] = OUTPUT_NAMES;
        Ok([take(a)?, take(b)?, take(c)?, take(d)?, take(e)?])
    }
}

/// A session on the CUDA execution provider (registered with `error_on_failure`).
fn cuda_session(
    env: &'static Environment,
    bytes: &[u8],
    opts: &LoadOptions,
) -> Result<Session, InferError> {
    let cuda_err = |e: ort::Error| InferError::CudaUnavailable(e.to_string());
    match ort::ep::CUDA::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return Err(InferError::CudaUnavailable(
                "this ONNX Runtime build has no CUDA execution provider (install onnxruntime-gpu)"
                    .to_string(),
            ))
        }
        Err(e) => return Err(cuda_err(e)),
    }
    let mut builder = Session::builder(env).map_err(berr)?;
    if let Some(n) = opts.intra_threads {
        builder = builder.with_intra_threads(n).map_err(berr)?;
    }
    builder
        .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
        .map_err(|e| InferError::CudaUnavailable(e.to_string()))?
        .commit_from_memory(bytes)
        .map_err(cuda_err)
}

impl InferenceModel for OrtModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn backend(&self) -> BackendKind {
        self.kind
    }

    fn predict(&self, features: &[f32], batch: usize) -> Result<ModelOutputs, InferError> {
        check_input(&self.info, features, batch)?;
        let workers = self.sessions.len();
        // One session takes the whole batch on CUDA, and on the CPU when the batch is too small
        // to keep every single-threaded session busy (the pooled session).
        let whole_batch_on = if self.kind == BackendKind::OrtCuda {
            self.sessions.first()
        } else {
            self.pooled.as_ref().filter(|_| batch < workers)
        };
        if let Some(session) = whole_batch_on {
            let whole = Cut {
                chunk: batch,
                pad: false,
                workers: 1,
            };
            return chunks::run(
                features,
                batch,
                &self.info,
                whole,
                self.backend_name(),
                |_, x, n| self.run_session(session, x, n),
            );
        }
        let cut = Cut {
            chunk: batch.div_ceil(workers).clamp(1, CPU_MAX_CHUNK),
            pad: false,
            workers,
        };
        chunks::run(
            features,
            batch,
            &self.info,
            cut,
            self.backend_name(),
            |k, x, n| self.run_on(k, x, n),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_path_that_is_missing_is_reported_and_search_continues() {
        let r = find_ort_library(Some(Path::new("/nonexistent/libonnxruntime.so")));
        match r {
            Ok(p) => assert!(p.is_file(), "found {p:?}"),
            Err(e) => assert!(
                e.to_string().contains("/nonexistent/libonnxruntime.so"),
                "{e}"
            ),
        }
    }
}
