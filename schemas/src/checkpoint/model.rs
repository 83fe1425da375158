//! The `model` section of `config.json`: the sizes of DESIGN.md's fixed architecture, and the
//! PyTorch names and shapes of every tensor `model.safetensors` holds for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SpecError;
use crate::NUM_FEATURES;

/// Model sizes (DESIGN.md "The model"; defaults in brackets there). The trainer reads them
/// from the `[model]` section of its TOML config and writes them to `config.json`; the
/// exporter rebuilds the graph from them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Number of input features per week; must equal the number of selected features.
    pub input_dim: usize,
    /// LSTM hidden size per direction; also the attention embedding size.
    pub hidden_dim: usize,
    /// Number of stacked LSTM layers.
    pub num_lstm_layers: usize,
    /// Attention heads; must divide `hidden_dim`.
    pub num_attention_heads: usize,
    /// Dropout between LSTM layers, on attention weights and in the heads (training only).
    pub dropout_rate: f64,
    /// Bidirectional LSTM (then a projection maps 2*hidden back to hidden).
    pub bidirectional: bool,
    /// Widths of the hidden layers of each prediction head.
    pub head_hidden_dims: Vec<usize>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            input_dim: NUM_FEATURES,
            hidden_dim: 128,
            num_lstm_layers: 2,
            num_attention_heads: 4,
            dropout_rate: 0.2,
            bidirectional: true,
            head_hidden_dims: vec![64, 32],
        }
    }
}

impl ModelConfig {
    /// Keys a `config.json` model section must carry (`dropout_rate` only matters in
    /// training and defaults).
    pub const REQUIRED_KEYS: [&'static str; 6] = [
        "input_dim",
        "hidden_dim",
        "num_lstm_layers",
        "num_attention_heads",
        "bidirectional",
        "head_hidden_dims",
    ];

    /// 2 when bidirectional, else 1.
    pub fn num_directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Checks the sizes: all >= 1, heads divide hidden, dropout in `[0, 1)`, no head width 0.
    pub fn validate(&self) -> Result<(), SpecError> {
        for (key, v) in [
            ("model.input_dim", self.input_dim),
            ("model.hidden_dim", self.hidden_dim),
            ("model.num_lstm_layers", self.num_lstm_layers),
            ("model.num_attention_heads", self.num_attention_heads),
        ] {
            if v == 0 {
                return Err(SpecError::Zero { key });
            }
        }
        if !self.hidden_dim.is_multiple_of(self.num_attention_heads) {
            return Err(SpecError::HeadsDoNotDivide {
                heads: self.num_attention_heads,
                hidden: self.hidden_dim,
            });
        }
        if !(0.0..1.0).contains(&self.dropout_rate) {
            return Err(SpecError::Dropout(self.dropout_rate));
        }
        if self.head_hidden_dims.contains(&0) {
            return Err(SpecError::ZeroHeadWidth(self.head_hidden_dims.clone()));
        }
        Ok(())
    }

    /// Every tensor of `model.safetensors` for this config, by PyTorch name, with its shape
    /// (DESIGN.md's parameter table). A checkpoint holds exactly these.
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

/// `""` for the forward direction, `"_reverse"` for the backward one (PyTorch's LSTM names).
pub fn direction_suffixes(bidirectional: bool) -> &'static [&'static str] {
    if bidirectional {
        &["", "_reverse"]
    } else {
        &[""]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_tensors_follow_designs_table() {
        let m = ModelConfig {
            input_dim: 5,
            hidden_dim: 8,
            num_lstm_layers: 2,
            num_attention_heads: 2,
            dropout_rate: 0.1,
            bidirectional: true,
            head_hidden_dims: vec![6, 4],
        };
        let t = m.expected_tensors();
        assert_eq!(t["encoder.lstm.weight_ih_l0"], [32, 5]);
        assert_eq!(t["encoder.lstm.weight_ih_l1_reverse"], [32, 16]);
        assert_eq!(t["encoder.projection.weight"], [8, 16]);
        assert_eq!(t["attention.in_proj_weight"], [24, 8]);
        assert_eq!(t["head_30d.hidden.1.weight"], [4, 6]);
        assert_eq!(t["head_7d.direction.weight"], [2, 4]);
        // 2 layers x 2 dirs x 4 + projection 2 + attention 4 + heads 2 x (4 + 4)
        assert_eq!(t.len(), 16 + 2 + 4 + 16);
        let uni = ModelConfig {
            bidirectional: false,
            ..m
        }
        .expected_tensors();
        assert_eq!(uni["encoder.lstm.weight_ih_l1"], [32, 8]);
        assert!(!uni
            .keys()
            .any(|k| k.contains("_reverse") || k.contains("projection")));
    }

    #[test]
    fn validate_names_the_key() {
        ModelConfig::default().validate().unwrap();
        let bad = |f: fn(&mut ModelConfig)| {
            let mut m = ModelConfig::default();
            f(&mut m);
            m.validate().unwrap_err().to_string()
        };
        assert!(bad(|m| m.hidden_dim = 0).contains("model.hidden_dim"));
        assert!(bad(|m| m.num_attention_heads = 3).contains("num_attention_heads (3)"));
        assert!(bad(|m| m.dropout_rate = 1.0).contains("dropout_rate"));
        assert!(bad(|m| m.dropout_rate = f64::NAN).contains("dropout_rate"));
        assert!(bad(|m| m.head_hidden_dims = vec![4, 0]).contains("head_hidden_dims"));
    }
}
