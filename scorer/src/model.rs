//! The model the scorer runs: [`probe`] checks a loaded model against the contract, and
//! [`ModelHandle`] holds the current one and hot-reloads it when the file changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use trendscore_infer::{load_model, InferenceModel, LoadOptions};
use trendscore_schemas::{NUM_FEATURES, SEQUENCE_LENGTH};

use crate::{Result, ScorerError};

/// Checks that a model fits the contract and runs: 12 x 62 input, finite outputs of the
/// right sizes on a small deterministic batch.
pub fn probe(model: &dyn InferenceModel) -> Result<()> {
    let info = model.info();
    if info.sequence_length != SEQUENCE_LENGTH || info.input_dim != NUM_FEATURES {
        return Err(ScorerError::Model(format!(
            "model expects ({}, {}) windows, the scorer makes ({SEQUENCE_LENGTH}, {NUM_FEATURES})",
            info.sequence_length, info.input_dim
        )));
    }
    let batch = 2;
    let input: Vec<f32> = (0..batch * SEQUENCE_LENGTH * NUM_FEATURES)
        .map(|i| ((i % 97) as f32 - 48.0) / 10.0)
        .collect();
    let out = model
        .predict(&input, batch)
        .map_err(|e| ScorerError::Model(format!("probe: {e}")))?;
    let ok = out.trend_7d.len() == batch
        && out.trend_30d.len() == batch
        && out.attention.len() == batch * SEQUENCE_LENGTH
        && out
            .trend_7d
            .iter()
            .chain(&out.trend_30d)
            .chain(&out.attention)
            .chain(&out.direction_7d)
            .chain(&out.direction_30d)
            .all(|v| v.is_finite());
    if ok {
        Ok(())
    } else {
        Err(ScorerError::Model(
            "probe: outputs have wrong sizes or non-finite values".into(),
        ))
    }
}

type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The current model, swappable at run time.
///
/// [`ModelHandle::check_reload`] loads the file again when its modification time or size
/// changed, probes it, and swaps it in; on any failure the old model stays and the error is
/// returned (the caller logs it). In-flight batches keep the `Arc` they started with.
pub struct ModelHandle {
    current: RwLock<Arc<dyn InferenceModel>>,
    path: Option<PathBuf>,
    opts: LoadOptions,
    seen: Mutex<Stamp>,
}

impl ModelHandle {
    /// Loads and probes the model at `path`.
    pub fn load(path: &Path, opts: LoadOptions) -> Result<Self> {
        let seen = stamp(path);
        let model = load_model(path, &opts)
            .map_err(|e| ScorerError::Model(format!("{}: {e}", path.display())))?;
        probe(model.as_ref())?;
        Ok(Self {
            current: RwLock::new(Arc::from(model)),
            path: Some(path.to_path_buf()),
            opts,
            seen: Mutex::new(seen),
        })
    }

    /// Wraps an already-built model (no reloading).
    pub fn fixed(model: Arc<dyn InferenceModel>) -> Self {
        Self {
            current: RwLock::new(model),
            path: None,
            opts: LoadOptions::default(),
            seen: Mutex::new(None),
        }
    }

    /// The model to use for the next batch.
    pub fn current(&self) -> Arc<dyn InferenceModel> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reloads when the file changed. `Ok(Some(version))` after a swap, `Ok(None)` when
    /// nothing changed, `Err` when the new file failed (the old model stays).
    pub fn check_reload(&self) -> Result<Option<String>> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let now = stamp(path);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if now.is_none() || *seen == now {
                return Ok(None);
            }
            *seen = now;
        }
        let model = load_model(path, &self.opts)
            .map_err(|e| ScorerError::Model(format!("{}: {e}", path.display())))?;
        probe(model.as_ref())?;
        let version = model.info().model_version.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::from(model);
        Ok(Some(version))
    }
}
