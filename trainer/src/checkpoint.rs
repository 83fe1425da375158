//! The checkpoint directory of docs/contracts.md, the tensor half: writing `model.safetensors`
//! and `probe.safetensors`, and loading a checkpoint back for evaluation, prediction, export
//! parity and resume. `config.json`, `scaler.json` and the file names are the contract in
//! `trendscore_schemas::checkpoint`, shared with the exporter.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tch::{nn, Device, Kind, Tensor};
use trendscore_schemas::checkpoint::{CheckpointSpec, OUTPUT_NAMES, PROBE_FEATURES};
// The contract (file names, config.json, scaler.json) is the schemas crate's.
pub use trendscore_schemas::checkpoint::{files, FeatureSection};

use crate::config::TrainConfig;
use crate::data::Scaler;
use crate::error::{Result, TrainerError};
use crate::model::TrendModel;

/// `config.json` with the trainer's full [`TrainConfig`] as its `training` section.
/// `CheckpointConfig::from_train(cfg, trained_at)`, `.save(dir)` and `::load(dir)` come with it.
pub type CheckpointConfig = trendscore_schemas::checkpoint::CheckpointConfig<TrainConfig>;

/// Writes pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| TrainerError::json(path, e))?;
    std::fs::write(path, text).map_err(|e| TrainerError::io(path, e))
}

/// sha256 (hex) of a file's bytes: the `model_version` of `model.safetensors`.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| TrainerError::io(path, e))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Saves the variables of `vs` as safetensors (via CPU, names sorted).
pub fn save_weights(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().to_device(Device::Cpu).contiguous()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&named, path)?;
    Ok(())
}

/// Loads weights into `vs`; every variable must be present with its shape, and the file must
/// hold nothing else (strict, like PyTorch's `load_state_dict(strict=True)`).
pub fn load_weights(vs: &mut nn::VarStore, path: &Path) -> Result<()> {
    let named =
        Tensor::read_safetensors(path).map_err(|e| TrainerError::ckpt(path, e.to_string()))?;
    let vars = vs.variables();
    let mut seen = 0usize;
    let _guard = tch::no_grad_guard();
    for (name, t) in &named {
        let Some(v) = vars.get(name) else {
            return Err(TrainerError::ckpt(
                path,
                format!("unexpected tensor `{name}` (model config differs?)"),
            ));
        };
        if v.size() != t.size() {
            return Err(TrainerError::ckpt(
                path,
                format!(
                    "tensor `{name}` has shape {:?}, the model expects {:?}",
                    t.size(),
                    v.size()
                ),
            ));
        }
        let mut v = v.shallow_clone();
        v.copy_(&t.to_kind(Kind::Float).to_device(v.device()));
        seen += 1;
    }
    if seen != vars.len() {
        let missing: Vec<_> = vars
            .keys()
            .filter(|k| !named.iter().any(|(n, _)| n == *k))
            .collect();
        return Err(TrainerError::ckpt(
            path,
            format!("missing tensors {missing:?}"),
        ));
    }
    Ok(())
}

/// A checkpoint loaded for inference.
#[derive(Debug)]
pub struct LoadedModel {
    /// Owns the parameters.
    pub vs: nn::VarStore,
    /// The model.
    pub model: TrendModel,
    /// The scaler.
    pub scaler: Scaler,
    /// config.json.
    pub config: CheckpointConfig,
    /// sha256 of model.safetensors.
    pub model_version: String,
    /// The directory.
    pub dir: PathBuf,
}

/// Loads `dir` (config.json, scaler.json, model.safetensors) onto `device`.
pub fn load(dir: &Path, device: Device) -> Result<LoadedModel> {
    if !dir.is_dir() {
        return Err(TrainerError::ckpt(dir, "not a directory"));
    }
    let CheckpointSpec { config, scaler } = CheckpointSpec::<TrainConfig>::load(dir)?;
    let mut vs = nn::VarStore::new(device);
    let model = TrendModel::new(&vs.root(), &config.model);
    let weights = dir.join(files::MODEL);
    load_weights(&mut vs, &weights)?;
    let model_version = sha256_file(&weights)?;
    Ok(LoadedModel {
        vs,
        model,
        scaler,
        config,
        model_version,
        dir: dir.to_path_buf(),
    })
}

/// Writes `probe.safetensors`: `features` (n, seq, f) raw and the model's eval-mode CPU outputs
/// for it, one tensor per ONNX output name.
pub fn write_probe(model: &TrendModel, scaler: &Scaler, raw: &Tensor, path: &Path) -> Result<()> {
    let (n, s, f) = raw.size3()?;
    let raw = raw.to_kind(Kind::Float).to_device(Device::Cpu).contiguous();
    let flat = Vec::<f32>::try_from(raw.flatten(0, -1))?;
    let x = Tensor::from_slice(&scaler.normalise(&flat)).view([n, s, f]);
    let out = tch::no_grad(|| model.forward(&x, false));
    let mut named: Vec<(String, Tensor)> = vec![(PROBE_FEATURES.to_string(), raw)];
    for (name, t) in out.named() {
        debug_assert!(OUTPUT_NAMES.contains(&name));
        named.push((name.to_string(), t.to_device(Device::Cpu).contiguous()));
    }
    Tensor::write_safetensors(&named, path)?;
    Ok(())
}

/// Extreme raw windows for the probe: `mean + k * std` for k in +-3, +-10, +-30, +-100, once
/// constant over features and once with alternating signs per feature and week (std 0 read as 1).
pub fn extreme_windows(scaler: &Scaler, seq: usize) -> Vec<f32> {
    let f = scaler.mean.len();
    let std = scaler.effective_std();
    let ks = [3.0, -3.0, 10.0, -10.0, 30.0, -30.0, 100.0, -100.0];
    let mut out = Vec::with_capacity(16 * seq * f);
    for alternate in [false, true] {
        for k in ks {
            for t in 0..seq {
                for (j, (mean, std)) in scaler.mean.iter().zip(&std).enumerate() {
                    let sign = if alternate && (t + j) % 2 == 1 {
                        -1.0
                    } else {
                        1.0
                    };
                    out.push((mean + sign * k * std) as f32);
                }
            }
        }
    }
    out
}
