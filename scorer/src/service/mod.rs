//! `scorer run`: the Kafka service, cut along the threads that run it.
//!
//! - [`session`]: the consumer side (message -> [`crate::pipeline`] -> batch; stored
//!   offsets, commits, the window changelog), driven by the consumer loop in [`run`];
//! - [`rebalance`]: assign (recover files, restore windows) and revoke (close, commit);
//! - [`restore`]: the Kafka reads of a restore (the pure half is
//!   [`crate::pipeline::Restorer`]);
//! - [`inference`]: the inference stage, a thread that scores the consumer loop's batches
//!   and hands them on in order, so the worker's writes overlap the next batch's model call;
//! - [`worker`]: the worker thread (sink, producing, the offset ledger), which reports
//!   through one typed channel of events.
//!
//! Delivery guarantees (DESIGN.md): an input offset is stored only once the rows of every
//! message below it are in durable files and every record produced for those messages was
//! acknowledged by the broker; a crash anywhere, then a restart, gives the same Parquet rows
//! as an uninterrupted run. The predictions and dead-letter topics are at-least-once across
//! a crash (no transactions on the local broker).

pub(crate) mod inference;
pub(crate) mod rebalance;
pub(crate) mod restore;
pub(crate) mod session;
pub(crate) mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::Producer;
use rdkafka::Offset;
use tracing::{info, warn};

use crate::app::{Shutdown, Telemetry};
use crate::config::ScorerConfig;
use crate::health::{Loop, Phase};
use crate::kafka;
use crate::model::ModelHandle;
use crate::pipeline::OffsetLedger;
use crate::sink::PredictionSink;
use crate::{Result, ScorerError};
use inference::{InferenceStage, Job};
use rebalance::ScorerContext;
use session::{ChangelogWriter, Session};
use worker::{Event, Worker};

/// Runs the service until `shutdown` is triggered (then flushes, commits and leaves the
/// group), until it has caught up with `run.drain`, or until an error stops it (then it
/// still closes and commits what is durable, and returns the error). Blocking.
pub fn run(
    config: ScorerConfig,
    model: Arc<ModelHandle>,
    telemetry: Telemetry,
    sink: Box<dyn PredictionSink>,
    shutdown: Shutdown,
) -> Result<()> {
    config.validate()?;
    let k = &config.kafka;
    let Telemetry { metrics, health } = telemetry;
    let (producer, deliveries) = kafka::producer(k)?;
    let changelog = if k.changelog_topic.is_empty() {
        None
    } else {
        let (producer, reports) = kafka::changelog_producer(k)?;
        Some(ChangelogWriter {
            producer,
            reports,
            topic: k.changelog_topic.clone(),
            interval: Duration::from_millis(k.changelog_interval_ms),
            written: Instant::now(),
        })
    };
    let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(4);
    let (work_tx, work_rx) = crossbeam_channel::bounded(1);
    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    let inference = InferenceStage {
        model: model.clone(),
        metrics: metrics.clone(),
        health: health.clone(),
    };
    let worker = Worker {
        input_topic: k.input_topic.clone(),
        predictions_topic: k.predictions_topic.clone(),
        dead_letter_topic: k.dead_letter_topic.clone(),
        tick: Duration::from_millis((config.sink.max_file_age_ms / 4).clamp(10, 200)),
        metrics: metrics.clone(),
        health: health.clone(),
        sink,
        producer: producer.clone(),
        deliveries,
        events: events_tx,
        ledger: OffsetLedger::new(),
        live_ts: BTreeMap::new(),
        failure_reported: false,
    };
    let worker_handle = std::thread::Builder::new()
        .name("scorer-worker".into())
        .spawn(move || worker.run(work_rx))
        .map_err(|e| ScorerError::Internal(format!("starting the worker: {e}")))?;
    let inference_handle = std::thread::Builder::new()
        .name("scorer-inference".into())
        .spawn(move || inference.run(jobs_rx, work_tx))
        .map_err(|e| ScorerError::Internal(format!("starting the inference stage: {e}")))?;
    let session = Arc::new(Session::new(
        config.clone(),
        metrics.clone(),
        health.clone(),
        jobs_tx,
        events_rx,
        changelog,
    ));
    let result = consume(&config, &session, &shutdown);
    drop(session); // closes the job channel: the inference stage, then the worker, stop
    let _ = inference_handle.join();
    let _ = worker_handle.join();
    health.set_phase(Phase::Stopping);
    health.stopped(Loop::Consumer);
    if let Err(e) = producer.flush(Duration::from_secs(10)) {
        warn!(error = %e, "final producer flush");
    }
    result
}

/// The consumer loop, then the clean exit.
fn consume(config: &ScorerConfig, session: &Arc<Session>, shutdown: &Shutdown) -> Result<()> {
    let k = &config.kafka;
    kafka::check_connection(k, Duration::from_secs(30))?;
    let consumer: BaseConsumer<ScorerContext> =
        kafka::consumer_config(k)?.create_with_context(ScorerContext {
            session: session.clone(),
        })?;
    kafka::prepare_topics(&consumer, k)?;
    consumer.subscribe(&[k.input_topic.as_str()])?;
    info!(topic = %k.input_topic, group = %k.group, brokers = %k.brokers, "consuming");
    let commit_every = Duration::from_millis(k.commit_interval_ms.max(10));
    let mut last_commit = Instant::now();
    while !shutdown.is_triggered() && !session.failed() {
        session.health.beat(Loop::Consumer);
        session.poll_events(&consumer);
        match consumer.poll(session.poll_wait()) {
            Some(Ok(m)) => session.handle(&m),
            Some(Err(e)) => warn!(error = %e, "consumer error (librdkafka retries)"),
            None => {}
        }
        session.flush_batch(false);
        if last_commit.elapsed() >= commit_every {
            session.commit(&consumer, CommitMode::Async);
            update_lag(&consumer, session);
            last_commit = Instant::now();
        }
        if config.run.drain && session.health.phase() == Phase::Ready && session.drained() {
            info!(
                "drained: every assigned partition is consumed up to its end offset at assignment"
            );
            break;
        }
    }
    session.health.set_phase(Phase::Stopping);
    info!("shutting down: flushing and committing");
    session.flush_batch(true);
    if session.send(Job::Shutdown) {
        match session.wait_reply(&consumer, |e| match e {
            Event::Closed(offsets) => Ok(offsets),
            other => Err(other),
        }) {
            Ok(offsets) => {
                session.poll_events(&consumer);
                session.store(&consumer, &offsets);
                session.commit(&consumer, CommitMode::Sync);
            }
            Err(e) => session.fail(e),
        }
    }
    session.flush_changelog();
    session::lock(&session.state).closed = true;
    consumer.unsubscribe();
    drop(consumer);
    info!("left the consumer group");
    match session.take_failure() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn update_lag(consumer: &BaseConsumer<ScorerContext>, session: &Session) {
    let Ok(position) = consumer.position() else {
        return;
    };
    for e in position.elements() {
        let Offset::Offset(pos) = e.offset() else {
            continue;
        };
        if let Ok((_, high)) =
            consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_millis(500))
        {
            session
                .metrics
                .consumer_lag
                .get_or_create(&vec![("partition".into(), e.partition().to_string())])
                .set(high - pos);
        }
    }
}

#[cfg(test)]
mod tests;
