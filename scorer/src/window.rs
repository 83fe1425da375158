//! The window store: the last [`SEQUENCE_LENGTH`] consecutive weeks of every ticker.
//! Pure (no I/O, no clock): rows go in, ready windows and fates come out.
//!
//! Rules (shared/DESIGN.md): weeks are ISO weeks. A row in the same ISO week as the ticker's
//! newest row is a duplicate (dropped, counted), even when its date differs; an older ISO week
//! is late (dead-letter `late`); a gap of one or more ISO
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

#[derive(Clone, Debug, Default, PartialEq)]
struct TickerWindow {
    newest: Option<(NaiveDate, i64)>,
    start: VecDeque<NaiveDate>,
    rows: VecDeque<Vec<f32>>,
}

/// One ticker's window state, as the changelog carries it: its rows, oldest first (1 to 12;
/// the last row is the ticker's newest week).
#[derive(Clone, Debug, PartialEq)]
pub struct TickerState {
    /// (week, 62 raw features) per row, oldest first.
    pub rows: Vec<(NaiveDate, Vec<f32>)>,
}

/// Windows of many tickers (one store per input partition in the service).
#[derive(Clone, Debug, Default, PartialEq)]
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

    /// The gap policy the store applies.
    pub fn policy(&self) -> GapPolicy {
        self.policy
    }

    /// The tickers with state, in no particular order.
    pub fn tickers(&self) -> impl Iterator<Item = &str> {
        self.tickers.keys().map(String::as_str)
    }

    /// One ticker's state, `None` when the ticker has none.
    pub fn ticker_state(&self, ticker: &str) -> Option<TickerState> {
        let tw = self.tickers.get(ticker)?;
        Some(TickerState {
            rows: tw
                .start
                .iter()
                .copied()
                .zip(tw.rows.iter().cloned())
                .collect(),
        })
    }

    /// Replaces one ticker's state (restore from the changelog). Refuses a state that no
    /// sequence of pushes could have produced: empty, more than 12 rows, a row that is not 62
    /// features, or weeks not strictly increasing by ISO week.
    pub fn set_ticker_state(&mut self, ticker: &str, state: TickerState) -> Result<(), String> {
        let n = state.rows.len();
        if n == 0 || n > SEQUENCE_LENGTH {
            return Err(format!("{n} rows (1 to {SEQUENCE_LENGTH} expected)"));
        }
        let mut tw = TickerWindow::default();
        let mut last: Option<i64> = None;
        for (week, features) in state.rows {
            if features.len() != NUM_FEATURES {
                return Err(format!("a row of {} features", features.len()));
            }
            let idx = iso_week_index(week);
            if last.is_some_and(|l| idx <= l) {
                return Err(format!("week {week} does not follow the previous row"));
            }
            last = Some(idx);
            tw.newest = Some((week, idx));
            tw.start.push_back(week);
            tw.rows.push_back(features);
        }
        self.tickers.insert(ticker.to_string(), tw);
        Ok(())
    }

    /// Forgets one ticker.
    pub fn remove_ticker(&mut self, ticker: &str) {
        self.tickers.remove(ticker);
    }

    /// Applies one validated row.
    pub fn push(&mut self, row: ValidRow) -> Pushed {
        debug_assert_eq!(row.features.len(), NUM_FEATURES);
        let idx = iso_week_index(row.week);
        let tw = self.tickers.entry(row.ticker.clone()).or_default();
        let mut gap = false;
        if let Some((newest, newest_idx)) = tw.newest {
            // Weeks are compared by ISO week: two dates in one ISO week are the same week
            // (a duplicate, whichever date comes second), an earlier ISO week is late.
            if idx == newest_idx {
                return Pushed {
                    fate: Fate::Duplicate,
                    gap,
                };
            }
            if idx < newest_idx {
                return Pushed {
                    fate: Fate::Late(newest),
                    gap,
                };
            }
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
    fn another_date_in_the_same_iso_week_is_a_duplicate() {
        let mut s = WindowStore::new(GapPolicy::Reset);
        for i in 0..3 {
            s.push(row("A", i));
        }
        // week(2) is a Friday: the Thursday before and the Sunday after are the same ISO week
        for d in [-1i64, 2] {
            let mut r = row("A", 2);
            r.week = week(2) + chrono::Duration::days(d);
            assert_eq!(s.push(r).fate, Fate::Duplicate, "offset {d} days");
        }
        // the Monday after is the next ISO week: consecutive, not a gap
        let mut r = row("A", 3);
        r.week = week(2) + chrono::Duration::days(3);
        let p = s.push(r);
        assert!(!p.gap);
        assert_eq!(p.fate, Fate::Filling(4));
        // a date in an earlier ISO week is late
        assert_eq!(
            s.push(row("A", 1)).fate,
            Fate::Late(week(2) + chrono::Duration::days(3))
        );
    }

    #[test]
    fn ticker_state_round_trips_and_behaves_the_same() {
        let mut a = WindowStore::new(GapPolicy::Reset);
        for i in 0..15 {
            a.push(row("A", i));
        }
        for i in 0..4 {
            a.push(row("B", i));
        }
        let mut b = WindowStore::new(GapPolicy::Reset);
        for t in ["A", "B"] {
            b.set_ticker_state(t, a.ticker_state(t).unwrap()).unwrap();
        }
        assert_eq!(a, b);
        assert_eq!(a.ticker_state("A").unwrap().rows.len(), 12);
        assert_eq!(a.push(row("A", 15)), b.push(row("A", 15)));
        assert_eq!(a.push(row("B", 3)), b.push(row("B", 3)));
        // states no push sequence could make are refused
        let mut bad = a.ticker_state("A").unwrap();
        bad.rows.swap(0, 1);
        assert!(b.set_ticker_state("C", bad).is_err());
        assert!(b
            .set_ticker_state("C", TickerState { rows: vec![] })
            .is_err());
        let mut narrow = a.ticker_state("B").unwrap();
        narrow.rows[0].1.pop();
        assert!(b.set_ticker_state("C", narrow).is_err());
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

    mod properties {
        use super::*;
        use chrono::Datelike;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            /// Any sequence of rows, with dates anywhere chrono can represent, never panics,
            /// and every window is 12 rows of one ticker in increasing ISO weeks.
            #[test]
            fn any_row_sequence_keeps_the_window_invariants(
                steps in prop::collection::vec((0usize..3, prop_oneof![
                    -3i64..40,
                    Just(i64::from(NaiveDate::MIN.num_days_from_ce()) / 7 - 1000),
                    Just(i64::from(NaiveDate::MAX.num_days_from_ce()) / 7),
                ]), 1..200),
                carry in any::<bool>(),
            ) {
                let policy = if carry { GapPolicy::Carry } else { GapPolicy::Reset };
                let mut s = WindowStore::new(policy);
                let lo = NaiveDate::MIN;
                for (t, w) in steps {
                    let days = (w * 7).clamp(0, i64::from(NaiveDate::MAX.num_days_from_ce() - lo.num_days_from_ce()));
                    let week = lo.checked_add_days(chrono::Days::new(days as u64)).unwrap_or(NaiveDate::MAX);
                    let p = s.push(ValidRow { ticker: format!("T{t}"), week, features: vec![w as f32; NUM_FEATURES] });
                    if let Fate::Ready(win) = p.fate {
                        prop_assert_eq!(win.features.len(), SEQUENCE_LENGTH * NUM_FEATURES);
                        prop_assert!(win.window_start <= win.week);
                        prop_assert_eq!(win.ticker, format!("T{t}"));
                    }
                    let st = s.ticker_state(&format!("T{t}"));
                    if let Some(st) = st {
                        prop_assert!(!st.rows.is_empty() && st.rows.len() <= SEQUENCE_LENGTH);
                        let idx: Vec<i64> = st.rows.iter().map(|(d, _)| iso_week_index(*d)).collect();
                        prop_assert!(idx.windows(2).all(|p| p[0] < p[1]));
                    }
                }
            }
        }
    }
}
