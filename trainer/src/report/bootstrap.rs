//! Week-block bootstrap: confidence intervals that respect the cross-sectional dependence of one
//! week's rows (they share the market's move), so rows of one week move together.
//!
//! A resample draws `n_weeks` weeks uniformly with replacement ([`draw_resamples`], seeded) and is
//! stored as each week's multiplicity; every row of a week drawn `m` times weighs `m`
//! ([`row_weights`]). A statistic's 95% interval is the 2.5th and 97.5th percentiles (linear
//! interpolation between order statistics, numpy's default) of its values over the resamples in
//! which it is defined ([`percentile_ci`]). The same resamples serve every method on the same rows,
//! so differences between methods ([`paired_diff_ci`]) are paired.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::metrics::{self, Forecast, Truth};

/// Week multiplicities of `b` resamples of `n_weeks` weeks, seeded.
pub fn draw_resamples(n_weeks: usize, b: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..b)
        .map(|_| {
            let mut m = vec![0u32; n_weeks];
            for _ in 0..n_weeks {
                m[rng.gen_range(0..n_weeks)] += 1;
            }
            m
        })
        .collect()
}

/// Row weights of one resample: the multiplicity of each row's week.
pub fn row_weights(week_of_row: &[usize], mult: &[u32]) -> Vec<f64> {
    week_of_row.iter().map(|&w| f64::from(mult[w])).collect()
}

/// The `q` quantile (0..=1) of sorted values, linear interpolation between order statistics.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The 95% percentile interval of the defined values; `None` when none is.
pub fn percentile_ci(values: &[Option<f64>]) -> Option<[f64; 2]> {
    let mut v: Vec<f64> = values.iter().flatten().copied().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some([percentile(&v, 0.025), percentile(&v, 0.975)])
}

/// 95% interval of `a - b` over resamples where both are defined.
pub fn paired_diff_ci(a: &[Option<f64>], b: &[Option<f64>]) -> Option<[f64; 2]> {
    let d: Vec<Option<f64>> = a.iter().zip(b).map(|(x, y)| Some((*x)? - (*y)?)).collect();
    percentile_ci(&d)
}

/// One method's metrics on a set of rows, with week-block bootstrap 95% intervals (`*_ci`,
/// `[lo, hi]`). See [`super::metrics`] for the definitions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSet {
    /// Rows.
    pub n: usize,
    /// Distinct weeks among them (the bootstrap's blocks).
    pub weeks: usize,
    /// Share of up labels (the accuracy of always answering up).
    pub up_rate: f64,
    /// Direction accuracy.
    pub accuracy: Option<f64>,
    /// Its 95% interval.
    pub accuracy_ci: Option<[f64; 2]>,
    /// ROC AUC of the method's score.
    pub auc: Option<f64>,
    /// Its 95% interval.
    pub auc_ci: Option<[f64; 2]>,
    /// Brier score of `p_up`.
    pub brier: Option<f64>,
    /// Its 95% interval.
    pub brier_ci: Option<[f64; 2]>,
    /// Log loss of `p_up`.
    pub log_loss: Option<f64>,
    /// Its 95% interval.
    pub log_loss_ci: Option<[f64; 2]>,
    /// Mean absolute error of the predicted trend.
    pub trend_mae: Option<f64>,
    /// Pearson correlation of predicted and realised trend.
    pub pearson: Option<f64>,
    /// Its 95% interval.
    pub pearson_ci: Option<[f64; 2]>,
    /// Mean weekly cross-sectional rank correlation (IC) of the score with the realised trend.
    pub ic_mean: Option<f64>,
    /// Its 95% interval.
    pub ic_mean_ci: Option<[f64; 2]>,
    /// t-statistic of the weekly ICs.
    pub ic_t: Option<f64>,
    /// Weeks with an IC (at least 3 rows, neither side constant).
    pub ic_weeks: usize,
    /// Accuracy in each resample (for paired differences; not written).
    #[serde(skip)]
    pub boot_accuracy: Vec<Option<f64>>,
    /// AUC in each resample (not written).
    #[serde(skip)]
    pub boot_auc: Vec<Option<f64>>,
}

/// Rows grouped by week for the bootstrap: `week_of_row[i]` in `0..n_weeks`.
#[derive(Clone, Debug, PartialEq)]
pub struct WeekBlocks {
    /// Block (week) index of each row.
    pub week_of_row: Vec<usize>,
    /// Number of blocks.
    pub n_weeks: usize,
}

impl WeekBlocks {
    /// Blocks from any per-row week key (dates as days, say): equal keys share a block.
    pub fn from_keys<K: Ord + Copy>(keys: &[K]) -> Self {
        let mut distinct: Vec<K> = keys.to_vec();
        distinct.sort();
        distinct.dedup();
        let week_of_row = keys
            .iter()
            .map(|k| distinct.binary_search(k).expect("present"))
            .collect();
        Self {
            week_of_row,
            n_weeks: distinct.len(),
        }
    }

    /// Rows of each block.
    pub fn rows_of_week(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.n_weeks];
        for (i, &w) in self.week_of_row.iter().enumerate() {
            out[w].push(i);
        }
        out
    }
}

/// Per-week IC of `score` against the realised trend.
pub fn weekly_ics(f: &Forecast, t: &Truth, blocks: &WeekBlocks) -> Vec<Option<f64>> {
    blocks
        .rows_of_week()
        .iter()
        .map(|rows| {
            let s: Vec<f64> = rows.iter().map(|&i| f.score[i]).collect();
            let y: Vec<f64> = rows.iter().map(|&i| t.trend[i]).collect();
            metrics::spearman(&s, &y)
        })
        .collect()
}

fn weighted_ic_mean(ics: &[Option<f64>], mult: &[u32]) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0.0);
    for (ic, &m) in ics.iter().zip(mult) {
        if let Some(v) = ic {
            s += v * f64::from(m);
            n += f64::from(m);
        }
    }
    (n > 0.0).then(|| s / n)
}

/// All metrics of `f` on the rows of `t` (with their week `blocks`), each with its interval over
/// `resamples` (week multiplicities, [`draw_resamples`]).
pub fn evaluate(f: &Forecast, t: &Truth, blocks: &WeekBlocks, resamples: &[Vec<u32>]) -> MetricSet {
    let n = f.len();
    assert_eq!(t.trend.len(), n, "forecast and truth differ in length");
    let order = metrics::score_order(&f.score);
    let ics = weekly_ics(f, t, blocks);
    let (ic_mean, ic_t, ic_weeks) = metrics::ic_summary(&ics);
    let point = |w: &[f64]| {
        (
            metrics::accuracy(&f.pred_up, &t.up, w),
            metrics::auc_sorted(&f.score, &t.up, w, &order),
            metrics::brier(&f.p_up, &t.up, w),
            metrics::log_loss(&f.p_up, &t.up, w),
            metrics::pearson(&f.trend, &t.trend, w),
        )
    };
    let ones = vec![1.0; n];
    let (accuracy, auc, brier, log_loss, pearson) = point(&ones);
    let mut boot: [Vec<Option<f64>>; 6] = Default::default();
    for mult in resamples {
        let w = row_weights(&blocks.week_of_row, mult);
        let (a, u, b, l, p) = point(&w);
        for (v, x) in boot
            .iter_mut()
            .zip([a, u, b, l, p, weighted_ic_mean(&ics, mult)])
        {
            v.push(x);
        }
    }
    MetricSet {
        n,
        weeks: blocks.n_weeks,
        up_rate: if n == 0 {
            0.0
        } else {
            t.up.iter().filter(|&&u| u).count() as f64 / n as f64
        },
        accuracy,
        accuracy_ci: percentile_ci(&boot[0]),
        auc,
        auc_ci: percentile_ci(&boot[1]),
        brier,
        brier_ci: percentile_ci(&boot[2]),
        log_loss,
        log_loss_ci: percentile_ci(&boot[3]),
        trend_mae: metrics::mae(&f.trend, &t.trend, &ones),
        pearson,
        pearson_ci: percentile_ci(&boot[4]),
        ic_mean,
        ic_mean_ci: percentile_ci(&boot[5]),
        ic_t,
        ic_weeks,
        boot_accuracy: std::mem::take(&mut boot[0]),
        boot_auc: std::mem::take(&mut boot[1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resamples_are_seeded_and_draw_n_weeks() {
        let a = draw_resamples(7, 20, 3);
        assert_eq!(a, draw_resamples(7, 20, 3));
        assert_ne!(a, draw_resamples(7, 20, 4));
        assert!(a.iter().all(|m| m.iter().sum::<u32>() == 7));
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 1.0), 5.0);
        assert!((percentile(&v, 0.025) - 1.1).abs() < 1e-12);
        assert!((percentile(&v, 0.975) - 4.9).abs() < 1e-12);
        assert_eq!(percentile_ci(&[None, None]), None);
    }
}
