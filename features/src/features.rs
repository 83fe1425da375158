//! Feature set v1: exactly 62 features per (ticker, week), from daily closes and a market index.
//!
//! Notation: `C` the ticker's daily closes, `p` the position of the week's last trading day,
//! `W` the ticker's weekly closes (one per ISO week with data, the close of its last trading
//! day), `k` the week's position, `M` the market closes as of each of the ticker's week dates
//! (last market close on or before that date). Log returns throughout: `ln(a / b)`. A row at week
//! `k` reads `C[..=p]`, `W[..=k]` and market closes dated on or before `C`'s date at `p`, never
//! anything later (no look-ahead), and every window is a fixed trailing window, so a value does
//! not depend on how far back the input starts.
//!
//! A row exists only when every feature has its full window: at least [`MIN_DAILY_CLOSES`] daily
//! closes and [`MIN_WEEKS`] weekly closes up to the week, market closes on or before each of
//! those 53 week dates, and at least 22 market closes on or before the week date. Earlier weeks
//! are left out (counted as `rows_without_history`).

use chrono::{Datelike, NaiveDate};

use crate::stats::{ema_path, excess_kurtosis, mean, regress, rsi, skewness, stdev, stdev_pop};

/// Version tag of this feature set, written into every manifest.
pub const FEATURE_SET_VERSION: &str = "v1";
/// Number of features (matches `trendscore_schemas::NUM_FEATURES`).
pub const NUM_FEATURES: usize = 62;
/// Daily closes a row needs up to and including its week (252 daily returns).
pub const MIN_DAILY_CLOSES: usize = 253;
/// Weekly closes a row needs up to and including its week (52 weekly returns).
pub const MIN_WEEKS: usize = 53;
/// Market closes on or before the week date a row needs (21 daily market returns).
pub const MIN_MARKET_CLOSES: usize = 22;

/// One feature's documentation: column `feature_{index}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Short stable key, e.g. `ret_w_lag0`.
    pub key: &'static str,
    /// Family the hand-computed tests group by.
    pub family: &'static str,
    /// One-line definition.
    pub definition: &'static str,
}

const fn f(key: &'static str, family: &'static str, definition: &'static str) -> FeatureSpec {
    FeatureSpec {
        key,
        family,
        definition,
    }
}

/// The 62 features of v1, in column order (`feature_0` first).
pub const FEATURES: [FeatureSpec; NUM_FEATURES] = [
    f("ret_w_lag0", "weekly_returns", "ln(W[k]/W[k-1]): this week's log return"),
    f("ret_w_lag1", "weekly_returns", "ln(W[k-1]/W[k-2]): weekly log return 1 week ago"),
    f("ret_w_lag2", "weekly_returns", "ln(W[k-2]/W[k-3]): weekly log return 2 weeks ago"),
    f("ret_w_lag3", "weekly_returns", "ln(W[k-3]/W[k-4]): weekly log return 3 weeks ago"),
    f("ret_w_lag4", "weekly_returns", "ln(W[k-4]/W[k-5]): weekly log return 4 weeks ago"),
    f("ret_w_lag5", "weekly_returns", "ln(W[k-5]/W[k-6]): weekly log return 5 weeks ago"),
    f("ret_w_lag6", "weekly_returns", "ln(W[k-6]/W[k-7]): weekly log return 6 weeks ago"),
    f("ret_w_lag7", "weekly_returns", "ln(W[k-7]/W[k-8]): weekly log return 7 weeks ago"),
    f("cumret_4w", "cumulative_returns", "ln(W[k]/W[k-4]): 4-week log return"),
    f("cumret_8w", "cumulative_returns", "ln(W[k]/W[k-8]): 8-week log return"),
    f("cumret_13w", "cumulative_returns", "ln(W[k]/W[k-13]): 13-week log return"),
    f("cumret_26w", "cumulative_returns", "ln(W[k]/W[k-26]): 26-week log return"),
    f("cumret_52w", "cumulative_returns", "ln(W[k]/W[k-52]): 52-week log return"),
    f("ret_1d", "cumulative_returns", "ln(C[p]/C[p-1]): last daily log return of the week"),
    f("vol_w_4", "volatility", "sample stdev of the last 4 weekly log returns"),
    f("vol_w_13", "volatility", "sample stdev of the last 13 weekly log returns"),
    f("vol_w_26", "volatility", "sample stdev of the last 26 weekly log returns"),
    f("vol_w_52", "volatility", "sample stdev of the last 52 weekly log returns"),
    f("vol_d_5", "volatility", "sample stdev of the last 5 daily log returns"),
    f("vol_d_21", "volatility", "sample stdev of the last 21 daily log returns"),
    f("vol_d_63", "volatility", "sample stdev of the last 63 daily log returns"),
    f("vol_d_252", "volatility", "sample stdev of the last 252 daily log returns"),
    f("vol_ratio_21_252", "volatility", "vol_d_21 / vol_d_252 (1 when vol_d_252 is 0)"),
    f("px_sma_5", "moving_averages", "C[p] / mean(last 5 closes) - 1"),
    f("px_sma_10", "moving_averages", "C[p] / mean(last 10 closes) - 1"),
    f("px_sma_20", "moving_averages", "C[p] / mean(last 20 closes) - 1"),
    f("px_sma_50", "moving_averages", "C[p] / mean(last 50 closes) - 1"),
    f("px_sma_100", "moving_averages", "C[p] / mean(last 100 closes) - 1"),
    f("px_sma_200", "moving_averages", "C[p] / mean(last 200 closes) - 1"),
    f("sma_50_200", "moving_averages", "mean(last 50 closes) / mean(last 200 closes) - 1"),
    f("macd", "macd", "(EMA12 - EMA26) / C[p]; EMAs (alpha 2/(n+1)) run over the last 252 closes, seeded with the first"),
    f("macd_signal", "macd", "EMA9 of (EMA12 - EMA26) over the same 252 closes, / C[p]"),
    f("macd_hist", "macd", "macd - macd_signal"),
    f("rsi_14d", "rsi", "RSI over the last 14 daily changes, simple averages: gains / (gains + losses), 0..1, 0.5 if flat"),
    f("rsi_14w", "rsi", "RSI over the last 14 weekly changes of W, as rsi_14d"),
    f("bb_pos_20", "bollinger", "(C[p] - SMA20) / (2 * sd20), sd20 = population stdev of the last 20 closes; 0 if sd20 is 0"),
    f("bb_width_20", "bollinger", "4 * sd20 / SMA20"),
    f("dd_52w", "drawdown", "C[p] / max(last 252 closes) - 1 (<= 0)"),
    f("up_52w_low", "drawdown", "C[p] / min(last 252 closes) - 1 (>= 0)"),
    f("since_52w_high", "drawdown", "trading days since the last 252-close high (latest if tied) / 252, 0..1"),
    f("skew_d_63", "higher_moments", "skewness of the last 63 daily log returns (population moments; 0 if flat)"),
    f("kurt_d_63", "higher_moments", "excess kurtosis of the last 63 daily log returns (0 if flat)"),
    f("skew_w_52", "higher_moments", "skewness of the last 52 weekly log returns (0 if flat)"),
    f("kurt_w_52", "higher_moments", "excess kurtosis of the last 52 weekly log returns (0 if flat)"),
    f("mkt_ret_w_lag0", "market", "ln(M[k]/M[k-1]): market log return over this week"),
    f("mkt_ret_w_lag1", "market", "ln(M[k-1]/M[k-2]): market log return 1 week ago"),
    f("mkt_cumret_4w", "market", "ln(M[k]/M[k-4]): 4-week market log return"),
    f("mkt_cumret_13w", "market", "ln(M[k]/M[k-13]): 13-week market log return"),
    f("mkt_cumret_52w", "market", "ln(M[k]/M[k-52]): 52-week market log return"),
    f("mkt_vol_w_13", "market", "sample stdev of the last 13 weekly market log returns"),
    f("mkt_vol_d_21", "market", "sample stdev of the last 21 daily market log returns up to the week date"),
    f("rel_4w", "relative_strength", "cumret_4w - mkt_cumret_4w"),
    f("rel_13w", "relative_strength", "cumret_13w - mkt_cumret_13w"),
    f("rel_26w", "relative_strength", "cumret_26w - ln(M[k]/M[k-26])"),
    f("rel_52w", "relative_strength", "cumret_52w - mkt_cumret_52w"),
    f("beta_52w", "beta_correlation", "OLS slope of the last 52 weekly log returns on the market's (0 if the market is flat)"),
    f("corr_52w", "beta_correlation", "correlation of the last 52 weekly log returns with the market's (0 if either is flat)"),
    f("corr_13w", "beta_correlation", "correlation of the last 13 weekly log returns with the market's (0 if either is flat)"),
    f("idio_vol_52w", "beta_correlation", "stdev (n-2) of the residuals of the beta_52w regression (with intercept)"),
    f("doy_sin", "calendar", "sin(2 pi (day of year of the week date - 1) / 365.25)"),
    f("doy_cos", "calendar", "cos(2 pi (day of year of the week date - 1) / 365.25)"),
    f("trading_days_w", "calendar", "number of the ticker's trading days in this week / 5"),
];

/// Position of the last trading day of each ISO week in `dates` (strictly increasing).
pub fn weekly_ends(dates: &[NaiveDate]) -> Vec<usize> {
    let mut out: Vec<usize> = dates
        .windows(2)
        .enumerate()
        .filter(|(_, w)| {
            trendscore_schemas::iso_week_index(w[0]) != trendscore_schemas::iso_week_index(w[1])
        })
        .map(|(i, _)| i)
        .collect();
    if !dates.is_empty() {
        out.push(dates.len() - 1);
    }
    out
}

/// Index of the last entry of `dates` on or before `d`.
pub fn asof(dates: &[NaiveDate], d: NaiveDate) -> Option<usize> {
    dates.partition_point(|x| *x <= d).checked_sub(1)
}

/// One computed row (before labels), in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureRow {
    /// The week's last trading day.
    pub week: NaiveDate,
    /// Position of that day in the ticker's daily series.
    pub day: usize,
    /// Position of the week in the ticker's weekly series.
    pub k: usize,
    /// The 62 values, in [`FEATURES`] order.
    pub values: [f64; NUM_FEATURES],
}

/// What happened to a ticker's weeks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickerOutcome {
    /// Weeks in the input.
    pub weeks: usize,
    /// Weeks left out for lack of the ticker's own history.
    pub without_history: usize,
    /// Weeks left out because the market series does not reach back far enough.
    pub without_market: usize,
}

/// Daily and weekly views of one series, computed once.
struct View<'a> {
    dates: &'a [NaiveDate],
    closes: &'a [f64],
    /// Daily log returns; `lr[i] = ln(C[i]/C[i-1])`, `lr[0] = 0` (never read by a row).
    lr: Vec<f64>,
}

impl<'a> View<'a> {
    fn new(dates: &'a [NaiveDate], closes: &'a [f64]) -> Self {
        let mut lr = Vec::with_capacity(closes.len());
        lr.push(0.0);
        lr.extend(closes.windows(2).map(|w| (w[1] / w[0]).ln()));
        Self { dates, closes, lr }
    }
}

/// Computes feature rows for one ticker against a market series (`market_dates`,
/// `market_closes`, both as validated by the reader). Rows come in week order.
pub fn compute_ticker(
    dates: &[NaiveDate],
    closes: &[f64],
    market_dates: &[NaiveDate],
    market_closes: &[f64],
) -> (Vec<FeatureRow>, TickerOutcome) {
    let t = View::new(dates, closes);
    let m = View::new(market_dates, market_closes);
    let ends = weekly_ends(dates);
    let w: Vec<f64> = ends.iter().map(|&p| closes[p]).collect();
    let rw: Vec<f64> = std::iter::once(0.0)
        .chain(w.windows(2).map(|x| (x[1] / x[0]).ln()))
        .collect();
    // Market close as of each ticker week date.
    let mpos: Vec<Option<usize>> = ends.iter().map(|&p| asof(m.dates, dates[p])).collect();
    let mut outcome = TickerOutcome {
        weeks: ends.len(),
        ..Default::default()
    };
    let mut rows = Vec::new();
    for (k, &p) in ends.iter().enumerate() {
        if k + 1 < MIN_WEEKS || p + 1 < MIN_DAILY_CLOSES {
            outcome.without_history += 1;
            continue;
        }
        let mk: Option<Vec<f64>> = mpos[k + 1 - MIN_WEEKS..=k]
            .iter()
            .map(|o| o.map(|i| m.closes[i]))
            .collect();
        let (Some(mw), Some(q)) = (mk, mpos[k]) else {
            outcome.without_market += 1;
            continue;
        };
        if q + 1 < MIN_MARKET_CLOSES {
            outcome.without_market += 1;
            continue;
        }
        let values = row_values(&t, &m, &ends, &w, &rw, k, p, &mw, q);
        rows.push(FeatureRow {
            week: dates[p],
            day: p,
            k,
            values,
        });
    }
    (rows, outcome)
}

/// The 62 values of week `k` (daily position `p`); `mw` = the market closes as of the last 53
/// week dates (`mw[52]` is week k), `q` = the market's daily position as of the week date.
#[allow(clippy::too_many_arguments)]
fn row_values(
    t: &View,
    m: &View,
    ends: &[usize],
    w: &[f64],
    rw: &[f64],
    k: usize,
    p: usize,
    mw: &[f64],
    q: usize,
) -> [f64; NUM_FEATURES] {
    let c = t.closes;
    let cp = c[p];
    let last_closes = |n: usize| &c[p + 1 - n..=p];
    let last_lr = |n: usize| &t.lr[p + 1 - n..=p];
    let last_rw = |n: usize| &rw[k + 1 - n..=k];
    let cum = |n: usize| (w[k] / w[k - n]).ln();
    let mr: Vec<f64> = mw.windows(2).map(|x| (x[1] / x[0]).ln()).collect(); // 52 market weekly returns
    let mcum = |n: usize| (mw[52] / mw[52 - n]).ln();
    let sma = |n: usize| mean(last_closes(n));

    let mut v = [0.0f64; NUM_FEATURES];
    let mut i = 0;
    let mut put = |x: f64| {
        v[i] = x;
        i += 1;
    };
    // weekly returns
    for lag in 0..8 {
        put(rw[k - lag]);
    }
    // cumulative returns
    for n in [4, 8, 13, 26, 52] {
        put(cum(n));
    }
    put(t.lr[p]);
    // volatility
    for n in [4, 13, 26, 52] {
        put(stdev(last_rw(n)));
    }
    let vd: Vec<f64> = [5, 21, 63, 252]
        .iter()
        .map(|&n| stdev(last_lr(n)))
        .collect();
    for &x in &vd {
        put(x);
    }
    put(if vd[3] > 0.0 { vd[1] / vd[3] } else { 1.0 });
    // moving averages
    for n in [5, 10, 20, 50, 100, 200] {
        put(cp / sma(n) - 1.0);
    }
    put(sma(50) / sma(200) - 1.0);
    // MACD over the last 252 closes
    let win = last_closes(252);
    let e12 = ema_path(win, 12);
    let e26 = ema_path(win, 26);
    let line: Vec<f64> = e12.iter().zip(&e26).map(|(a, b)| a - b).collect();
    let signal = *ema_path(&line, 9).last().expect("252 values");
    let macd = line[line.len() - 1] / cp;
    put(macd);
    put(signal / cp);
    put(macd - signal / cp);
    // RSI
    put(rsi(last_closes(15)));
    put(rsi(&w[k - 14..=k]));
    // Bollinger
    let sd20 = stdev_pop(last_closes(20));
    let sma20 = sma(20);
    put(if sd20 > 0.0 {
        (cp - sma20) / (2.0 * sd20)
    } else {
        0.0
    });
    put(4.0 * sd20 / sma20);
    // drawdown
    let year = last_closes(252);
    let (mut hi, mut hi_at, mut lo) = (f64::MIN, 0usize, f64::MAX);
    for (j, &x) in year.iter().enumerate() {
        if x >= hi {
            hi = x;
            hi_at = j;
        }
        lo = lo.min(x);
    }
    put(cp / hi - 1.0);
    put(cp / lo - 1.0);
    put((251 - hi_at) as f64 / 252.0);
    // higher moments
    put(skewness(last_lr(63)));
    put(excess_kurtosis(last_lr(63)));
    put(skewness(last_rw(52)));
    put(excess_kurtosis(last_rw(52)));
    // market
    put(mr[51]);
    put(mr[50]);
    put(mcum(4));
    put(mcum(13));
    put(mcum(52));
    put(stdev(&mr[52 - 13..]));
    put(stdev(&m.lr[q + 1 - 21..=q]));
    // relative strength
    for n in [4, 13, 26, 52] {
        put(cum(n) - mcum(n));
    }
    // beta / correlation
    let (beta, corr, idio) = regress(last_rw(52), &mr);
    let (_, corr13, _) = regress(last_rw(13), &mr[52 - 13..]);
    put(beta);
    put(corr);
    put(corr13);
    put(idio);
    // calendar
    let d = t.dates[p];
    let angle = 2.0 * std::f64::consts::PI * f64::from(d.ordinal0()) / 365.25;
    put(angle.sin());
    put(angle.cos());
    put((p - ends[k - 1]) as f64 / 5.0);
    debug_assert_eq!(i, NUM_FEATURES);
    v
}

/// The cross-sectional market proxy used when no index is given: on every date any ticker
/// traded, the equal-weight mean of the daily log returns of the tickers that have a close on
/// that date and an earlier one (each from its own previous close), cumulated into a level
/// starting at 100. Each date's value uses prices of that date and earlier only.
pub fn cross_sectional_index(series: &[(&[NaiveDate], &[f64])]) -> (Vec<NaiveDate>, Vec<f64>) {
    let mut all: Vec<(NaiveDate, f64)> = Vec::new();
    for (dates, closes) in series {
        for i in 1..dates.len() {
            all.push((dates[i], (closes[i] / closes[i - 1]).ln()));
        }
    }
    let mut firsts: Vec<NaiveDate> = series
        .iter()
        .filter_map(|(d, _)| d.first().copied())
        .collect();
    firsts.sort();
    all.sort_by_key(|a| a.0);
    let mut dates = Vec::new();
    let mut levels = Vec::new();
    if let Some(&first) = firsts.first() {
        dates.push(first);
        levels.push(100.0);
    }
    let mut level = 100.0f64;
    let mut i = 0;
    while i < all.len() {
        let d = all[i].0;
        let mut j = i;
        let mut s = 0.0;
        while j < all.len() && all[j].0 == d {
            s += all[j].1;
            j += 1;
        }
        level *= (s / (j - i) as f64).exp();
        if dates.last() == Some(&d) {
            *levels.last_mut().expect("nonempty") = level;
        } else {
            dates.push(d);
            levels.push(level);
        }
        i = j;
    }
    (dates, levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_two_unique_documented_features() {
        assert_eq!(FEATURES.len(), trendscore_schemas::NUM_FEATURES);
        let mut keys: Vec<&str> = FEATURES.iter().map(|f| f.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), NUM_FEATURES);
        assert!(FEATURES.iter().all(|f| !f.definition.is_empty()));
    }

    #[test]
    fn readme_documents_every_feature_as_in_code() {
        let readme = include_str!("../README.md");
        for (i, f) in FEATURES.iter().enumerate() {
            let line = format!(
                "| feature_{i} | `{}` | {} | {} |",
                f.key, f.family, f.definition
            );
            assert!(
                readme.contains(&line),
                "README.md lacks or differs on: {line}"
            );
        }
    }

    #[test]
    fn weekly_ends_pick_last_trading_day_of_iso_week() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // Thu 2020-12-31 (ISO week 53 of 2020, Fri 1 Jan is a holiday), Mon 2021-01-04 .. Fri 01-08.
        let dates = [
            d("2020-12-28"),
            d("2020-12-31"),
            d("2021-01-04"),
            d("2021-01-08"),
            d("2021-01-11"),
        ];
        assert_eq!(weekly_ends(&dates), vec![1, 3, 4]);
    }

    #[test]
    fn cross_sectional_index_by_hand() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let a_d = [d("2020-01-01"), d("2020-01-02"), d("2020-01-03")];
        let a_c = [10.0, 11.0, 12.1]; // +10%, +10%
        let b_d = [d("2020-01-02"), d("2020-01-03")];
        let b_c = [5.0, 4.0]; // -20% on 01-03
        let (dates, lv) = cross_sectional_index(&[(&a_d, &a_c), (&b_d, &b_c)]);
        assert_eq!(dates, a_d.to_vec());
        assert!((lv[0] - 100.0).abs() < 1e-12);
        assert!((lv[1] - 110.0).abs() < 1e-9); // only A returns on 01-02
        let l3 = 110.0 * ((1.1f64.ln() + 0.8f64.ln()) / 2.0).exp();
        assert!((lv[2] - l3).abs() < 1e-9);
    }
}
