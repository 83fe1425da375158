//! The worker thread: the sink, producing predictions and dead letters, and the
//! [`OffsetLedger`] that decides which input offsets are durable.
//!
//! It takes [`Work`] from the inference stage (the consumer loop's jobs in their order, the
//! batches scored: a `Close` always follows the batches of the partitions it closes) and
//! delivery reports from the producer, and it answers through one typed channel of
//! [`Event`]s: durable offsets to store, replies to `Recover` and `Close`, and failures with
//! their [`ScorerError`]. It owns every piece of state it touches; nothing is shared with the
//! consumer side but the channels.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rdkafka::producer::Producer;
use tracing::{debug, error, info, warn};

use crate::health::{Health, Loop};
use crate::kafka::{self, Delivery, ScorerProducer, Tag};
use crate::metrics::Metrics;
use crate::pipeline::{DeadLetter, DeliveryFailure, OffsetLedger};
use crate::service::inference::{Job, Scored, Work};
use crate::sink::{ClosedFile, PredictionSink, SourceKey};
use crate::{Result, ScorerError};

/// What the worker reports.
#[derive(Debug)]
pub(crate) enum Event {
    /// Every message of `partition` below `next` is durable: the offset may be stored.
    Durable { partition: i32, next: i64 },
    /// Reply to [`Job::Recover`]: how many files past the committed offsets were removed.
    Recovered(Result<usize>),
    /// Reply to [`Job::Close`] and [`Job::Shutdown`]: the final durable offset of each
    /// partition closed.
    Closed(Vec<(i32, i64)>),
    /// The worker hit an error. A delivery failure leaves the worker running (other
    /// partitions still close cleanly); any other error stops it.
    Failed(ScorerError),
}

/// How long a close waits for the broker to acknowledge the partition's records; offsets
/// past records still unacknowledged then are not committed (the next owner redoes them).
const ACK_WAIT: Duration = Duration::from_secs(10);

pub(crate) struct Worker {
    pub input_topic: String,
    pub predictions_topic: String,
    pub dead_letter_topic: String,
    pub tick: Duration,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub sink: Box<dyn PredictionSink>,
    pub producer: Arc<ScorerProducer>,
    pub deliveries: Receiver<Delivery>,
    pub events: Sender<Event>,
    pub ledger: OffsetLedger,
    /// Live message timestamps of rows in open files, per partition.
    pub live_ts: BTreeMap<i32, Vec<i64>>,
    pub failure_reported: bool,
}

impl Worker {
    fn source(&self, partition: i32) -> SourceKey {
        SourceKey {
            topic: self.input_topic.clone(),
            partition,
        }
    }

    fn emit(&self, e: Event) {
        // The consumer side stopped listening only when it is going away too.
        let _ = self.events.send(e);
    }

    /// Runs until [`Job::Shutdown`], a closed work channel, or an error (its own or the
    /// model's, reported as [`Event::Failed`]).
    pub fn run(mut self, work: Receiver<Work>) {
        if let Err(e) = self.serve(&work) {
            error!(error = %e, "worker stopped");
            self.emit(Event::Failed(e));
        }
        self.health.stopped(Loop::Worker);
    }

    fn serve(&mut self, work: &Receiver<Work>) -> Result<()> {
        loop {
            self.health.beat(Loop::Worker);
            crossbeam_channel::select! {
                recv(work) -> w => match w {
                    Ok(Ok(Job::Batch(s))) => self.process(s)?,
                    Ok(Err(e)) => return Err(e),
                    Ok(Ok(Job::Recover(parts))) => {
                        let r = self.recover(&parts);
                        self.emit(Event::Recovered(r));
                    }
                    Ok(Ok(Job::Close(parts))) => {
                        let closed = self.close(&parts)?;
                        self.emit(Event::Closed(closed));
                    }
                    Ok(Ok(Job::Shutdown)) | Err(_) => {
                        let all = self.ledger.partitions();
                        let closed = self.close(&all)?;
                        self.emit(Event::Closed(closed));
                        return Ok(());
                    }
                },
                recv(self.deliveries) -> d => {
                    if let Ok(d) = d {
                        self.delivered(d);
                    }
                }
                default(self.tick) => {}
            }
            let closed = self.sink.roll_due(Instant::now())?;
            self.account(closed);
            self.report();
        }
    }

    /// Sends the offsets that became durable, and a delivery failure once.
    fn report(&mut self) {
        for p in self.ledger.partitions() {
            let first_open = self.sink.first_open_offset(&self.source(p));
            self.ledger.set_first_open(p, first_open);
        }
        for (partition, next) in self.ledger.take_moved() {
            self.emit(Event::Durable { partition, next });
        }
        if !self.failure_reported {
            if let Some(f) = self.ledger.failure() {
                self.failure_reported = true;
                let e = ScorerError::Delivery {
                    topic: f.topic.clone(),
                    partition: f.partition,
                    offset: f.offset,
                    error: f.error.clone(),
                };
                error!(error = %e, "delivery failed after the producer's retries");
                self.emit(Event::Failed(e));
            }
        }
    }

    fn delivered(&mut self, d: Delivery) {
        let Tag::Message { partition, offset } = d.tag else {
            return;
        };
        match d.error {
            None => self.ledger.acknowledged(partition, offset),
            Some(error) => {
                self.metrics.produce_errors.inc();
                self.ledger.failed(DeliveryFailure {
                    topic: d.topic,
                    partition,
                    offset,
                    error,
                });
            }
        }
    }

    fn recover(&mut self, parts: &[(i32, i64)]) -> Result<usize> {
        let mut removed = 0;
        for &(p, committed) in parts {
            let n = self.sink.discard_after(&self.source(p), committed)?;
            if n > 0 {
                info!(
                    partition = p,
                    committed,
                    removed = n,
                    "removed files past the committed offset"
                );
            }
            self.metrics.files_removed.inc_by(n as u64);
            removed += n;
            self.ledger.track(p, committed);
            self.live_ts.remove(&p);
        }
        Ok(removed)
    }

    fn close(&mut self, parts: &[i32]) -> Result<Vec<(i32, i64)>> {
        for &p in parts {
            let closed = self.sink.close_source(&self.source(p))?;
            self.account(closed);
            self.ledger.set_first_open(p, None);
        }
        let deadline = Instant::now() + ACK_WAIT;
        let _ = self.producer.flush(Duration::ZERO);
        while parts.iter().any(|&p| self.ledger.in_flight(p) > 0) {
            self.health.beat(Loop::Worker);
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .deliveries
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(d) => self.delivered(d),
                Err(_) if Instant::now() >= deadline => {
                    let waiting: usize = parts.iter().map(|&p| self.ledger.in_flight(p)).sum();
                    warn!(
                        waiting,
                        "records still unacknowledged at close; their offsets are not committed"
                    );
                    break;
                }
                Err(_) => {}
            }
        }
        self.report();
        let mut out = Vec::new();
        for &p in parts {
            if let Some(d) = self.ledger.forget(p) {
                out.push((p, d));
            }
            self.live_ts.remove(&p);
        }
        Ok(out)
    }

    fn process(&mut self, batch: Scored) -> Result<()> {
        for d in &batch.dead_letters {
            self.produce_dead_letter(d);
        }
        let now = Instant::now();
        for (p, part) in batch.rows {
            if !self.ledger.tracks(p) {
                return Err(ScorerError::Internal(format!(
                    "a batch holds windows of partition {p}, which is not assigned"
                )));
            }
            let closed = self
                .sink
                .write(&self.source(p), &part.rows, &part.offsets, now)?;
            self.metrics.rows_scored.inc_by(part.rows.len() as u64);
            self.live_ts.entry(p).or_default().extend(part.live_ts_ms);
            self.produce_predictions(p, &part.rows, &part.offsets);
            self.account(closed);
        }
        for (&p, &next) in &batch.next {
            self.ledger.processed(p, next);
        }
        Ok(())
    }

    /// Sends one record tagged with its input message; a send the producer refuses at once
    /// counts as a failed delivery (the record stays in flight, the offset stops).
    fn send(&mut self, partition: i32, offset: i64, record: kafka::Record<'_>) {
        self.ledger.produced(partition, offset);
        let topic = record.topic.to_string();
        if let Err(e) = kafka::send_blocking(&self.producer, record) {
            self.metrics.produce_errors.inc();
            self.ledger.failed(DeliveryFailure {
                topic,
                partition,
                offset,
                error: e.to_string(),
            });
        }
    }

    fn produce_dead_letter(&mut self, d: &DeadLetter) {
        if self.dead_letter_topic.is_empty() {
            return;
        }
        let headers = kafka::dead_letter_headers(
            d.reason.as_str(),
            &d.detail,
            &self.input_topic,
            d.partition,
            d.offset,
        );
        let topic = self.dead_letter_topic.clone();
        let mut record = kafka::record(
            &topic,
            Tag::Message {
                partition: d.partition,
                offset: d.offset,
            },
        )
        .headers(headers);
        if let Some(k) = &d.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &d.value {
            record = record.payload(v.as_slice());
        }
        self.send(d.partition, d.offset, record);
    }

    fn produce_predictions(
        &mut self,
        partition: i32,
        rows: &[trendscore_schemas::PredictionRow],
        offsets: &[i64],
    ) {
        if self.predictions_topic.is_empty() {
            return;
        }
        let topic = self.predictions_topic.clone();
        for (row, &offset) in rows.iter().zip(offsets) {
            let value = match serde_json::to_vec(row) {
                Ok(v) => v,
                Err(e) => {
                    // Plain data always serialises; were it not to, the offset must stop.
                    self.ledger.produced(partition, offset);
                    self.ledger.failed(DeliveryFailure {
                        topic: topic.clone(),
                        partition,
                        offset,
                        error: format!("serialising the prediction: {e}"),
                    });
                    continue;
                }
            };
            let record = kafka::record(&topic, Tag::Message { partition, offset })
                .key(row.ticker.as_bytes())
                .payload(value.as_slice());
            self.send(partition, offset, record);
        }
    }

    fn account(&mut self, closed: Vec<ClosedFile>) {
        if closed.is_empty() {
            return;
        }
        self.metrics.files_written.inc_by(closed.len() as u64);
        let now = chrono::Utc::now().timestamp_millis();
        for f in &closed {
            debug!(location = %f.location, rows = f.rows, "file durable");
            self.ledger
                .closed_file(f.source.partition, f.first_offset, f.last_offset);
            if !self.sink.has_open(&f.source) {
                if let Some(ts) = self.live_ts.remove(&f.source.partition) {
                    for t in ts {
                        self.metrics
                            .produce_to_parquet_seconds
                            .observe((now - t).max(0) as f64 / 1000.0);
                    }
                }
            }
        }
    }
}
