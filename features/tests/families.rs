//! Each feature family against values worked out by hand on constructed series, and the labels
//! by hand on a small calendar with weekends and holidays.

mod common;

use common::*;
use trendscore_features::labels::{forward_return, sigma_w, trend_label};
use trendscore_features::{build_rows, BuildConfig, DailySeries};

fn last_row(t: &DailySeries, m: Option<&DailySeries>) -> trendscore_schemas::WeeklyRow {
    let b = build_rows(std::slice::from_ref(t), m, &BuildConfig::default()).unwrap();
    b.rows.last().unwrap().clone()
}

/// Closes alternating 99, 101, 99, ... on weekdays: every window's statistics are known in
/// closed form. With 5-day weeks the weekly closes alternate too.
#[test]
fn alternating_series_returns_vol_sma_rsi_bollinger_drawdown_moments() {
    let dates = weekdays(d("2019-01-07"), 300); // Monday start, 60 full weeks
    let closes: Vec<f64> = (0..300)
        .map(|i| if i % 2 == 0 { 99.0 } else { 101.0 })
        .collect();
    // Last day index 299 is odd -> 101.
    let row = last_row(&series("ALT", &dates, closes), None);
    assert_eq!(row.week, dates[299]);
    let a = (101.0f64 / 99.0).ln();
    let f = &row.features;
    // Weekly closes alternate: this week up (99 -> 101), last week down.
    assert_close(f[fi("ret_w_lag0")], a, 1e-6, "ret_w_lag0");
    assert_close(f[fi("ret_w_lag1")], -a, 1e-6, "ret_w_lag1");
    assert_close(f[fi("cumret_4w")], 0.0, 1e-6, "cumret_4w (even span)");
    assert_close(f[fi("ret_1d")], a, 1e-6, "ret_1d");
    // vol_d_5 over +a,-a,+a,-a,+a: mean a/5, sum of squares 4.8 a^2, / 4 -> a sqrt(1.2).
    assert_close(f[fi("vol_d_5")], a * 1.2f64.sqrt(), 1e-6, "vol_d_5");
    // vol_w_4 over -a,+a,-a,+a: mean 0, sum sq 4a^2 / 3.
    assert_close(f[fi("vol_w_4")], a * (4.0f64 / 3.0).sqrt(), 1e-6, "vol_w_4");
    // Even windows average 100: 101/100 - 1.
    for n in [
        "px_sma_10",
        "px_sma_20",
        "px_sma_50",
        "px_sma_100",
        "px_sma_200",
    ] {
        assert_close(f[fi(n)], 0.01, 1e-6, n);
    }
    // 5 closes 101,99,101,99,101: mean 100.2.
    assert_close(f[fi("px_sma_5")], 101.0 / 100.2 - 1.0, 1e-6, "px_sma_5");
    assert_close(f[fi("sma_50_200")], 0.0, 1e-6, "sma_50_200");
    // 14 daily changes, 7 up by 2, 7 down by 2.
    assert_close(f[fi("rsi_14d")], 0.5, 1e-6, "rsi_14d");
    assert_close(f[fi("rsi_14w")], 0.5, 1e-6, "rsi_14w");
    // Bollinger: SMA20 = 100, population sd = 1 -> (101 - 100) / 2 and 4 * 1 / 100.
    assert_close(f[fi("bb_pos_20")], 0.5, 1e-6, "bb_pos_20");
    assert_close(f[fi("bb_width_20")], 0.04, 1e-6, "bb_width_20");
    // At a (tied) high: drawdown 0, above the low by 101/99 - 1, 0 days since the high.
    assert_close(f[fi("dd_52w")], 0.0, 1e-7, "dd_52w");
    assert_close(f[fi("up_52w_low")], 101.0 / 99.0 - 1.0, 1e-6, "up_52w_low");
    assert_close(f[fi("since_52w_high")], 0.0, 1e-7, "since_52w_high");
    // 52 weekly returns, 26 of +a and 26 of -a: skew 0, m4 / m2^2 = 1 -> excess kurtosis -2.
    assert_close(f[fi("skew_w_52")], 0.0, 1e-5, "skew_w_52");
    assert_close(f[fi("kurt_w_52")], -2.0, 1e-5, "kurt_w_52");
    // Full weeks: 5 trading days.
    assert_close(f[fi("trading_days_w")], 1.0, 0.0, "trading_days_w");
}

/// Closes growing by a constant factor g a day: returns are multiples of ln g, volatility and
/// higher moments are 0, the high is today, and every ratio has a closed form.
#[test]
fn geometric_series_cumulative_returns_and_flat_volatility() {
    let g: f64 = 1.001;
    let dates = weekdays(d("2019-01-07"), 300);
    let closes: Vec<f64> = (0..300).map(|i| 50.0 * g.powi(i)).collect();
    let row = last_row(&series("GEO", &dates, closes), None);
    let f = &row.features;
    let lg = g.ln();
    assert_close(f[fi("ret_w_lag0")], 5.0 * lg, 1e-6, "ret_w_lag0");
    assert_close(f[fi("ret_w_lag7")], 5.0 * lg, 1e-6, "ret_w_lag7");
    for (k, n) in [
        ("cumret_4w", 4.0),
        ("cumret_13w", 13.0),
        ("cumret_52w", 52.0),
    ] {
        assert_close(f[fi(k)], 5.0 * n * lg, 1e-6, k);
    }
    for k in [
        "vol_w_4",
        "vol_w_52",
        "vol_d_5",
        "vol_d_252",
        "skew_d_63",
        "kurt_d_63",
        "skew_w_52",
    ] {
        assert_close(f[fi(k)], 0.0, 1e-6, k);
    }
    // mean of the last n closes C g^-j, j < n: C (1 - q^n) / (n (1 - q)), q = 1/g.
    let q = 1.0 / g;
    for n in [5usize, 20, 200] {
        let ratio = n as f64 * (1.0 - q) / (1.0 - q.powi(n as i32)) - 1.0;
        assert_close(f[fi(&format!("px_sma_{n}"))], ratio, 1e-6, "px_sma");
    }
    assert_close(f[fi("rsi_14d")], 1.0, 0.0, "rsi_14d");
    assert_close(f[fi("dd_52w")], 0.0, 0.0, "dd_52w");
    assert_close(f[fi("up_52w_low")], g.powi(251) - 1.0, 1e-5, "up_52w_low");
    // A rising series has a positive MACD line. EMA of a geometric series c g^i with alpha a
    // tends to c g^i * a g / (g - 1 + a), so EMA12 - EMA26 over the price -> the difference.
    let lim = |n: f64| {
        let a = 2.0 / (n + 1.0);
        a * g / (g - 1.0 + a)
    };
    assert_close(f[fi("macd")], lim(12.0) - lim(26.0), 1e-5, "macd");
    // The cross-sectional market of a single ticker is the ticker: beta 0 (flat market
    // returns have no variance), relative strength 0.
    assert_close(f[fi("rel_13w")], 0.0, 1e-6, "rel_13w");
    assert_close(f[fi("mkt_cumret_4w")], 20.0 * lg, 1e-6, "mkt_cumret_4w");
}

/// A ticker whose log returns are exactly twice the market's: beta 2, correlation 1, no
/// idiosyncratic volatility, relative strength = the market's own cumulative return.
#[test]
fn market_family_beta_correlation_relative_strength() {
    let dates = weekdays(d("2019-01-07"), 320);
    // A deterministic but irregular market path.
    let mut m = vec![100.0f64];
    for i in 1..320 {
        let r = 0.01 * ((i as f64 * 1.7).sin() + 0.3 * (i as f64 * 0.37).cos());
        m.push(m[i - 1] * r.exp());
    }
    let t: Vec<f64> = m.iter().map(|x| x * x / 100.0).collect();
    let market = series("MKT", &dates, m.clone());
    let row = last_row(&series("TWO", &dates, t), Some(&market));
    let f = &row.features;
    assert_close(f[fi("beta_52w")], 2.0, 1e-6, "beta_52w");
    assert_close(f[fi("corr_52w")], 1.0, 1e-6, "corr_52w");
    assert_close(f[fi("corr_13w")], 1.0, 1e-6, "corr_13w");
    assert_close(f[fi("idio_vol_52w")], 0.0, 1e-6, "idio_vol_52w");
    let p = 319;
    let w4 = (m[p] / m[p - 20]).ln(); // 4 full weeks = 20 trading days
    assert_close(f[fi("mkt_cumret_4w")], w4, 1e-6, "mkt_cumret_4w");
    assert_close(f[fi("rel_4w")], w4, 1e-6, "rel_4w");
    assert_close(
        f[fi("mkt_ret_w_lag0")],
        (m[p] / m[p - 5]).ln(),
        1e-6,
        "mkt_ret_w_lag0",
    );
    let r: Vec<f64> = (p - 20..=p).map(|i| (m[i] / m[i - 1]).ln()).collect();
    let mean = r.iter().sum::<f64>() / 21.0;
    let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 20.0).sqrt();
    assert_close(f[fi("mkt_vol_d_21")], sd, 1e-6, "mkt_vol_d_21");
}

/// Calendar encodings: the day of year of the week date, and a holiday-shortened week.
#[test]
fn calendar_family_day_of_year_and_short_weeks() {
    // Weekdays without Friday 2020-07-03 (Independence Day observed).
    let dates: Vec<_> = weekdays(d("2019-06-03"), 320)
        .into_iter()
        .filter(|x| *x != d("2020-07-03"))
        .collect();
    let closes: Vec<f64> = (0..dates.len()).map(|i| 100.0 + (i % 7) as f64).collect();
    let b = build_rows(
        &[series("CAL", &dates, closes)],
        None,
        &BuildConfig::default(),
    )
    .unwrap();
    let short = b
        .rows
        .iter()
        .find(|r| r.week == d("2020-07-02"))
        .expect("Thursday row");
    assert_close(
        short.features[fi("trading_days_w")],
        0.8,
        1e-7,
        "4-day week",
    );
    let full = b
        .rows
        .iter()
        .find(|r| r.week == d("2020-07-10"))
        .expect("Friday row");
    assert_close(full.features[fi("trading_days_w")], 1.0, 0.0, "5-day week");
    // 2020-07-10 is day 192 of a leap year: ordinal0 = 191.
    let ang = 2.0 * std::f64::consts::PI * 191.0 / 365.25;
    assert_close(full.features[fi("doy_sin")], ang.sin(), 1e-6, "doy_sin");
    assert_close(full.features[fi("doy_cos")], ang.cos(), 1e-6, "doy_cos");
}

/// Labels by hand. Weekdays of March-April 2021 without Friday 2021-03-12 (a made-up holiday)
/// and Good Friday 2021-04-02; the week date is Friday 2021-03-05 at 100.
#[test]
fn labels_by_hand_with_weekends_and_holidays() {
    let dates: Vec<_> = weekdays(d("2021-03-01"), 40)
        .into_iter()
        .filter(|x| *x != d("2021-03-12") && *x != d("2021-04-02"))
        .collect();
    let mut closes = vec![100.0; dates.len()];
    let at = |x: &str| dates.iter().position(|y| *y == d(x)).unwrap();
    closes[at("2021-03-11")] = 110.0; // last close on or before 03-05 + 7 = Fri 03-12 (holiday)
    closes[at("2021-04-01")] = 90.0; // 03-05 + 30 = Sun 04-04; Fri 04-02 closed -> Thu 04-01
    let p = at("2021-03-05");
    assert!((forward_return(&dates, &closes, p, 7).unwrap() - 0.10).abs() < 1e-12);
    assert!((forward_return(&dates, &closes, p, 30).unwrap() + 0.10).abs() < 1e-12);
    let s = 0.02;
    let t7 = trend_label(&dates, &closes, p, s, 7).unwrap();
    assert!((t7 - (0.10f64 / 0.02).tanh()).abs() < 1e-12);
    let t30 = trend_label(&dates, &closes, p, s, 30).unwrap();
    assert!((t30 - (-0.10 / (0.02 * (30.0f64 / 7.0).sqrt())).tanh()).abs() < 1e-12);
    assert!(t30 < 0.0 && t7 > 0.0);
    // Past the data: the last date is Fri 2021-04-23 (40 weekdays from 03-01, minus two).
    let last = *dates.last().unwrap();
    assert_eq!(last, d("2021-04-23"));
    let q = at("2021-04-16"); // +7 = 04-23 = the last date: labelled
    assert!(forward_return(&dates, &closes, q, 7).is_some());
    let q = at("2021-04-19"); // +7 = 04-26, after the last date: no label
    assert!(forward_return(&dates, &closes, q, 7).is_none());
    assert!(forward_return(&dates, &closes, at("2021-03-26"), 30).is_none()); // 04-25 > 04-23
}

#[test]
fn sigma_w_by_hand_and_floor() {
    // Weekly closes 100, 110, 99, 108.9 ...: returns alternate +10%, -10%.
    let mut w = vec![100.0];
    for j in 1..=26 {
        let prev: f64 = w[j - 1];
        w.push(prev * if j % 2 == 1 { 1.1 } else { 0.9 });
    }
    // 26 returns, 13 of +0.1, 13 of -0.1: mean 0, sample stdev sqrt(26 * 0.01 / 25).
    let want = (26.0f64 * 0.01 / 25.0).sqrt();
    assert!((sigma_w(&w, 26, 0.005) - want).abs() < 1e-12);
    // Flat prices: the floor.
    assert_eq!(sigma_w(&[5.0; 27], 26, 0.005), 0.005);
}

/// The labels in built rows follow the formula with sigma_w from the weekly closes.
#[test]
fn built_rows_carry_labels_as_defined() {
    let dates = weekdays(d("2019-01-07"), 320);
    let closes: Vec<f64> = (0..320)
        .map(|i| 100.0 * (1.0 + 0.1 * (i as f64 * 0.21).sin()))
        .collect();
    let b = build_rows(
        &[series("LBL", &dates, closes.clone())],
        None,
        &BuildConfig::default(),
    )
    .unwrap();
    let r = &b.rows[0];
    let p = dates.iter().position(|x| *x == r.week).unwrap();
    // Full 5-day weeks: weekly closes are every 5th close ending at p.
    let w: Vec<f64> = (0..=26).map(|j| closes[p - 5 * (26 - j)]).collect();
    let rets: Vec<f64> = w.windows(2).map(|x| x[1] / x[0] - 1.0).collect();
    let mean = rets.iter().sum::<f64>() / 26.0;
    let sd = (rets.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 25.0)
        .sqrt()
        .max(0.005);
    let r7 = closes[p + 5] / closes[p] - 1.0;
    assert_close(r.trend_7day.unwrap(), (r7 / sd).tanh(), 1e-6, "trend_7day");
    // +30 days from a Friday is a Sunday: the Friday before, 20 trading days later.
    let r30 = closes[p + 20] / closes[p] - 1.0;
    assert_close(
        r.trend_30day.unwrap(),
        (r30 / (sd * (30.0f64 / 7.0).sqrt())).tanh(),
        1e-6,
        "trend_30day",
    );
    // The last rows have no labels.
    let last = b.rows.last().unwrap();
    assert!(last.trend_7day.is_none() && last.trend_30day.is_none());
}

/// The synthetic generator's planted pattern is learnable from the features: trailing
/// returns agree in sign with the 30-day label clearly more often than chance.
#[test]
fn synthetic_planted_pattern_is_visible_in_features_and_labels() {
    let p = trendscore_features::generate(&trendscore_features::SynthConfig {
        tickers: 6,
        days: 3000,
        seed: 9,
        ..Default::default()
    });
    let b = build_rows(&p.series, Some(&p.market), &BuildConfig::default()).unwrap();
    let (mut agree, mut n) = (0usize, 0usize);
    for r in &b.rows {
        if let Some(y) = r.trend_30day {
            n += 1;
            agree += usize::from((r.features[fi("cumret_13w")] > 0.0) == (y > 0.0));
        }
    }
    let rate = agree as f64 / n as f64;
    assert!(
        n > 2000 && rate > 0.56,
        "sign agreement {rate} over {n} rows"
    );
}
