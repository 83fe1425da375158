//! The naive rules the model must beat, fit on the same training windows as the model of a fold
//! and scored on the same test windows. Pure functions; no libtorch.
//!
//! - `always_up`: says up every week; `p_up` = the base rate (share of up labels) of the fold's
//!   training windows, trend = their mean label; its score is constant (AUC 0.5, no IC).
//! - `last_sign`: says the sign of last week's move, read from the 7-day label of the window's
//!   second-to-last week (the return from that week to this one, known at this week's close).
//! - `momentum_4w`: says the sign of the last four weeks' move: the sum of `atanh` of the 7-day
//!   labels of the window's four weeks before the last (each label is `tanh(r / sigma)` with a
//!   trailing 26-week sigma that barely moves in four weeks, so this is the 4-week return's sign).
//!   Both sign rules read labels, not features, so they follow whatever target the rows carry
//!   (a relative target gives relative momentum). Their `p_up` and trend are the training
//!   windows' up-share and mean label among windows with the same signal; their score is the
//!   signal (1 up, 0 down), so AUC and IC rank by it. A window without the labels it needs
//!   (never with 12-week windows of real rows) gets the always-up forecast, score 1/2.
//! - `logistic`: L2-regularised logistic regression of up on the window's last week of features,
//!   standardised with the fold's training scaler; minimises mean log loss + `l2/2 * |w|^2` (the
//!   intercept is not penalised) by Newton's method (IRLS). Its trend is a ridge regression
//!   with the same penalty on the same inputs, clipped to [-1, 1].

use super::metrics::Forecast;

/// Inverse tanh with the argument clamped inside (-1, 1).
fn atanh_clamped(v: f64) -> f64 {
    v.clamp(-1.0 + 1e-6, 1.0 - 1e-6).atanh()
}

/// `last_sign` signal from the 7-day labels of a window's weeks before the last (oldest first):
/// the sign of the newest one.
pub fn last_sign_signal(past_7d: &[Option<f32>]) -> Option<bool> {
    past_7d.last().copied().flatten().map(|v| v > 0.0)
}

/// `momentum_4w` signal: the sign of the sum of `atanh` of the newest four of `past_7d`.
pub fn momentum_4w_signal(past_7d: &[Option<f32>]) -> Option<bool> {
    if past_7d.len() < 4 {
        return None;
    }
    let mut s = 0.0;
    for v in &past_7d[past_7d.len() - 4..] {
        s += atanh_clamped(f64::from((*v)?));
    }
    Some(s > 0.0)
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v {
        s += x;
        n += 1;
    }
    (n > 0).then(|| s / n as f64)
}

/// Always-up: the base rate and mean label of the training windows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlwaysUp {
    /// Share of up labels.
    pub base_rate: f64,
    /// Mean trend label.
    pub mean_trend: f64,
}

impl AlwaysUp {
    /// Fits on training labels (trend values; up = > 0).
    pub fn fit(train_trend: &[f64]) -> Self {
        Self {
            base_rate: mean(train_trend.iter().map(|&t| f64::from(u8::from(t > 0.0))))
                .unwrap_or(0.5),
            mean_trend: mean(train_trend.iter().copied()).unwrap_or(0.0),
        }
    }

    /// The forecast for `n` rows.
    pub fn predict(&self, n: usize) -> Forecast {
        Forecast {
            pred_up: vec![true; n],
            p_up: vec![self.base_rate; n],
            score: vec![0.0; n],
            trend: vec![self.mean_trend; n],
        }
    }
}

/// A sign rule (`last_sign`, `momentum_4w`) with its training calibration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SignRule {
    /// Training up-share among windows whose signal is up.
    pub p_up_if_up: f64,
    /// Training up-share among windows whose signal is down.
    pub p_up_if_down: f64,
    /// Training mean label when the signal is up.
    pub trend_if_up: f64,
    /// Training mean label when the signal is down.
    pub trend_if_down: f64,
    /// Fallback for windows without a signal (and for a signal class absent in training).
    pub fallback: AlwaysUp,
}

impl SignRule {
    /// Fits on the training windows' signals and trend labels.
    pub fn fit(signals: &[Option<bool>], train_trend: &[f64]) -> Self {
        let fallback = AlwaysUp::fit(train_trend);
        let class = |want: bool| {
            let ys: Vec<f64> = signals
                .iter()
                .zip(train_trend)
                .filter(|(s, _)| **s == Some(want))
                .map(|(_, &y)| y)
                .collect();
            (
                mean(ys.iter().map(|&t| f64::from(u8::from(t > 0.0))))
                    .unwrap_or(fallback.base_rate),
                mean(ys.iter().copied()).unwrap_or(fallback.mean_trend),
            )
        };
        let ((pu, tu), (pd, td)) = (class(true), class(false));
        Self {
            p_up_if_up: pu,
            p_up_if_down: pd,
            trend_if_up: tu,
            trend_if_down: td,
            fallback,
        }
    }

    /// The forecast for test windows' signals.
    pub fn predict(&self, signals: &[Option<bool>]) -> Forecast {
        let mut f = Forecast::default();
        for s in signals {
            let (up, p, score, trend) = match s {
                Some(true) => (true, self.p_up_if_up, 1.0, self.trend_if_up),
                Some(false) => (false, self.p_up_if_down, 0.0, self.trend_if_down),
                None => (true, self.fallback.base_rate, 0.5, self.fallback.mean_trend),
            };
            f.pred_up.push(up);
            f.p_up.push(p);
            f.score.push(score);
            f.trend.push(trend);
        }
        f
    }
}

/// Solves `a x = b` for a symmetric positive definite `a` (d x d, row-major) by Cholesky;
/// `None` if `a` is not positive definite.
pub fn solve_spd(a: &[f64], b: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    let mut y = vec![0.0; d];
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * d + k] * y[k];
        }
        y[i] = s / l[i * d + i];
    }
    let mut x = vec![0.0; d];
    for i in (0..d).rev() {
        let mut s = y[i];
        for k in i + 1..d {
            s -= l[k * d + i] * x[k];
        }
        x[i] = s / l[i * d + i];
    }
    Some(x)
}

/// A linear model on `d` inputs: `coef[..d]` weights, `coef[d]` intercept.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// Weights then the intercept.
    pub coef: Vec<f64>,
}

impl Linear {
    /// `coef . x + intercept` for each row of `x` (n x d, row-major).
    pub fn decision(&self, x: &[f64]) -> Vec<f64> {
        let d = self.coef.len() - 1;
        assert!(d > 0, "a linear model needs at least one input");
        x.chunks(d)
            .map(|r| r.iter().zip(&self.coef).map(|(a, b)| a * b).sum::<f64>() + self.coef[d])
            .collect()
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Builds `X^T diag(v) X / n + l2 I` (intercept unpenalised) and `X^T r / n` with the intercept
/// column appended.
fn normal_equations(x: &[f64], d: usize, v: &[f64], r: &[f64], l2: f64) -> (Vec<f64>, Vec<f64>) {
    let n = v.len();
    let dd = d + 1;
    let mut h = vec![0.0; dd * dd];
    let mut g = vec![0.0; dd];
    let mut row = vec![1.0; dd];
    for i in 0..n {
        row[..d].copy_from_slice(&x[i * d..(i + 1) * d]);
        for a in 0..dd {
            let va = v[i] * row[a];
            g[a] += r[i] * row[a];
            for b in 0..=a {
                h[a * dd + b] += va * row[b];
            }
        }
    }
    let nf = n.max(1) as f64;
    for a in 0..dd {
        g[a] /= nf;
        for b in 0..=a {
            h[a * dd + b] /= nf;
            h[b * dd + a] = h[a * dd + b];
        }
        if a < d {
            h[a * dd + a] += l2;
        }
        // A whisker of ridge on every coefficient keeps a constant column solvable.
        h[a * dd + a] += 1e-10;
    }
    (h, g)
}

/// Logistic regression of `y` on `x` (n x d): minimises mean log loss + `l2/2 * |w|^2` by
/// Newton steps (halved while the objective rises) until the largest step is below 1e-9.
pub fn fit_logistic(x: &[f64], d: usize, y: &[bool], l2: f64) -> Linear {
    let n = y.len();
    let mut coef = vec![0.0; d + 1];
    let objective = |c: &[f64]| {
        let z = Linear { coef: c.to_vec() }.decision(x);
        let ll: f64 = z
            .iter()
            .zip(y)
            .map(|(&z, &u)| {
                // log(1 + e^z) - u z, computed stably.
                let sp = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                sp - if u { z } else { 0.0 }
            })
            .sum::<f64>()
            / n.max(1) as f64;
        ll + 0.5 * l2 * c[..d].iter().map(|w| w * w).sum::<f64>()
    };
    let mut obj = objective(&coef);
    for _ in 0..100 {
        let p: Vec<f64> = Linear { coef: coef.clone() }
            .decision(x)
            .into_iter()
            .map(sigmoid)
            .collect();
        let v: Vec<f64> = p.iter().map(|p| (p * (1.0 - p)).max(1e-12)).collect();
        let r: Vec<f64> = p
            .iter()
            .zip(y)
            .map(|(p, &u)| p - f64::from(u8::from(u)))
            .collect();
        let (h, mut g) = normal_equations(x, d, &v, &r, l2);
        for (gi, c) in g.iter_mut().zip(&coef).take(d) {
            *gi += l2 * c;
        }
        let Some(step) = solve_spd(&h, &g, d + 1) else {
            break;
        };
        let mut t = 1.0;
        let mut next: Vec<f64>;
        loop {
            next = coef.iter().zip(&step).map(|(c, s)| c - t * s).collect();
            let o = objective(&next);
            if o <= obj + 1e-15 || t < 1e-6 {
                obj = o;
                break;
            }
            t *= 0.5;
        }
        let largest = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
        coef = next;
        if largest < 1e-9 {
            break;
        }
    }
    Linear { coef }
}

/// Ridge regression of `y` on `x` (n x d): minimises mean squared error + `l2 * |w|^2`
/// (intercept unpenalised), solved exactly.
pub fn fit_ridge(x: &[f64], d: usize, y: &[f64], l2: f64) -> Linear {
    let ones = vec![1.0; y.len()];
    let (h, g) = normal_equations(x, d, &ones, y, l2);
    Linear {
        coef: solve_spd(&h, &g, d + 1).unwrap_or_else(|| vec![0.0; d + 1]),
    }
}

/// The `logistic` baseline of one horizon: direction and trend models.
#[derive(Clone, Debug, PartialEq)]
pub struct Logistic {
    /// Logistic regression of up.
    pub direction: Linear,
    /// Ridge regression of the trend.
    pub trend: Linear,
}

impl Logistic {
    /// Fits both on training inputs `x` (n x d) and trend labels (up = > 0).
    pub fn fit(x: &[f64], d: usize, train_trend: &[f64], l2: f64) -> Self {
        let up: Vec<bool> = train_trend.iter().map(|&t| t > 0.0).collect();
        Self {
            direction: fit_logistic(x, d, &up, l2),
            trend: fit_ridge(x, d, train_trend, l2),
        }
    }

    /// The forecast for test inputs `x` (n x d).
    pub fn predict(&self, x: &[f64]) -> Forecast {
        let p: Vec<f64> = self
            .direction
            .decision(x)
            .into_iter()
            .map(sigmoid)
            .collect();
        Forecast {
            pred_up: p.iter().map(|&p| p > 0.5).collect(),
            score: p.clone(),
            p_up: p,
            trend: self
                .trend
                .decision(x)
                .into_iter()
                .map(|t| t.clamp(-1.0, 1.0))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // [[4, 2], [2, 3]] x = [2, 1] -> x = [0.5, 0].
        let x = solve_spd(&[4.0, 2.0, 2.0, 3.0], &[2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        assert!(solve_spd(&[1.0, 2.0, 2.0, 1.0], &[1.0, 1.0], 2).is_none());
    }

    #[test]
    fn ridge_without_penalty_recovers_a_line() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let y = [1.0, 3.0, 5.0, 7.0];
        let m = fit_ridge(&x, 1, &y, 0.0);
        assert!(
            (m.coef[0] - 2.0).abs() < 1e-6 && (m.coef[1] - 1.0).abs() < 1e-6,
            "{m:?}"
        );
    }
}
