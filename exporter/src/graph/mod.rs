//! Building the ONNX graph (opset 17) of DESIGN.md from a [`Checkpoint`].
//!
//! Shapes below use B = batch (symbolic "batch"), S = sequence_length, D = input_dim,
//! H = hidden_dim, K = directions (1 or 2), N = heads, E = H / N.
//!
//! ```text
//! features (B,S,D) -Sub mean -Div std-> (B,S,D)
//!   LSTM encoder ([`lstm`]: one LSTM op per layer, or unrolled over the S steps)
//! enc = encoder_out (B,S,K*H) [-MatMul/Add projection-> (B,S,H) when K = 2]
//! query = encoder_final_state (B,K*H) [-Gemm projection-> (B,H) when K = 2]
//! q = Gemm(query, Wq) * E^-1/2 -> (B,N,1,E); k, v = MatMul(enc, Wk|Wv) -> (B,N,S,E)
//! w = Softmax(q k^T) (B,N,1,S); ctx = w v -> (B,H) -Gemm out_proj-> (B,H)
//! attention_weights = ReduceMean_N(w) (B,S)
//! heads: (Gemm -> Relu)* -> Gemm -> Tanh = trend (B,1); Gemm = direction (B,2)
//! ```
//! The PyTorch LSTM gate order i,f,g,o is reordered to ONNX's i,o,f,c; ONNX B = [Wb, Rb].

pub mod lstm;

use prost::Message;
use tract_onnx::pb;

pub use lstm::LstmForm;

use crate::checkpoint::{Checkpoint, Tensor};

/// The ONNX opset the exporter writes.
pub const OPSET: i64 = 17;
/// ONNX IR version matching opset 17.
pub const IR_VERSION: i64 = 8;
/// Name of the symbolic batch dimension.
pub const BATCH_DIM: &str = "batch";

const FLOAT: i32 = pb::tensor_proto::DataType::Float as i32;
const INT64: i32 = pb::tensor_proto::DataType::Int64 as i32;

/// Accumulates nodes and initializers.
#[derive(Default)]
struct Builder {
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    counter: usize,
}

fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_str(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

impl Builder {
    /// Adds a float32 initializer; returns its name.
    fn init_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        assert_eq!(
            dims.iter().product::<usize>(),
            data.len(),
            "initializer {name}"
        );
        self.inits.push(pb::TensorProto {
            name: name.into(),
            dims: dims.iter().map(|d| *d as i64).collect(),
            data_type: FLOAT,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.to_string()
    }

    /// Adds an int64 1-D initializer (shapes, axes); returns its name.
    fn init_i64(&mut self, name: &str, data: &[i64]) -> String {
        self.inits.push(pb::TensorProto {
            name: name.into(),
            dims: vec![data.len() as i64],
            data_type: INT64,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.to_string()
    }

    /// Adds an int64 scalar initializer (a `Gather` index); returns its name.
    fn init_i64_scalar(&mut self, name: &str, v: i64) -> String {
        self.inits.push(pb::TensorProto {
            name: name.into(),
            dims: vec![],
            data_type: INT64,
            raw_data: v.to_le_bytes().to_vec(),
            ..Default::default()
        });
        name.to_string()
    }

    /// Adds a node with one output named `out` (or a generated name when empty).
    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        out: &str,
        attrs: Vec<pb::AttributeProto>,
    ) -> String {
        self.node_multi(op, inputs, &[out], attrs).remove(0)
    }

    fn node_multi(
        &mut self,
        op: &str,
        inputs: &[&str],
        outs: &[&str],
        attrs: Vec<pb::AttributeProto>,
    ) -> Vec<String> {
        self.counter += 1;
        let outputs: Vec<String> = outs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                if o.is_empty() {
                    format!("{}_{}_out{}", op.to_lowercase(), self.counter, i)
                } else {
                    o.to_string()
                }
            })
            .collect();
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.clone(),
            name: format!("{}_{}", op, self.counter),
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
        outputs
    }

    /// Gemm(x, W, b) with W in PyTorch (out, in) layout: x W^T + b.
    fn linear(&mut self, x: &str, w: &str, b: &str, out: &str) -> String {
        self.node("Gemm", &[x, w, b], out, vec![attr_int("transB", 1)])
    }
}

/// PyTorch LSTM rows [i, f, g, o] (each `h` rows of width `cols`) -> ONNX [i, o, f, c].
fn reorder_gates(data: &[f32], h: usize, cols: usize) -> Vec<f32> {
    let block = h * cols;
    let mut out = Vec::with_capacity(data.len());
    for g in [0usize, 3, 1, 2] {
        out.extend_from_slice(&data[g * block..(g + 1) * block]);
    }
    out
}

/// (rows, cols) row-major -> (cols, rows).
fn transpose(t: &Tensor) -> Vec<f32> {
    let (r, c) = (t.shape[0], t.shape[1]);
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = t.data[i * c + j];
        }
    }
    out
}

fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: FLOAT,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Some(n) => Value::DimValue(*n as i64),
                                None => Value::DimParam(BATCH_DIM.into()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds the ONNX model for `ckpt` with the given metadata properties (plus `lstm_form`),
/// its LSTM encoder in `form`.
pub fn build_model(
    ckpt: &Checkpoint,
    metadata: &[(String, String)],
    form: LstmForm,
) -> pb::ModelProto {
    let m = &ckpt.config.model;
    let (s, d, h) = (
        ckpt.config.sequence.sequence_length,
        m.input_dim,
        m.hidden_dim,
    );
    let n_heads = m.num_attention_heads;
    let e = h / n_heads;
    let mut g = Builder::default();

    // 1. scaler: (B,S,D) - mean(D) / std(D)
    let mean: Vec<f32> = ckpt.scaler.mean.iter().map(|v| *v as f32).collect();
    let mean = g.init_f32("scaler.mean", &[d], &mean);
    let std = g.init_f32("scaler.std", &[d], &ckpt.effective_std());
    let centred = g.node("Sub", &["features", &mean], "scaler_centred", vec![]);
    let xn = g.node("Div", &[&centred, &std], "scaler_normalised", vec![]);

    // 2. LSTM layers
    let (enc_raw, final_state) = lstm::encoder(&mut g, ckpt, &xn, form);
    let shape_b = g.init_i64("shape_0_m1", &[0, -1]);
    let (enc, query) = if m.bidirectional {
        let pw = ckpt.tensor("encoder.projection.weight");
        let pw_t = g.init_f32("encoder.projection.weight_T", &[2 * h, h], &transpose(pw));
        let pw = g.init_f32("encoder.projection.weight", &[h, 2 * h], &pw.data);
        let pb_ = g.init_f32(
            "encoder.projection.bias",
            &[h],
            &ckpt.tensor("encoder.projection.bias").data,
        );
        let mm = g.node("MatMul", &[&enc_raw, &pw_t], "", vec![]);
        let enc = g.node("Add", &[&mm, &pb_], "encoder_enc", vec![]);
        let q = g.linear(&final_state, &pw, &pb_, "encoder_query");
        (enc, q)
    } else {
        (enc_raw, final_state)
    };

    // 3. attention
    let ipw = ckpt.tensor("attention.in_proj_weight");
    let ipb = &ckpt.tensor("attention.in_proj_bias").data;
    let block = |i: usize| -> Tensor {
        Tensor {
            shape: vec![h, h],
            data: ipw.data[i * h * h..(i + 1) * h * h].to_vec(),
        }
    };
    let wq = g.init_f32("attention.w_q", &[h, h], &block(0).data);
    let bq = g.init_f32("attention.b_q", &[h], &ipb[0..h]);
    let wk_t = g.init_f32("attention.w_k_T", &[h, h], &transpose(&block(1)));
    let bk = g.init_f32("attention.b_k", &[h], &ipb[h..2 * h]);
    let wv_t = g.init_f32("attention.w_v_T", &[h, h], &transpose(&block(2)));
    let bv = g.init_f32("attention.b_v", &[h], &ipb[2 * h..3 * h]);
    let scale = g.init_f32("attention.scale", &[], &[(1.0 / (e as f64).sqrt()) as f32]);
    let q = g.linear(&query, &wq, &bq, "attention_q");
    let q = g.node("Mul", &[&q, &scale], "attention_q_scaled", vec![]);
    let shape_q = g.init_i64("shape_q", &[0, n_heads as i64, 1, e as i64]);
    let q = g.node("Reshape", &[&q, &shape_q], "attention_q_heads", vec![]); // (B,N,1,E)
    let shape_kv = g.init_i64("shape_kv", &[0, 0, n_heads as i64, e as i64]);
    let kk = g.node("MatMul", &[&enc, &wk_t], "", vec![]);
    let kk = g.node("Add", &[&kk, &bk], "attention_k", vec![]);
    let kk = g.node("Reshape", &[&kk, &shape_kv], "", vec![]); // (B,S,N,E)
    let kk = g.node(
        "Transpose",
        &[&kk],
        "attention_k_heads_T",
        vec![attr_ints("perm", &[0, 2, 3, 1])],
    ); // (B,N,E,S)
    let vv = g.node("MatMul", &[&enc, &wv_t], "", vec![]);
    let vv = g.node("Add", &[&vv, &bv], "attention_v", vec![]);
    let vv = g.node("Reshape", &[&vv, &shape_kv], "", vec![]);
    let vv = g.node(
        "Transpose",
        &[&vv],
        "attention_v_heads",
        vec![attr_ints("perm", &[0, 2, 1, 3])],
    ); // (B,N,S,E)
    let scores = g.node("MatMul", &[&q, &kk], "attention_scores", vec![]); // (B,N,1,S)
    let w = g.node(
        "Softmax",
        &[&scores],
        "attention_w",
        vec![attr_int("axis", -1)],
    );
    let ctx = g.node("MatMul", &[&w, &vv], "", vec![]); // (B,N,1,E)
    let ctx = g.node("Reshape", &[&ctx, &shape_b], "attention_ctx_heads", vec![]); // (B,H)
    let ow = g.init_f32(
        "attention.out_proj.weight",
        &[h, h],
        &ckpt.tensor("attention.out_proj.weight").data,
    );
    let ob = g.init_f32(
        "attention.out_proj.bias",
        &[h],
        &ckpt.tensor("attention.out_proj.bias").data,
    );
    let ctx = g.linear(&ctx, &ow, &ob, "attention_context");
    let wm = g.node(
        "ReduceMean",
        &[&w],
        "",
        vec![attr_ints("axes", &[1]), attr_int("keepdims", 0)],
    ); // (B,1,S)
    g.node("Reshape", &[&wm, &shape_b], "attention_weights", vec![]);

    // 4. heads
    for (head, prefix) in [("head_7d", "7day"), ("head_30d", "30day")] {
        let mut x = ctx.clone();
        let mut prev = h;
        for (i, dim) in m.head_hidden_dims.iter().enumerate() {
            let wn = format!("{head}.hidden.{i}.weight");
            let bn = format!("{head}.hidden.{i}.bias");
            let wi = g.init_f32(&wn, &[*dim, prev], &ckpt.tensor(&wn).data);
            let bi = g.init_f32(&bn, &[*dim], &ckpt.tensor(&bn).data);
            let lin = g.linear(&x, &wi, &bi, "");
            x = g.node("Relu", &[&lin], &format!("{head}_hidden_{i}"), vec![]);
            prev = *dim;
        }
        let lin = |g: &mut Builder, part: &str, rows: usize, out: &str| {
            let wn = format!("{head}.{part}.weight");
            let bn = format!("{head}.{part}.bias");
            let wi = g.init_f32(&wn, &[rows, prev], &ckpt.tensor(&wn).data);
            let bi = g.init_f32(&bn, &[rows], &ckpt.tensor(&bn).data);
            g.linear(&x, &wi, &bi, out)
        };
        let t = lin(&mut g, "trend", 1, "");
        g.node("Tanh", &[&t], &format!("{prefix}_trend"), vec![]);
        lin(&mut g, "direction", 2, &format!("{prefix}_direction"));
    }

    let graph = pb::GraphProto {
        name: "trendscore".into(),
        node: g.nodes,
        initializer: g.inits,
        input: vec![value_info("features", &[None, Some(s), Some(d)])],
        output: vec![
            value_info("7day_trend", &[None, Some(1)]),
            value_info("7day_direction", &[None, Some(2)]),
            value_info("30day_trend", &[None, Some(1)]),
            value_info("30day_direction", &[None, Some(2)]),
            value_info("attention_weights", &[None, Some(s)]),
        ],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "trendscore-exporter".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: "trendscore weekly trend model: BiLSTM + multi-head temporal attention + 7d/30d heads; input is RAW features (the scaler is inside)".into(),
        graph: Some(graph),
        metadata_props: metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([("lstm_form", form.as_str())])
            .map(|(k, v)| pb::StringStringEntryProto {
                key: k.into(),
                value: v.into(),
            })
            .collect(),
        ..Default::default()
    }
}

/// Serialises a model to protobuf bytes.
pub fn encode(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_reorder_maps_ifgo_to_iofc() {
        // h = 1, cols = 2: rows i, f, g, o
        let data = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5];
        assert_eq!(
            reorder_gates(&data, 1, 2),
            vec![1.0, 1.5, 4.0, 4.5, 2.0, 2.5, 3.0, 3.5]
        );
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let t = Tensor {
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert_eq!(transpose(&t), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
