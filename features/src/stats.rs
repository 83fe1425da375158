//! Small numeric helpers on slices (f64), each a plain function of its input so tests can check
//! them by hand. Degenerate inputs (fewer than two values, zero variance) return the documented
//! neutral value instead of NaN.

/// Arithmetic mean; 0 for an empty slice.
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        0.0
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

/// Sample standard deviation (n - 1 denominator); 0 for fewer than two values.
pub fn stdev(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (x.len() - 1) as f64).sqrt()
}

/// Population standard deviation (n denominator, the Bollinger-band convention).
pub fn stdev_pop(x: &[f64]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let m = mean(x);
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / x.len() as f64).sqrt()
}

/// Central moments m2, m3, m4 (population).
fn moments(x: &[f64]) -> (f64, f64, f64) {
    let m = mean(x);
    let n = x.len().max(1) as f64;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for v in x {
        let d = v - m;
        let d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    (m2 / n, m3 / n, m4 / n)
}

/// Variance (per value) below which a series counts as constant: rounding noise of returns that
/// are equal on paper is far below it, real return variances (about 1e-4) far above.
const FLAT: f64 = 1e-20;

/// Skewness m3 / m2^1.5 (population moments); 0 when the values are constant.
pub fn skewness(x: &[f64]) -> f64 {
    let (m2, m3, _) = moments(x);
    if m2 <= FLAT {
        0.0
    } else {
        m3 / m2.powf(1.5)
    }
}

/// Excess kurtosis m4 / m2^2 - 3 (population moments); 0 when the values are constant.
pub fn excess_kurtosis(x: &[f64]) -> f64 {
    let (m2, _, m4) = moments(x);
    if m2 <= FLAT {
        0.0
    } else {
        m4 / (m2 * m2) - 3.0
    }
}

/// Exponential moving average with alpha = 2 / (n + 1), seeded with the first value; returns
/// the whole path (same length as `x`).
pub fn ema_path(x: &[f64], n: usize) -> Vec<f64> {
    let alpha = 2.0 / (n as f64 + 1.0);
    let mut out = Vec::with_capacity(x.len());
    let mut e = match x.first() {
        Some(&v) => v,
        None => return out,
    };
    for &v in x {
        e += alpha * (v - e);
        out.push(e);
    }
    out
}

/// RSI with simple averages (Cutler): gains / (gains + losses) over the consecutive changes of
/// `x`, in [0, 1]; 0.5 when nothing moved.
pub fn rsi(x: &[f64]) -> f64 {
    let (mut up, mut down) = (0.0, 0.0);
    for w in x.windows(2) {
        let d = w[1] - w[0];
        if d > 0.0 {
            up += d;
        } else {
            down -= d;
        }
    }
    if up + down <= 0.0 {
        0.5
    } else {
        up / (up + down)
    }
}

/// Ordinary least squares of y on x with intercept: (beta, correlation, residual sample stdev
/// with n - 2 denominator). beta = 0 and corr = 0 when x is constant; corr = 0 when y is constant.
pub fn regress(y: &[f64], x: &[f64]) -> (f64, f64, f64) {
    let n = y.len().min(x.len());
    let (y, x) = (&y[..n], &x[..n]);
    let (my, mx) = (mean(y), mean(x));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (xi, yi) in x.iter().zip(y) {
        let (dx, dy) = (xi - mx, yi - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let flat_x = sxx <= FLAT * n as f64;
    let flat_y = syy <= FLAT * n as f64;
    let beta = if flat_x { 0.0 } else { sxy / sxx };
    let corr = if flat_x || flat_y {
        0.0
    } else {
        (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0)
    };
    let alpha = my - beta * mx;
    let resid: f64 = x
        .iter()
        .zip(y)
        .map(|(xi, yi)| {
            let e = yi - alpha - beta * xi;
            e * e
        })
        .sum();
    let idio = if n > 2 {
        (resid / (n - 2) as f64).sqrt()
    } else {
        0.0
    };
    (beta, corr, idio)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn mean_and_stdev_by_hand() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations sum 32.
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(mean(&x), 5.0));
        assert!(close(stdev_pop(&x), 2.0)); // sqrt(32 / 8)
        assert!(close(stdev(&x), (32.0f64 / 7.0).sqrt()));
        assert_eq!(stdev(&[3.0]), 0.0);
    }

    #[test]
    fn skew_and_kurtosis_by_hand() {
        // 0, 0, 3: mean 1, deviations -1, -1, 2: m2 = 6/3 = 2, m3 = (-1-1+8)/3 = 2,
        // m4 = (1+1+16)/3 = 6. skew = 2 / 2^1.5 = 0.7071..., kurt = 6/4 - 3 = -1.5.
        let x = [0.0, 0.0, 3.0];
        assert!(close(skewness(&x), 2.0 / 2f64.powf(1.5)));
        assert!(close(excess_kurtosis(&x), -1.5));
        assert_eq!(skewness(&[1.0, 1.0, 1.0]), 0.0);
        assert_eq!(excess_kurtosis(&[1.0, 1.0, 1.0]), 0.0);
    }

    #[test]
    fn ema_by_hand() {
        // n = 3: alpha = 0.5. Path from seed 10: 10, 0.5*10+0.5*12 = 11, 0.5*11 + 0.5*14 = 12.5.
        let p = ema_path(&[10.0, 12.0, 14.0], 3);
        assert_eq!(p, vec![10.0, 11.0, 12.5]);
    }

    #[test]
    fn rsi_by_hand() {
        // changes +1, -0.5, +1.5, -0.5: gains 2.5, losses 1.0 -> 2.5 / 3.5.
        let x = [10.0, 11.0, 10.5, 12.0, 11.5];
        assert!(close(rsi(&x), 2.5 / 3.5));
        assert_eq!(rsi(&[5.0, 5.0, 5.0]), 0.5);
        assert_eq!(rsi(&[1.0, 2.0, 3.0]), 1.0);
        assert_eq!(rsi(&[3.0, 2.0, 1.0]), 0.0);
    }

    #[test]
    fn regression_by_hand() {
        // y = 2x exactly: beta 2, corr 1, residual 0.
        let x = [0.01, -0.02, 0.03, 0.00, -0.01];
        let y: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
        let (b, c, e) = regress(&y, &x);
        assert!(close(b, 2.0) && close(c, 1.0) && e.abs() < 1e-12);
        // y = -x + noise-free offset: beta -1, corr -1.
        let y: Vec<f64> = x.iter().map(|v| 0.5 - v).collect();
        let (b, c, _) = regress(&y, &x);
        assert!(close(b, -1.0) && close(c, -1.0));
        // x = (1, 2, 3), y = (1, 3, 2): mean x 2, mean y 2, sxy = (-1)(-1)+0+(1)(0) = 1, sxx = 2,
        // syy = 2 -> beta 0.5, corr 0.5; residuals y - (1 + 0.5 x) = -0.5, 1, -0.5 -> sum sq 1.5,
        // idio = sqrt(1.5 / 1).
        let (b, c, e) = regress(&[1.0, 3.0, 2.0], &[1.0, 2.0, 3.0]);
        assert!(close(b, 0.5) && close(c, 0.5) && close(e, 1.5f64.sqrt()));
        // constant x: beta and corr 0.
        let (b, c, _) = regress(&[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0]);
        assert_eq!((b, c), (0.0, 0.0));
    }
}
