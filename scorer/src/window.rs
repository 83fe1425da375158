//! The window store: the last [`SEQUENCE_LENGTH`] consecutive weeks of every ticker.
//! Pure (no I/O, no clock): rows go in, ready windows and fates come out.
//!
//! Rules (shared/DESIGN.md): a row whose week equals the ticker's newest week is a duplicate
//! (dropped, counted); an older week is late (dead-letter `late`); a gap of one or more ISO
//! weeks restarts the window under [`GapPolicy::Reset`] or keeps it under
//! [`GapPolicy::Carry`]. Once a ticker holds 12 rows every new row yields a window.

use std::collections::{HashMap, VecDeque};

use chrono::NaiveDate;
use trendscore_schemas::{iso_week_index, NUM_FEATURES, SEQUENCE_LENGTH};

use crate::config::GapPolicy;
use crate::validate::ValidRow;

/// A full window, ready to score.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Ticker.
    pub ticker: String,
    /// The newest week: the week the prediction is for.
    pub week: NaiveDate,
    /// The oldest week in the window.
    pub window_start: NaiveDate,
    /// Raw features, shape (SEQUENCE_LENGTH, NUM_FEATURES) row-major, oldest week first.
    pub features: Vec<f32>,
}

/// What became of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    /// The row completed a window.
    Ready(Window),
    /// Stored; the window holds this many rows, fewer than 12.
    Filling(usize),
    /// Same week as the newest one seen for the ticker: dropped.
    Duplicate,
    /// Older than the newest week seen (given): dead-letter `late`.
    Late(NaiveDate),
}

/// A row's fate plus whether it followed a gap.
#[derive(Clone, Debug, PartialEq)]
pub struct Pushed {
    /// The fate.
    pub fate: Fate,
    /// The row came one or more weeks after the previous one (the gap policy applied).
    pub gap: bool,
}

#[derive(Clone, Debug, Default)]
struct TickerWindow {
    newest: Option<(NaiveDate, i64)>,
    start: VecDeque<NaiveDate>,
    rows: VecDeque<Vec<f32>>,
}

/// Windows of many tickers (one store per input partition in the service).
#[derive(Clone, Debug, Default)]
pub struct WindowStore {
    policy: GapPolicy,
    tickers: HashMap<String, TickerWindow>,
}

impl WindowStore {
    /// An empty store.
    pub fn new(policy: GapPolicy) -> Self {
        Self {
            policy,
            tickers: HashMap::new(),
        }
    }

    /// Number of tickers with state.
    pub fn len(&self) -> usize {
        self.tickers.len()
    }

    /// True when no ticker has state.
    pub fn is_empty(&self) -> bool {
        self.tickers.is_empty()
    }

    /// Applies one validated row.
    pub fn push(&mut self, row: ValidRow) -> Pushed {
        debug_assert_eq!(row.features.len(), NUM_FEATURES);
        let idx = iso_week_index(row.week);
        let tw = self.tickers.entry(row.ticker.clone()).or_default();
        let mut gap = false;
        if let Some((newest, newest_idx)) = tw.newest {
            if row.week == newest {
                return Pushed {
                    fate: Fate::Duplicate,
                    gap,
                };
            }
            if row.week < newest {
                return Pushed {
                    fate: Fate::Late(newest),
                    gap,
                };
            }
            // Two different dates in one ISO week count as consecutive-or-same; a later
            // date in the same ISO week is treated as the next row (not a gap).
            if idx > newest_idx + 1 {
                gap = true;
                if self.policy == GapPolicy::Reset {
                    tw.rows.clear();
                    tw.start.clear();
                }
            }
        }
        tw.newest = Some((row.week, idx));
        tw.rows.push_back(row.features);
        tw.start.push_back(row.week);
        while tw.rows.len() > SEQUENCE_LENGTH {
            tw.rows.pop_front();
            tw.start.pop_front();
        }
        let fate = if tw.rows.len() == SEQUENCE_LENGTH {
            let mut features = Vec::with_capacity(SEQUENCE_LENGTH * NUM_FEATURES);
            for r in &tw.rows {
                features.extend_from_slice(r);
            }
            Fate::Ready(Window {
                ticker: row.ticker,
                week: row.week,
                window_start: tw.start[0],
                features,
            })
        } else {
            Fate::Filling(tw.rows.len())
        };
        Pushed { fate, gap }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(i: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, 5).unwrap() + chrono::Duration::weeks(i)
    }

    fn row(t: &str, i: i64) -> ValidRow {
        ValidRow {
            ticker: t.into(),
            week: week(i),
            features: vec![i as f32; NUM_FEATURES],
        }
    }

    fn ready(p: &Pushed) -> Option<&Window> {
        match &p.fate {
            Fate::Ready(w) => Some(w),
            _ => None,
        }
    }

    #[test]
    fn window_is_ready_from_the_twelfth_row_and_slides() {
        let mut s = WindowStore::new(GapPolicy::Reset);
        for i in 0..11 {
            assert_eq!(s.push(row("A", i)).fate, Fate::Filling(i as usize + 1));
        }
        let p = s.push(row("A", 11));
        let w = ready(&p).unwrap();
        assert_eq!(w.week, week(11));
        assert_eq!(w.window_start, week(0));
        assert_eq!(w.features.len(), 12 * 62);
        assert_eq!(w.features[0], 0.0);
        assert_eq!(w.features[11 * 62], 11.0);
        let p = s.push(row("A", 12));
        let w = ready(&p).unwrap();
        assert_eq!(w.window_start, week(1));
        assert_eq!(w.features[0], 1.0);
        assert_eq!(w.features[12 * 62 - 1], 12.0);
    }

    #[test]
    fn tickers_are_independent() {
        let mut s = WindowStore::new(GapPolicy::Reset);
        for i in 0..11 {
            s.push(row("A", i));
            s.push(row("B", i + 100));
        }
        assert!(ready(&s.push(row("A", 11))).is_some());
        assert!(ready(&s.push(row("B", 111))).is_some());
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn duplicate_and_late_weeks() {
        let mut s = WindowStore::new(GapPolicy::Reset);
        for i in 0..5 {
            s.push(row("A", i));
        }
        assert_eq!(s.push(row("A", 4)).fate, Fate::Duplicate);
        assert_eq!(s.push(row("A", 2)).fate, Fate::Late(week(4)));
        // neither changed the window
        assert_eq!(s.push(row("A", 5)).fate, Fate::Filling(6));
    }

    #[test]
    fn gap_resets_or_carries() {
        let mut reset = WindowStore::new(GapPolicy::Reset);
        let mut carry = WindowStore::new(GapPolicy::Carry);
        for i in 0..12 {
            reset.push(row("A", i));
            carry.push(row("A", i));
        }
        let r = reset.push(row("A", 14));
        assert!(r.gap);
        assert_eq!(r.fate, Fate::Filling(1));
        let c = carry.push(row("A", 14));
        assert!(c.gap);
        let w = ready(&c).unwrap();
        assert_eq!(w.window_start, week(1)); // weeks 1..=11 and 14
                                             // after a reset, 11 more consecutive rows fill the window again
        for i in 15..25 {
            assert!(ready(&reset.push(row("A", i))).is_none());
        }
        let w = reset.push(row("A", 25));
        assert_eq!(ready(&w).unwrap().window_start, week(14));
    }

    #[test]
    fn year_boundary_is_consecutive() {
        let mut s = WindowStore::new(GapPolicy::Reset);
        let d1 = NaiveDate::from_ymd_opt(2020, 12, 31).unwrap();
        let d2 = NaiveDate::from_ymd_opt(2021, 1, 8).unwrap();
        s.push(ValidRow {
            ticker: "A".into(),
            week: d1,
            features: vec![0.0; 62],
        });
        let p = s.push(ValidRow {
            ticker: "A".into(),
            week: d2,
            features: vec![0.0; 62],
        });
        assert!(!p.gap);
        assert_eq!(p.fate, Fate::Filling(2));
    }
}
