//! [`ModelInfo`]: what a trendscore ONNX file says about itself.
//!
//! Read with prost from the ONNX protobuf (the ONNX types that `tract-onnx` ships), so every
//! backend reports the same metadata and the checks run before any runtime is touched.

use std::collections::HashMap;
use std::path::PathBuf;

use prost::Message;
use tract_onnx::pb;

use crate::{InferError, INPUT_NAME, OUTPUT_NAMES};

/// Metadata of an exported model, from the ONNX metadata properties (DESIGN.md ONNX contract)
/// and the declared input shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// `model_version` property: sha256 hex of the checkpoint's `model.safetensors`.
    pub model_version: String,
    /// `feature_names` property (a JSON list); its length equals `input_dim`.
    pub feature_names: Vec<String>,
    /// `sequence_length` property; equals the input's second dimension.
    pub sequence_length: usize,
    /// The input's third dimension (number of raw features).
    pub input_dim: usize,
    /// `horizons` property (JSON list of days, e.g. `[7, 30]`).
    pub horizons: Vec<u32>,
    /// `metrics` property, the checkpoint's metrics.json as compact JSON text.
    pub metrics_json: String,
}

fn bad(reason: impl Into<String>) -> InferError {
    InferError::BadModel {
        path: PathBuf::from("<memory>"),
        reason: reason.into(),
    }
}

/// The declared dims of a value: `Some(n)` for a fixed size, `None` for a symbolic one.
fn dims_of(v: &pb::ValueInfoProto) -> Option<Vec<Option<i64>>> {
    use pb::tensor_shape_proto::dimension::Value as D;
    let pb::type_proto::Value::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(D::DimValue(n)) => Some(*n),
                _ => None,
            })
            .collect(),
    )
}

impl ModelInfo {
    /// Parses and checks the ONNX protobuf in `bytes`.
    ///
    /// Errors ([`InferError::BadModel`]) when the bytes are not an ONNX model, a metadata
    /// property of the contract is missing or malformed, the input is not
    /// `features` (batch, sequence_length, input_dim) float32, or an output name is missing.
    pub fn from_onnx_bytes(bytes: &[u8]) -> Result<ModelInfo, InferError> {
        let model = pb::ModelProto::decode(bytes)
            .map_err(|e| bad(format!("protobuf decode failed: {e}")))?;
        let graph = model.graph.as_ref().ok_or_else(|| bad("no graph"))?;
        let props: HashMap<&str, &str> = model
            .metadata_props
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        let prop = |k: &str| {
            props
                .get(k)
                .copied()
                .ok_or_else(|| bad(format!("metadata property {k:?} missing")))
        };

        let model_version = prop("model_version")?.to_string();
        if model_version.is_empty() {
            return Err(bad("metadata property \"model_version\" is empty"));
        }
        let feature_names: Vec<String> =
            serde_json::from_str(prop("feature_names")?).map_err(|e| {
                bad(format!(
                    "metadata property \"feature_names\" is not a JSON list of strings: {e}"
                ))
            })?;
        let sequence_length: usize = prop("sequence_length")?.trim().parse().map_err(|e| {
            bad(format!(
                "metadata property \"sequence_length\" is not an integer: {e}"
            ))
        })?;
        let horizons: Vec<u32> = serde_json::from_str(prop("horizons")?).map_err(|e| {
            bad(format!(
                "metadata property \"horizons\" is not a JSON list of integers: {e}"
            ))
        })?;
        let metrics_json = prop("metrics")?.to_string();
        serde_json::from_str::<serde_json::Value>(&metrics_json)
            .map_err(|e| bad(format!("metadata property \"metrics\" is not JSON: {e}")))?;

        let input = graph
            .input
            .iter()
            .find(|i| i.name == INPUT_NAME)
            .ok_or_else(|| bad(format!("no input named {INPUT_NAME:?}")))?;
        let dims = dims_of(input).ok_or_else(|| bad("input \"features\" has no tensor shape"))?;
        let (seq, dim) = match dims.as_slice() {
            [_, Some(s), Some(d)] => (*s as usize, *d as usize),
            _ => {
                return Err(bad(format!(
                "input \"features\" must be (batch, seq, dim) with fixed seq and dim, got {dims:?}"
            )))
            }
        };
        if seq != sequence_length {
            return Err(bad(format!(
                "input sequence dimension {seq} does not match metadata sequence_length {sequence_length}"
            )));
        }
        if dim != feature_names.len() {
            return Err(bad(format!(
                "input feature dimension {dim} does not match {} feature_names",
                feature_names.len()
            )));
        }
        for name in OUTPUT_NAMES {
            if !graph.output.iter().any(|o| o.name == name) {
                return Err(bad(format!("no output named {name:?}")));
            }
        }
        Ok(ModelInfo {
            model_version,
            feature_names,
            sequence_length,
            input_dim: dim,
            horizons,
            metrics_json,
        })
    }
}
