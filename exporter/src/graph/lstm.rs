//! The LSTM encoder in two ONNX forms, equal in what they compute:
//!
//! - [`LstmForm::Op`]: one ONNX `LSTM` node per layer (both directions in it), in the
//!   time-major layout the op wants. ONNX Runtime has a fused kernel for it.
//! - [`LstmForm::Unrolled`]: the recurrence written out over its fixed `S` steps in plain
//!   `MatMul`/`Add`/`Sigmoid`/`Tanh`/`Mul` nodes, batch-first: per layer and direction one
//!   `MatMul` projects the inputs of every step at once ((B,S,In) x (In,4H), both biases
//!   folded in), then each step adds `h W_hh^T` (skipped at step 0, where h = c = 0) and
//!   applies the gates. Written to see whether tract runs flat matrix products faster than
//!   its `LSTM` op (a scan): it does not (docs/performance.md), and ONNX Runtime's fused
//!   LSTM kernel is faster still, so `Op` is the default; `Unrolled` is there for runtimes
//!   without an `LSTM` kernel of their own, and both are held to the same parity suite.
//!
//! Both take the normalised features (B,S,D) and give `encoder_out` (B,S,K*H: forward then
//! backward hidden state of each step, PyTorch's output) and `encoder_final_state`
//! (B,K*H: the forward state after the last step, then the backward state after the first).

use serde::{Deserialize, Serialize};

use super::{attr_int, attr_ints, attr_str, reorder_gates, transpose, Builder};
use crate::checkpoint::{direction_suffixes, Checkpoint, Tensor};

/// Which ONNX form the LSTM encoder is written in (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LstmForm {
    /// One ONNX `LSTM` node per layer (the default: the faster form on both ONNX Runtime
    /// and tract, measured in docs/performance.md).
    #[default]
    Op,
    /// The recurrence unrolled over its fixed steps in plain matrix and element-wise nodes,
    /// for runtimes without a good `LSTM` kernel.
    Unrolled,
}

impl LstmForm {
    /// The name used on the command line, in the model card and in the ONNX metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            LstmForm::Op => "op",
            LstmForm::Unrolled => "unrolled",
        }
    }
}

impl std::str::FromStr for LstmForm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "op" => Ok(LstmForm::Op),
            "unrolled" => Ok(LstmForm::Unrolled),
            other => Err(format!("unknown LSTM form {other:?} (op | unrolled)")),
        }
    }
}

/// Emits the encoder for `xn` (B,S,D) in `form`; returns (`encoder_out`, `encoder_final_state`).
pub(super) fn encoder(
    g: &mut Builder,
    ckpt: &Checkpoint,
    xn: &str,
    form: LstmForm,
) -> (String, String) {
    match form {
        LstmForm::Op => op_form(g, ckpt, xn),
        LstmForm::Unrolled => unrolled_form(g, ckpt, xn),
    }
}

fn weights<'a>(ckpt: &'a Checkpoint, layer: usize, sfx: &str) -> [&'a Tensor; 4] {
    ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        .map(|w| ckpt.tensor(&format!("encoder.lstm.{w}_l{layer}{sfx}")))
}

fn op_form(g: &mut Builder, ckpt: &Checkpoint, xn: &str) -> (String, String) {
    let m = &ckpt.config.model;
    let (d, h, k_dirs) = (m.input_dim, m.hidden_dim, m.num_directions());
    // (S,B,D): the LSTM op's default layout.
    let mut x = g.node(
        "Transpose",
        &[xn],
        "lstm_in_0",
        vec![attr_ints("perm", &[1, 0, 2])],
    );
    let shape_sb = g.init_i64("shape_0_0_m1", &[0, 0, -1]);
    let shape_b = g.init_i64("lstm.shape_0_m1", &[0, -1]);
    let mut y = String::new();
    let mut y_h = String::new();
    for layer in 0..m.num_lstm_layers {
        let input = if layer == 0 { d } else { h * k_dirs };
        let (mut w, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for sfx in direction_suffixes(m.bidirectional) {
            let [wih, whh, bih, bhh] = weights(ckpt, layer, sfx);
            w.extend(reorder_gates(&wih.data, h, input));
            r.extend(reorder_gates(&whh.data, h, h));
            b.extend(reorder_gates(&bih.data, h, 1));
            b.extend(reorder_gates(&bhh.data, h, 1));
        }
        let w = g.init_f32(
            &format!("encoder.lstm.l{layer}.W"),
            &[k_dirs, 4 * h, input],
            &w,
        );
        let r = g.init_f32(&format!("encoder.lstm.l{layer}.R"), &[k_dirs, 4 * h, h], &r);
        let b = g.init_f32(&format!("encoder.lstm.l{layer}.B"), &[k_dirs, 8 * h], &b);
        let direction = if m.bidirectional {
            "bidirectional"
        } else {
            "forward"
        };
        let outs = g.node_multi(
            "LSTM",
            &[&x, &w, &r, &b],
            &[&format!("lstm_l{layer}_Y"), &format!("lstm_l{layer}_Y_h")],
            vec![
                attr_int("hidden_size", h as i64),
                attr_str("direction", direction),
            ],
        );
        y = outs[0].clone();
        y_h = outs[1].clone();
        if layer + 1 < m.num_lstm_layers {
            // (S,K,B,H) -> (S,B,K,H) -> (S,B,K*H)
            let t = g.node(
                "Transpose",
                &[&y],
                "",
                vec![attr_ints("perm", &[0, 2, 1, 3])],
            );
            x = g.node(
                "Reshape",
                &[&t, &shape_sb],
                &format!("lstm_in_{}", layer + 1),
                vec![],
            );
        }
    }
    // enc: (S,K,B,H) -> (B,S,K,H) -> (B,S,K*H)
    let t = g.node(
        "Transpose",
        &[&y],
        "",
        vec![attr_ints("perm", &[2, 0, 1, 3])],
    );
    let enc = g.node("Reshape", &[&t, &shape_sb], "encoder_out", vec![]);
    // final state: (K,B,H) -> (B,K,H) -> (B,K*H) = concat(forward, backward)
    let t = g.node(
        "Transpose",
        &[&y_h],
        "",
        vec![attr_ints("perm", &[1, 0, 2])],
    );
    let last = g.node("Reshape", &[&t, &shape_b], "encoder_final_state", vec![]);
    (enc, last)
}

fn unrolled_form(g: &mut Builder, ckpt: &Checkpoint, xn: &str) -> (String, String) {
    let m = &ckpt.config.model;
    let (s, d, h) = (
        ckpt.config.sequence.sequence_length,
        m.input_dim,
        m.hidden_dim,
    );
    let k_dirs = m.num_directions();
    let steps: Vec<String> = (0..s)
        .map(|t| g.init_i64_scalar(&format!("lstm.step_{t}"), t as i64))
        .collect();
    let shape_seq = g.init_i64("lstm.shape_b_s_h", &[0, s as i64, h as i64]);
    let mut x = xn.to_string();
    let mut finals = Vec::new();
    for layer in 0..m.num_lstm_layers {
        let input = if layer == 0 { d } else { h * k_dirs };
        let last_layer = layer + 1 == m.num_lstm_layers;
        let mut seqs = Vec::new();
        finals.clear();
        for (k, sfx) in direction_suffixes(m.bidirectional).iter().enumerate() {
            let [wih, whh, bih, bhh] = weights(ckpt, layer, sfx);
            let p = format!("encoder.lstm.l{layer}.d{k}");
            let wih_t = g.init_f32(&format!("{p}.W_ih_T"), &[input, 4 * h], &transpose(wih));
            let whh_t = g.init_f32(&format!("{p}.W_hh_T"), &[h, 4 * h], &transpose(whh));
            let bias: Vec<f32> = bih.data.iter().zip(&bhh.data).map(|(a, b)| a + b).collect();
            let bias = g.init_f32(&format!("{p}.b"), &[4 * h], &bias);
            // every step's input projection at once: (B,S,4H)
            let xw = g.node("MatMul", &[&x, &wih_t], "", vec![]);
            let xw = g.node(
                "Add",
                &[&xw, &bias],
                &format!("lstm_l{layer}_d{k}_xw"),
                vec![],
            );
            let order: Vec<usize> = if k == 0 {
                (0..s).collect()
            } else {
                (0..s).rev().collect()
            };
            let mut hs = vec![String::new(); s];
            let (mut hprev, mut cprev) = (None::<String>, None::<String>);
            for &t in &order {
                let xw_t = g.node("Gather", &[&xw, &steps[t]], "", vec![attr_int("axis", 1)]);
                let gates = match &hprev {
                    None => xw_t,
                    Some(hp) => {
                        let hw = g.node("MatMul", &[hp, &whh_t], "", vec![]);
                        g.node("Add", &[&xw_t, &hw], "", vec![])
                    }
                };
                // PyTorch's gate order: i, f, g, o
                let gs = g.node_multi(
                    "Split",
                    &[&gates],
                    &["", "", "", ""],
                    vec![attr_int("axis", 1)],
                );
                let i = g.node("Sigmoid", &[&gs[0]], "", vec![]);
                let f = g.node("Sigmoid", &[&gs[1]], "", vec![]);
                let gg = g.node("Tanh", &[&gs[2]], "", vec![]);
                let o = g.node("Sigmoid", &[&gs[3]], "", vec![]);
                let ig = g.node("Mul", &[&i, &gg], "", vec![]);
                let c = match &cprev {
                    None => ig,
                    Some(cp) => {
                        let fc = g.node("Mul", &[&f, cp], "", vec![]);
                        g.node("Add", &[&fc, &ig], "", vec![])
                    }
                };
                let tc = g.node("Tanh", &[&c], "", vec![]);
                let hn = g.node(
                    "Mul",
                    &[&o, &tc],
                    &format!("lstm_l{layer}_d{k}_h{t}"),
                    vec![],
                );
                hs[t] = hn.clone();
                hprev = Some(hn);
                cprev = Some(c);
            }
            finals.push(hprev.expect("sequence_length >= 1"));
            // (B,S*H) in time order -> (B,S,H)
            let refs: Vec<&str> = hs.iter().map(String::as_str).collect();
            let cat = g.node("Concat", &refs, "", vec![attr_int("axis", 1)]);
            let name = if last_layer && k_dirs == 1 {
                "encoder_out".to_string()
            } else {
                format!("lstm_l{layer}_d{k}_seq")
            };
            seqs.push(g.node("Reshape", &[&cat, &shape_seq], &name, vec![]));
        }
        x = if seqs.len() == 1 {
            seqs.remove(0)
        } else {
            let refs: Vec<&str> = seqs.iter().map(String::as_str).collect();
            let name = if last_layer {
                "encoder_out".to_string()
            } else {
                format!("lstm_in_{}", layer + 1)
            };
            g.node("Concat", &refs, &name, vec![attr_int("axis", 2)])
        };
    }
    let refs: Vec<&str> = finals.iter().map(String::as_str).collect();
    let last = g.node(
        "Concat",
        &refs,
        "encoder_final_state",
        vec![attr_int("axis", 1)],
    );
    (x, last)
}
