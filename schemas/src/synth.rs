//! Synthetic weekly rows with a learnable signal, for tests and demos that must not depend on
//! downloads.
//!
//! Each ticker has a hidden drift `m` that follows an AR(1) process (`m_t = 0.85 m_{t-1} + u`).
//! Next week's return is `r_{t+1} = m_t + e` with the noise `e` about as large as the drift, so
//! the sign of the next return is predictable well above chance (about 75% from `m_t` alone).
//! Features: `feature_0` is a noisy reading of `m_t`, `feature_1..=4` are the last four weekly
//! returns, `feature_5` a 4-week realised volatility, `feature_6` a price level (hundreds, to
//! exercise normalisation) and the rest is noise of assorted scales and offsets. Labels follow
//! DESIGN.md's form: `trend_7day = tanh(r_{t+1} / sigma)`, `trend_30day = tanh(r_{t+1..t+4} /
//! (sigma sqrt(30/7)))` with sigma = 0.02; the last week has no 7-day label and the last four
//! have no 30-day label. Weeks are Fridays from 2015-01-02. Same seed, same rows.

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::{WeeklyRow, NUM_FEATURES};

const SIGMA: f64 = 0.02;

/// `n_tickers` tickers (`SYN000`, `SYN001`, ...) x `n_weeks` consecutive weeks, ticker-major.
pub fn synthetic_rows(n_tickers: usize, n_weeks: usize, seed: u64) -> Vec<WeeklyRow> {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = NaiveDate::from_ymd_opt(2015, 1, 2).expect("valid date");
    let drift_noise = Normal::new(0.0, 0.011).expect("valid");
    let ret_noise = Normal::new(0.0, 0.015).expect("valid");
    let obs_noise = Normal::new(0.0, 0.004).expect("valid");
    let std_normal = Normal::new(0.0, 1.0).expect("valid");
    let mut rows = Vec::with_capacity(n_tickers * n_weeks);
    for t in 0..n_tickers {
        // Burn in the drift so the first weeks are already in the stationary regime.
        let mut m = 0.0f64;
        for _ in 0..20 {
            m = 0.85 * m + drift_noise.sample(&mut rng);
        }
        let scales: Vec<f64> = (0..NUM_FEATURES)
            .map(|_| 10f64.powf(rng.gen_range(-2.0..2.0)))
            .collect();
        let offsets: Vec<f64> = (0..NUM_FEATURES)
            .map(|_| rng.gen_range(-5.0..5.0))
            .collect();
        let mut drifts = Vec::with_capacity(n_weeks);
        let mut returns = Vec::with_capacity(n_weeks + 1); // returns[w] = return into week w
        let mut price = 100.0 * (1.0 + rng.gen_range(0.0..1.0));
        returns.push(0.0);
        for _ in 0..n_weeks {
            drifts.push(m);
            let r = m + ret_noise.sample(&mut rng);
            returns.push(r);
            m = 0.85 * m + drift_noise.sample(&mut rng);
        }
        for w in 0..n_weeks {
            price *= 1.0 + returns[w];
            let lag = |k: usize| if w >= k { returns[w - k] } else { 0.0 };
            let recent: Vec<f64> = (0..4).map(lag).collect();
            let mean = recent.iter().sum::<f64>() / 4.0;
            let vol = (recent.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
            let mut f = Vec::with_capacity(NUM_FEATURES);
            f.push(drifts[w] + obs_noise.sample(&mut rng));
            f.extend_from_slice(&recent);
            f.push(vol);
            f.push(price);
            for j in f.len()..NUM_FEATURES {
                f.push(offsets[j] + scales[j] * std_normal.sample(&mut rng));
            }
            // The return from week w to week w+h is returns[w+1..=w+h]; known only inside the data.
            let label = |h: usize, scale: f64| -> Option<f32> {
                (w + h < n_weeks).then(|| {
                    let r: f64 = (1..=h).map(|k| returns[w + k]).sum();
                    (r / (SIGMA * scale)).tanh() as f32
                })
            };
            rows.push(WeeklyRow {
                ticker: format!("SYN{t:03}"),
                week: start + Duration::weeks(w as i64),
                features: f.into_iter().map(|v| v as f32).collect(),
                trend_7day: label(1, 1.0),
                trend_30day: label(4, (30.0f64 / 7.0).sqrt()),
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_complete_and_labelled_as_documented() {
        let a = synthetic_rows(3, 30, 7);
        assert_eq!(a, synthetic_rows(3, 30, 7));
        assert_ne!(a, synthetic_rows(3, 30, 8));
        assert_eq!(a.len(), 90);
        let t0: Vec<_> = a.iter().filter(|r| r.ticker == "SYN000").collect();
        assert!(t0
            .iter()
            .all(|r| r.features.len() == NUM_FEATURES && r.features.iter().all(|v| v.is_finite())));
        assert!(t0[28].trend_7day.is_some() && t0[29].trend_7day.is_none());
        assert!(t0[25].trend_30day.is_some() && t0[26].trend_30day.is_none());
        assert_eq!(t0[1].week - t0[0].week, Duration::weeks(1));
    }

    #[test]
    fn feature_0_predicts_the_7day_direction() {
        let rows = synthetic_rows(20, 200, 1);
        let (mut hit, mut n) = (0, 0);
        for r in &rows {
            if let Some(t) = r.trend_7day {
                n += 1;
                if (r.features[0] > 0.0) == (t > 0.0) {
                    hit += 1;
                }
            }
        }
        let acc = hit as f64 / n as f64;
        assert!(acc > 0.68, "signal too weak: {acc}");
    }
}
