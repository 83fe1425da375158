//! `--target excess|xs` labels worked out by hand on a small multi-ticker series, and no
//! look-ahead in the cross-sectional features (changing prices after a date changes no feature
//! of any week dated on or before it).

mod common;

use common::{d, series, weekdays};
use proptest::prelude::*;
use trendscore_features::{build_rows, generate, BuildConfig, CrossSectional, SynthConfig, Target};

/// Three tickers and a market that grow at constant daily rates on Mon-Fri (no holidays): every
/// weekly return is the same, so sigma_w is its 0.005 floor; a 7-day horizon from a Friday ends
/// on the next Friday (5 trading days), a 30-day one on the Friday 4 weeks on (30 days = a Sunday,
/// the last close before it is day 28: 20 trading days).
fn constant_growth() -> (
    Vec<trendscore_features::DailySeries>,
    trendscore_features::DailySeries,
) {
    let dates = weekdays(d("2019-01-07"), 420);
    let grow = |g: f64| {
        dates
            .iter()
            .enumerate()
            .map(|(i, _)| 100.0 * (1.0 + g).powi(i as i32))
            .collect::<Vec<_>>()
    };
    let tickers = vec![
        series("A", &dates, grow(0.0002)),
        series("B", &dates, grow(0.0005)),
        series("C", &dates, grow(-0.0003)),
    ];
    (tickers, series("MKT", &dates, grow(0.0001)))
}

fn cfg(target: Target) -> BuildConfig {
    BuildConfig {
        target,
        threads: 1,
        ..Default::default()
    }
}

#[test]
fn excess_and_xs_labels_by_hand() {
    let (tickers, market) = constant_growth();
    let r = |g: f64, days: i32| (1.0 + g).powi(days) - 1.0;
    let (s7, s30) = (0.005, 0.005 * (30.0f64 / 7.0).sqrt());
    let raw = build_rows(&tickers, Some(&market), &cfg(Target::Raw)).unwrap();
    let excess = build_rows(&tickers, Some(&market), &cfg(Target::Excess)).unwrap();
    let xs = build_rows(&tickers, Some(&market), &cfg(Target::Xs)).unwrap();
    let row = |b: &trendscore_features::Built, t: &str| {
        b.rows
            .iter()
            .find(|x| x.ticker == t && x.trend_30day.is_some())
            .unwrap()
            .clone()
    };
    let week = row(&raw, "A").week;
    for (t, g) in [("A", 0.0002), ("B", 0.0005), ("C", -0.0003)] {
        let (a, e, x) = (row(&raw, t), row(&excess, t), row(&xs, t));
        assert_eq!((a.week, e.week, x.week), (week, week, week));
        let close = |got: Option<f32>, want: f64, what: &str| {
            let got = f64::from(got.unwrap());
            assert!((got - want).abs() < 1e-5, "{t} {what}: {got} vs {want}");
        };
        close(a.trend_7day, (r(g, 5) / s7).tanh(), "raw 7d");
        close(a.trend_30day, (r(g, 20) / s30).tanh(), "raw 30d");
        // excess: minus the market's return over the same span.
        close(
            e.trend_7day,
            ((r(g, 5) - r(0.0001, 5)) / s7).tanh(),
            "excess 7d",
        );
        close(
            e.trend_30day,
            ((r(g, 20) - r(0.0001, 20)) / s30).tanh(),
            "excess 30d",
        );
        // xs: minus the median of A, B, C, which is A's.
        close(
            x.trend_7day,
            ((r(g, 5) - r(0.0002, 5)) / s7).tanh(),
            "xs 7d",
        );
        close(
            x.trend_30day,
            ((r(g, 20) - r(0.0002, 20)) / s30).tanh(),
            "xs 30d",
        );
        // Features do not depend on the target.
        assert_eq!(a.features, x.features);
    }
    // C lags the market: its excess direction is down; A is the median: its xs label is 0.
    assert!(row(&excess, "C").trend_7day.unwrap() < 0.0);
    assert_eq!(row(&xs, "A").trend_7day, Some(0.0));
    // Labels past the data stay null; the raw target is today's labels, unchanged.
    assert_eq!(
        raw.rows.iter().filter(|x| x.trend_30day.is_none()).count(),
        excess
            .rows
            .iter()
            .filter(|x| x.trend_30day.is_none())
            .count()
    );
    let e = build_rows(&tickers, None, &cfg(Target::Excess)).unwrap_err();
    assert!(e.to_string().contains("--market"), "{e}");
}

fn base() -> (
    Vec<trendscore_features::DailySeries>,
    trendscore_features::DailySeries,
) {
    let p = generate(&SynthConfig {
        tickers: 4,
        days: 360,
        seed: 9,
        ..Default::default()
    });
    (p.series, p.market)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn cross_sectional_features_do_not_look_ahead(
        cut in 270usize..355,
        factors in proptest::collection::vec(0.5f64..2.0, 8),
        ticker in 0usize..4,
        zscore in any::<bool>(),
    ) {
        let (series, market) = base();
        let cut_date = series[0].dates[cut];
        let mut changed = series.clone();
        for (i, c) in changed[ticker].closes.iter_mut().enumerate().skip(cut + 1) {
            *c *= factors[i % factors.len()];
        }
        let cfg = BuildConfig {
            cross_sectional: if zscore { CrossSectional::Zscore } else { CrossSectional::Rank },
            ..Default::default()
        };
        let a = build_rows(&series, Some(&market), &cfg).unwrap();
        let b = build_rows(&changed, Some(&market), &cfg).unwrap();
        let early = |rows: &[trendscore_schemas::WeeklyRow]| -> Vec<(String, chrono::NaiveDate, Vec<f32>)> {
            rows.iter().filter(|r| r.week <= cut_date).map(|r| (r.ticker.clone(), r.week, r.features.clone())).collect()
        };
        let (ea, eb) = (early(&a.rows), early(&b.rows));
        prop_assert!(!ea.is_empty());
        prop_assert_eq!(ea, eb);
        // The other tickers' later features move too (they are ranked against the changed one).
        let later_other = a.rows.iter().zip(&b.rows).any(|(x, y)| {
            x.week > cut_date && x.ticker != changed[ticker].ticker && x.features != y.features
        });
        prop_assert!(later_other || a.rows.iter().all(|r| r.week <= cut_date + chrono::Duration::days(7)));
    }
}
