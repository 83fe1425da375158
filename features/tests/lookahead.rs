//! No look-ahead (property test): changing any price after a date changes no feature of any
//! week dated on or before it, whether the market is a given index or the cross-sectional mean.

mod common;

use proptest::prelude::*;
use trendscore_features::{build_rows, generate, BuildConfig, DailySeries, SynthConfig};

fn base() -> (Vec<DailySeries>, DailySeries) {
    let p = generate(&SynthConfig {
        tickers: 3,
        days: 360,
        seed: 5,
        ..Default::default()
    });
    (p.series, p.market)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn changing_later_prices_changes_no_earlier_feature(
        cut in 270usize..355,
        factors in proptest::collection::vec(0.5f64..2.0, 8),
        ticker in 0usize..3,
        touch_market in any::<bool>(),
        use_market in any::<bool>(),
    ) {
        let (series, market) = base();
        let cut_date = series[0].dates[cut];
        let mut changed = series.clone();
        let mut changed_market = market.clone();
        // Perturb every price strictly after the cut date: one ticker (and maybe the market).
        for (i, c) in changed[ticker].closes.iter_mut().enumerate().skip(cut + 1) {
            *c *= factors[i % factors.len()];
        }
        if touch_market {
            for (i, c) in changed_market.closes.iter_mut().enumerate().skip(cut + 1) {
                *c *= factors[(i + 3) % factors.len()];
            }
        }
        let cfg = BuildConfig::default();
        let (m0, m1) = if use_market { (Some(&market), Some(&changed_market)) } else { (None, None) };
        let a = build_rows(&series, m0, &cfg).unwrap();
        let b = build_rows(&changed, m1, &cfg).unwrap();
        let early = |rows: &[trendscore_schemas::WeeklyRow]| -> Vec<(String, chrono::NaiveDate, Vec<f32>)> {
            rows.iter()
                .filter(|r| r.week <= cut_date)
                .map(|r| (r.ticker.clone(), r.week, r.features.clone()))
                .collect()
        };
        let (ea, eb) = (early(&a.rows), early(&b.rows));
        prop_assert!(!ea.is_empty());
        prop_assert_eq!(ea, eb);
        // And the change is visible later (the test can see a difference when there is one).
        let later_differs = a.rows.iter().zip(&b.rows).any(|(x, y)| x.week > cut_date && x.features != y.features);
        prop_assert!(later_differs || a.rows.iter().all(|r| r.week <= cut_date));
    }
}
