//! Seed ensembles: an ensemble directory (`trainer fit --seeds N`: `ensemble.json` and one
//! checkpoint per member) -> one ONNX graph that runs every member on the same input and
//! combines their outputs by the contract's rule ([`COMBINE_RULE`]), with the same five
//! outputs, names and metadata keys as a single model. [`combine`] is that rule on
//! [`ModelOutputs`]: the export self-check and `exporter verify` prove the graph equal to it
//! applied to the members' own single-model graphs.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tract_onnx::pb;
use trendscore_infer::{load_model_bytes, InferenceModel, LoadOptions, ModelInfo, ModelOutputs};
use trendscore_schemas::checkpoint::{EnsembleManifest, OUTPUT_NAMES};

use crate::checkpoint::Checkpoint;
use crate::graph::{build_model, encode, LstmForm};
use crate::parity::{compare_outputs, ParityCase};
use crate::{export, reference, ExportError};

/// The smallest combined direction probability before its logarithm (the smallest normal
/// float32), so that the combined direction logits stay finite.
pub const P_FLOOR: f32 = f32::MIN_POSITIVE;

/// A loaded ensemble directory.
#[derive(Clone, Debug)]
pub struct Ensemble {
    /// The ensemble directory.
    pub dir: PathBuf,
    /// `ensemble.json`.
    pub manifest: EnsembleManifest,
    /// The members, in manifest order.
    pub members: Vec<Checkpoint>,
    /// sha256 of the members' model versions in order: the ensemble's `model_version`.
    pub model_version: String,
}

impl Ensemble {
    /// Reads `dir/ensemble.json` and every member; the members must share the model sizes,
    /// the window length and the feature names.
    pub fn load(dir: &Path) -> Result<Self, ExportError> {
        let manifest = EnsembleManifest::load(dir)?;
        let members = manifest
            .member_dirs(dir)
            .iter()
            .map(|d| Checkpoint::load(d))
            .collect::<Result<Vec<_>, _>>()?;
        let first = &members[0];
        for m in &members[1..] {
            let differs = if m.config.model != first.config.model {
                Some("model sizes")
            } else if m.config.sequence.sequence_length != first.config.sequence.sequence_length {
                Some("sequence_length")
            } else if m.scaler.feature_names != first.scaler.feature_names {
                Some("feature names")
            } else {
                None
            };
            if let Some(what) = differs {
                return Err(ExportError::Inconsistent {
                    path: m.dir.clone(),
                    reason: format!(
                        "ensemble member's {what} differ from the first member's ({})",
                        first.dir.display()
                    ),
                });
            }
        }
        let mut h = Sha256::new();
        h.update(b"trendscore seed ensemble v1\n");
        for m in &members {
            h.update(m.weights_sha256.as_bytes());
            h.update(b"\n");
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            members,
            model_version: hex::encode(h.finalize()),
        })
    }

    /// When the ensemble was trained: its latest member's `trained_at`.
    pub fn trained_at(&self) -> String {
        self.members
            .iter()
            .map(|m| m.config.trained_at.clone())
            .max()
            .unwrap_or_default()
    }

    /// The ONNX metadata: DESIGN.md's keys (the first member's, with the ensemble's
    /// `model_version`, the latest `trained_at` and the combined metrics), plus
    /// `ensemble_members` (JSON list of the members' model versions) and `ensemble_combine`.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let mut meta = export::metadata(&self.members[0]);
        let trained_at = self.trained_at();
        for (k, v) in meta.iter_mut() {
            match k.as_str() {
                "model_version" => *v = self.model_version.clone(),
                "trained_at" => *v = trained_at.clone(),
                "metrics" => *v = self.manifest.metrics.to_string(),
                _ => {}
            }
        }
        let versions: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.weights_sha256.as_str())
            .collect();
        meta.push((
            "ensemble_members".into(),
            serde_json::to_string(&versions).expect("strings serialise"),
        ));
        meta.push(("ensemble_combine".into(), self.manifest.combine.clone()));
        meta
    }

    /// The ensemble's ONNX bytes, every member's LSTM encoder in `form`.
    pub fn onnx_bytes(&self, form: LstmForm) -> Vec<u8> {
        encode(&build_ensemble(self, form))
    }

    /// The float64 reference of every member, combined.
    pub fn reference(&self, features: &[f32], batch: usize) -> ModelOutputs {
        let outs: Vec<ModelOutputs> = self
            .members
            .iter()
            .map(|m| reference::forward(m, features, batch))
            .collect();
        combine(&outs)
    }

    /// Each member's single-model graph in `form`, loaded with `opts`.
    pub fn member_models(
        &self,
        opts: &LoadOptions,
        form: LstmForm,
    ) -> Result<Vec<Box<dyn InferenceModel>>, ExportError> {
        self.members
            .iter()
            .map(|m| -> Result<Box<dyn InferenceModel>, ExportError> {
                let bytes = export::onnx_bytes(m, form);
                let info = ModelInfo::from_onnx_bytes(&bytes)?;
                Ok(load_model_bytes(&bytes, info, &m.dir, opts)?)
            })
            .collect()
    }
}

/// The contract's combining rule over the members' outputs (one [`ModelOutputs`] per member,
/// same batch): trends and attention averaged; direction = ln(max(mean softmax, [`P_FLOOR`])).
pub fn combine(outs: &[ModelOutputs]) -> ModelOutputs {
    let n = outs.len() as f32;
    let mean = |f: fn(&ModelOutputs) -> &Vec<f32>| -> Vec<f32> {
        let mut acc = vec![0.0f32; f(&outs[0]).len()];
        for o in outs {
            for (a, v) in acc.iter_mut().zip(f(o)) {
                *a += v;
            }
        }
        acc.iter().map(|a| a / n).collect()
    };
    let direction = |f: fn(&ModelOutputs) -> &Vec<f32>| -> Vec<f32> {
        let mut acc = vec![0.0f32; f(&outs[0]).len()];
        for o in outs {
            for (a, pair) in acc.chunks_mut(2).zip(f(o).chunks(2)) {
                let m = pair[0].max(pair[1]);
                let (e0, e1) = ((pair[0] - m).exp(), (pair[1] - m).exp());
                a[0] += e0 / (e0 + e1);
                a[1] += e1 / (e0 + e1);
            }
        }
        acc.iter().map(|a| (a / n).max(P_FLOOR).ln()).collect()
    };
    ModelOutputs {
        batch: outs[0].batch,
        seq_len: outs[0].seq_len,
        trend_7d: mean(|o| &o.trend_7d),
        direction_7d: direction(|o| &o.direction_7d),
        trend_30d: mean(|o| &o.trend_30d),
        direction_30d: direction(|o| &o.direction_30d),
        attention: mean(|o| &o.attention),
    }
}

/// Runs `features` through the ensemble graph and through every member graph, and compares
/// the ensemble's outputs with [`combine`] of the members'.
pub fn check_against_members(
    ensemble: &dyn InferenceModel,
    members: &[Box<dyn InferenceModel>],
    features: &[f32],
    batch: usize,
    what: &str,
) -> Result<ParityCase, ExportError> {
    let outs = members
        .iter()
        .map(|m| m.predict(features, batch))
        .collect::<Result<Vec<_>, _>>()?;
    let got = ensemble.predict(features, batch)?;
    Ok(ParityCase {
        backend: ensemble.backend().to_string(),
        case: format!("ensemble {what} batch={batch} vs mean of the members' graphs"),
        windows: batch,
        max_abs_diff: compare_outputs(&got, &combine(&outs)),
    })
}

/// Every name of a member's graph under `prefix`, but the shared input `features`.
fn prefixed(graph: pb::GraphProto, prefix: &str) -> (Vec<pb::NodeProto>, Vec<pb::TensorProto>) {
    let rename = |n: &String| {
        if n.is_empty() || n == "features" {
            n.clone()
        } else {
            format!("{prefix}{n}")
        }
    };
    let nodes = graph
        .node
        .into_iter()
        .map(|mut node| {
            node.input = node.input.iter().map(rename).collect();
            node.output = node.output.iter().map(rename).collect();
            node.name = rename(&node.name);
            node
        })
        .collect();
    let inits = graph
        .initializer
        .into_iter()
        .map(|mut t| {
            t.name = rename(&t.name);
            t
        })
        .collect();
    (nodes, inits)
}

fn node(op: &str, inputs: &[String], out: &str, attrs: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        input: inputs.to_vec(),
        output: vec![out.to_string()],
        name: format!("ensemble_{op}_{out}"),
        op_type: op.into(),
        attribute: attrs,
        ..Default::default()
    }
}

/// The ensemble graph: every member's graph under `m<k>/`, on the one input, then the
/// combining nodes (Mean; Softmax, Mean, Max, Log) writing the five contract outputs.
pub fn build_ensemble(ens: &Ensemble, form: LstmForm) -> pb::ModelProto {
    let mut model = build_model(&ens.members[0], &ens.metadata(), form);
    let mut graph = model.graph.take().expect("build_model makes a graph");
    let (mut nodes, mut inits) = (Vec::new(), Vec::new());
    for (k, m) in ens.members.iter().enumerate() {
        let g = build_model(m, &[], form)
            .graph
            .expect("build_model makes a graph");
        let (n, i) = prefixed(g, &format!("m{k}/"));
        nodes.extend(n);
        inits.extend(i);
    }
    let member = |k: usize, name: &str| format!("m{k}/{name}");
    let all =
        |name: &str| -> Vec<String> { (0..ens.members.len()).map(|k| member(k, name)).collect() };
    inits.push(pb::TensorProto {
        name: "ensemble_p_floor".into(),
        dims: vec![],
        data_type: pb::tensor_proto::DataType::Float as i32,
        raw_data: P_FLOOR.to_le_bytes().to_vec(),
        ..Default::default()
    });
    let [t7, d7, t30, d30, att] = OUTPUT_NAMES;
    for out in [t7, t30, att] {
        nodes.push(node("Mean", &all(out), out, vec![]));
    }
    for out in [d7, d30] {
        let probs: Vec<String> = (0..ens.members.len())
            .map(|k| {
                let p = member(k, &format!("{out}_p"));
                nodes.push(node(
                    "Softmax",
                    &[member(k, out)],
                    &p,
                    vec![pb::AttributeProto {
                        name: "axis".into(),
                        r#type: pb::attribute_proto::AttributeType::Int as i32,
                        i: -1,
                        ..Default::default()
                    }],
                ));
                p
            })
            .collect();
        let mean = format!("ensemble_{out}_p");
        nodes.push(node("Mean", &probs, &mean, vec![]));
        let floored = format!("ensemble_{out}_p_floored");
        nodes.push(node(
            "Max",
            &[mean, "ensemble_p_floor".into()],
            &floored,
            vec![],
        ));
        nodes.push(node("Log", &[floored], out, vec![]));
    }
    graph.node = nodes;
    graph.initializer = inits;
    graph.name = "trendscore_ensemble".into();
    model.graph = Some(graph);
    model.doc_string = format!(
        "trendscore seed ensemble of {} members ({}); input is RAW features (each member's scaler is inside)",
        ens.members.len(),
        ens.manifest.combine
    );
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outs(t: f32, d: [f32; 2], a: [f32; 2]) -> ModelOutputs {
        ModelOutputs {
            batch: 1,
            seq_len: 2,
            trend_7d: vec![t],
            direction_7d: d.to_vec(),
            trend_30d: vec![-t],
            direction_30d: d.to_vec(),
            attention: a.to_vec(),
        }
    }

    #[test]
    fn combine_averages_trends_attention_and_probabilities() {
        let c = combine(&[
            outs(0.2, [0.0, 0.0], [0.5, 0.5]),
            outs(0.6, [0.0, 2.0f32.ln()], [0.1, 0.9]),
        ]);
        assert!((c.trend_7d[0] - 0.4).abs() < 1e-7);
        assert!((c.trend_30d[0] + 0.4).abs() < 1e-7);
        assert!((c.attention[0] - 0.3).abs() < 1e-7 && (c.attention[1] - 0.7).abs() < 1e-7);
        // p_up: 1/2 and 2/3 -> 7/12; softmax of the combined logits gives it back
        assert!((c.p_up_7d(0) - 7.0 / 12.0).abs() < 1e-6);
        assert!((c.direction_7d[1] - (7.0f32 / 12.0).ln()).abs() < 1e-6);
    }

    #[test]
    fn combined_direction_stays_finite_at_certainty() {
        let c = combine(&[outs(0.0, [0.0, 500.0], [1.0, 0.0])]);
        assert!(c.direction_7d.iter().all(|v| v.is_finite()));
        assert_eq!(c.direction_7d[0], P_FLOOR.ln());
        assert!((c.p_up_7d(0) - 1.0).abs() < 1e-6);
    }
}
