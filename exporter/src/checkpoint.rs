//! Reading and validating a trendscore checkpoint directory (docs/contracts.md).
//!
//! `config.json` and `scaler.json` are read and checked by the shared contract
//! (`trendscore_schemas::checkpoint`); this module adds the tensors: `model.safetensors`
//! against the names and shapes the model section implies, and `probe.safetensors`. Every
//! mismatch is an [`ExportError`] that names the file and the tensor or key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};
use trendscore_schemas::checkpoint::{files, probe_outputs, CheckpointSpec, PROBE_FEATURES};
// The checkpoint contract (model spec, sections, scaler) is the schemas crate's, shared with
// the trainer that writes it.
pub use trendscore_schemas::checkpoint::{
    direction_suffixes, FeaturesConfig, ModelConfig, Scaler, SequenceConfig,
};

use crate::ExportError;

/// config.json; the `training` section is carried along whole, for the model card.
pub type CheckpointConfig = trendscore_schemas::checkpoint::CheckpointConfig<serde_json::Value>;

/// A float32 tensor: shape and row-major data.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// probe.safetensors: raw windows and the trainer's outputs for them.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Raw windows, shape (n, sequence_length, input_dim).
    pub features: Tensor,
    /// Expected outputs by ONNX output name.
    pub outputs: BTreeMap<String, Tensor>,
}

impl Probe {
    /// Number of windows.
    pub fn len(&self) -> usize {
        self.features.shape[0]
    }

    /// True when the probe holds no window.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A loaded, validated checkpoint.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The directory.
    pub dir: PathBuf,
    /// config.json.
    pub config: CheckpointConfig,
    /// scaler.json.
    pub scaler: Scaler,
    /// model.safetensors, by PyTorch name.
    pub tensors: BTreeMap<String, Tensor>,
    /// sha256 hex of the model.safetensors bytes: the model version.
    pub weights_sha256: String,
    /// metrics.json as compact JSON ("{}" when the file is absent).
    pub metrics_json: String,
    /// probe.safetensors.
    pub probe: Probe,
}

fn read(path: &Path) -> Result<Vec<u8>, ExportError> {
    if !path.exists() {
        return Err(ExportError::MissingFile(path.to_path_buf()));
    }
    std::fs::read(path).map_err(|e| ExportError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Reads and checks config.json.
pub fn read_config(path: &Path) -> Result<CheckpointConfig, ExportError> {
    Ok(CheckpointConfig::read(path)?)
}

/// Reads safetensors `bytes` as float32 tensors.
fn read_tensors(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, Tensor>, ExportError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| ExportError::Safetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(ExportError::Tensor {
                path: path.to_path_buf(),
                name,
                reason: format!("dtype {:?}, expected F32", view.dtype()),
            });
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

impl Checkpoint {
    /// Loads and validates the checkpoint in `dir`.
    pub fn load(dir: &Path) -> Result<Checkpoint, ExportError> {
        if !dir.is_dir() {
            return Err(ExportError::MissingFile(dir.to_path_buf()));
        }
        let CheckpointSpec { config, scaler } = CheckpointSpec::<serde_json::Value>::load(dir)?;
        let m = &config.model;

        let weights_path = dir.join(files::MODEL);
        let weight_bytes = read(&weights_path)?;
        let weights_sha256 = hex::encode(Sha256::digest(&weight_bytes));
        let tensors = read_tensors(&weights_path, &weight_bytes)?;
        let expected = m.expected_tensors();
        for (name, shape) in &expected {
            match tensors.get(name) {
                None => {
                    return Err(ExportError::Tensor {
                        path: weights_path.clone(),
                        name: name.clone(),
                        reason: format!(
                            "missing (config.json model section needs it with shape {shape:?})"
                        ),
                    })
                }
                Some(t) if &t.shape != shape => {
                    return Err(ExportError::Tensor {
                        path: weights_path.clone(),
                        name: name.clone(),
                        reason: format!(
                            "shape {:?}, but config.json model section implies {shape:?}",
                            t.shape
                        ),
                    })
                }
                Some(t) => {
                    if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                        return Err(ExportError::Tensor {
                            path: weights_path.clone(),
                            name: name.clone(),
                            reason: format!(
                                "element {i} is {} (weights must be finite)",
                                t.data[i]
                            ),
                        });
                    }
                }
            }
        }
        if let Some(extra) = tensors.keys().find(|k| !expected.contains_key(*k)) {
            return Err(ExportError::Tensor {
                path: weights_path.clone(),
                name: extra.clone(),
                reason: "not part of the model described by config.json (config does not match the weights?)".into(),
            });
        }

        let metrics_path = dir.join(files::METRICS);
        let metrics_json = if metrics_path.exists() {
            let v: serde_json::Value =
                serde_json::from_slice(&read(&metrics_path)?).map_err(|e| ExportError::Json {
                    path: metrics_path.clone(),
                    reason: e.to_string(),
                })?;
            v.to_string()
        } else {
            tracing::warn!(path = %metrics_path.display(), "metrics.json absent; the model carries metrics {{}}");
            "{}".to_string()
        };

        let probe = load_probe(
            &dir.join(files::PROBE),
            config.sequence.sequence_length,
            m.input_dim,
        )?;
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            config,
            scaler,
            tensors,
            weights_sha256,
            metrics_json,
            probe,
        })
    }

    /// The tensor `name` (present after validation).
    pub fn tensor(&self, name: &str) -> &Tensor {
        &self.tensors[name]
    }

    /// The scaler std with 0 read as 1, as float32 (what the graph divides by).
    pub fn effective_std(&self) -> Vec<f32> {
        self.scaler
            .effective_std()
            .into_iter()
            .map(|s| s as f32)
            .collect()
    }
}

/// Reads and checks probe.safetensors: `features` (n, seq, dim) and the five outputs.
pub fn load_probe(path: &Path, seq: usize, dim: usize) -> Result<Probe, ExportError> {
    let bytes = read(path)?;
    let mut tensors = read_tensors(path, &bytes)?;
    let features = tensors
        .remove(PROBE_FEATURES)
        .ok_or_else(|| ExportError::Tensor {
            path: path.to_path_buf(),
            name: PROBE_FEATURES.into(),
            reason: "missing".into(),
        })?;
    let n = match features.shape.as_slice() {
        [n, s, d] if *s == seq && *d == dim && *n >= 1 => *n,
        other => {
            return Err(ExportError::Tensor {
                path: path.to_path_buf(),
                name: PROBE_FEATURES.into(),
                reason: format!("shape {other:?}, expected (n >= 1, {seq}, {dim})"),
            })
        }
    };
    let mut outputs = BTreeMap::new();
    for (name, width) in probe_outputs(seq) {
        let t = tensors.remove(name).ok_or_else(|| ExportError::Tensor {
            path: path.to_path_buf(),
            name: name.into(),
            reason: "missing (the probe must hold the trainer's output for every ONNX output)"
                .into(),
        })?;
        if t.shape != [n, width] {
            return Err(ExportError::Tensor {
                path: path.to_path_buf(),
                name: name.into(),
                reason: format!("shape {:?}, expected [{n}, {width}]", t.shape),
            });
        }
        outputs.insert(name.to_string(), t);
    }
    Ok(Probe { features, outputs })
}
