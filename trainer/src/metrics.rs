//! Evaluation metrics per horizon, as pure functions on plain vectors.
//!
//! Trend: MSE, RMSE, MAE, Pearson correlation. Direction ("up" = label trend > 0, predicted up =
//! `p_up > 0.5`): accuracy, precision/recall/F1 of "up", ROC AUC of `p_up` (Mann-Whitney, ties
//! counted half). Undefined values (Pearson with a constant series, AUC with one class,
//! precision with no predicted up) are `None` (JSON `null`), never NaN.

use serde::{Deserialize, Serialize};

/// Metrics of one horizon.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HorizonMetrics {
    /// Samples.
    pub n: usize,
    /// Mean squared error of the trend.
    pub mse: f64,
    /// Root of `mse`.
    pub rmse: f64,
    /// Mean absolute error of the trend.
    pub mae: f64,
    /// Pearson correlation of predicted and true trend.
    pub pearson: Option<f64>,
    /// Share of correct up/down calls.
    pub direction_accuracy: f64,
    /// Precision of "up".
    pub precision: Option<f64>,
    /// Recall of "up".
    pub recall: Option<f64>,
    /// F1 of "up".
    pub f1: Option<f64>,
    /// ROC AUC of `p_up` against the true direction.
    pub roc_auc: Option<f64>,
    /// Share of "up" labels (the accuracy of always answering the majority is max(this, 1-this)).
    pub up_rate: f64,
}

/// Both horizons.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// 7-day horizon.
    #[serde(rename = "7d")]
    pub h7: HorizonMetrics,
    /// 30-day horizon.
    #[serde(rename = "30d")]
    pub h30: HorizonMetrics,
}

/// Computes the metrics of one horizon. `pred`/`truth` are trends, `p_up` the predicted
/// probability of "up", `up` the true direction.
pub fn horizon_metrics(pred: &[f32], truth: &[f32], p_up: &[f32], up: &[bool]) -> HorizonMetrics {
    let n = pred.len();
    assert!(
        truth.len() == n && p_up.len() == n && up.len() == n,
        "metric inputs differ in length"
    );
    if n == 0 {
        return HorizonMetrics::default();
    }
    let nf = n as f64;
    let (p, t): (Vec<f64>, Vec<f64>) = (
        pred.iter().map(|&v| v.into()).collect(),
        truth.iter().map(|&v| v.into()).collect(),
    );
    let mse = p.iter().zip(&t).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / nf;
    let mae = p.iter().zip(&t).map(|(a, b)| (a - b).abs()).sum::<f64>() / nf;
    let pearson = {
        let (mp, mt) = (p.iter().sum::<f64>() / nf, t.iter().sum::<f64>() / nf);
        let cov: f64 = p.iter().zip(&t).map(|(a, b)| (a - mp) * (b - mt)).sum();
        let vp: f64 = p.iter().map(|a| (a - mp).powi(2)).sum();
        let vt: f64 = t.iter().map(|b| (b - mt).powi(2)).sum();
        (vp > 0.0 && vt > 0.0).then(|| cov / (vp * vt).sqrt())
    };
    let pred_up: Vec<bool> = p_up.iter().map(|&q| q > 0.5).collect();
    let (mut tp, mut fp, mut fn_, mut correct) = (0usize, 0usize, 0usize, 0usize);
    for (&pu, &tu) in pred_up.iter().zip(up) {
        correct += usize::from(pu == tu);
        match (pu, tu) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    let precision = (tp + fp > 0).then(|| tp as f64 / (tp + fp) as f64);
    let recall = (tp + fn_ > 0).then(|| tp as f64 / (tp + fn_) as f64);
    let f1 = match (precision, recall) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    };
    HorizonMetrics {
        n,
        mse,
        rmse: mse.sqrt(),
        mae,
        pearson,
        direction_accuracy: correct as f64 / nf,
        precision,
        recall,
        f1,
        roc_auc: roc_auc(p_up, up),
        up_rate: up.iter().filter(|&&u| u).count() as f64 / nf,
    }
}

/// ROC AUC by ranks (average ranks for ties); `None` when one class is absent.
pub fn roc_auc(score: &[f32], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if positive[k] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos * n_neg) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_values() {
        let pred = [0.5f32, -0.5, 0.2, -0.1];
        let truth = [1.0f32, -1.0, -0.2, 0.1];
        let p_up = [0.9f32, 0.2, 0.6, 0.4];
        let up = [true, false, false, true];
        let m = horizon_metrics(&pred, &truth, &p_up, &up);
        assert!((m.mse - (0.25 + 0.25 + 0.16 + 0.04) / 4.0).abs() < 1e-6);
        assert!((m.mae - (0.5 + 0.5 + 0.4 + 0.2) / 4.0).abs() < 1e-7);
        assert_eq!(m.direction_accuracy, 0.5);
        assert_eq!(m.precision, Some(0.5));
        assert_eq!(m.recall, Some(0.5));
        assert_eq!(m.f1, Some(0.5));
        // Positive scores {0.9, 0.4}, negative {0.2, 0.6}: pairs won 3 of 4.
        assert_eq!(m.roc_auc, Some(0.75));
        assert!(m.pearson.unwrap() > 0.5);
    }

    #[test]
    fn degenerate_inputs_give_none_not_nan() {
        let m = horizon_metrics(&[0.1, 0.1], &[0.3, -0.2], &[0.4, 0.4], &[true, true]);
        assert_eq!(m.pearson, None);
        assert_eq!(m.roc_auc, None);
        assert_eq!(m.precision, None);
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert!(!serde_json::to_string(&m).unwrap().contains("NaN"));
    }
}
