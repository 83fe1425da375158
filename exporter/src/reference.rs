//! An independent float64 forward pass of the DESIGN.md model, straight from the checkpoint
//! tensors in PyTorch layout (no ONNX, no gate reordering). `verify` checks every backend
//! against it on generated windows, for which the checkpoint holds no trainer outputs.

use trendscore_infer::ModelOutputs;

use crate::checkpoint::{direction_suffixes, Checkpoint, Tensor};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// y = W x + b for W (out, in) in PyTorch layout.
fn linear(w: &Tensor, b: &Tensor, x: &[f64]) -> Vec<f64> {
    let (o, i) = (w.shape[0], w.shape[1]);
    (0..o)
        .map(|r| {
            let row = &w.data[r * i..(r + 1) * i];
            b.data[r] as f64 + row.iter().zip(x).map(|(a, v)| *a as f64 * v).sum::<f64>()
        })
        .collect()
}

/// A slice of rows [from, to) of W (out, in) and of b, as a new (W, b) pair.
fn rows(w: &Tensor, b: &[f32], from: usize, to: usize) -> (Tensor, Tensor) {
    let i = w.shape[1];
    (
        Tensor {
            shape: vec![to - from, i],
            data: w.data[from * i..to * i].to_vec(),
        },
        Tensor {
            shape: vec![to - from],
            data: b[from..to].to_vec(),
        },
    )
}

/// Runs `batch` raw windows (batch, seq, dim) row-major; returns the five outputs (as f32).
pub fn forward(ckpt: &Checkpoint, features: &[f32], batch: usize) -> ModelOutputs {
    let m = &ckpt.config.model;
    let (s, d, h) = (
        ckpt.config.sequence.sequence_length,
        m.input_dim,
        m.hidden_dim,
    );
    let heads = m.num_attention_heads;
    let e = h / heads;
    let std: Vec<f64> = ckpt
        .scaler
        .std
        .iter()
        .map(|v| if *v == 0.0 { 1.0 } else { *v })
        .collect();
    let mut out = ModelOutputs {
        batch,
        seq_len: s,
        trend_7d: vec![],
        direction_7d: vec![],
        trend_30d: vec![],
        direction_30d: vec![],
        attention: vec![],
    };
    let t = |n: &str| ckpt.tensor(n);
    for bi in 0..batch {
        let win = &features[bi * s * d..(bi + 1) * s * d];
        let mut seq: Vec<Vec<f64>> = (0..s)
            .map(|ti| {
                (0..d)
                    .map(|j| (win[ti * d + j] as f64 - ckpt.scaler.mean[j]) / std[j])
                    .collect()
            })
            .collect();
        let mut finals: Vec<Vec<f64>> = vec![];
        for layer in 0..m.num_lstm_layers {
            let mut dir_outs: Vec<Vec<Vec<f64>>> = vec![];
            finals.clear();
            for (k, sfx) in direction_suffixes(m.bidirectional).iter().enumerate() {
                let wih = t(&format!("encoder.lstm.weight_ih_l{layer}{sfx}"));
                let whh = t(&format!("encoder.lstm.weight_hh_l{layer}{sfx}"));
                let bih = t(&format!("encoder.lstm.bias_ih_l{layer}{sfx}"));
                let bhh = t(&format!("encoder.lstm.bias_hh_l{layer}{sfx}"));
                let (mut hs, mut cs) = (vec![0.0f64; h], vec![0.0f64; h]);
                let mut outs = vec![vec![0.0f64; h]; s];
                let order: Vec<usize> = if k == 0 {
                    (0..s).collect()
                } else {
                    (0..s).rev().collect()
                };
                for ti in order {
                    let a = linear(wih, bih, &seq[ti]);
                    let b = linear(whh, bhh, &hs);
                    for j in 0..h {
                        let ig = sigmoid(a[j] + b[j]);
                        let fg = sigmoid(a[h + j] + b[h + j]);
                        let gg = (a[2 * h + j] + b[2 * h + j]).tanh();
                        let og = sigmoid(a[3 * h + j] + b[3 * h + j]);
                        cs[j] = fg * cs[j] + ig * gg;
                        hs[j] = og * cs[j].tanh();
                    }
                    outs[ti] = hs.clone();
                }
                finals.push(hs);
                dir_outs.push(outs);
            }
            seq = (0..s)
                .map(|ti| dir_outs.iter().flat_map(|o| o[ti].clone()).collect())
                .collect();
        }
        let final_state: Vec<f64> = finals.concat();
        let (enc, query) = if m.bidirectional {
            let (pw, pb) = (t("encoder.projection.weight"), t("encoder.projection.bias"));
            (
                seq.iter().map(|x| linear(pw, pb, x)).collect::<Vec<_>>(),
                linear(pw, pb, &final_state),
            )
        } else {
            (seq, final_state)
        };
        let ipw = t("attention.in_proj_weight");
        let ipb = &t("attention.in_proj_bias").data;
        let (wq, bq) = rows(ipw, ipb, 0, h);
        let (wk, bk) = rows(ipw, ipb, h, 2 * h);
        let (wv, bv) = rows(ipw, ipb, 2 * h, 3 * h);
        let q = linear(&wq, &bq, &query);
        let keys: Vec<Vec<f64>> = enc.iter().map(|x| linear(&wk, &bk, x)).collect();
        let vals: Vec<Vec<f64>> = enc.iter().map(|x| linear(&wv, &bv, x)).collect();
        let mut ctx = vec![0.0f64; h];
        let mut avg_w = vec![0.0f64; s];
        let scale = 1.0 / (e as f64).sqrt();
        for n in 0..heads {
            let r = n * e..(n + 1) * e;
            let scores: Vec<f64> = keys
                .iter()
                .map(|k| {
                    q[r.clone()]
                        .iter()
                        .zip(&k[r.clone()])
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let ex: Vec<f64> = scores.iter().map(|v| (v - mx).exp()).collect();
            let z: f64 = ex.iter().sum();
            for (ti, w) in ex.iter().map(|v| v / z).enumerate() {
                avg_w[ti] += w / heads as f64;
                for j in r.clone() {
                    ctx[j] += w * vals[ti][j];
                }
            }
        }
        let ctx = linear(
            t("attention.out_proj.weight"),
            t("attention.out_proj.bias"),
            &ctx,
        );
        for head in ["head_7d", "head_30d"] {
            let mut x = ctx.clone();
            for i in 0..m.head_hidden_dims.len() {
                x = linear(
                    t(&format!("{head}.hidden.{i}.weight")),
                    t(&format!("{head}.hidden.{i}.bias")),
                    &x,
                )
                .into_iter()
                .map(|v| v.max(0.0))
                .collect();
            }
            let trend = linear(
                t(&format!("{head}.trend.weight")),
                t(&format!("{head}.trend.bias")),
                &x,
            )[0]
            .tanh();
            let dir = linear(
                t(&format!("{head}.direction.weight")),
                t(&format!("{head}.direction.bias")),
                &x,
            );
            let (tv, dv) = if head == "head_7d" {
                (&mut out.trend_7d, &mut out.direction_7d)
            } else {
                (&mut out.trend_30d, &mut out.direction_30d)
            };
            tv.push(trend as f32);
            dv.extend(dir.iter().map(|v| *v as f32));
        }
        out.attention.extend(avg_w.iter().map(|v| *v as f32));
    }
    out
}
