//! The outputs of one batch.

/// The five model outputs of a batch of `batch` windows, flattened row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelOutputs {
    /// Number of windows.
    pub batch: usize,
    /// Window length (sequence_length).
    pub seq_len: usize,
    /// `7day_trend`, shape (batch) (the ONNX (batch, 1) flattened).
    pub trend_7d: Vec<f32>,
    /// `7day_direction` logits, shape (batch, 2); index 1 = up.
    pub direction_7d: Vec<f32>,
    /// `30day_trend`, shape (batch).
    pub trend_30d: Vec<f32>,
    /// `30day_direction` logits, shape (batch, 2).
    pub direction_30d: Vec<f32>,
    /// `attention_weights`, shape (batch, seq_len), each row sums to 1.
    pub attention: Vec<f32>,
}

/// softmax([d0, d1])[1], computed stably.
fn p_up(d0: f32, d1: f32) -> f32 {
    // softmax[1] = 1 / (1 + exp(d0 - d1))
    let z = d0 - d1;
    if z > 0.0 {
        let e = (-z).exp();
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + z.exp())
    }
}

impl ModelOutputs {
    /// Probability that the 7-day return is positive for window `i`: softmax(direction)[1].
    pub fn p_up_7d(&self, i: usize) -> f32 {
        p_up(self.direction_7d[2 * i], self.direction_7d[2 * i + 1])
    }

    /// Probability that the 30-day return is positive for window `i`.
    pub fn p_up_30d(&self, i: usize) -> f32 {
        p_up(self.direction_30d[2 * i], self.direction_30d[2 * i + 1])
    }

    /// Attention weights of window `i`, length `seq_len`.
    pub fn attention_row(&self, i: usize) -> &[f32] {
        &self.attention[i * self.seq_len..(i + 1) * self.seq_len]
    }

    /// The output named by its ONNX name (see [`crate::OUTPUT_NAMES`]), flattened.
    pub fn by_name(&self, name: &str) -> Option<&[f32]> {
        match name {
            "7day_trend" => Some(&self.trend_7d),
            "7day_direction" => Some(&self.direction_7d),
            "30day_trend" => Some(&self.trend_30d),
            "30day_direction" => Some(&self.direction_30d),
            "attention_weights" => Some(&self.attention),
            _ => None,
        }
    }

    /// Checks that every output has the length its shape implies.
    pub(crate) fn check(self, backend: &'static str) -> Result<Self, crate::InferError> {
        let b = self.batch;
        let ok = self.trend_7d.len() == b
            && self.trend_30d.len() == b
            && self.direction_7d.len() == 2 * b
            && self.direction_30d.len() == 2 * b
            && self.attention.len() == b * self.seq_len;
        if ok {
            Ok(self)
        } else {
            Err(crate::InferError::Run {
                backend,
                reason: format!(
                    "output sizes do not match batch {b}: trend {} / {}, direction {} / {}, attention {}",
                    self.trend_7d.len(),
                    self.trend_30d.len(),
                    self.direction_7d.len(),
                    self.direction_30d.len(),
                    self.attention.len()
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outs() -> ModelOutputs {
        ModelOutputs {
            batch: 2,
            seq_len: 3,
            trend_7d: vec![0.1, -0.2],
            direction_7d: vec![0.0, 0.0, 1.0, -1.0],
            trend_30d: vec![0.3, 0.4],
            direction_30d: vec![-100.0, 100.0, 2.0, 3.0],
            attention: vec![0.2, 0.3, 0.5, 1.0, 0.0, 0.0],
        }
    }

    #[test]
    fn p_up_is_softmax_index_one() {
        let o = outs();
        assert!((o.p_up_7d(0) - 0.5).abs() < 1e-7);
        let want = 1.0 / (1.0 + (2.0f32).exp());
        assert!((o.p_up_7d(1) - want).abs() < 1e-7);
        assert!(
            (o.p_up_30d(0) - 1.0).abs() < 1e-7,
            "no overflow for large logits"
        );
        let want = (3.0f32).exp() / ((2.0f32).exp() + (3.0f32).exp());
        assert!((o.p_up_30d(1) - want).abs() < 1e-6);
    }

    #[test]
    fn attention_row_slices_one_window() {
        let o = outs();
        assert_eq!(o.attention_row(1), &[1.0, 0.0, 0.0]);
        assert_eq!(o.by_name("30day_trend").unwrap(), &[0.3, 0.4]);
        assert!(o.by_name("nope").is_none());
    }
}
