//! Reading and validating a trendscore checkpoint directory (docs/contracts.md).
//!
//! Every mismatch between `config.json`, `scaler.json`, `model.safetensors` and
//! `probe.safetensors` is an [`ExportError`] that names the file and the tensor or key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ExportError;

/// The `model` section of config.json (DESIGN.md architecture).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Raw features per week.
    pub input_dim: usize,
    /// LSTM hidden size per direction (= attention embed dim).
    pub hidden_dim: usize,
    /// Stacked LSTM layers.
    pub num_lstm_layers: usize,
    /// Attention heads; divides `hidden_dim`.
    pub num_attention_heads: usize,
    /// Dropout (training only; recorded in the model card).
    #[serde(default)]
    pub dropout_rate: f64,
    /// Bidirectional LSTM (+ projection).
    pub bidirectional: bool,
    /// Widths of the hidden layers of each head.
    pub head_hidden_dims: Vec<usize>,
}

impl ModelConfig {
    /// 2 when bidirectional, else 1.
    pub fn num_directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Every tensor the checkpoint must hold for this config, with its PyTorch shape.
    pub fn expected_tensors(&self) -> BTreeMap<String, Vec<usize>> {
        let h = self.hidden_dim;
        let mut m = BTreeMap::new();
        for k in 0..self.num_lstm_layers {
            let input = if k == 0 {
                self.input_dim
            } else {
                h * self.num_directions()
            };
            for sfx in direction_suffixes(self.bidirectional) {
                m.insert(
                    format!("encoder.lstm.weight_ih_l{k}{sfx}"),
                    vec![4 * h, input],
                );
                m.insert(format!("encoder.lstm.weight_hh_l{k}{sfx}"), vec![4 * h, h]);
                m.insert(format!("encoder.lstm.bias_ih_l{k}{sfx}"), vec![4 * h]);
                m.insert(format!("encoder.lstm.bias_hh_l{k}{sfx}"), vec![4 * h]);
            }
        }
        if self.bidirectional {
            m.insert("encoder.projection.weight".into(), vec![h, 2 * h]);
            m.insert("encoder.projection.bias".into(), vec![h]);
        }
        m.insert("attention.in_proj_weight".into(), vec![3 * h, h]);
        m.insert("attention.in_proj_bias".into(), vec![3 * h]);
        m.insert("attention.out_proj.weight".into(), vec![h, h]);
        m.insert("attention.out_proj.bias".into(), vec![h]);
        for head in ["head_7d", "head_30d"] {
            let mut prev = h;
            for (i, d) in self.head_hidden_dims.iter().enumerate() {
                m.insert(format!("{head}.hidden.{i}.weight"), vec![*d, prev]);
                m.insert(format!("{head}.hidden.{i}.bias"), vec![*d]);
                prev = *d;
            }
            m.insert(format!("{head}.trend.weight"), vec![1, prev]);
            m.insert(format!("{head}.trend.bias"), vec![1]);
            m.insert(format!("{head}.direction.weight"), vec![2, prev]);
            m.insert(format!("{head}.direction.bias"), vec![2]);
        }
        m
    }
}

/// "" for the forward direction, "_reverse" for the backward one (PyTorch names).
pub fn direction_suffixes(bidirectional: bool) -> &'static [&'static str] {
    if bidirectional {
        &["", "_reverse"]
    } else {
        &[""]
    }
}

/// The `sequence` section of config.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequenceConfig {
    /// Weeks per window.
    pub sequence_length: usize,
    /// Label horizons in days.
    #[serde(default = "default_horizons")]
    pub horizons: Vec<u32>,
}

fn default_horizons() -> Vec<u32> {
    vec![7, 30]
}

/// The `features` section of config.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeaturesConfig {
    /// Feature column names, in input order.
    pub names: Vec<String>,
}

/// config.json; unknown keys are ignored (docs/contracts.md), the whole document is kept.
#[derive(Clone, Debug)]
pub struct CheckpointConfig {
    /// The `model` section.
    pub model: ModelConfig,
    /// The `sequence` section.
    pub sequence: SequenceConfig,
    /// The `features` section, when present.
    pub features: Option<FeaturesConfig>,
    /// `trained_at` (RFC 3339), or "" when absent.
    pub trained_at: String,
    /// The full document, for the model card.
    pub raw: serde_json::Value,
}

/// scaler.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Feature names, in input order.
    pub feature_names: Vec<String>,
    /// Training-split means.
    pub mean: Vec<f64>,
    /// Training-split standard deviations (0 is read as 1).
    pub std: Vec<f64>,
}

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

fn json_err(path: &Path, reason: impl Into<String>) -> ExportError {
    ExportError::Json {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn inconsistent(path: &Path, reason: impl Into<String>) -> ExportError {
    ExportError::Inconsistent {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn parse_section<T: serde::de::DeserializeOwned>(
    path: &Path,
    doc: &serde_json::Value,
    key: &str,
) -> Result<T, ExportError> {
    let v = doc
        .get(key)
        .ok_or_else(|| json_err(path, format!("missing section {key:?}")))?;
    serde_json::from_value(v.clone()).map_err(|e| json_err(path, format!("section {key:?}: {e}")))
}

/// Reads config.json.
pub fn read_config(path: &Path) -> Result<CheckpointConfig, ExportError> {
    let bytes = read(path)?;
    let raw: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| json_err(path, e.to_string()))?;
    let model: ModelConfig = parse_section(path, &raw, "model")?;
    let sequence: SequenceConfig = parse_section(path, &raw, "sequence")?;
    let features = match raw.get("features") {
        Some(_) => Some(parse_section::<FeaturesConfig>(path, &raw, "features")?),
        None => None,
    };
    let trained_at = raw
        .get("trained_at")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let m = &model;
    if m.input_dim == 0 || m.hidden_dim == 0 || m.num_lstm_layers == 0 || m.num_attention_heads == 0
    {
        return Err(inconsistent(
            path,
            "model: input_dim, hidden_dim, num_lstm_layers and num_attention_heads must be >= 1",
        ));
    }
    if !m.hidden_dim.is_multiple_of(m.num_attention_heads) {
        return Err(inconsistent(
            path,
            format!(
                "model: hidden_dim {} is not divisible by num_attention_heads {}",
                m.hidden_dim, m.num_attention_heads
            ),
        ));
    }
    if m.head_hidden_dims.contains(&0) {
        return Err(inconsistent(
            path,
            "model: head_hidden_dims must all be >= 1",
        ));
    }
    if sequence.sequence_length == 0 {
        return Err(inconsistent(path, "sequence: sequence_length must be >= 1"));
    }
    Ok(CheckpointConfig {
        model,
        sequence,
        features,
        trained_at,
        raw,
    })
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
        let config_path = dir.join("config.json");
        let config = read_config(&config_path)?;
        let m = &config.model;

        let scaler_path = dir.join("scaler.json");
        let scaler: Scaler = serde_json::from_slice(&read(&scaler_path)?)
            .map_err(|e| json_err(&scaler_path, e.to_string()))?;
        for (what, len) in [
            ("feature_names", scaler.feature_names.len()),
            ("mean", scaler.mean.len()),
            ("std", scaler.std.len()),
        ] {
            if len != m.input_dim {
                return Err(inconsistent(
                    &scaler_path,
                    format!(
                        "{what} has {len} entries but config.json model.input_dim is {}",
                        m.input_dim
                    ),
                ));
            }
        }
        for (i, (mu, sd)) in scaler.mean.iter().zip(&scaler.std).enumerate() {
            if !mu.is_finite() || !sd.is_finite() || *sd < 0.0 {
                return Err(inconsistent(
                    &scaler_path,
                    format!(
                        "feature {i} ({}): mean {mu} / std {sd} must be finite with std >= 0",
                        scaler.feature_names[i]
                    ),
                ));
            }
        }
        if let Some(f) = &config.features {
            if f.names != scaler.feature_names {
                return Err(inconsistent(
                    &scaler_path,
                    "feature_names differ from config.json features.names".to_string(),
                ));
            }
        }

        let weights_path = dir.join("model.safetensors");
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

        let metrics_path = dir.join("metrics.json");
        let metrics_json = if metrics_path.exists() {
            let v: serde_json::Value = serde_json::from_slice(&read(&metrics_path)?)
                .map_err(|e| json_err(&metrics_path, e.to_string()))?;
            v.to_string()
        } else {
            tracing::warn!(path = %metrics_path.display(), "metrics.json absent; the model carries metrics {{}}");
            "{}".to_string()
        };

        let probe = load_probe(
            &dir.join("probe.safetensors"),
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
            .std
            .iter()
            .map(|s| if *s == 0.0 { 1.0 } else { *s as f32 })
            .collect()
    }
}

/// Reads and checks probe.safetensors: `features` (n, seq, dim) and the five outputs.
pub fn load_probe(path: &Path, seq: usize, dim: usize) -> Result<Probe, ExportError> {
    let bytes = read(path)?;
    let mut tensors = read_tensors(path, &bytes)?;
    let features = tensors
        .remove("features")
        .ok_or_else(|| ExportError::Tensor {
            path: path.to_path_buf(),
            name: "features".into(),
            reason: "missing".into(),
        })?;
    let n = match features.shape.as_slice() {
        [n, s, d] if *s == seq && *d == dim && *n >= 1 => *n,
        other => {
            return Err(ExportError::Tensor {
                path: path.to_path_buf(),
                name: "features".into(),
                reason: format!("shape {other:?}, expected (n >= 1, {seq}, {dim})"),
            })
        }
    };
    let mut outputs = BTreeMap::new();
    for (name, width) in [
        ("7day_trend", 1),
        ("7day_direction", 2),
        ("30day_trend", 1),
        ("30day_direction", 2),
        ("attention_weights", seq),
    ] {
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
