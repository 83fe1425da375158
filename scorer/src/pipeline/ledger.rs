//! The offset ledger: the one place that knows which input offsets are durable.
//!
//! Per assigned partition it keeps
//! - `processed`: the offset after the last message the worker has handled (its window
//!   scored and written to the sink, its dead letter produced);
//! - `first_open`: the first input offset with rows in a file that is still open;
//! - `in_flight`: records produced for the partition's messages (predictions, dead letters)
//!   that the broker has not acknowledged yet, by input offset;
//! - `stored`: the offset last reported durable;
//! - `closed`: the offset ranges of the partition's closed files that may still reach past
//!   `stored`.
//!
//! **The rule.** The partition is durable up to
//! `d = min(processed, first_open, lowest in-flight offset)`: every message below that offset
//! has its rows in closed (fsynced, renamed) files and every record produced for it
//! acknowledged. One more condition makes the committed offset safe to restart from: it
//! must not fall inside a closed file (first < d <= last), because a restart keeps the
//! files whose first offset is below the committed one, and would write that file's rows
//! at or past `d` again. Such a `d` moves down to the file's first offset (the restart then
//! removes the file and writes it again). This happens when a file rolls while records
//! produced for its rows (predictions, dead letters, changelog) still wait for the broker.
//! A delivery that failed after the producer's retries stays in flight for
//! ever, so the partition's durable offset stops below that message (and the failure is
//! reported); nothing is ever counted as delivered that the broker did not acknowledge.

use std::collections::BTreeMap;

/// A record the broker refused after the producer's retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// Topic the record was for.
    pub topic: String,
    /// Input partition of the message it belongs to.
    pub partition: i32,
    /// Input offset of the message it belongs to.
    pub offset: i64,
    /// The producer's error.
    pub error: String,
}

#[derive(Clone, Debug, Default)]
struct PartLedger {
    processed: i64,
    stored: i64,
    first_open: Option<i64>,
    in_flight: BTreeMap<i64, u32>,
    /// Closed files: first offset -> last offset.
    closed: BTreeMap<i64, i64>,
}

impl PartLedger {
    fn durable(&self) -> i64 {
        let mut d = self.processed;
        if let Some(f) = self.first_open {
            d = d.min(f);
        }
        if let Some((&o, _)) = self.in_flight.first_key_value() {
            d = d.min(o);
        }
        // Never inside a closed file: move to its first offset, which may lie inside another.
        while let Some((&first, _)) = self.closed.range(..d).find(|&(_, &last)| last >= d) {
            d = first;
        }
        d
    }
}

/// The ledger of every assigned partition (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct OffsetLedger {
    parts: BTreeMap<i32, PartLedger>,
    failure: Option<DeliveryFailure>,
}

impl OffsetLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts tracking `partition` at its committed offset.
    pub fn track(&mut self, partition: i32, committed: i64) {
        self.parts.insert(
            partition,
            PartLedger {
                processed: committed,
                stored: committed,
                ..PartLedger::default()
            },
        );
    }

    /// Stops tracking `partition`; returns its durable offset.
    pub fn forget(&mut self, partition: i32) -> Option<i64> {
        self.parts.remove(&partition).map(|p| p.durable())
    }

    /// The tracked partitions, ascending.
    pub fn partitions(&self) -> Vec<i32> {
        self.parts.keys().copied().collect()
    }

    /// Whether `partition` is tracked.
    pub fn tracks(&self, partition: i32) -> bool {
        self.parts.contains_key(&partition)
    }

    /// The worker handled every message of `partition` below `next`.
    pub fn processed(&mut self, partition: i32, next: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.processed = p.processed.max(next);
        }
    }

    /// The first input offset of `partition` with rows in an open file (`None`: no open file).
    pub fn set_first_open(&mut self, partition: i32, first_open: Option<i64>) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.first_open = first_open;
        }
    }

    /// A file of `partition` holding the rows of input offsets `first..=last` became durable.
    pub fn closed_file(&mut self, partition: i32, first: i64, last: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            let e = p.closed.entry(first).or_insert(last);
            *e = (*e).max(last);
        }
    }

    /// A record was handed to the producer for the message at `offset`.
    pub fn produced(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            *p.in_flight.entry(offset).or_default() += 1;
        }
    }

    /// The broker acknowledged a record of the message at `offset`.
    pub fn acknowledged(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            if let Some(n) = p.in_flight.get_mut(&offset) {
                *n -= 1;
                if *n == 0 {
                    p.in_flight.remove(&offset);
                }
            }
        }
    }

    /// A record of the message at `failure.offset` failed for good: it stays in flight, so
    /// the partition is never durable past it. The first failure is kept for the report.
    pub fn failed(&mut self, failure: DeliveryFailure) {
        self.failure.get_or_insert(failure);
    }

    /// The first delivery failure, if any.
    pub fn failure(&self) -> Option<&DeliveryFailure> {
        self.failure.as_ref()
    }

    /// Records of `partition` still waiting for the broker.
    pub fn in_flight(&self, partition: i32) -> usize {
        self.parts
            .get(&partition)
            .map_or(0, |p| p.in_flight.values().map(|&n| n as usize).sum())
    }

    /// The durable offset of `partition`.
    pub fn durable(&self, partition: i32) -> Option<i64> {
        self.parts.get(&partition).map(PartLedger::durable)
    }

    /// The partitions whose durable offset moved past the stored one, with that offset;
    /// they count as stored from now on.
    pub fn take_moved(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (&partition, p) in self.parts.iter_mut() {
            let d = p.durable();
            if d > p.stored {
                p.stored = d;
                out.push((partition, d));
                // Files wholly below the stored offset can no longer hold a future one.
                p.closed.retain(|_, last| *last >= d);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_waits_for_files_and_acknowledgements() {
        let mut l = OffsetLedger::new();
        l.track(0, 100);
        assert!(l.take_moved().is_empty());
        l.processed(0, 110);
        l.set_first_open(0, Some(104));
        l.produced(0, 102);
        l.produced(0, 102);
        l.produced(0, 107);
        assert_eq!(l.durable(0), Some(102), "the lowest unacknowledged record");
        l.acknowledged(0, 102);
        assert_eq!(
            l.durable(0),
            Some(102),
            "one of two records still in flight"
        );
        l.acknowledged(0, 102);
        assert_eq!(l.take_moved(), vec![(0, 104)], "then the open file");
        l.set_first_open(0, None);
        assert_eq!(l.take_moved(), vec![(0, 107)]);
        l.acknowledged(0, 107);
        assert_eq!(l.take_moved(), vec![(0, 110)]);
        assert!(l.take_moved().is_empty(), "reported once");
        assert_eq!(l.in_flight(0), 0);
    }

    #[test]
    fn a_failed_delivery_stops_its_partition_only() {
        let mut l = OffsetLedger::new();
        l.track(0, 0);
        l.track(1, 0);
        l.produced(0, 5);
        l.produced(1, 5);
        l.processed(0, 10);
        l.processed(1, 10);
        l.failed(DeliveryFailure {
            topic: "preds".into(),
            partition: 0,
            offset: 5,
            error: "boom".into(),
        });
        l.acknowledged(1, 5);
        assert_eq!(l.take_moved(), vec![(0, 5), (1, 10)]);
        l.processed(0, 50);
        assert!(l.take_moved().is_empty(), "never past the failed record");
        assert_eq!(l.failure().unwrap().offset, 5);
        assert_eq!(l.forget(0), Some(5));
        assert!(!l.tracks(0));
    }

    #[test]
    fn never_durable_inside_a_closed_file() {
        let mut l = OffsetLedger::new();
        l.track(0, 100);
        // two files of one roll (two week directories), rows interleaved by offset
        l.closed_file(0, 100, 110);
        l.closed_file(0, 102, 108);
        l.processed(0, 111);
        l.produced(0, 105); // its prediction is not acknowledged yet
        assert_eq!(
            l.durable(0),
            Some(100),
            "105 lies inside the file 100..=110: back to its first offset"
        );
        assert!(l.take_moved().is_empty(), "100 is already stored");
        l.closed_file(0, 111, 120);
        l.processed(0, 121);
        l.produced(0, 112);
        l.acknowledged(0, 105);
        assert_eq!(l.take_moved(), vec![(0, 111)], "a file boundary is safe");
        l.produced(0, 113);
        l.acknowledged(0, 112);
        assert_eq!(l.durable(0), Some(111), "113 is inside 111..=120");
        l.acknowledged(0, 113);
        assert_eq!(l.take_moved(), vec![(0, 121)]);
        // a chain: d inside file B whose first offset lies inside file A
        l.closed_file(0, 121, 130);
        l.closed_file(0, 125, 140);
        l.processed(0, 141);
        l.produced(0, 135);
        assert_eq!(l.durable(0), Some(121));
        // an in-flight record between files is a safe offset as it is
        l.acknowledged(0, 135);
        l.closed_file(0, 150, 160);
        l.processed(0, 161);
        l.produced(0, 145);
        assert_eq!(l.durable(0), Some(145));
        l.produced(0, 150);
        l.acknowledged(0, 145);
        assert_eq!(l.durable(0), Some(150), "a file's first offset is safe");
    }

    #[test]
    fn untracked_partitions_are_ignored() {
        let mut l = OffsetLedger::new();
        l.produced(3, 1);
        l.acknowledged(3, 1);
        l.processed(3, 9);
        assert_eq!(l.durable(3), None);
        assert!(l.take_moved().is_empty());
    }
}
