//! The checkpoint directory of docs/contracts.md: writing `config.json`, `scaler.json`,
//! `model.safetensors`, `probe.safetensors`, and loading a checkpoint back for evaluation,
//! prediction, export parity and resume.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{nn, Device, Kind, Tensor};

use crate::config::{ModelConfig, SequenceConfig, TrainConfig};
use crate::data::Scaler;
use crate::error::{Result, TrainerError};
use crate::model::TrendModel;

/// File names inside a checkpoint directory.
pub mod files {
    /// Best weights (PyTorch names).
    pub const MODEL: &str = "model.safetensors";
    /// Run configuration.
    pub const CONFIG: &str = "config.json";
    /// StandardScaler.
    pub const SCALER: &str = "scaler.json";
    /// Probe inputs and CPU outputs.
    pub const PROBE: &str = "probe.safetensors";
    /// Final metrics.
    pub const METRICS: &str = "metrics.json";
    /// Per-epoch history.
    pub const HISTORY: &str = "history.json";
    /// History plot.
    pub const HISTORY_PNG: &str = "history.png";
    /// Best weights so far (during training).
    pub const BEST: &str = "best.safetensors";
    /// Weights after the last finished epoch.
    pub const LAST: &str = "last.safetensors";
    /// Optimiser moments after the last finished epoch.
    pub const OPTIMIZER: &str = "optimizer.safetensors";
    /// Loop state after the last finished epoch (for `--resume`).
    pub const STATE: &str = "train_state.json";
}

/// `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointConfig {
    /// Layout version of the directory (1).
    pub format_version: u32,
    /// Model sizes.
    pub model: ModelConfig,
    /// The full training configuration used.
    pub training: TrainConfig,
    /// Windowing and split.
    pub sequence: SequenceConfig,
    /// Feature names, model-input order.
    pub features: FeatureSection,
    /// When training finished (RFC 3339, UTC); empty while training.
    pub trained_at: String,
    /// The seed.
    pub seed: u64,
}

/// `features` section of `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSection {
    /// Names in model-input order.
    pub names: Vec<String>,
}

impl CheckpointConfig {
    /// The config.json of a run with `cfg`.
    pub fn from_train(cfg: &TrainConfig, trained_at: String) -> Self {
        Self {
            format_version: 1,
            model: cfg.model.clone(),
            training: cfg.clone(),
            sequence: cfg.sequence.clone(),
            features: FeatureSection {
                names: cfg.features.names.clone(),
            },
            trained_at,
            seed: cfg.training.seed,
        }
    }

    /// Writes `config.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_json(&dir.join(files::CONFIG), self)
    }

    /// Reads `config.json`, ignoring keys it does not know (as docs/contracts.md asks).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(files::CONFIG);
        let text = std::fs::read_to_string(&path).map_err(|e| TrainerError::io(&path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| TrainerError::json(&path, e))?;
        let model: ModelConfig = lenient(&path, v.get("model"), "model")?;
        let training: TrainConfig = lenient(&path, v.get("training"), "training")?;
        let sequence: SequenceConfig = match v.get("sequence") {
            Some(_) => lenient(&path, v.get("sequence"), "sequence")?,
            None => training.sequence.clone(),
        };
        let names: Vec<String> = match v.get("features").and_then(|f| f.get("names")) {
            Some(n) => {
                serde_json::from_value(n.clone()).map_err(|e| TrainerError::json(&path, e))?
            }
            None => training.features.names.clone(),
        };
        Ok(Self {
            format_version: v
                .get("format_version")
                .and_then(|x| x.as_u64())
                .unwrap_or(1) as u32,
            model,
            training,
            sequence,
            features: FeatureSection { names },
            trained_at: v
                .get("trained_at")
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string(),
            seed: v.get("seed").and_then(|x| x.as_u64()).unwrap_or(42),
        })
    }
}

/// Keeps only the keys that `T`'s default serialises (recursively), then deserialises.
fn lenient<T: Serialize + DeserializeOwned + Default>(
    path: &Path,
    v: Option<&serde_json::Value>,
    section: &str,
) -> Result<T> {
    fn filter(v: &serde_json::Value, known: &serde_json::Value) -> serde_json::Value {
        match (v, known) {
            (serde_json::Value::Object(o), serde_json::Value::Object(k)) => {
                serde_json::Value::Object(
                    o.iter()
                        .filter(|(key, _)| k.contains_key(*key))
                        .map(|(key, val)| (key.clone(), filter(val, &k[key])))
                        .collect(),
                )
            }
            _ => v.clone(),
        }
    }
    let Some(v) = v else {
        return Err(TrainerError::ckpt(
            path,
            format!("missing section `{section}`"),
        ));
    };
    let known = serde_json::to_value(T::default()).map_err(|e| TrainerError::json(path, e))?;
    serde_json::from_value(filter(v, &known))
        .map_err(|e| TrainerError::ckpt(path, format!("section `{section}`: {e}")))
}

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
    let config = CheckpointConfig::load(dir)?;
    let scaler = Scaler::load(&dir.join(files::SCALER))?;
    if scaler.feature_names != config.features.names {
        return Err(TrainerError::ckpt(
            dir,
            "scaler.json feature_names differ from config.json features.names",
        ));
    }
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
    let mut named: Vec<(String, Tensor)> = vec![("features".to_string(), raw)];
    for (name, t) in out.named() {
        named.push((name.to_string(), t.to_device(Device::Cpu).contiguous()));
    }
    Tensor::write_safetensors(&named, path)?;
    Ok(())
}

/// Extreme raw windows for the probe: `mean + k * std` for k in +-3, +-10, +-30, +-100, once
/// constant over features and once with alternating signs per feature and week (std 0 read as 1).
pub fn extreme_windows(scaler: &Scaler, seq: usize) -> Vec<f32> {
    let f = scaler.mean.len();
    let ks = [3.0, -3.0, 10.0, -10.0, 30.0, -30.0, 100.0, -100.0];
    let mut out = Vec::with_capacity(16 * seq * f);
    for alternate in [false, true] {
        for k in ks {
            for t in 0..seq {
                for j in 0..f {
                    let sign = if alternate && (t + j) % 2 == 1 {
                        -1.0
                    } else {
                        1.0
                    };
                    let std = if scaler.std[j] == 0.0 {
                        1.0
                    } else {
                        scaler.std[j]
                    };
                    out.push((scaler.mean[j] + sign * k * std) as f32);
                }
            }
        }
    }
    out
}
