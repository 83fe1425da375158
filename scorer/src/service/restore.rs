//! The Kafka half of a restore: reading a partition's changelog records and input messages.
//! What they mean is decided by the pure [`Restorer`].

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;

use crate::changelog::{self, Record};
use crate::config::ScorerConfig;
use crate::health::{Health, Loop};
use crate::kafka;
use crate::pipeline::{PartitionWindows, RestoreSummary, Restorer};
use crate::validate::parse_message;
use crate::{Result, ScorerError};

/// Reads partitions directly (no group) for restores.
pub(crate) struct RestoreReader<'a> {
    pub config: &'a ScorerConfig,
    pub health: &'a Health,
}

impl RestoreReader<'_> {
    /// A group-less consumer for reading partitions directly.
    fn reader(&self) -> Result<BaseConsumer> {
        let k = &self.config.kafka;
        let mut cfg = kafka::base_config(k)?;
        cfg.set("group.id", format!("{}-restore", k.group))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        Ok(cfg.create()?)
    }

    /// Reads offsets `[from, to)` of `topic` partition `p` (a fresh consumer each time, so
    /// nothing prefetched for another range leaks in).
    fn read_range(
        &self,
        topic: &str,
        p: i32,
        from: i64,
        to: i64,
        deadline: Instant,
        mut f: impl FnMut(&BorrowedMessage<'_>),
    ) -> Result<usize> {
        if to <= from {
            return Ok(0);
        }
        let c = self.reader()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(from))?;
        c.assign(&tpl)?;
        let mut n = 0;
        loop {
            self.health.beat(Loop::Consumer);
            if Instant::now() > deadline {
                return Err(ScorerError::Internal(format!(
                    "restoring partition {p}: reading {topic} timed out before offset {to} \
                     (kafka.restore_timeout_ms)"
                )));
            }
            match c.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    if m.offset() >= to {
                        break;
                    }
                    f(&m);
                    n += 1;
                    if m.offset() + 1 >= to {
                        break;
                    }
                }
                Some(Err(e)) => warn!(error = %e, topic, "restore reader"),
                None => {}
            }
        }
        Ok(n)
    }

    /// Replays the valid input rows of partition `p` over `[from, to)` into `restorer`;
    /// `from = None` starts at the partition's low watermark.
    fn replay_input(&self, p: i32, restorer: &mut Restorer, deadline: Instant) -> Result<()> {
        let (from, to) = (restorer.replay_from(), restorer.committed());
        if to <= from.unwrap_or(0) {
            return Ok(());
        }
        let topic = self.config.kafka.input_topic.as_str();
        let (low, high) = self
            .reader()?
            .fetch_watermarks(topic, p, Duration::from_secs(30))?;
        let start = match from {
            Some(m) if m < low => {
                return Err(ScorerError::Internal(format!(
                    "restoring partition {p}: input offsets {m}..{low} that the windows need \
                     were deleted by the input topic's retention"
                )))
            }
            Some(m) => m,
            None => low,
        };
        self.read_range(topic, p, start, to.min(high), deadline, |m| {
            if let Ok(row) = parse_message(m.payload()) {
                restorer.replay(m.offset(), row);
            }
        })?;
        Ok(())
    }

    /// Reads changelog partition `p` backwards from its end, in growing chunks, until the
    /// newest complete full snapshot; returns the records from there on (offset order), each
    /// decoded once as it is read.
    fn read_changelog(&self, p: i32, deadline: Instant) -> Result<Vec<Record>> {
        let topic = self.config.kafka.changelog_topic.as_str();
        let (low, high) = self
            .reader()?
            .fetch_watermarks(topic, p, Duration::from_secs(30))
            .map_err(|e| {
                ScorerError::Config(format!(
                    "window changelog {topic} partition {p}: {e} (create it with as many \
                     partitions as the input: scorer topics create)"
                ))
            })?;
        let mut records: Vec<Record> = Vec::new();
        let mut end = high;
        let mut size = 1024i64;
        while end > low {
            let start = (end - size).max(low);
            let mut chunk = Vec::new();
            self.read_range(topic, p, start, end, deadline, |m| {
                chunk.push(Record::read(
                    m.offset(),
                    m.key().unwrap_or_default(),
                    m.payload(),
                ))
            })?;
            chunk.append(&mut records);
            records = chunk;
            if let Some(first) = changelog::full_snapshot_start(&records) {
                records.retain(|r| r.offset >= first);
                break;
            }
            end = start;
            size = size.saturating_mul(2);
        }
        Ok(records)
    }

    /// Restores the windows of partition `p` at committed offset `committed`.
    pub fn restore(&self, p: i32, committed: i64) -> Result<(PartitionWindows, RestoreSummary)> {
        let policy = self.config.window.gap_policy;
        let deadline = Instant::now() + Duration::from_millis(self.config.kafka.restore_timeout_ms);
        let mut restorer = if self.config.kafka.changelog_topic.is_empty() {
            Restorer::without_changelog(policy, committed)
        } else {
            let records = self.read_changelog(p, deadline)?;
            Restorer::from_changelog(records, committed, policy)
        };
        if let Some(reason) = restorer.unusable() {
            warn!(
                partition = p,
                committed,
                %reason,
                "window changelog unusable: rebuilding from the whole input partition"
            );
        }
        self.replay_input(p, &mut restorer, deadline)?;
        Ok(restorer.finish())
    }
}
