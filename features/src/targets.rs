//! Label targets and cross-sectional features: options of `features build`.
//!
//! **Targets** (`--target`, recorded in the manifest's `labels.target`). For a row at week date
//! `t`, horizon `h` and the ticker's forward return `r_h` ([`crate::labels`]):
//! - `raw` (default, the DESIGN.md contract): `x_h = r_h`;
//! - `excess`: `x_h = r_h - m_h`, `m_h` the market index's return over the same calendar span,
//!   `M(last close on or before t + h) / M(last close on or before t) - 1` (needs `--market`;
//!   no label when the index ends before `t + h`);
//! - `xs`: `x_h = r_h - median(r_h of every ticker with that label in the same ISO week)`.
//!
//! The label keeps its form, `tanh(x_h / (sigma_w * sqrt(h / 7)))` with the ticker's own
//! `sigma_w`, and the direction rule `x_h > 0`. Labels look forward by definition; the
//! cross-ticker median only mixes labels, never features.
//!
//! **Cross-sectional features** (`--cross-sectional`, recorded in the manifest's
//! `cross_sectional`): `none` (default) keeps the 62 raw values; `rank` replaces each feature by
//! its rank among the rows with the same week **date** (`(rank - 1) / (n - 1)`, ties averaged,
//! 0.5 for a row alone); `zscore` by `(x - mean) / sd` over the same rows (population sd; 0 when
//! the sd is 0 or the row is alone). Grouping by the exact date, not the ISO week, keeps it free
//! of look-ahead: a row whose week ends on Thursday is never ranked against a Friday close.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use trendscore_schemas::stats::average_ranks;
use trendscore_schemas::{iso_week_index, WeeklyRow};

use crate::features::asof;

/// What the labels measure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The ticker's own return (DESIGN.md).
    #[default]
    Raw,
    /// The return in excess of the market index over the same span.
    Excess,
    /// The return relative to the cross-sectional median of the week.
    Xs,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(Self::Raw),
            "excess" => Ok(Self::Excess),
            "xs" => Ok(Self::Xs),
            _ => Err(format!("expected raw, excess or xs, got {s:?}")),
        }
    }
}

/// Cross-sectional transform of the features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossSectional {
    /// Raw feature values.
    #[default]
    None,
    /// Rank among the rows of the same week date, in [0, 1].
    Rank,
    /// z-score among the rows of the same week date.
    Zscore,
}

impl std::str::FromStr for CrossSectional {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "rank" => Ok(Self::Rank),
            "zscore" => Ok(Self::Zscore),
            _ => Err(format!("expected none, rank or zscore, got {s:?}")),
        }
    }
}

/// What a row's labels are made of before the target is applied.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RawLabels {
    /// The ticker's forward returns, 7 and 30 days.
    pub r: [Option<f64>; 2],
    /// The market's returns over the same spans (when a market series was given).
    pub m: [Option<f64>; 2],
    /// `sigma_w` of the row.
    pub sigma: f64,
}

/// The market's return from the last close on or before `t` to the last close on or before
/// `t + h` days; `None` when the series ends before `t + h` or starts after `t`.
pub fn market_forward_return(
    dates: &[NaiveDate],
    closes: &[f64],
    t: NaiveDate,
    h: u32,
) -> Option<f64> {
    let target = t + Duration::days(i64::from(h));
    if *dates.last()? < target {
        return None;
    }
    let (i, j) = (asof(dates, t)?, asof(dates, target)?);
    Some(closes[j] / closes[i] - 1.0)
}

/// Median of the values (`None` when empty).
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

const HORIZONS: [u32; 2] = [7, 30];

/// Rewrites the labels of `rows` (aligned with `raw`) for `target`; `raw` leaves them alone.
pub fn apply_target(rows: &mut [WeeklyRow], raw: &[RawLabels], target: Target) {
    if target == Target::Raw {
        return;
    }
    let mut medians: [HashMap<i64, f64>; 2] = Default::default();
    if target == Target::Xs {
        for (h, med) in medians.iter_mut().enumerate() {
            let mut by_week: HashMap<i64, Vec<f64>> = HashMap::new();
            for (row, l) in rows.iter().zip(raw) {
                if let Some(r) = l.r[h] {
                    by_week.entry(iso_week_index(row.week)).or_default().push(r);
                }
            }
            for (w, mut v) in by_week {
                if let Some(m) = median(&mut v) {
                    med.insert(w, m);
                }
            }
        }
    }
    for (row, l) in rows.iter_mut().zip(raw) {
        let week = iso_week_index(row.week);
        let mut labels = [None; 2];
        for (h, out) in labels.iter_mut().enumerate() {
            let x = match target {
                Target::Raw => l.r[h],
                Target::Excess => l.r[h].zip(l.m[h]).map(|(r, m)| r - m),
                Target::Xs => l.r[h].zip(medians[h].get(&week)).map(|(r, m)| r - m),
            };
            let scale = l.sigma * (f64::from(HORIZONS[h]) / 7.0).sqrt();
            *out = x.map(|x| (x / scale).tanh() as f32);
        }
        row.trend_7day = labels[0];
        row.trend_30day = labels[1];
    }
}

/// Replaces every feature by its cross-sectional rank or z-score among the rows with the same
/// week date (see the module docs); `none` leaves them alone.
pub fn apply_cross_sectional(rows: &mut [WeeklyRow], mode: CrossSectional) {
    if mode == CrossSectional::None {
        return;
    }
    let mut groups: HashMap<NaiveDate, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        groups.entry(r.week).or_default().push(i);
    }
    let n_features = rows.first().map_or(0, |r| r.features.len());
    for idx in groups.values() {
        let n = idx.len();
        for j in 0..n_features {
            let vals: Vec<f64> = idx
                .iter()
                .map(|&i| f64::from(rows[i].features[j]))
                .collect();
            let out: Vec<f64> = match mode {
                CrossSectional::None => unreachable!(),
                CrossSectional::Rank => {
                    if n == 1 {
                        vec![0.5]
                    } else {
                        average_ranks(&vals)
                            .into_iter()
                            .map(|r| (r - 1.0) / (n - 1) as f64)
                            .collect()
                    }
                }
                CrossSectional::Zscore => {
                    let m = vals.iter().sum::<f64>() / n as f64;
                    let sd = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).sqrt();
                    vals.iter()
                        .map(|v| if sd > 0.0 { (v - m) / sd } else { 0.0 })
                        .collect()
                }
            };
            for (&i, v) in idx.iter().zip(out) {
                rows[i].features[j] = v as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranks() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
        assert_eq!("xs".parse::<Target>(), Ok(Target::Xs));
        assert!("median".parse::<Target>().is_err());
    }

    #[test]
    fn cross_sectional_rank_and_zscore_by_hand() {
        let d = NaiveDate::from_ymd_opt(2020, 1, 3).unwrap();
        let row = |t: &str, week: NaiveDate, v: f32| WeeklyRow {
            ticker: t.into(),
            week,
            features: vec![v, 1.0],
            trend_7day: None,
            trend_30day: None,
        };
        let thu = d - Duration::days(1);
        let mut rows = vec![
            row("A", d, 3.0),
            row("B", d, 1.0),
            row("C", d, 2.0),
            row("D", thu, 9.0),
        ];
        let mut z = rows.clone();
        apply_cross_sectional(&mut rows, CrossSectional::Rank);
        let got: Vec<f32> = rows.iter().map(|r| r.features[0]).collect();
        // A, B, C share a date: ranks 3, 1, 2 of 3 -> 1, 0, 0.5; D is alone on its Thursday.
        assert_eq!(got, vec![1.0, 0.0, 0.5, 0.5]);
        assert!(
            rows[..3].iter().all(|r| r.features[1] == 0.5),
            "ties average"
        );
        apply_cross_sectional(&mut z, CrossSectional::Zscore);
        // mean 2, population sd sqrt(2/3).
        let sd = (2.0f64 / 3.0).sqrt();
        assert!((f64::from(z[0].features[0]) - 1.0 / sd).abs() < 1e-6);
        assert_eq!(z[1].features[1], 0.0);
        assert_eq!(z[3].features[0], 0.0);
    }
}
