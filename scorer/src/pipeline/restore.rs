//! The pure half of restoring a partition's windows at its committed offset.
//!
//! The Kafka half ([`crate::service::restore`]) reads the changelog records and the input
//! messages; this module decides what they mean. Use:
//! 1. [`Restorer::from_changelog`] with the records read back (or
//!    [`Restorer::without_changelog`]);
//! 2. replay the valid input rows from [`Restorer::replay_from`] (`None` = the partition's
//!    first offset) up to the committed offset through [`Restorer::replay`];
//! 3. [`Restorer::finish`] gives the [`PartitionWindows`], exactly the state an
//!    uninterrupted run had at the committed offset, and a summary for logs and metrics.
//!
//! A changelog that cannot be used (a record ahead of the committed offset, an undecodable
//! record, an impossible state) turns into a rebuild from the whole input partition: the
//! tickers the changelog holds but the rebuilt store does not are tombstoned, and the first
//! write is a full snapshot.

use std::collections::BTreeSet;

use crate::changelog::{plan_restore, LogStart, PartitionLog, Plan, Record, Restoring, Snapshot};
use crate::config::GapPolicy;
use crate::pipeline::PartitionWindows;
use crate::validate::ValidRow;
use crate::window::WindowStore;

/// Where a restored partition's state came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreSource {
    /// Changelog records plus the input after the newest marker.
    Changelog,
    /// The whole input partition (no changelog, or an unusable one).
    Input,
}

impl RestoreSource {
    /// The name used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreSource::Changelog => "changelog",
            RestoreSource::Input => "input",
        }
    }
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Where the state came from.
    pub source: RestoreSource,
    /// Changelog records read.
    pub changelog_records: usize,
    /// Input rows replayed (applied or skipped as covered by the changelog).
    pub input_rows: usize,
    /// Tickers with window state after the restore.
    pub tickers: usize,
    /// Why the changelog was not used, when it was not.
    pub unusable: Option<String>,
}

enum Mode {
    /// The changelog's states, plus the replay past each ticker's `as_of`.
    Changelog(Restoring),
    /// A rebuild from the whole input partition.
    Rebuild {
        store: WindowStore,
        /// With a changelog: the tickers it holds (tombstoned unless rebuilt).
        logged: Option<BTreeSet<String>>,
    },
}

/// A restore in progress (see the module docs).
pub struct Restorer {
    mode: Mode,
    committed: i64,
    changelog_records: usize,
    input_rows: usize,
    unusable: Option<String>,
}

impl Restorer {
    /// Restore without a changelog: the whole input partition is replayed.
    pub fn without_changelog(policy: GapPolicy, committed: i64) -> Self {
        Self {
            mode: Mode::Rebuild {
                store: WindowStore::new(policy),
                logged: None,
            },
            committed,
            changelog_records: 0,
            input_rows: 0,
            unusable: None,
        }
    }

    /// Restore from changelog `records` (offset order, from the newest complete full
    /// snapshot or the partition's start) at input offset `committed`.
    pub fn from_changelog(records: Vec<Record>, committed: i64, policy: GapPolicy) -> Self {
        let changelog_records = records.len();
        let (mode, unusable) = match plan_restore(records, committed, policy) {
            Plan::Restore(r) => (Mode::Changelog(r), None),
            Plan::Unusable { reason, tickers } => (
                Mode::Rebuild {
                    store: WindowStore::new(policy),
                    logged: Some(tickers),
                },
                Some(reason),
            ),
        };
        Self {
            mode,
            committed,
            changelog_records,
            input_rows: 0,
            unusable,
        }
    }

    /// The first input offset to replay; `None` = the partition's first offset.
    pub fn replay_from(&self) -> Option<i64> {
        match &self.mode {
            Mode::Changelog(r) => r.replay_from,
            Mode::Rebuild { .. } => None,
        }
    }

    /// The committed offset the replay ends before.
    pub fn committed(&self) -> i64 {
        self.committed
    }

    /// Why the changelog could not be used, when it could not.
    pub fn unusable(&self) -> Option<&str> {
        self.unusable.as_deref()
    }

    /// Applies the valid input row at `offset` (ascending, below the committed offset).
    pub fn replay(&mut self, offset: i64, row: ValidRow) {
        debug_assert!(offset < self.committed);
        self.input_rows += 1;
        match &mut self.mode {
            Mode::Changelog(r) => r.replay(offset, row),
            Mode::Rebuild { store, .. } => {
                store.push(row);
            }
        }
    }

    /// The restored partition.
    pub fn finish(self) -> (PartitionWindows, RestoreSummary) {
        let at = self.committed;
        let (windows, source) = match self.mode {
            Mode::Changelog(mut r) => {
                let start = LogStart {
                    at,
                    dirty: std::mem::take(&mut r.dirty),
                    snapshot: if r.found_full {
                        Snapshot::NotDue
                    } else {
                        Snapshot::Due
                    },
                    tombstones: BTreeSet::new(),
                };
                let log = PartitionLog::start(r.store.clone(), start);
                (
                    PartitionWindows::logged(r.store, log),
                    RestoreSource::Changelog,
                )
            }
            Mode::Rebuild {
                store,
                logged: None,
            } => (PartitionWindows::unlogged(store), RestoreSource::Input),
            Mode::Rebuild {
                store,
                logged: Some(logged),
            } => {
                let start = LogStart {
                    at,
                    dirty: store.tickers().map(str::to_string).collect(),
                    snapshot: Snapshot::Due,
                    tombstones: logged
                        .into_iter()
                        .filter(|t| store.ticker_state(t).is_none())
                        .collect(),
                };
                let log = PartitionLog::start(store.clone(), start);
                (PartitionWindows::logged(store, log), RestoreSource::Input)
            }
        };
        let summary = RestoreSummary {
            source,
            changelog_records: self.changelog_records,
            input_rows: self.input_rows,
            tickers: windows.live().len(),
            unusable: self.unusable,
        };
        (windows, summary)
    }
}

#[cfg(test)]
mod tests {
    //! The crash-anywhere test of the changelog protocol, driving the real pipeline parts
    //! ([`PartitionWindows`], [`Restorer`], the changelog's own snapshot search): a partition
    //! of input rows, a consumer that stores and commits offsets at random points, a
    //! changelog whose undelivered tail is lost at random crashes, and restores. After every
    //! crash the restored windows must equal a store built from exactly the input rows below
    //! the committed offset.

    use super::*;
    use crate::changelog::{full_snapshot_start, Outgoing};
    use chrono::NaiveDate;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use trendscore_schemas::NUM_FEATURES;

    fn week(i: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, 5).unwrap() + chrono::Duration::weeks(i)
    }

    fn random_input(rng: &mut StdRng) -> Vec<ValidRow> {
        // 7 tickers, mostly consecutive weeks, some duplicates, late rows and gaps
        let mut input = Vec::new();
        let mut next_week = [0i64; 7];
        for _ in 0..600 {
            let t = rng.gen_range(0..7);
            let r: f64 = rng.gen();
            let w = if r < 0.05 {
                next_week[t] - 1
            } else if r < 0.08 {
                next_week[t] - 3
            } else if r < 0.11 {
                next_week[t] += 2;
                next_week[t] - 1
            } else {
                next_week[t] += 1;
                next_week[t] - 1
            };
            input.push(ValidRow {
                ticker: format!("T{t}"),
                week: week(w),
                features: vec![rng.gen::<f32>(); NUM_FEATURES],
            });
        }
        input
    }

    #[test]
    fn crash_anywhere_restores_the_exact_state() {
        let mut snapshot_starts = 0;
        for seed in 0..40u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let policy = if seed % 2 == 0 {
                GapPolicy::Reset
            } else {
                GapPolicy::Carry
            };
            let input = random_input(&mut rng);
            let truth = |upto: i64| {
                let mut s = WindowStore::new(policy);
                for r in &input[..upto as usize] {
                    s.push(r.clone());
                }
                s
            };
            let mut changelog: Vec<Record> = Vec::new();
            let mut committed = 0i64;
            let mut restores = 0;
            loop {
                // restore at `committed`: read backwards in chunks to the newest snapshot
                let start = {
                    let mut k = changelog.len();
                    let mut found = None;
                    while k > 0 && found.is_none() {
                        k = k.saturating_sub(50);
                        found = full_snapshot_start(&changelog[k..]);
                    }
                    found.unwrap_or(0)
                };
                snapshot_starts += usize::from(start > 0);
                let recs: Vec<Record> = changelog
                    .iter()
                    .filter(|r| r.offset >= start)
                    .cloned()
                    .collect();
                let mut restorer = Restorer::from_changelog(recs, committed, policy);
                assert_eq!(restorer.unusable(), None, "seed {seed}");
                let from = restorer.replay_from().unwrap_or(0);
                assert!(from <= committed);
                for (o, r) in input
                    .iter()
                    .enumerate()
                    .take(committed as usize)
                    .skip(from as usize)
                {
                    restorer.replay(o as i64, r.clone());
                }
                let (mut part, summary) = restorer.finish();
                assert_eq!(summary.source, RestoreSource::Changelog);
                assert_eq!(part.live(), &truth(committed), "seed {seed} at {committed}");
                restores += 1;
                if committed as usize == input.len() {
                    break;
                }
                // consume some messages; store and commit at random points; changelog
                // records are in flight until a random delivery point
                let mut consumed = committed;
                let mut stored = committed;
                let mut in_flight: Vec<Outgoing> = Vec::new();
                for _ in 0..rng.gen_range(1..120) {
                    if (consumed as usize) < input.len() {
                        part.apply(consumed, Ok(input[consumed as usize].clone()));
                        consumed += 1;
                    }
                    if rng.gen_bool(0.2) {
                        stored = rng.gen_range(stored..=consumed);
                        part.stored(stored);
                    }
                    if rng.gen_bool(0.1) {
                        committed = stored;
                        in_flight.extend(part.changelog_records());
                    }
                    if rng.gen_bool(0.3) {
                        let n = rng.gen_range(0..=in_flight.len());
                        for (key, value) in in_flight.drain(..n) {
                            let offset = changelog.len() as i64;
                            changelog.push(Record::read(offset, &key, value.as_deref()));
                        }
                    }
                    if rng.gen_bool(0.05) {
                        let log = part.log().unwrap();
                        assert_eq!(log.shadow(), &truth(log.at()), "shadow is exact");
                    }
                }
                // crash: the rest of in_flight and every uncommitted step are lost
            }
            assert!(restores >= 2, "seed {seed}");
        }
        assert!(
            snapshot_starts > 10,
            "restores started at a full snapshot {snapshot_starts} times"
        );
    }

    #[test]
    fn an_unusable_changelog_rebuilds_from_the_input_and_tombstones_the_rest() {
        let row = |t: &str, w| ValidRow {
            ticker: t.into(),
            week: week(w),
            features: vec![0.0; NUM_FEATURES],
        };
        // the changelog knows tickers A and Z, one record ahead of the committed offset 3
        let mut ahead = WindowStore::new(GapPolicy::Reset);
        ahead.push(row("A", 0));
        let recs = vec![
            Record::read(
                0,
                b"A",
                Some(&crate::changelog::encode_ticker(
                    "A",
                    9,
                    false,
                    &ahead.ticker_state("A").unwrap(),
                )),
            ),
            Record::read(
                1,
                b"Z",
                Some(&crate::changelog::encode_ticker(
                    "Z",
                    1,
                    false,
                    &ahead.ticker_state("A").unwrap(),
                )),
            ),
        ];
        let mut r = Restorer::from_changelog(recs, 3, GapPolicy::Reset);
        assert!(r.unusable().unwrap().contains("past the committed 3"));
        assert_eq!(r.replay_from(), None, "the whole input");
        for (o, w) in [(0, 0), (1, 1), (2, 2)] {
            r.replay(o, row("A", w));
        }
        let (mut part, summary) = r.finish();
        assert_eq!(summary.source, RestoreSource::Input);
        assert_eq!((summary.input_rows, summary.tickers), (3, 1));
        let out = part.changelog_records();
        let keys: Vec<_> = out.iter().map(|(k, v)| (k.clone(), v.is_some())).collect();
        assert_eq!(
            keys,
            vec![
                (b"Z".to_vec(), false),
                (b"A".to_vec(), true),
                (crate::changelog::FULL_MARKER_KEY.to_vec(), true)
            ],
            "tombstone Z, then a full snapshot of A"
        );
    }
}
