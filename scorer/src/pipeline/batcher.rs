//! Micro-batching: ready windows and dead letters collect here until the batch is due, then
//! go to the worker in one piece, with the next offset of every partition the batch covers.
//!
//! The rule ([`Batcher::due`]): a batch is due when it holds `max_rows` windows, or when its
//! oldest entry has waited `max_wait`. Windows of every partition share one batch, so a
//! backlog on many partitions still fills whole inference calls. Time is passed in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::validate::Reason;
use crate::window::Window;

/// A window ready to score and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadyWindow {
    /// Input partition.
    pub partition: i32,
    /// Input offset of the message that completed the window.
    pub offset: i64,
    /// The message timestamp when it looks like a live producer's (see [`live_timestamp`]).
    pub live_ts_ms: Option<i64>,
    /// The window.
    pub window: Window,
}

/// A message bound for the dead-letter topic: its original key and value and why.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// Input partition.
    pub partition: i32,
    /// Input offset.
    pub offset: i64,
    /// The original key.
    pub key: Option<Vec<u8>>,
    /// The original value.
    pub value: Option<Vec<u8>>,
    /// Machine-readable reason (the `reason` header).
    pub reason: Reason,
    /// What exactly was wrong (the `error` header).
    pub detail: String,
}

/// One batch for the worker.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Windows to score, in consumption order.
    pub windows: Vec<ReadyWindow>,
    /// Dead letters to produce, in consumption order.
    pub dead_letters: Vec<DeadLetter>,
    /// Per partition, the offset after the last message this batch covers (every consumed
    /// message counts, also those that produced nothing).
    pub next: BTreeMap<i32, i64>,
}

impl Batch {
    /// True when the batch covers no message.
    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }
}

/// When a batch is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchRule {
    /// Most windows in one batch (one inference call).
    pub max_rows: usize,
    /// Longest the oldest entry waits.
    pub max_wait: Duration,
}

/// The batch being filled.
#[derive(Debug)]
pub struct Batcher {
    rule: BatchRule,
    batch: Batch,
    since: Option<Instant>,
}

impl Batcher {
    /// An empty batcher.
    pub fn new(rule: BatchRule) -> Self {
        Self {
            rule: BatchRule {
                max_rows: rule.max_rows.max(1),
                ..rule
            },
            batch: Batch::default(),
            since: None,
        }
    }

    /// The message at `offset` of `partition` was consumed at `now` (call once per message,
    /// after pushing what it produced).
    pub fn consumed(&mut self, partition: i32, offset: i64, now: Instant) {
        self.batch.next.insert(partition, offset + 1);
        self.since.get_or_insert(now);
    }

    /// Adds a ready window.
    pub fn push_window(&mut self, w: ReadyWindow) {
        self.batch.windows.push(w);
    }

    /// Adds a dead letter.
    pub fn push_dead_letter(&mut self, d: DeadLetter) {
        self.batch.dead_letters.push(d);
    }

    /// Windows in the current batch.
    pub fn windows(&self) -> usize {
        self.batch.windows.len()
    }

    /// Whether the current batch is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        !self.batch.is_empty()
            && (self.batch.windows.len() >= self.rule.max_rows
                || self
                    .since
                    .is_some_and(|s| now.saturating_duration_since(s) >= self.rule.max_wait))
    }

    /// How long the caller may wait for more messages before the batch is due (`idle` when
    /// the batch is empty).
    pub fn wait(&self, now: Instant, idle: Duration) -> Duration {
        match self.since {
            Some(s) => self
                .rule
                .max_wait
                .saturating_sub(now.saturating_duration_since(s)),
            None => idle,
        }
    }

    /// Takes the current batch (empty when nothing was consumed since the last take).
    pub fn take(&mut self) -> Batch {
        self.since = None;
        std::mem::take(&mut self.batch)
    }
}

/// The message timestamp when it looks like a live producer's (within the last day, not
/// more than a minute ahead), for the produce-to-Parquet latency metric; replayed history
/// carries the week's date and is left out.
pub fn live_timestamp(message_ts_ms: Option<i64>, now_ms: i64) -> Option<i64> {
    message_ts_ms.filter(|t| (now_ms - 86_400_000..=now_ms + 60_000).contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn window(p: i32, offset: i64) -> ReadyWindow {
        let d = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
        ReadyWindow {
            partition: p,
            offset,
            live_ts_ms: None,
            window: Window {
                ticker: "A".into(),
                week: d,
                window_start: d,
                features: vec![],
            },
        }
    }

    #[test]
    fn due_by_size_or_by_age_never_when_empty() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = Batcher::new(BatchRule {
            max_rows: 2,
            max_wait: ms(20),
        });
        assert!(!b.due(t0 + ms(1000)), "empty is never due");
        assert_eq!(b.wait(t0, ms(100)), ms(100));
        b.consumed(0, 7, t0); // a message that made no window still counts
        assert!(!b.due(t0 + ms(19)));
        assert_eq!(b.wait(t0 + ms(5), ms(100)), ms(15));
        assert!(b.due(t0 + ms(20)), "by age");
        b.push_window(window(0, 8));
        b.consumed(0, 8, t0 + ms(1));
        b.push_window(window(1, 3));
        b.consumed(1, 3, t0 + ms(2));
        assert!(b.due(t0 + ms(2)), "by size");
        let batch = b.take();
        assert_eq!(batch.windows.len(), 2);
        assert_eq!(batch.next, BTreeMap::from([(0, 9), (1, 4)]));
        assert!(b.take().is_empty());
        assert!(!b.due(t0 + ms(1000)));
    }

    #[test]
    fn live_timestamps_are_recent_ones_only() {
        let now = 1_700_000_000_000;
        assert_eq!(live_timestamp(Some(now - 1000), now), Some(now - 1000));
        assert_eq!(live_timestamp(Some(now - 86_400_001), now), None);
        assert_eq!(live_timestamp(Some(now + 60_001), now), None);
        assert_eq!(live_timestamp(None, now), None);
    }
}
