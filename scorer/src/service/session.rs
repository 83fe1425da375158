//! The consumer side of the service: one [`Session`] per run, driven by the consumer loop
//! and by the rebalance callbacks (both on the consumer thread).
//!
//! It applies each message to its partition's [`PartitionWindows`], collects ready windows
//! and dead letters in the [`Batcher`], hands due batches to the worker, stores the offsets
//! the worker reports durable, commits them, and writes the window changelog after a
//! synchronous commit ("commit first, then log", see [`crate::changelog`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, warn};

use crate::config::ScorerConfig;
use crate::health::Health;
use crate::kafka::{self, Delivery, ScorerProducer, Tag};
use crate::metrics::Metrics;
use crate::pipeline::batcher::live_timestamp;
use crate::pipeline::{BatchRule, Batcher, DeadLetter, PartitionWindows, ReadyWindow, Step};
use crate::service::inference::Job;
use crate::service::worker::Event;
use crate::validate::parse_message;
use crate::{Result, ScorerError};

/// The window changelog's producer and when it was last written.
pub(crate) struct ChangelogWriter {
    pub producer: Arc<ScorerProducer>,
    pub reports: Receiver<Delivery>,
    pub topic: String,
    pub interval: Duration,
    pub written: Instant,
}

/// The mutable part of a session.
#[derive(Default)]
pub(crate) struct State {
    /// Window state of every assigned, restored partition.
    pub parts: HashMap<i32, PartitionWindows>,
    /// Per assigned partition, the offset after the last consumed message.
    pub consumed: BTreeMap<i32, i64>,
    /// `--drain`: per assigned partition, its end offset when it was assigned.
    pub ends: BTreeMap<i32, i64>,
    /// The first error that stops the service.
    pub failure: Option<ScorerError>,
    /// Set once the worker closed everything at shutdown: later revokes only commit.
    pub closed: bool,
}

/// The consumer side of one run (see the module docs).
pub(crate) struct Session {
    pub config: ScorerConfig,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub jobs: Sender<Job>,
    pub events: Receiver<Event>,
    pub changelog: Option<Mutex<ChangelogWriter>>,
    pub batcher: Mutex<Batcher>,
    pub state: Mutex<State>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a poll waits when no batch is pending.
pub(crate) const IDLE_POLL: Duration = Duration::from_millis(100);

/// How long a job refused by a stopped pipeline waits for the pipeline's own error.
const PIPELINE_FAILURE_WAIT: Duration = Duration::from_secs(10);

impl Session {
    pub fn new(
        config: ScorerConfig,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        jobs: Sender<Job>,
        events: Receiver<Event>,
        changelog: Option<ChangelogWriter>,
    ) -> Self {
        let rule = BatchRule {
            max_rows: config.batch.max_rows,
            max_wait: Duration::from_millis(config.batch.max_wait_ms),
        };
        Self {
            config,
            metrics,
            health,
            jobs,
            events,
            changelog: changelog.map(Mutex::new),
            batcher: Mutex::new(Batcher::new(rule)),
            state: Mutex::new(State::default()),
        }
    }

    pub fn topic(&self) -> &str {
        &self.config.kafka.input_topic
    }

    /// Records the first error that stops the service.
    pub fn fail(&self, e: ScorerError) {
        warn!(error = %e, "stopping");
        lock(&self.state).failure.get_or_insert(e);
    }

    /// Takes the error that stops the service, if any.
    pub fn take_failure(&self) -> Option<ScorerError> {
        lock(&self.state).failure.take()
    }

    pub fn failed(&self) -> bool {
        lock(&self.state).failure.is_some()
    }

    /// Hands a job to the pipeline (blocks while its queue is full: backpressure). False,
    /// and the service failed, when the pipeline has stopped.
    pub fn send(&self, job: Job) -> bool {
        if self.jobs.send(job).is_err() {
            let e = self
                .pipeline_failure()
                .unwrap_or_else(|| ScorerError::Internal("the worker thread stopped".into()));
            self.fail(e);
            return false;
        }
        true
    }

    /// Why the pipeline stopped, when it said: a thread that fails reports its error on the
    /// event channel and then ends, which closes the channel (bounded wait). Other events
    /// still on it are dropped: the service stops on this failure, and offsets it does not
    /// store are redone by the next owner of their partitions.
    fn pipeline_failure(&self) -> Option<ScorerError> {
        let deadline = Instant::now() + PIPELINE_FAILURE_WAIT;
        loop {
            match self.events.recv_deadline(deadline) {
                Ok(Event::Failed(e)) => return Some(e),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Applies one consumed message.
    pub fn handle(&self, m: &BorrowedMessage<'_>) {
        self.metrics.rows_in.inc();
        let (p, offset) = (m.partition(), m.offset());
        let mut st = lock(&self.state);
        let Some(part) = st.parts.get_mut(&p) else {
            // Never scored with empty state: the partition's restore did not happen. Its
            // offset is not stored, so a restart reads the message again.
            st.failure.get_or_insert(ScorerError::Internal(format!(
                "message at offset {offset} of partition {p}, whose windows were not restored"
            )));
            return;
        };
        let applied = part.apply(offset, parse_message(m.payload()));
        st.consumed.insert(p, offset + 1);
        drop(st);
        if applied.gap {
            self.metrics.gaps.inc();
        }
        let mut b = lock(&self.batcher);
        match applied.step {
            Step::Ready(window) => b.push_window(ReadyWindow {
                partition: p,
                offset,
                live_ts_ms: live_timestamp(
                    m.timestamp().to_millis(),
                    chrono::Utc::now().timestamp_millis(),
                ),
                window,
            }),
            Step::Filling(_) => {}
            Step::Duplicate => {
                self.metrics.duplicates.inc();
                debug!(partition = p, offset, "duplicate week dropped");
            }
            Step::DeadLetter(r) => {
                self.metrics.dead_letter(r.reason);
                warn!(partition = p, offset, reason = %r.reason, detail = %r.detail, "dead letter");
                if !self.config.kafka.dead_letter_topic.is_empty() {
                    b.push_dead_letter(DeadLetter {
                        partition: p,
                        offset,
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                        reason: r.reason,
                        detail: r.detail,
                    });
                }
            }
        }
        b.consumed(p, offset, Instant::now());
    }

    /// How long the next poll may wait.
    pub fn poll_wait(&self) -> Duration {
        lock(&self.batcher)
            .wait(Instant::now(), IDLE_POLL)
            .clamp(Duration::from_millis(1), IDLE_POLL)
    }

    /// Hands the batch to the worker when due (or `force`, when it covers anything).
    pub fn flush_batch(&self, force: bool) {
        let batch = {
            let mut b = lock(&self.batcher);
            if !(force || b.due(Instant::now())) {
                return;
            }
            b.take()
        };
        if !batch.is_empty() {
            self.send(Job::Batch(batch));
        }
    }

    /// Handles the events waiting on the channel (non-blocking).
    pub fn poll_events<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        while let Ok(e) = self.events.try_recv() {
            self.on_event(consumer, e);
        }
        self.check_changelog_reports();
    }

    /// Handles events until the reply `want` picks out arrives (or the worker is gone).
    pub fn wait_reply<C: ConsumerContext, T>(
        &self,
        consumer: &BaseConsumer<C>,
        mut want: impl FnMut(Event) -> std::result::Result<T, Event>,
    ) -> Result<T> {
        loop {
            let e = self.events.recv().map_err(|_| {
                ScorerError::Internal("the worker stopped before it replied".into())
            })?;
            match want(e) {
                Ok(reply) => return Ok(reply),
                Err(other) => self.on_event(consumer, other),
            }
        }
    }

    fn on_event<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, e: Event) {
        match e {
            Event::Durable { partition, next } => self.store(consumer, &[(partition, next)]),
            Event::Failed(e) => self.fail(e),
            Event::Recovered(_) | Event::Closed(_) => self.fail(ScorerError::Internal(
                "a worker reply nobody waited for".into(),
            )),
        }
    }

    /// A changelog record that failed for good stops the service (a restart restores
    /// exactly from the last complete marker).
    fn check_changelog_reports(&self) {
        let Some(c) = &self.changelog else {
            return;
        };
        let failed = lock(c).reports.try_iter().find(|d| d.error.is_some());
        if let Some(d) = failed {
            self.fail(ScorerError::ChangelogDelivery {
                topic: d.topic,
                error: d.error.unwrap_or_default(),
            });
        }
    }

    /// Stores `offsets` (next offset per partition) for the assigned partitions; the shadow
    /// stores follow.
    pub fn store<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, offsets: &[(i32, i64)]) {
        if offsets.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in offsets {
            if tpl
                .add_partition_offset(self.topic(), p, Offset::Offset(o))
                .is_err()
            {
                continue;
            }
        }
        if let Err(e) = consumer.store_offsets(&tpl) {
            // A partition revoked meanwhile: its next owner starts from the committed offset.
            warn!(error = %e, "storing offsets failed");
            return;
        }
        let mut st = lock(&self.state);
        for &(p, o) in offsets {
            if let Some(part) = st.parts.get_mut(&p) {
                part.stored(o);
            }
        }
    }

    /// Commits the stored offsets. `CommitMode::Sync` is the caller's (revoke, shutdown):
    /// the window changelog is then always written after the commit; on the timer
    /// (`CommitMode::Async`) it is written when `kafka.changelog_interval_ms` has passed
    /// and the previous write is acknowledged, and that commit is made synchronous.
    pub fn commit<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, mode: CommitMode) {
        let log_now = self.changelog.as_ref().is_some_and(|c| {
            let c = lock(c);
            matches!(mode, CommitMode::Sync)
                || (c.written.elapsed() >= c.interval && c.producer.in_flight_count() == 0)
        });
        let mode = if log_now { CommitMode::Sync } else { mode };
        let committed = match consumer.commit_consumer_state(mode) {
            Ok(()) => {
                Metrics::labelled(&self.metrics.commits, "result", "ok");
                true
            }
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => true,
            Err(e) => {
                Metrics::labelled(&self.metrics.commits, "result", "failed");
                warn!(error = %e, "commit failed (will retry)");
                false
            }
        };
        if committed && log_now {
            self.write_changelog();
        }
    }

    /// Produces the changelog records of every partition whose shadow moved since its last
    /// marker. Called only right after a successful synchronous commit.
    fn write_changelog(&self) {
        let Some(c) = &self.changelog else {
            return;
        };
        let mut c = lock(c);
        let mut n = 0u64;
        let mut failure = None;
        {
            let mut st = lock(&self.state);
            'parts: for (&p, part) in st.parts.iter_mut() {
                for (key, value) in part.changelog_records() {
                    let mut record = kafka::record(&c.topic, Tag::Untagged)
                        .partition(p)
                        .key(key.as_slice());
                    if let Some(v) = &value {
                        record = record.payload(v.as_slice());
                    }
                    if let Err(e) = kafka::send_blocking(&c.producer, record) {
                        failure = Some(ScorerError::ChangelogDelivery {
                            topic: c.topic.clone(),
                            error: format!("partition {p}: {e}"),
                        });
                        break 'parts;
                    }
                    n += 1;
                }
            }
        }
        self.metrics.changelog_records.inc_by(n);
        c.written = Instant::now();
        drop(c);
        if let Some(e) = failure {
            self.fail(e);
        }
    }

    /// Delivers the changelog's records before a partition moves to another instance.
    pub fn flush_changelog(&self) {
        if let Some(c) = &self.changelog {
            if let Err(e) = lock(c).producer.flush(Duration::from_secs(10)) {
                warn!(error = %e, "window changelog flush timed out");
            }
        }
        self.check_changelog_reports();
    }

    /// `--drain`: every assigned partition is consumed up to its end offset at assignment.
    pub fn drained(&self) -> bool {
        let st = lock(&self.state);
        st.ends
            .iter()
            .all(|(p, end)| st.consumed.get(p).is_some_and(|c| c >= end))
    }
}
