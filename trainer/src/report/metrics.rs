//! The report's metrics, as pure functions of one method's forecasts and the truth on a set of
//! rows, each row weighted (a week-block bootstrap resample gives every row of a week drawn
//! `m` times the weight `m`; the point estimate weighs every row 1).
//!
//! - accuracy: weighted share of `pred_up == up`;
//! - ROC AUC of `score` against `up`: weighted Mann-Whitney, ties counted half; `None` with one class;
//! - Brier: weighted mean of `(p_up - up)^2`; log loss: weighted mean of
//!   `-ln(p)` of the true class, `p` clamped to `[1e-7, 1 - 1e-7]`;
//! - trend MAE and Pearson correlation of `trend` against the realised trend label;
//! - IC: per week, the Spearman rank correlation (average ranks for ties) of `score` against the
//!   realised trend over that week's rows; weeks with fewer than [`IC_MIN_ROWS`] rows or a
//!   constant side have no IC. `ic_mean` is the mean over weeks with one, `ic_t` its t-statistic
//!   `mean / (sd / sqrt(weeks))` (sample sd).
//!
//! Undefined values are `None` (JSON `null`), never NaN.

use trendscore_schemas::stats::average_ranks;

/// Fewest rows a week needs for its cross-sectional rank correlation.
pub const IC_MIN_ROWS: usize = 3;

/// Log-loss probabilities are clamped to `[P_EPS, 1 - P_EPS]`.
pub const P_EPS: f64 = 1e-7;

/// One method's forecasts for a set of rows (same order as [`Truth`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Forecast {
    /// Predicted direction (`true` = up).
    pub pred_up: Vec<bool>,
    /// Predicted probability of up (Brier, log loss, calibration).
    pub p_up: Vec<f64>,
    /// Ranking score (AUC and IC): higher = more likely up / larger return.
    pub score: Vec<f64>,
    /// Predicted trend (MAE, Pearson).
    pub trend: Vec<f64>,
}

impl Forecast {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.p_up.len()
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.p_up.is_empty()
    }
    /// The rows `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Forecast {
        Forecast {
            pred_up: idx.iter().map(|&i| self.pred_up[i]).collect(),
            p_up: idx.iter().map(|&i| self.p_up[i]).collect(),
            score: idx.iter().map(|&i| self.score[i]).collect(),
            trend: idx.iter().map(|&i| self.trend[i]).collect(),
        }
    }
}

/// The realised labels of a set of rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Truth {
    /// Realised trend label.
    pub trend: Vec<f64>,
    /// Realised direction (`trend > 0`).
    pub up: Vec<bool>,
}

impl Truth {
    /// From trend labels: up = trend > 0 (the training rule).
    pub fn from_trend(trend: Vec<f64>) -> Self {
        let up = trend.iter().map(|&t| t > 0.0).collect();
        Self { trend, up }
    }
    /// The rows `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Truth {
        Truth {
            trend: idx.iter().map(|&i| self.trend[i]).collect(),
            up: idx.iter().map(|&i| self.up[i]).collect(),
        }
    }
}

fn wsum(w: &[f64]) -> f64 {
    w.iter().sum()
}

/// Weighted share of correct direction calls; `None` when the weights sum to 0.
pub fn accuracy(pred_up: &[bool], up: &[bool], w: &[f64]) -> Option<f64> {
    let n = wsum(w);
    (n > 0.0).then(|| {
        pred_up
            .iter()
            .zip(up)
            .zip(w)
            .filter(|((p, u), _)| p == u)
            .map(|(_, w)| w)
            .sum::<f64>()
            / n
    })
}

/// Weighted Brier score.
pub fn brier(p_up: &[f64], up: &[bool], w: &[f64]) -> Option<f64> {
    let n = wsum(w);
    (n > 0.0).then(|| {
        p_up.iter()
            .zip(up)
            .zip(w)
            .map(|((p, &u), w)| w * (p - f64::from(u8::from(u))).powi(2))
            .sum::<f64>()
            / n
    })
}

/// Weighted log loss (natural log), probabilities clamped to `[P_EPS, 1 - P_EPS]`.
pub fn log_loss(p_up: &[f64], up: &[bool], w: &[f64]) -> Option<f64> {
    let n = wsum(w);
    (n > 0.0).then(|| {
        p_up.iter()
            .zip(up)
            .zip(w)
            .map(|((&p, &u), w)| {
                let p = p.clamp(P_EPS, 1.0 - P_EPS);
                -w * if u { p.ln() } else { (1.0 - p).ln() }
            })
            .sum::<f64>()
            / n
    })
}

/// Weighted mean absolute error.
pub fn mae(pred: &[f64], truth: &[f64], w: &[f64]) -> Option<f64> {
    let n = wsum(w);
    (n > 0.0).then(|| {
        pred.iter()
            .zip(truth)
            .zip(w)
            .map(|((a, b), w)| w * (a - b).abs())
            .sum::<f64>()
            / n
    })
}

/// Weighted Pearson correlation; `None` when either side is constant.
pub fn pearson(x: &[f64], y: &[f64], w: &[f64]) -> Option<f64> {
    let n = wsum(w);
    if n <= 0.0 {
        return None;
    }
    let mx = x.iter().zip(w).map(|(a, w)| a * w).sum::<f64>() / n;
    let my = y.iter().zip(w).map(|(a, w)| a * w).sum::<f64>() / n;
    let (mut cxy, mut cxx, mut cyy) = (0.0, 0.0, 0.0);
    for ((a, b), w) in x.iter().zip(y).zip(w) {
        cxy += w * (a - mx) * (b - my);
        cxx += w * (a - mx).powi(2);
        cyy += w * (b - my).powi(2);
    }
    (cxx > 1e-300 && cyy > 1e-300).then(|| (cxy / (cxx * cyy).sqrt()).clamp(-1.0, 1.0))
}

/// Row order of `score`, ascending (NaN-free input assumed), for [`auc_sorted`].
pub fn score_order(score: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    idx
}

/// Weighted ROC AUC of `score` against `up` with rows visited in `order` (ascending score):
/// every (positive, negative) pair counts its weight product, 1 when the positive scores higher,
/// 1/2 when tied. `None` when either class has no weight.
pub fn auc_sorted(score: &[f64], up: &[bool], w: &[f64], order: &[usize]) -> Option<f64> {
    let (mut neg_below, mut num) = (0.0f64, 0.0f64);
    let (mut pos_total, mut neg_total) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let (mut pos_g, mut neg_g) = (0.0, 0.0);
        while j < order.len() && score[order[j]] == score[order[i]] {
            let k = order[j];
            if up[k] {
                pos_g += w[k];
            } else {
                neg_g += w[k];
            }
            j += 1;
        }
        num += pos_g * neg_below + 0.5 * pos_g * neg_g;
        neg_below += neg_g;
        pos_total += pos_g;
        neg_total += neg_g;
        i = j;
    }
    (pos_total > 0.0 && neg_total > 0.0).then(|| num / (pos_total * neg_total))
}

/// Weighted ROC AUC (sorts `score` itself).
pub fn auc(score: &[f64], up: &[bool], w: &[f64]) -> Option<f64> {
    auc_sorted(score, up, w, &score_order(score))
}

/// Spearman rank correlation (Pearson of average ranks); `None` for fewer than
/// [`IC_MIN_ROWS`] rows or a constant side.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() < IC_MIN_ROWS {
        return None;
    }
    let ones = vec![1.0; x.len()];
    pearson(&average_ranks(x), &average_ranks(y), &ones)
}

/// Mean and t-statistic of a list of per-week ICs (`None` entries skipped): `(mean, t)`.
/// The t-statistic needs two weeks and a non-zero spread.
pub fn ic_summary(ics: &[Option<f64>]) -> (Option<f64>, Option<f64>, usize) {
    let v: Vec<f64> = ics.iter().flatten().copied().collect();
    let n = v.len();
    if n == 0 {
        return (None, None, 0);
    }
    let m = v.iter().sum::<f64>() / n as f64;
    let t = (n >= 2)
        .then(|| {
            let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            (sd > 0.0).then(|| m / (sd / (n as f64).sqrt()))
        })
        .flatten();
    (Some(m), t, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_auc_equals_duplicated_rows() {
        let score = [0.1, 0.4, 0.4, 0.8, 0.3];
        let up = [false, true, false, true, true];
        let w = [2.0, 1.0, 3.0, 1.0, 0.0];
        // Duplicate each row w times and use unit weights.
        let (mut s2, mut u2) = (Vec::new(), Vec::new());
        for i in 0..5 {
            for _ in 0..w[i] as usize {
                s2.push(score[i]);
                u2.push(up[i]);
            }
        }
        let a = auc(&score, &up, &w).unwrap();
        let b = auc(&s2, &u2, &vec![1.0; s2.len()]).unwrap();
        assert!((a - b).abs() < 1e-12, "{a} {b}");
        let f: Vec<f32> = s2.iter().map(|&v| v as f32).collect();
        let c = crate::metrics::roc_auc(&f, &u2).unwrap();
        assert!((a - c).abs() < 1e-12, "{a} {c}");
    }

    #[test]
    fn undefined_values_are_none() {
        assert_eq!(auc(&[0.2, 0.3], &[true, true], &[1.0, 1.0]), None);
        assert_eq!(pearson(&[1.0, 1.0], &[0.0, 1.0], &[1.0, 1.0]), None);
        assert_eq!(spearman(&[1.0, 2.0], &[1.0, 2.0]), None);
        assert_eq!(accuracy(&[], &[], &[]), None);
        assert_eq!(ic_summary(&[None, Some(0.1)]), (Some(0.1), None, 1));
    }
}
