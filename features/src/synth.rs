//! Seeded synthetic daily prices for tests and offline runs: a regime-switching random walk with
//! a planted, learnable pattern.
//!
//! Calendar: Monday-Friday from `start`, minus New Year's Day, 4 July and Christmas when they
//! fall on a weekday (so some weeks end on a Thursday or have four days).
//!
//! Prices: a market index follows its own two-state regime (bull drift `+market_drift`, bear
//! `-market_drift` a day, daily noise `market_vol`). Each ticker has a beta in [0.5, 1.5] and a
//! hidden three-state trend regime (up `+drift`, flat, down `-drift` per day, drift 0.004) that persists from
//! day to day with probability `persistence` (mean regime length 1 / (1 - persistence) days,
//! about 13 weeks by default). Daily log return = beta * market return + regime drift + noise
//! (`idio_vol`). The planted pattern: a regime persists, so the trailing weeks' returns
//! (momentum, moving-average and RSI features) predict the sign of the next 7 and 30 days better
//! than chance. Same config, same prices.

use chrono::{Datelike, NaiveDate, Weekday};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{FeaturesError, Result};
use crate::input::DailySeries;

/// Settings of the synthetic generator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Number of tickers (`SYN00`, `SYN01`, ...). Default 20.
    pub tickers: usize,
    /// Trading days per ticker. Default 8300 (about 33 years).
    pub days: usize,
    /// First calendar day. Default 1990-01-01.
    pub start: NaiveDate,
    /// RNG seed. Default 42.
    pub seed: u64,
    /// Daily probability that a ticker stays in its trend regime. Default 0.985.
    pub persistence: f64,
    /// Daily drift of the up/down regimes (log return). Default 0.004.
    pub drift: f64,
    /// Daily idiosyncratic noise stdev. Default 0.015.
    pub idio_vol: f64,
    /// Daily market drift of the bull/bear regimes. Default 0.0004.
    pub market_drift: f64,
    /// Daily market noise stdev. Default 0.01.
    pub market_vol: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            tickers: 20,
            days: 8300,
            start: NaiveDate::from_ymd_opt(1990, 1, 1).expect("valid date"),
            seed: 42,
            persistence: 0.985,
            drift: 0.004,
            idio_vol: 0.015,
            market_drift: 0.0004,
            market_vol: 0.01,
        }
    }
}

/// Generated prices: the tickers and the market index they load on.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthPrices {
    /// One series per ticker, all on the same calendar.
    pub series: Vec<DailySeries>,
    /// The market index (`SYNMKT`).
    pub market: DailySeries,
}

fn is_holiday(d: NaiveDate) -> bool {
    matches!((d.month(), d.day()), (1, 1) | (7, 4) | (12, 25))
}

/// The generator's trading calendar: `n` weekdays from `start`, holidays excluded; fewer when
/// the calendar reaches the last accepted date (9999-12-31) first.
pub fn trading_days(start: NaiveDate, n: usize) -> Vec<NaiveDate> {
    let mut out = Vec::with_capacity(n);
    let mut d = start;
    while out.len() < n && d <= trendscore_schemas::MAX_DATE {
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !is_holiday(d) {
            out.push(d);
        }
        let Some(next) = d.succ_opt() else { break };
        d = next;
    }
    out
}

/// Generates prices (see the module docs).
pub fn generate(cfg: &SynthConfig) -> SynthPrices {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let dates = trading_days(cfg.start, cfg.days);
    let std = Normal::new(0.0, 1.0).expect("valid normal");
    // Market.
    let mut m_state = 1.0f64;
    let mut m_level = 1000.0f64;
    let mut m_ret = Vec::with_capacity(dates.len());
    let mut m_closes = Vec::with_capacity(dates.len());
    for _ in &dates {
        if rng.gen::<f64>() > 0.995 {
            m_state = -m_state;
        }
        let r = m_state * cfg.market_drift + cfg.market_vol * std.sample(&mut rng);
        m_level *= r.exp();
        m_ret.push(r);
        m_closes.push(m_level);
    }
    let mut series = Vec::with_capacity(cfg.tickers);
    for i in 0..cfg.tickers {
        let beta = rng.gen_range(0.5..1.5);
        let mut regime: i32 = rng.gen_range(-1..=1);
        let mut level = 10.0 * (1.0 + rng.gen::<f64>() * 9.0);
        let mut closes = Vec::with_capacity(dates.len());
        for mr in &m_ret {
            if rng.gen::<f64>() > cfg.persistence {
                regime = rng.gen_range(-1..=1);
            }
            let r = beta * mr + f64::from(regime) * cfg.drift + cfg.idio_vol * std.sample(&mut rng);
            level *= r.exp();
            closes.push(level);
        }
        series.push(DailySeries {
            ticker: format!("SYN{i:02}"),
            dates: dates.clone(),
            closes,
        });
    }
    SynthPrices {
        series,
        market: DailySeries {
            ticker: "SYNMKT".to_string(),
            dates,
            closes: m_closes,
        },
    }
}

fn writer(path: &Path) -> Result<csv::Writer<Box<dyn std::io::Write>>> {
    let f = std::fs::File::create(path).map_err(|e| FeaturesError::io(path, e))?;
    let buf = std::io::BufWriter::new(f);
    let w: Box<dyn std::io::Write> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::write::GzEncoder::new(
            buf,
            flate2::Compression::default(),
        ))
    } else {
        Box::new(buf)
    };
    Ok(csv::Writer::from_writer(w))
}

use std::path::Path;

fn csv_err(path: &Path) -> impl Fn(csv::Error) -> FeaturesError + '_ {
    move |source| FeaturesError::Csv {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `date,ticker,close` (long layout), ticker-major; `.gz` paths are gzip-compressed.
/// Prices are written in Rust's shortest round-trip form, so reading them back gives the
/// same f64.
pub fn write_long_csv(path: &Path, series: &[DailySeries]) -> Result<()> {
    let mut w = writer(path)?;
    let e = csv_err(path);
    w.write_record(["date", "ticker", "close"]).map_err(&e)?;
    for s in series {
        for (d, c) in s.dates.iter().zip(&s.closes) {
            w.write_record([d.to_string(), s.ticker.clone(), c.to_string()])
                .map_err(&e)?;
        }
    }
    w.flush().map_err(|x| FeaturesError::io(path, x))?;
    Ok(())
}

/// Writes `date` + one column per ticker (wide layout); a ticker without a price on a date
/// gets an empty cell.
pub fn write_wide_csv(path: &Path, series: &[DailySeries]) -> Result<()> {
    let mut all: Vec<NaiveDate> = series
        .iter()
        .flat_map(|s| s.dates.iter().copied())
        .collect();
    all.sort();
    all.dedup();
    let mut w = writer(path)?;
    let e = csv_err(path);
    let mut header = vec!["date".to_string()];
    header.extend(series.iter().map(|s| s.ticker.clone()));
    w.write_record(&header).map_err(&e)?;
    let mut pos = vec![0usize; series.len()];
    for d in all {
        let mut rec = vec![d.to_string()];
        for (s, p) in series.iter().zip(pos.iter_mut()) {
            if *p < s.dates.len() && s.dates[*p] == d {
                rec.push(s.closes[*p].to_string());
                *p += 1;
            } else {
                rec.push(String::new());
            }
        }
        w.write_record(&rec).map_err(&e)?;
    }
    w.flush().map_err(|x| FeaturesError::io(path, x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_prices_and_holidays_skipped() {
        let cfg = SynthConfig {
            tickers: 3,
            days: 300,
            ..Default::default()
        };
        let a = generate(&cfg);
        assert_eq!(a, generate(&cfg));
        let b = generate(&SynthConfig { seed: 7, ..cfg });
        assert_ne!(a.series[0].closes, b.series[0].closes);
        let dates = &a.series[0].dates;
        assert_eq!(dates.len(), 300);
        assert!(!dates.contains(&NaiveDate::from_ymd_opt(1990, 1, 1).unwrap()));
        assert!(!dates.contains(&NaiveDate::from_ymd_opt(1990, 12, 25).unwrap()));
        assert!(dates.iter().all(|d| d.weekday().num_days_from_monday() < 5));
        assert!(a
            .series
            .iter()
            .all(|s| s.closes.iter().all(|c| c.is_finite() && *c > 0.0)));
    }

    #[test]
    fn the_calendar_stops_at_the_last_accepted_date() {
        let start = NaiveDate::from_ymd_opt(9999, 12, 20).unwrap();
        let days = trading_days(start, 100);
        assert_eq!(days.last(), Some(&trendscore_schemas::MAX_DATE));
        assert_eq!(days.len(), 10);
        assert!(trading_days(NaiveDate::MAX, 5).is_empty());
    }
}
