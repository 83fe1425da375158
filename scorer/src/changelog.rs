//! The window changelog: a compacted topic, keyed by ticker, that holds every ticker's
//! window state so a partition's windows survive restarts and move with the partition to
//! another instance. This module is pure (no I/O): it encodes and decodes records, keeps the
//! writer's per-partition state, and plans a restore from records read back.
//!
//! # Protocol (why the output stays exact without transactions)
//! - Changelog partition `p` holds the windows of input partition `p`.
//! - Each ticker record carries `as_of`: the input offset its state is exact at (the state
//!   after every input message below `as_of`, none above).
//! - **Commit first, then log.** The writer keeps a *shadow* [`WindowStore`] that trails the
//!   live one: it holds exactly the rows below the offset the consumer has *stored* (the
//!   offset whose predictions are durable). After the consumer *commits* offset C, the
//!   tickers the shadow changed since the last commit are produced with `as_of = C`, then a
//!   marker `{as_of: C}`. So no record is ever ahead of the committed offset: a crash loses
//!   at most records that are *behind*, and behind is repaired by replaying the input.
//! - A marker with `as_of = M` means: every ticker whose state changed below M has a record
//!   at or after its last change. Restoring at committed offset C: take each ticker's
//!   record with the highest `as_of`, then replay input messages `[M, C)` through the same
//!   window code, applying a message to a ticker only when its offset is at or past the
//!   ticker's `as_of`. The result is exactly the state of an uninterrupted run at C.
//! - Every so often (when the deltas since the last one reach the partition's ticker count)
//!   the writer writes a **full snapshot** (every ticker, then a full marker naming how many
//!   records it holds). A restore reads the changelog backwards from its end until it finds
//!   the newest complete full snapshot and starts there, so restore time stays bounded even
//!   on a broker that never compacts (tansu 0.6 keeps every record; Kafka compacts).
//! - A record ahead of the committed offset (someone reset the group's offsets backwards)
//!   or an undecodable one makes the changelog unusable: the caller rebuilds from the whole
//!   input partition, tombstones the tickers it no longer has, and writes a full snapshot.

use std::collections::{BTreeSet, HashMap, VecDeque};

use base64::Engine;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use trendscore_schemas::NUM_FEATURES;

use crate::config::GapPolicy;
use crate::validate::ValidRow;
use crate::window::{Fate, TickerState, WindowStore};

/// Key of delta markers. Tickers are never blank and never start with NUL.
pub const MARKER_KEY: &[u8] = b"\0marker";
/// Key of full-snapshot markers (a separate key so compaction keeps the newest of each).
pub const FULL_MARKER_KEY: &[u8] = b"\0full";
/// Version of the record format.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Value {
    Ticker {
        v: u32,
        as_of: i64,
        full: bool,
        ticker: String,
        /// (week, base64 of the 62 features as little-endian f32), oldest first.
        rows: Vec<(NaiveDate, String)>,
    },
    Marker {
        v: u32,
        as_of: i64,
        full: bool,
        count: usize,
    },
}

/// A changelog record as read back, decoded once.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Offset in the changelog partition.
    pub offset: i64,
    /// The decoded entry, or what is wrong with the record.
    pub entry: Result<Entry, String>,
}

impl Record {
    /// Decodes the record at `offset` (`value = None` is a tombstone).
    pub fn read(offset: i64, key: &[u8], value: Option<&[u8]>) -> Self {
        Self {
            offset,
            entry: decode(key, value),
        }
    }
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// One ticker's state, exact at input offset `as_of`.
    Ticker {
        /// Ticker.
        ticker: String,
        /// Input offset the state is exact at.
        as_of: i64,
        /// Part of a full snapshot.
        full: bool,
        /// The state.
        state: TickerState,
    },
    /// The ticker has no state any more.
    Tombstone {
        /// Ticker.
        ticker: String,
    },
    /// Every change below `as_of` is logged; a full marker closes `count` full records.
    Marker {
        /// Input offset.
        as_of: i64,
        /// Closes a full snapshot.
        full: bool,
        /// Ticker records in the full snapshot (0 for delta markers).
        count: usize,
    },
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Encodes one ticker record's value (features bit-exact, as little-endian f32).
pub fn encode_ticker(ticker: &str, as_of: i64, full: bool, state: &TickerState) -> Vec<u8> {
    let rows = state
        .rows
        .iter()
        .map(|(week, f)| {
            let bytes: Vec<u8> = f.iter().flat_map(|x| x.to_le_bytes()).collect();
            (*week, B64.encode(bytes))
        })
        .collect();
    serde_json::to_vec(&Value::Ticker {
        v: FORMAT_VERSION,
        as_of,
        full,
        ticker: ticker.to_string(),
        rows,
    })
    .expect("serialising plain data")
}

/// Encodes a marker's value.
pub fn encode_marker(as_of: i64, full: bool, count: usize) -> Vec<u8> {
    serde_json::to_vec(&Value::Marker {
        v: FORMAT_VERSION,
        as_of,
        full,
        count,
    })
    .expect("serialising plain data")
}

/// Decodes a record; an error names what is wrong.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Entry, String> {
    let Some(value) = value else {
        let ticker = std::str::from_utf8(key).map_err(|_| "tombstone key is not UTF-8")?;
        return Ok(Entry::Tombstone {
            ticker: ticker.to_string(),
        });
    };
    let v: Value = serde_json::from_slice(value).map_err(|e| format!("undecodable: {e}"))?;
    match v {
        Value::Ticker {
            v,
            as_of,
            full,
            ticker,
            rows,
        } => {
            if v != FORMAT_VERSION {
                return Err(format!(
                    "format version {v}, this scorer reads {FORMAT_VERSION}"
                ));
            }
            if key != ticker.as_bytes() {
                return Err(format!("key does not match ticker {ticker:?}"));
            }
            let mut out = Vec::with_capacity(rows.len());
            for (week, b) in rows {
                let bytes = B64.decode(b).map_err(|e| format!("{ticker} {week}: {e}"))?;
                if bytes.len() != NUM_FEATURES * 4 {
                    return Err(format!("{ticker} {week}: {} feature bytes", bytes.len()));
                }
                let f = bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                out.push((week, f));
            }
            Ok(Entry::Ticker {
                ticker,
                as_of,
                full,
                state: TickerState { rows: out },
            })
        }
        Value::Marker {
            v,
            as_of,
            full,
            count,
        } => {
            if v != FORMAT_VERSION {
                return Err(format!(
                    "format version {v}, this scorer reads {FORMAT_VERSION}"
                ));
            }
            Ok(Entry::Marker { as_of, full, count })
        }
    }
}

/// A record to produce: key and value (`None` = tombstone).
pub type Outgoing = (Vec<u8>, Option<Vec<u8>>);

/// The writer's state for one partition.
#[derive(Debug)]
pub struct PartitionLog {
    shadow: WindowStore,
    shadow_at: i64,
    queue: VecDeque<(i64, ValidRow)>,
    dirty: BTreeSet<String>,
    tombstones: BTreeSet<String>,
    marker_at: i64,
    deltas_since_full: usize,
    needs_full: bool,
}

/// Whether a partition's next changelog write must be a full snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snapshot {
    /// Write every ticker at the next commit (no complete snapshot was found, or the
    /// changelog was rebuilt).
    Due,
    /// Deltas until the deltas since the last snapshot reach the ticker count.
    NotDue,
}

/// Where a partition's changelog writer starts (named fields, so a restore says what it
/// found instead of passing positional flags).
#[derive(Clone, Debug)]
pub struct LogStart {
    /// The input offset the store is exact at (the committed offset).
    pub at: i64,
    /// Tickers whose records may be missing from the changelog (the replay changed them).
    pub dirty: BTreeSet<String>,
    /// Whether the first write is a full snapshot.
    pub snapshot: Snapshot,
    /// Tickers to delete from the changelog (it holds them, the store does not).
    pub tombstones: BTreeSet<String>,
}

impl PartitionLog {
    /// Starts from a restored `store`, exact at `start.at`.
    pub fn start(store: WindowStore, start: LogStart) -> Self {
        Self {
            shadow: store,
            shadow_at: start.at,
            queue: VecDeque::new(),
            dirty: start.dirty,
            tombstones: start.tombstones,
            marker_at: start.at,
            deltas_since_full: 0,
            needs_full: start.snapshot == Snapshot::Due,
        }
    }

    /// The input offset the shadow store is exact at.
    pub fn at(&self) -> i64 {
        self.shadow_at
    }

    /// The shadow store (state at [`PartitionLog::at`]).
    pub fn shadow(&self) -> &WindowStore {
        &self.shadow
    }

    /// Remembers a valid row the live store just took (offsets increase).
    pub fn queue(&mut self, offset: i64, row: ValidRow) {
        self.queue.push_back((offset, row));
    }

    /// The consumer stored offset `to`: every queued row below it joins the shadow.
    pub fn advance(&mut self, to: i64) {
        while self.queue.front().is_some_and(|(o, _)| *o < to) {
            let (_, row) = self.queue.pop_front().expect("front checked");
            let ticker = row.ticker.clone();
            if matches!(
                self.shadow.push(row).fate,
                Fate::Ready(_) | Fate::Filling(_)
            ) {
                self.tombstones.remove(&ticker);
                self.dirty.insert(ticker);
            }
        }
        self.shadow_at = self.shadow_at.max(to);
    }

    /// The records to produce now that offset [`PartitionLog::at`] is committed: the
    /// changed tickers (or every ticker, for a full snapshot), then a marker. Empty when
    /// nothing moved since the last marker.
    pub fn after_commit(&mut self) -> Vec<Outgoing> {
        let at = self.shadow_at;
        if !self.needs_full
            && at == self.marker_at
            && self.dirty.is_empty()
            && self.tombstones.is_empty()
        {
            return Vec::new();
        }
        let full = self.needs_full || self.deltas_since_full >= self.shadow.len().max(64);
        let mut out = Vec::new();
        for t in std::mem::take(&mut self.tombstones) {
            out.push((t.into_bytes(), None));
        }
        let tickers: Vec<String> = if full {
            let mut all: Vec<String> = self.shadow.tickers().map(str::to_string).collect();
            all.sort();
            self.dirty.clear();
            all
        } else {
            std::mem::take(&mut self.dirty).into_iter().collect()
        };
        let mut count = 0;
        for t in tickers {
            if let Some(state) = self.shadow.ticker_state(&t) {
                out.push((
                    t.clone().into_bytes(),
                    Some(encode_ticker(&t, at, full, &state)),
                ));
                count += 1;
            }
        }
        if full {
            out.push((
                FULL_MARKER_KEY.to_vec(),
                Some(encode_marker(at, true, count)),
            ));
            self.deltas_since_full = 0;
            self.needs_full = false;
        } else {
            out.push((MARKER_KEY.to_vec(), Some(encode_marker(at, false, 0))));
            self.deltas_since_full += count;
        }
        self.marker_at = at;
        out
    }
}

/// Where a restore should start reading: the first offset of the newest complete full
/// snapshot among `records` (read backwards from the end, offset order). `None` when no
/// complete full snapshot is in `records` (read further back).
pub fn full_snapshot_start(records: &[Record]) -> Option<i64> {
    let (i, as_of, count) = records
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, r)| match r.entry {
            Ok(Entry::Marker {
                as_of,
                full: true,
                count,
            }) => Some((i, as_of, count)),
            _ => None,
        })?;
    let mut seen = 0;
    let mut first = records[i].offset;
    for r in records[..i].iter().rev() {
        if seen == count {
            break;
        }
        if let Ok(Entry::Ticker {
            as_of: a,
            full: true,
            ..
        }) = r.entry
        {
            if a == as_of {
                seen += 1;
                first = r.offset;
            }
        }
    }
    (seen == count).then_some(first)
}

/// What a restore found in the changelog.
#[derive(Debug)]
pub enum Plan {
    /// The changelog is consistent with the committed offset: start from it.
    Restore(Restoring),
    /// The changelog cannot be used (the reason); rebuild from the whole input partition.
    Unusable {
        /// Why.
        reason: String,
        /// Tickers the changelog holds (to tombstone those the rebuild does not have).
        tickers: BTreeSet<String>,
    },
}

/// A store being restored: the changelog's states plus the input replay still to apply.
#[derive(Debug)]
pub struct Restoring {
    /// The store so far.
    pub store: WindowStore,
    as_of: HashMap<String, i64>,
    /// Replay input from this offset (the newest marker); `None` = from the input's start.
    pub replay_from: Option<i64>,
    /// Tickers the replay changed (their records may be missing: log them again).
    pub dirty: BTreeSet<String>,
    /// A complete full snapshot was among the records.
    pub found_full: bool,
}

impl Restoring {
    /// Applies one input row at `offset` if the ticker's changelog state does not cover it.
    pub fn replay(&mut self, offset: i64, row: ValidRow) {
        if self.as_of.get(&row.ticker).is_some_and(|&a| offset < a) {
            return;
        }
        let ticker = row.ticker.clone();
        if matches!(self.store.push(row).fate, Fate::Ready(_) | Fate::Filling(_)) {
            self.dirty.insert(ticker);
        }
    }
}

/// Plans the restore of one partition at committed input offset `committed` from its
/// changelog records (offset order, starting at a full snapshot or the partition's start).
pub fn plan_restore(records: Vec<Record>, committed: i64, policy: GapPolicy) -> Plan {
    let mut states: HashMap<String, (i64, TickerState)> = HashMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut marker: Option<i64> = None;
    let mut found_full = false;
    let mut problem: Option<String> = None;
    for r in records {
        match r.entry {
            Err(e) => {
                problem.get_or_insert(format!("record at offset {}: {e}", r.offset));
            }
            Ok(Entry::Tombstone { ticker }) => {
                states.remove(&ticker);
            }
            Ok(Entry::Marker { as_of, full, .. }) => {
                if as_of > committed {
                    problem.get_or_insert(format!(
                        "marker at offset {} is at input offset {as_of}, past the committed {committed}",
                        r.offset
                    ));
                }
                found_full |= full;
                marker = Some(marker.map_or(as_of, |m| m.max(as_of)));
            }
            Ok(Entry::Ticker {
                ticker,
                as_of,
                state,
                ..
            }) => {
                seen.insert(ticker.clone());
                if as_of > committed {
                    problem.get_or_insert(format!(
                        "{ticker} at offset {} is at input offset {as_of}, past the committed {committed}",
                        r.offset
                    ));
                }
                match states.get(&ticker) {
                    Some((a, _)) if *a > as_of => {}
                    _ => {
                        states.insert(ticker, (as_of, state));
                    }
                }
            }
        }
    }
    if let Some(reason) = problem {
        return Plan::Unusable {
            reason,
            tickers: seen,
        };
    }
    let mut store = WindowStore::new(policy);
    let mut as_of = HashMap::with_capacity(states.len());
    for (ticker, (a, state)) in states {
        if let Err(e) = store.set_ticker_state(&ticker, state) {
            return Plan::Unusable {
                reason: format!("{ticker}: {e}"),
                tickers: seen,
            };
        }
        as_of.insert(ticker, a);
    }
    Plan::Restore(Restoring {
        store,
        as_of,
        replay_from: marker,
        dirty: BTreeSet::new(),
        found_full,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(i: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, 5).unwrap() + chrono::Duration::weeks(i)
    }

    fn state(n: usize, seed: f32) -> TickerState {
        TickerState {
            rows: (0..n)
                .map(|i| {
                    let f = (0..NUM_FEATURES)
                        .map(|j| seed + i as f32 * 0.1 + j as f32 * 1e-7 + f32::EPSILON)
                        .collect();
                    (week(i as i64), f)
                })
                .collect(),
        }
    }

    #[test]
    fn records_round_trip_bit_exact() {
        let mut s = state(12, 0.333_333_34);
        s.rows[3].1[5] = f32::MIN_POSITIVE;
        s.rows[4].1[0] = -0.0;
        s.rows[5].1[1] = 1.234_567_9e-30;
        let v = encode_ticker("AAPL", 42, true, &s);
        match decode(b"AAPL", Some(&v)).unwrap() {
            Entry::Ticker {
                ticker,
                as_of,
                full,
                state,
            } => {
                assert_eq!((ticker.as_str(), as_of, full), ("AAPL", 42, true));
                for (a, b) in state.rows.iter().zip(&s.rows) {
                    assert_eq!(a.0, b.0);
                    let bits = |v: &Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a.1), bits(&b.1));
                }
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(
            decode(MARKER_KEY, Some(&encode_marker(7, false, 0))).unwrap(),
            Entry::Marker {
                as_of: 7,
                full: false,
                count: 0
            }
        );
        assert_eq!(
            decode(b"X", None).unwrap(),
            Entry::Tombstone { ticker: "X".into() }
        );
        assert!(
            decode(b"MSFT", Some(&v)).is_err(),
            "key must match the ticker"
        );
        assert!(decode(b"AAPL", Some(b"{not json")).is_err());
    }

    #[test]
    fn full_snapshots_bound_what_a_restore_reads() {
        let mut store = WindowStore::new(GapPolicy::Reset);
        for t in 0..100 {
            for w in 0..3 {
                store.push(ValidRow {
                    ticker: format!("T{t:03}"),
                    week: week(w),
                    features: vec![0.0; NUM_FEATURES],
                });
            }
        }
        let start = LogStart {
            at: 300,
            dirty: BTreeSet::new(),
            snapshot: Snapshot::Due,
            tombstones: BTreeSet::new(),
        };
        let mut log = PartitionLog::start(store, start);
        let mut changelog: Vec<Record> = Vec::new();
        let push = |out: Vec<Outgoing>, changelog: &mut Vec<Record>| {
            for (key, value) in out {
                let offset = changelog.len() as i64;
                changelog.push(Record::read(offset, &key, value.as_deref()));
            }
        };
        let first = log.after_commit();
        assert_eq!(
            first.len(),
            101,
            "a full snapshot first: 100 tickers + marker"
        );
        push(first, &mut changelog);
        let mut offset = 300;
        for round in 0..50 {
            for t in 0..10 {
                let row = ValidRow {
                    ticker: format!("T{:03}", (round * 10 + t) % 100),
                    week: week(3 + round as i64),
                    features: vec![1.0; NUM_FEATURES],
                };
                log.queue(offset, row);
                offset += 1;
            }
            log.advance(offset);
            push(log.after_commit(), &mut changelog);
        }
        // deltas of 10 per commit; a full snapshot once they reach 100 tickers
        let fulls = changelog
            .iter()
            .filter(|r| matches!(r.entry, Ok(Entry::Marker { full: true, .. })))
            .count();
        assert!(fulls >= 4, "{fulls} full snapshots");
        let start = full_snapshot_start(&changelog).unwrap();
        let read = changelog.len() as i64 - start;
        assert!(
            read <= 250,
            "a restore reads {read} of {} records",
            changelog.len()
        );
        let recs: Vec<Record> = changelog
            .iter()
            .filter(|r| r.offset >= start)
            .cloned()
            .collect();
        match plan_restore(recs, offset, GapPolicy::Reset) {
            Plan::Restore(r) => {
                assert_eq!(&r.store, log.shadow());
                assert_eq!(r.replay_from, Some(offset));
            }
            Plan::Unusable { reason, .. } => panic!("{reason}"),
        }
    }

    #[test]
    fn records_ahead_of_the_committed_offset_make_the_changelog_unusable() {
        let rec = |offset, key: &[u8], value: Vec<u8>| Record::read(offset, key, Some(&value));
        let recs = vec![
            rec(0, b"A", encode_ticker("A", 10, false, &state(3, 0.0))),
            rec(1, MARKER_KEY, encode_marker(10, false, 0)),
            rec(2, b"B", encode_ticker("B", 20, false, &state(2, 0.0))),
        ];
        assert!(matches!(
            plan_restore(recs.clone(), 20, GapPolicy::Reset),
            Plan::Restore(_)
        ));
        match plan_restore(recs.clone(), 15, GapPolicy::Reset) {
            Plan::Unusable { reason, tickers } => {
                assert!(reason.contains("past the committed 15"), "{reason}");
                assert_eq!(tickers.len(), 2);
            }
            p => panic!("{p:?}"),
        }
        let mut bad = recs.clone();
        bad.push(rec(3, b"C", b"garbage".to_vec()));
        assert!(matches!(
            plan_restore(bad, 20, GapPolicy::Reset),
            Plan::Unusable { .. }
        ));
        // a tombstone removes a ticker; the highest as_of wins whatever the order
        let mut more = recs.clone();
        more.push(Record::read(3, b"A", None));
        more.push(rec(4, b"B", encode_ticker("B", 12, false, &state(1, 0.0))));
        match plan_restore(more, 20, GapPolicy::Reset) {
            Plan::Restore(r) => {
                assert_eq!(r.store.len(), 1);
                assert_eq!(r.store.ticker_state("B").unwrap().rows.len(), 2);
            }
            p => panic!("{p:?}"),
        }
    }
}
