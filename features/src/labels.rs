//! Trend labels (shared/DESIGN.md "Labels").
//!
//! For a row at week date `t` with close `P_t` and horizon `h` calendar days:
//! `r_h = P(last close on or before t + h) / P_t - 1` and
//! `trend = tanh(r_h / (sigma_w * sqrt(h / 7)))`, where `sigma_w` is the sample stdev of the
//! last 26 weekly simple returns (`W[j]/W[j-1] - 1`, weeks k-25..=k) floored at
//! [`DEFAULT_VOL_FLOOR`] (0.5% a week) so a flat stretch cannot blow a tiny move up to +-1.
//! The direction is `r_h > 0` (so `trend > 0`). When `t + h` is after the ticker's last date the
//! horizon runs past the data: no label (null). A horizon landing on a weekend or holiday takes
//! the last close before it.

use chrono::{Days, NaiveDate};

use crate::features::asof;
use crate::stats::stdev;

/// Default floor of `sigma_w`: 0.005 (a weekly stdev of 0.5%; real stocks run 2-5%).
pub const DEFAULT_VOL_FLOOR: f64 = 0.005;
/// Weekly returns in `sigma_w`.
pub const SIGMA_WEEKS: usize = 26;

/// `sigma_w` of week `k` from the weekly closes `w` (needs `k >= 26`), floored.
pub fn sigma_w(w: &[f64], k: usize, floor: f64) -> f64 {
    let r: Vec<f64> = (k + 1 - SIGMA_WEEKS..=k)
        .map(|j| w[j] / w[j - 1] - 1.0)
        .collect();
    stdev(&r).max(floor)
}

/// Forward simple return over `h` calendar days from daily position `p`, or `None` when
/// `dates[p] + h` is after the last date (also when it is past chrono's last date: no
/// arithmetic here can panic).
pub fn forward_return(dates: &[NaiveDate], closes: &[f64], p: usize, h: u32) -> Option<f64> {
    let target = dates[p].checked_add_days(Days::new(u64::from(h)))?;
    if *dates.last()? < target {
        return None;
    }
    let j = asof(dates, target)?;
    Some(closes[j] / closes[p] - 1.0)
}

/// The trend label for horizon `h`, or `None` past the data.
pub fn trend_label(
    dates: &[NaiveDate],
    closes: &[f64],
    p: usize,
    sigma: f64,
    h: u32,
) -> Option<f64> {
    let r = forward_return(dates, closes, p, h)?;
    Some((r / (sigma * (f64::from(h) / 7.0).sqrt())).tanh())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_past_the_last_representable_date_are_unlabelled_not_a_panic() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        // The last weeks of the accepted range: the horizon runs past the data.
        let dates = [d(9999, 12, 1), d(9999, 12, 15), d(9999, 12, 31)];
        let closes = [1.0, 2.0, 4.0];
        assert_eq!(forward_return(&dates, &closes, 0, 7), Some(0.0));
        assert_eq!(forward_return(&dates, &closes, 0, 30), Some(3.0));
        assert_eq!(forward_return(&dates, &closes, 2, 7), None);
        assert_eq!(trend_label(&dates, &closes, 2, 0.01, 30), None);
        // chrono's own end: `date + 30 days` would panic.
        let end = [NaiveDate::MAX - Days::new(3), NaiveDate::MAX];
        assert_eq!(forward_return(&end, &[1.0, 1.0], 0, 30), None);
        assert_eq!(forward_return(&end, &[1.0, 1.0], 1, 7), None);
        // And the first dates of the range.
        let start = [d(1, 1, 1), d(1, 1, 8), d(1, 2, 5)];
        assert_eq!(forward_return(&start, &[1.0, 2.0, 3.0], 0, 7), Some(1.0));
        assert_eq!(forward_return(&start, &[1.0, 2.0, 3.0], 0, 30), Some(1.0));
    }
}
