//! The trendscore model of DESIGN.md in tch: BiLSTM encoder, multi-head temporal attention with
//! the projected final hidden state as the query, and two heads (7d, 30d) of trend + direction.
//!
//! Parameters live in a [`tch::nn::VarStore`] under PyTorch's names (`encoder.lstm.weight_ih_l0`,
//! `attention.in_proj_weight`, `head_7d.hidden.0.weight`, ...), so `model.safetensors` loads into
//! `tests/python/reference_model.py` with `load_state_dict(strict=True)`. Initialisation follows
//! PyTorch's defaults for each module (see [`torch_linear`]: tch's own `nn::linear` default is
//! sqrt(6) times wider than PyTorch's).

use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};
use trendscore_schemas::checkpoint::OUTPUT_NAMES;

use crate::config::ModelConfig;

/// The five outputs, named as the ONNX outputs.
#[derive(Debug)]
pub struct ModelOutput {
    /// `7day_trend`: (batch, 1), in (-1, 1).
    pub trend_7d: Tensor,
    /// `7day_direction`: (batch, 2) logits, index 1 = up.
    pub direction_7d: Tensor,
    /// `30day_trend`: (batch, 1).
    pub trend_30d: Tensor,
    /// `30day_direction`: (batch, 2) logits.
    pub direction_30d: Tensor,
    /// `attention_weights`: (batch, seq), averaged over heads, rows sum to 1.
    pub attention: Tensor,
}

impl ModelOutput {
    /// `(name, tensor)` pairs in the ONNX output order.
    pub fn named(&self) -> [(&'static str, &Tensor); 5] {
        let [t7, d7, t30, d30, att] = OUTPUT_NAMES;
        [
            (t7, &self.trend_7d),
            (d7, &self.direction_7d),
            (t30, &self.trend_30d),
            (d30, &self.direction_30d),
            (att, &self.attention),
        ]
    }
}

/// `nn.Linear`'s default initialisation in PyTorch: `kaiming_uniform_(a = sqrt(5))` for the
/// weight, i.e. U(-1/sqrt(in), 1/sqrt(in)), and U(-1/sqrt(in), 1/sqrt(in)) for the bias (or
/// `bias_init` when given, as `nn.MultiheadAttention` zeroes `out_proj.bias`). tch's
/// `LinearConfig::default()` uses Kaiming-uniform with the ReLU gain instead, U(-sqrt(6/in),
/// sqrt(6/in)): sqrt(6) ~ 2.45 times PyTorch's bound.
fn torch_linear(p: nn::Path, in_dim: i64, out_dim: i64, bias_init: Option<Init>) -> nn::Linear {
    let bound = 1.0 / (in_dim as f64).sqrt();
    let uniform = Init::Uniform {
        lo: -bound,
        up: bound,
    };
    nn::linear(
        p,
        in_dim,
        out_dim,
        nn::LinearConfig {
            ws_init: uniform,
            bs_init: Some(bias_init.unwrap_or(uniform)),
            bias: true,
        },
    )
}

/// One prediction head: `hidden.{i}` Linear+ReLU+Dropout layers, then `trend` and `direction`.
#[derive(Debug)]
struct Head {
    hidden: Vec<nn::Linear>,
    trend: nn::Linear,
    direction: nn::Linear,
    dropout: f64,
}

impl Head {
    fn new(p: nn::Path, in_dim: usize, dims: &[usize], dropout: f64) -> Self {
        let hp = &p / "hidden";
        let mut prev = in_dim as i64;
        let mut hidden = Vec::with_capacity(dims.len());
        for (i, &d) in dims.iter().enumerate() {
            hidden.push(torch_linear(&hp / i, prev, d as i64, None));
            prev = d as i64;
        }
        Self {
            hidden,
            trend: torch_linear(&p / "trend", prev, 1, None),
            direction: torch_linear(&p / "direction", prev, 2, None),
            dropout,
        }
    }

    /// `h` (batch, in_dim) -> (trend (batch, 1), direction logits (batch, 2)).
    fn forward(&self, h: &Tensor, train: bool) -> (Tensor, Tensor) {
        let mut h = h.shallow_clone();
        for lin in &self.hidden {
            h = lin.forward(&h).relu().dropout(self.dropout, train);
        }
        (self.trend.forward(&h).tanh(), self.direction.forward(&h))
    }
}

/// The model. Build it inside a `VarStore` root; `forward` takes normalised input.
#[derive(Debug)]
pub struct TrendModel {
    cfg: ModelConfig,
    lstm_weights: Vec<Tensor>,
    projection: Option<nn::Linear>,
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    head_7d: Head,
    head_30d: Head,
}

impl TrendModel {
    /// Creates the parameters under `root` (normally `vs.root()`), initialised like PyTorch:
    /// LSTM U(-1/sqrt(hidden), 1/sqrt(hidden)); attention in-projection Xavier-uniform with zero
    /// bias, out-projection zero bias; linear layers (projection, out-projection weight, heads)
    /// U(-1/sqrt(in), 1/sqrt(in)) as [`torch_linear`].
    pub fn new(root: &nn::Path, cfg: &ModelConfig) -> Self {
        let h = cfg.hidden_dim as i64;
        let dirs = if cfg.bidirectional { 2 } else { 1 };
        let k = 1.0 / (cfg.hidden_dim as f64).sqrt();
        let uni = Init::Uniform { lo: -k, up: k };
        let lstm_p = root / "encoder" / "lstm";
        let mut lstm_weights = Vec::new();
        for layer in 0..cfg.num_lstm_layers {
            for dir in 0..dirs {
                let in_dim = if layer == 0 {
                    cfg.input_dim as i64
                } else {
                    h * dirs
                };
                let sfx = if dir == 1 { "_reverse" } else { "" };
                lstm_weights.push(lstm_p.var(
                    &format!("weight_ih_l{layer}{sfx}"),
                    &[4 * h, in_dim],
                    uni,
                ));
                lstm_weights.push(lstm_p.var(
                    &format!("weight_hh_l{layer}{sfx}"),
                    &[4 * h, h],
                    uni,
                ));
                lstm_weights.push(lstm_p.var(&format!("bias_ih_l{layer}{sfx}"), &[4 * h], uni));
                lstm_weights.push(lstm_p.var(&format!("bias_hh_l{layer}{sfx}"), &[4 * h], uni));
            }
        }
        let projection = cfg
            .bidirectional
            .then(|| torch_linear(root / "encoder" / "projection", 2 * h, h, None));
        let att = root / "attention";
        let xavier = (6.0 / (h + 3 * h) as f64).sqrt();
        let in_proj_weight = att.var(
            "in_proj_weight",
            &[3 * h, h],
            Init::Uniform {
                lo: -xavier,
                up: xavier,
            },
        );
        let in_proj_bias = att.var("in_proj_bias", &[3 * h], Init::Const(0.0));
        let out_proj = torch_linear(&att / "out_proj", h, h, Some(Init::Const(0.0)));
        let dims = &cfg.head_hidden_dims;
        Self {
            cfg: cfg.clone(),
            lstm_weights,
            projection,
            in_proj_weight,
            in_proj_bias,
            out_proj,
            head_7d: Head::new(root / "head_7d", cfg.hidden_dim, dims, cfg.dropout_rate),
            head_30d: Head::new(root / "head_30d", cfg.hidden_dim, dims, cfg.dropout_rate),
        }
    }

    /// The model sizes.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The LSTM's weights in the order the LSTM takes them (per layer and direction: w_ih,
    /// w_hh, b_ih, b_hh), for the optimiser's buffer layout ([`crate::optim::layout_order`]).
    pub fn lstm_weights(&self) -> Vec<&Tensor> {
        self.lstm_weights.iter().collect()
    }

    /// `x`: (batch, seq, input_dim) float32, already normalised. `train` enables dropout.
    pub fn forward(&self, x: &Tensor, train: bool) -> ModelOutput {
        let (b, s, _) = x.size3().expect("input must be (batch, seq, input_dim)");
        let h = self.cfg.hidden_dim as i64;
        let layers = self.cfg.num_lstm_layers as i64;
        let dirs = if self.cfg.bidirectional { 2 } else { 1 };
        let zeros = Tensor::zeros([layers * dirs, b, h], (x.kind(), x.device()));
        let lstm_dropout = if layers > 1 {
            self.cfg.dropout_rate
        } else {
            0.0
        };
        // out (b, s, dirs*h); hn (layers*dirs, b, h)
        let (out, hn, _cn) = x.lstm(
            &[&zeros, &zeros],
            &self.lstm_weights.iter().collect::<Vec<_>>(),
            true,
            layers,
            lstm_dropout,
            train,
            self.cfg.bidirectional,
            true,
        );
        let (enc, query) = match &self.projection {
            Some(proj) => {
                let n = layers * dirs;
                // Last layer: forward state at t = s-1, backward state at t = 0.
                let fin = Tensor::cat(&[hn.get(n - 2), hn.get(n - 1)], -1); // (b, 2h)
                (proj.forward(&out), proj.forward(&fin).unsqueeze(1)) // (b, s, h), (b, 1, h)
            }
            None => (out, hn.get(layers - 1).unsqueeze(1)),
        };
        let (ctx, attention) = self.attention(&query, &enc, train);
        let (trend_7d, direction_7d) = self.head_7d.forward(&ctx, train);
        let (trend_30d, direction_30d) = self.head_30d.forward(&ctx, train);
        debug_assert_eq!(attention.size(), [b, s]);
        ModelOutput {
            trend_7d,
            direction_7d,
            trend_30d,
            direction_30d,
            attention,
        }
    }

    /// PyTorch `nn.MultiheadAttention` (batch-first) for one query step.
    /// `query` (b, 1, h), `enc` (b, s, h) -> (context (b, h), weights averaged over heads (b, s)).
    fn attention(&self, query: &Tensor, enc: &Tensor, train: bool) -> (Tensor, Tensor) {
        let (b, s, h) = enc.size3().expect("enc is (b, s, h)");
        let nh = self.cfg.num_attention_heads as i64;
        let d = h / nh;
        let w = self.in_proj_weight.chunk(3, 0);
        let bias = self.in_proj_bias.chunk(3, 0);
        let q = query.linear(&w[0], Some(&bias[0])); // (b, 1, h)
        let k = enc.linear(&w[1], Some(&bias[1])); // (b, s, h)
        let v = enc.linear(&w[2], Some(&bias[2]));
        let q = q.view([b, 1, nh, d]).transpose(1, 2); // (b, nh, 1, d)
        let k = k.view([b, s, nh, d]).transpose(1, 2); // (b, nh, s, d)
        let v = v.view([b, s, nh, d]).transpose(1, 2);
        let scale = (1.0 / d as f64).sqrt();
        let scores = (q * scale).matmul(&k.transpose(-2, -1)); // (b, nh, 1, s)
        let weights = scores.softmax(-1, Kind::Float);
        let avg = weights.mean_dim(1, false, Kind::Float).squeeze_dim(1); // (b, s)
        let dropped = weights.dropout(self.cfg.dropout_rate, train);
        let ctx = dropped.matmul(&v).transpose(1, 2).reshape([b, h]); // (b, h)
        (self.out_proj.forward(&ctx), avg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ModelConfig {
        ModelConfig {
            input_dim: 5,
            hidden_dim: 8,
            num_lstm_layers: 2,
            num_attention_heads: 2,
            dropout_rate: 0.1,
            bidirectional: true,
            head_hidden_dims: vec![6, 4],
        }
    }

    #[test]
    fn parameter_names_and_shapes_follow_pytorch() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _m = TrendModel::new(&vs.root(), &small());
        let vars = vs.variables();
        let shape = |n: &str| vars.get(n).unwrap_or_else(|| panic!("missing {n}")).size();
        assert_eq!(shape("encoder.lstm.weight_ih_l0"), [32, 5]);
        assert_eq!(shape("encoder.lstm.weight_ih_l1_reverse"), [32, 16]);
        assert_eq!(shape("encoder.lstm.bias_hh_l1"), [32]);
        assert_eq!(shape("encoder.projection.weight"), [8, 16]);
        assert_eq!(shape("attention.in_proj_weight"), [24, 8]);
        assert_eq!(shape("attention.out_proj.bias"), [8]);
        assert_eq!(shape("head_7d.hidden.0.weight"), [6, 8]);
        assert_eq!(shape("head_30d.hidden.1.weight"), [4, 6]);
        assert_eq!(shape("head_30d.trend.weight"), [1, 4]);
        assert_eq!(shape("head_7d.direction.weight"), [2, 4]);
        // 2 layers x 2 dirs x 4 + projection 2 + attention 4 + heads 2 x (4 + 4)
        assert_eq!(vars.len(), 16 + 2 + 4 + 16);
    }

    #[test]
    fn parameters_are_exactly_the_contracts_expected_tensors() {
        for bidirectional in [true, false] {
            let cfg = ModelConfig {
                bidirectional,
                num_lstm_layers: 3,
                head_hidden_dims: vec![5],
                ..small()
            };
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let _m = TrendModel::new(&vs.root(), &cfg);
            let got: std::collections::BTreeMap<String, Vec<usize>> = vs
                .variables()
                .into_iter()
                .map(|(n, t)| (n, t.size().into_iter().map(|d| d as usize).collect()))
                .collect();
            assert_eq!(
                got,
                cfg.expected_tensors(),
                "bidirectional = {bidirectional}"
            );
        }
    }

    #[test]
    fn initialisation_has_pytorchs_default_bounds() {
        tch::manual_seed(1);
        let cfg = ModelConfig {
            hidden_dim: 64,
            head_hidden_dims: vec![48, 32],
            ..small()
        };
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _m = TrendModel::new(&vs.root(), &cfg);
        let vars = vs.variables();
        let h = 64.0f64;
        // (tensor, PyTorch's uniform bound); a U(-b, b) tensor has std b / sqrt(3).
        let xavier = (6.0 / (4.0 * h)).sqrt();
        for (name, bound) in [
            ("encoder.lstm.weight_hh_l0", 1.0 / h.sqrt()),
            ("encoder.projection.weight", 1.0 / (2.0 * h).sqrt()),
            ("encoder.projection.bias", 1.0 / (2.0 * h).sqrt()),
            ("attention.in_proj_weight", xavier),
            ("attention.out_proj.weight", 1.0 / h.sqrt()),
            ("head_7d.hidden.0.weight", 1.0 / h.sqrt()),
            ("head_30d.hidden.1.weight", 1.0 / 48.0f64.sqrt()),
            ("head_7d.direction.weight", 1.0 / 32.0f64.sqrt()),
        ] {
            let t = &vars[name];
            let max = t.abs().max().double_value(&[]);
            let std = t.std(true).double_value(&[]);
            assert!(max <= bound + 1e-7, "{name}: max {max} > bound {bound}");
            let want = bound / 3f64.sqrt();
            assert!(
                (std / want - 1.0).abs() < 0.15,
                "{name}: std {std}, PyTorch's {want}"
            );
        }
        for name in ["attention.in_proj_bias", "attention.out_proj.bias"] {
            assert_eq!(vars[name].abs().max().double_value(&[]), 0.0, "{name}");
        }
    }

    #[test]
    fn output_shapes_and_attention_sums_to_one() {
        tch::manual_seed(0);
        for bidirectional in [true, false] {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let cfg = ModelConfig {
                bidirectional,
                ..small()
            };
            let m = TrendModel::new(&vs.root(), &cfg);
            let x = Tensor::randn([3, 7, 5], (Kind::Float, tch::Device::Cpu));
            let out = m.forward(&x, false);
            assert_eq!(out.trend_7d.size(), [3, 1]);
            assert_eq!(out.direction_30d.size(), [3, 2]);
            assert_eq!(out.attention.size(), [3, 7]);
            let sums =
                Vec::<f32>::try_from(out.attention.sum_dim_intlist(1, false, Kind::Float)).unwrap();
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
            let t = Vec::<f32>::try_from(out.trend_7d.flatten(0, -1)).unwrap();
            assert!(t.iter().all(|v| v.abs() < 1.0));
            // Eval mode is deterministic; train mode (dropout) is not.
            let again = m.forward(&x, false);
            assert!(out.trend_30d.allclose(&again.trend_30d, 0.0, 0.0, false));
        }
    }
}
