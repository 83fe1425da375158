//! `scorer run`: the Kafka pipeline.
//!
//! Threads and data flow:
//! - the **consumer thread** (the caller of [`run`]) polls a `BaseConsumer` in the consumer
//!   group, validates each message, applies it to the partition's [`WindowStore`], sends
//!   dead letters, and collects ready windows into a micro-batch that is handed to the
//!   worker when it holds `batch.max_rows` windows or its oldest entry waited
//!   `batch.max_wait_ms`. It stores offsets the worker reports durable and commits them on a
//!   timer, on revoke and on shutdown. Rebalance callbacks run on this thread too.
//! - the **worker thread** runs inference, writes the Parquet sink, produces predictions,
//!   rolls files on a timer, and reports a partition's next offset as durable only when the
//!   partition has no open file and the producer has delivered everything (predictions and
//!   dead letters) so far.
//! - the **reload thread** polls the model file and hot-swaps it.
//!
//! Window state across restarts and rebalances: a compacted changelog topic keyed by ticker
//! (protocol in [`crate::changelog`]). Each partition keeps a *shadow* window store exact at
//! the offset last stored; after every successful commit of offset C the tickers it changed
//! are logged with `as_of = C`, then a marker. A newly assigned partition restores the
//! newest state of every ticker from the changelog and replays the input from the newest
//! marker to the committed offset, which gives exactly the state an uninterrupted run had
//! there. With `kafka.changelog_topic = ""` the whole input partition is replayed instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use crate::changelog::{self, PartitionLog, Plan, Record};
use crate::config::ScorerConfig;
use crate::kafka::{self, ScorerProducer};
use crate::metrics::Metrics;
use crate::scoring::{score, ModelHandle};
use crate::sink::{ClosedFile, ParquetDirSink, PredictionSink, SourceKey};
use crate::validate::{parse_message, Reason, ValidRow};
use crate::window::{Fate, Window, WindowStore};
use crate::{Result, ScorerError};

/// A ready window and where it came from.
struct ReadyWindow {
    partition: i32,
    offset: i64,
    /// Message timestamp when it looks like a live producer's (within the last day).
    live_ts_ms: Option<i64>,
    window: Window,
}

#[derive(Default)]
struct Pending {
    windows: Vec<ReadyWindow>,
    /// Next offset per partition covered by this batch (every consumed message counts).
    advance: BTreeMap<i32, i64>,
    since: Option<Instant>,
}

enum WorkerMsg {
    Batch {
        windows: Vec<ReadyWindow>,
        advance: BTreeMap<i32, i64>,
    },
    /// Close the partitions' files; reply with their durable next offsets.
    Close {
        partitions: Vec<i32>,
        reply: SyncSender<BTreeMap<i32, i64>>,
    },
    /// Discard files past the committed offsets and start tracking the partitions.
    Recover {
        partitions: Vec<(i32, i64)>,
        reply: SyncSender<Result<()>>,
    },
    /// Close everything and stop.
    Shutdown {
        reply: SyncSender<BTreeMap<i32, i64>>,
    },
}

/// One assigned partition's window state.
struct PartState {
    /// The windows as of the last consumed message.
    live: WindowStore,
    /// The changelog writer (shadow store at the stored offset); `None` without a changelog.
    log: Option<PartitionLog>,
}

struct ConsumerState {
    parts: HashMap<i32, PartState>,
    pending: Pending,
}

/// What a restore did, for the log and metrics.
struct Restored {
    part: PartState,
    input_rows: usize,
    changelog_records: usize,
    source: &'static str,
}

/// State shared by the consumer loop and its rebalance callbacks (same thread).
struct Inner {
    config: ScorerConfig,
    metrics: Arc<Metrics>,
    producer: Arc<ScorerProducer>,
    /// The window changelog's producer; `None` when `kafka.changelog_topic` is empty.
    changelog: Option<Arc<ScorerProducer>>,
    /// When the changelog was last written.
    changelog_written: Mutex<Instant>,
    tx: SyncSender<WorkerMsg>,
    state: Mutex<ConsumerState>,
    /// Offsets the worker made durable, waiting to be stored in the consumer.
    durable: Arc<Mutex<BTreeMap<i32, i64>>>,
    fatal: Arc<Mutex<Option<String>>>,
    /// Set once the worker has closed everything at shutdown: later revokes only commit.
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    fn topic(&self) -> &str {
        &self.config.kafka.input_topic
    }

    fn set_fatal(&self, msg: String) {
        error!(error = %msg, "fatal");
        lock(&self.fatal).get_or_insert(msg);
    }

    fn send(&self, msg: WorkerMsg) -> bool {
        if self.tx.send(msg).is_err() {
            self.set_fatal("the worker thread stopped".into());
            return false;
        }
        true
    }

    fn handle(&self, m: &BorrowedMessage<'_>) {
        self.metrics.rows_in.inc();
        let p = m.partition();
        let offset = m.offset();
        let mut st = lock(&self.state);
        match parse_message(m.payload()) {
            Err(rej) => self.dead_letter(m, rej.reason, &rej.detail),
            Ok(row) => {
                let policy = self.config.window.gap_policy;
                let logging = self.changelog.is_some();
                let part = st.parts.entry(p).or_insert_with(|| {
                    error!(
                        partition = p,
                        offset, "message of a partition never restored"
                    );
                    PartState {
                        live: WindowStore::new(policy),
                        log: logging.then(|| {
                            PartitionLog::new(
                                WindowStore::new(policy),
                                offset,
                                Default::default(),
                                true,
                                Default::default(),
                            )
                        }),
                    }
                });
                let keep = part.log.as_ref().map(|_| row.clone());
                let pushed = part.live.push(row);
                if let (Some(log), Some(row)) = (part.log.as_mut(), keep) {
                    if matches!(pushed.fate, Fate::Ready(_) | Fate::Filling(_)) {
                        log.queue(offset, row);
                    }
                }
                if pushed.gap {
                    self.metrics.gaps.inc();
                }
                match pushed.fate {
                    Fate::Ready(window) => {
                        let now = chrono::Utc::now().timestamp_millis();
                        let live_ts_ms = m
                            .timestamp()
                            .to_millis()
                            .filter(|t| (now - 86_400_000..=now + 60_000).contains(t));
                        st.pending.windows.push(ReadyWindow {
                            partition: p,
                            offset,
                            live_ts_ms,
                            window,
                        });
                    }
                    Fate::Filling(_) => {}
                    Fate::Duplicate => {
                        self.metrics.duplicates.inc();
                        debug!(partition = p, offset, "duplicate week dropped");
                    }
                    Fate::Late(newest) => self.dead_letter(
                        m,
                        Reason::Late,
                        &format!("week is older than the newest week {newest} seen for the ticker"),
                    ),
                }
            }
        }
        st.pending.advance.insert(p, offset + 1);
        st.pending.since.get_or_insert_with(Instant::now);
    }

    fn dead_letter(&self, m: &BorrowedMessage<'_>, reason: Reason, detail: &str) {
        self.metrics.dead_letter(reason);
        warn!(partition = m.partition(), offset = m.offset(), %reason, detail, "dead letter");
        let topic = &self.config.kafka.dead_letter_topic;
        if topic.is_empty() {
            return;
        }
        let headers = kafka::dead_letter_headers(
            reason.as_str(),
            detail,
            self.topic(),
            m.partition(),
            m.offset(),
        );
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).headers(headers);
        if let Some(k) = m.key() {
            record = record.key(k);
        }
        if let Some(v) = m.payload() {
            record = record.payload(v);
        }
        if let Err(e) = kafka::send_blocking(&self.producer, record) {
            self.metrics.produce_errors.inc();
            error!(error = %e, "dead-letter produce failed");
        }
    }

    /// Hands the micro-batch to the worker when due (or `force`).
    fn flush_pending(&self, force: bool) {
        let batch = {
            let mut st = lock(&self.state);
            let due = st.pending.windows.len() >= self.config.batch.max_rows.max(1)
                || st.pending.since.is_some_and(|s| {
                    s.elapsed() >= Duration::from_millis(self.config.batch.max_wait_ms)
                });
            if st.pending.advance.is_empty() || !(force || due) {
                return;
            }
            std::mem::take(&mut st.pending)
        };
        self.send(WorkerMsg::Batch {
            windows: batch.windows,
            advance: batch.advance,
        });
    }

    fn pending_wait(&self) -> Duration {
        let st = lock(&self.state);
        match st.pending.since {
            Some(s) => Duration::from_millis(self.config.batch.max_wait_ms)
                .saturating_sub(s.elapsed())
                .max(Duration::from_millis(1)),
            None => Duration::from_millis(100),
        }
    }

    /// Stores the worker's durable offsets for assigned partitions.
    fn store_durable<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let durable = std::mem::take(&mut *lock(&self.durable));
        self.store(consumer, &durable);
    }

    fn store<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, offsets: &BTreeMap<i32, i64>) {
        if offsets.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (&p, &o) in offsets {
            if tpl
                .add_partition_offset(self.topic(), p, Offset::Offset(o))
                .is_err()
            {
                continue;
            }
        }
        if let Err(e) = consumer.store_offsets(&tpl) {
            // A partition revoked meanwhile: its new owner starts from the committed offset.
            warn!(error = %e, "storing offsets failed");
            return;
        }
        // The shadow stores follow the stored offsets.
        let mut st = lock(&self.state);
        for (p, &o) in offsets {
            if let Some(log) = st.parts.get_mut(p).and_then(|s| s.log.as_mut()) {
                log.advance(o);
            }
        }
    }

    /// Commits the stored offsets. `CommitMode::Sync` is the caller's (revoke, shutdown):
    /// the window changelog is then always written after the commit; on the timer
    /// (`CommitMode::Async`) it is written when `kafka.changelog_interval_ms` has passed,
    /// and that commit is made synchronous (commit first, then log).
    fn commit<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, mode: CommitMode) {
        let log_now = self.changelog.is_some()
            && (matches!(mode, CommitMode::Sync)
                || lock(&self.changelog_written).elapsed()
                    >= Duration::from_millis(self.config.kafka.changelog_interval_ms));
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
            *lock(&self.changelog_written) = Instant::now();
        }
    }

    /// Produces the changelog records of every partition whose shadow moved since its last
    /// marker. Called only right after a successful synchronous commit.
    fn write_changelog(&self) {
        let Some(producer) = &self.changelog else {
            return;
        };
        let topic = self.config.kafka.changelog_topic.as_str();
        let mut n = 0u64;
        let mut failure = None;
        {
            let mut st = lock(&self.state);
            'parts: for (&p, part) in st.parts.iter_mut() {
                let Some(log) = part.log.as_mut() else {
                    continue;
                };
                for (key, value) in log.after_commit() {
                    let mut record: BaseRecord<'_, [u8], [u8]> =
                        BaseRecord::to(topic).partition(p).key(key.as_slice());
                    if let Some(v) = &value {
                        record = record.payload(v.as_slice());
                    }
                    if let Err(e) = kafka::send_blocking(producer, record) {
                        failure = Some(format!("window changelog produce failed: {e}"));
                        break 'parts;
                    }
                    n += 1;
                }
            }
        }
        self.metrics.changelog_records.inc_by(n);
        let failed = kafka::failed_deliveries(producer);
        if failure.is_none() && failed > 0 {
            failure = Some(format!(
                "{failed} window changelog records failed to deliver"
            ));
        }
        if let Some(msg) = failure {
            // A restart restores exactly from the last complete marker.
            self.set_fatal(msg);
        }
    }

    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements()
            .iter()
            .filter(|e| e.topic() == self.topic())
            .map(|e| e.partition())
            .collect()
    }

    fn on_revoke<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, partitions: Vec<i32>) {
        if self.closed.load(Ordering::Relaxed) {
            self.commit(consumer, CommitMode::Sync);
            return;
        }
        info!(?partitions, "partitions revoked: flushing");
        self.flush_pending(true);
        let (reply, rx) = sync_channel(1);
        if !self.send(WorkerMsg::Close {
            partitions: partitions.clone(),
            reply,
        }) {
            return;
        }
        if let Ok(offsets) = rx.recv() {
            // Also store anything the worker reported before.
            self.store_durable(consumer);
            self.store(consumer, &offsets);
            self.commit(consumer, CommitMode::Sync);
        }
        // The next owner reads the changelog once this callback returns: deliver it first.
        if let Some(producer) = &self.changelog {
            if let Err(e) = producer.flush(Duration::from_secs(10)) {
                error!(error = %e, "window changelog flush on revoke timed out");
            }
        }
        let mut st = lock(&self.state);
        for p in partitions {
            st.parts.remove(&p);
        }
    }

    fn on_assign<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        let partitions = self.partitions(tpl);
        if partitions.is_empty() {
            return;
        }
        if let Err(e) = self.assign(consumer, tpl, &partitions) {
            self.set_fatal(format!("assigning {partitions:?}: {e}"));
        }
    }

    fn assign<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        partitions: &[i32],
    ) -> Result<()> {
        let committed = consumer.committed_offsets(tpl.clone(), Duration::from_secs(30))?;
        let mut recover = Vec::new();
        for p in partitions {
            let c = committed
                .find_partition(self.topic(), *p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(0);
            recover.push((*p, c));
        }
        info!(
            ?recover,
            "partitions assigned: recovering from committed offsets"
        );
        let (reply, rx) = sync_channel(1);
        if !self.send(WorkerMsg::Recover {
            partitions: recover.clone(),
            reply,
        }) {
            return Err(ScorerError::Internal("worker stopped".into()));
        }
        rx.recv()
            .map_err(|_| ScorerError::Internal("worker stopped".into()))??;
        for (p, c) in recover {
            let t = Instant::now();
            let r = self.restore(p, c)?;
            info!(
                partition = p,
                committed = c,
                rows = r.input_rows,
                changelog_records = r.changelog_records,
                tickers = r.part.live.len(),
                source = r.source,
                secs = t.elapsed().as_secs_f64(),
                "windows restored"
            );
            for (source, n) in [("input", r.input_rows), ("changelog", r.changelog_records)] {
                self.metrics
                    .restore_records
                    .get_or_create(&vec![("source".into(), source.into())])
                    .inc_by(n as u64);
            }
            lock(&self.state).parts.insert(p, r.part);
        }
        Ok(())
    }

    /// A group-less consumer for reading partitions directly.
    fn reader(&self) -> Result<BaseConsumer> {
        let k = &self.config.kafka;
        let mut cfg = kafka::base_config(k);
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

    /// Replays the valid input rows of partition `p` over `[from, to)`; `from = None` starts
    /// at the partition's low watermark.
    fn replay_input(
        &self,
        p: i32,
        from: Option<i64>,
        to: i64,
        deadline: Instant,
        mut f: impl FnMut(i64, ValidRow),
    ) -> Result<usize> {
        if to <= from.unwrap_or(0) {
            return Ok(0);
        }
        let (low, high) =
            self.reader()?
                .fetch_watermarks(self.topic(), p, Duration::from_secs(30))?;
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
        self.read_range(self.topic(), p, start, to.min(high), deadline, |m| {
            if let Ok(row) = parse_message(m.payload()) {
                f(m.offset(), row);
            }
        })
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
    fn restore(&self, p: i32, committed: i64) -> Result<Restored> {
        let policy = self.config.window.gap_policy;
        let deadline = Instant::now() + Duration::from_millis(self.config.kafka.restore_timeout_ms);
        let full_replay = |store: &mut WindowStore| {
            self.replay_input(p, None, committed, deadline, |_, row| {
                store.push(row);
            })
        };
        if self.changelog.is_none() {
            let mut store = WindowStore::new(policy);
            let input_rows = full_replay(&mut store)?;
            return Ok(Restored {
                part: PartState {
                    live: store,
                    log: None,
                },
                input_rows,
                changelog_records: 0,
                source: "input",
            });
        }
        let records = self.read_changelog(p, deadline)?;
        let changelog_records = records.len();
        match changelog::plan_restore(records, committed, policy) {
            Plan::Restore(mut r) => {
                let input_rows =
                    self.replay_input(p, r.replay_from, committed, deadline, |o, row| {
                        r.replay(o, row)
                    })?;
                let dirty = std::mem::take(&mut r.dirty);
                let needs_full = !r.found_full;
                Ok(Restored {
                    part: PartState {
                        live: r.store.clone(),
                        log: Some(PartitionLog::new(
                            r.store,
                            committed,
                            dirty,
                            needs_full,
                            Default::default(),
                        )),
                    },
                    input_rows,
                    changelog_records,
                    source: "changelog",
                })
            }
            Plan::Unusable { reason, tickers } => {
                warn!(
                    partition = p,
                    committed,
                    %reason,
                    "window changelog unusable: rebuilding from the whole input partition"
                );
                let mut store = WindowStore::new(policy);
                let input_rows = full_replay(&mut store)?;
                let dirty = store.tickers().map(str::to_string).collect();
                let tombstones = tickers
                    .into_iter()
                    .filter(|t| store.ticker_state(t).is_none())
                    .collect();
                Ok(Restored {
                    part: PartState {
                        live: store.clone(),
                        log: Some(PartitionLog::new(store, committed, dirty, true, tombstones)),
                    },
                    input_rows,
                    changelog_records,
                    source: "input",
                })
            }
        }
    }
}

/// The consumer's context: rebalance callbacks.
struct ScorerContext {
    inner: Arc<Inner>,
}

impl ClientContext for ScorerContext {}

impl ConsumerContext for ScorerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let parts = self.inner.partitions(tpl);
                self.inner.on_revoke(consumer, parts);
            }
            Rebalance::Assign(tpl) => self.inner.on_assign(consumer, tpl),
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        match result {
            Ok(()) => debug!(?offsets, "offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                Metrics::labelled(&self.inner.metrics.commits, "result", "failed");
                warn!(error = %e, "offset commit failed (retried on the next commit)");
            }
        }
    }
}

struct Worker {
    config: ScorerConfig,
    metrics: Arc<Metrics>,
    producer: Arc<ScorerProducer>,
    model: Arc<ModelHandle>,
    sink: Box<dyn PredictionSink>,
    next: BTreeMap<i32, i64>,
    stored: BTreeMap<i32, i64>,
    live_ts: BTreeMap<i32, Vec<i64>>,
    durable: Arc<Mutex<BTreeMap<i32, i64>>>,
}

impl Worker {
    fn source(&self, p: i32) -> SourceKey {
        SourceKey {
            topic: self.config.kafka.input_topic.clone(),
            partition: p,
        }
    }

    fn run(mut self, rx: Receiver<WorkerMsg>) -> Result<()> {
        let tick = Duration::from_millis((self.config.sink.max_file_age_ms / 4).clamp(10, 200));
        loop {
            match rx.recv_timeout(tick) {
                Ok(WorkerMsg::Batch { windows, advance }) => self.process(windows, advance)?,
                Ok(WorkerMsg::Close { partitions, reply }) => {
                    for p in &partitions {
                        let closed = self.sink.close_source(&self.source(*p))?;
                        self.account(closed);
                    }
                    let offsets = self.commit_points(Some(&partitions));
                    for p in &partitions {
                        self.next.remove(p);
                        self.stored.remove(p);
                        self.live_ts.remove(p);
                    }
                    let _ = reply.send(offsets);
                }
                Ok(WorkerMsg::Recover { partitions, reply }) => {
                    let mut result = Ok(());
                    for (p, committed) in partitions {
                        match self.sink.discard_after(&self.source(p), committed) {
                            Ok(n) => {
                                if n > 0 {
                                    info!(
                                        partition = p,
                                        committed,
                                        removed = n,
                                        "removed files past the committed offset"
                                    );
                                }
                                self.metrics.files_removed.inc_by(n as u64);
                                self.next.insert(p, committed);
                                self.stored.insert(p, committed);
                            }
                            Err(e) => {
                                result = Err(e);
                                break;
                            }
                        }
                    }
                    let _ = reply.send(result);
                }
                Ok(WorkerMsg::Shutdown { reply }) => {
                    let closed = self.sink.close_all()?;
                    self.account(closed);
                    let offsets = self.commit_points(None);
                    let _ = reply.send(offsets);
                    return Ok(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            let closed = self.sink.roll_due(Instant::now())?;
            self.account(closed);
            let offsets = self.commit_points(None);
            if !offsets.is_empty() {
                lock(&self.durable).extend(offsets);
            }
        }
    }

    fn process(&mut self, windows: Vec<ReadyWindow>, advance: BTreeMap<i32, i64>) -> Result<()> {
        if !windows.is_empty() {
            let model = self.model.current();
            let refs: Vec<&Window> = windows.iter().map(|w| &w.window).collect();
            let t = Instant::now();
            let mut rows = score(model.as_ref(), &refs, trendscore_schemas::now_ms())?;
            self.metrics
                .inference_seconds
                .observe(t.elapsed().as_secs_f64());
            self.metrics.batch_size.observe(windows.len() as f64);
            // Group by partition, keeping offset order.
            let mut by_part: BTreeMap<i32, (Vec<_>, Vec<i64>)> = BTreeMap::new();
            for (row, w) in rows.iter_mut().zip(&windows) {
                row.source_partition = Some(w.partition);
                row.source_offset = Some(w.offset);
                if let Some(ts) = w.live_ts_ms {
                    self.live_ts.entry(w.partition).or_default().push(ts);
                }
            }
            for (row, w) in rows.into_iter().zip(&windows) {
                let e = by_part.entry(w.partition).or_default();
                e.0.push(row);
                e.1.push(w.offset);
            }
            let now = Instant::now();
            for (p, (rows, offsets)) in by_part {
                let source = self.source(p);
                let closed = self.sink.write(&source, &rows, &offsets, now)?;
                self.metrics.rows_scored.inc_by(rows.len() as u64);
                self.produce_predictions(&rows);
                self.account(closed);
            }
        }
        for (p, o) in advance {
            let e = self.next.entry(p).or_insert(o);
            *e = (*e).max(o);
        }
        Ok(())
    }

    fn produce_predictions(&self, rows: &[trendscore_schemas::PredictionRow]) {
        let topic = &self.config.kafka.predictions_topic;
        if topic.is_empty() {
            return;
        }
        for row in rows {
            let value = match serde_json::to_vec(row) {
                Ok(v) => v,
                Err(e) => {
                    error!(error = %e, "serialising a prediction");
                    continue;
                }
            };
            let record = BaseRecord::to(topic)
                .key(row.ticker.as_bytes())
                .payload(value.as_slice());
            if let Err(e) = kafka::send_blocking(&self.producer, record) {
                self.metrics.produce_errors.inc();
                error!(error = %e, "prediction produce failed");
            }
        }
    }

    fn account(&mut self, closed: Vec<ClosedFile>) {
        if closed.is_empty() {
            return;
        }
        self.metrics.files_written.inc_by(closed.len() as u64);
        let now = chrono::Utc::now().timestamp_millis();
        for f in &closed {
            debug!(path = %f.path.display(), rows = f.rows, "file durable");
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

    /// Partitions whose rows are all durable and whose next offset moved: flush the producer,
    /// then report their next offsets. `only` limits the partitions considered.
    fn commit_points(&mut self, only: Option<&[i32]>) -> BTreeMap<i32, i64> {
        let mut ready: Vec<(i32, i64)> = Vec::new();
        for (&p, &n) in &self.next {
            if only.is_some_and(|o| !o.contains(&p)) {
                continue;
            }
            if self.stored.get(&p).is_some_and(|&s| s >= n) {
                continue;
            }
            if self.sink.has_open(&self.source(p)) {
                continue;
            }
            ready.push((p, n));
        }
        if ready.is_empty() {
            return BTreeMap::new();
        }
        if let Err(e) = self.producer.flush(Duration::from_secs(10)) {
            warn!(error = %e, "producer flush timed out; offsets wait");
            return BTreeMap::new();
        }
        let mut out = BTreeMap::new();
        for (p, n) in ready {
            self.stored.insert(p, n);
            out.insert(p, n);
        }
        out
    }
}

/// Runs the service until `stop` is set (then flushes, commits and leaves the group) or a
/// fatal error happens. Blocking: call it from a dedicated thread.
pub fn run(
    config: ScorerConfig,
    model: Arc<ModelHandle>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let sink: Box<dyn PredictionSink> = Box::new(ParquetDirSink::new(&config.sink)?);
    run_with_sink(config, model, metrics, stop, sink)
}

/// [`run`] with any sink.
pub fn run_with_sink(
    config: ScorerConfig,
    model: Arc<ModelHandle>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    sink: Box<dyn PredictionSink>,
) -> Result<()> {
    let k = &config.kafka;
    let producer = kafka::producer(k)?;
    let changelog = if k.changelog_topic.is_empty() {
        None
    } else {
        Some(kafka::changelog_producer(k)?)
    };
    let (tx, rx) = sync_channel(4);
    let durable = Arc::new(Mutex::new(BTreeMap::new()));
    let fatal = Arc::new(Mutex::new(None));
    let inner = Arc::new(Inner {
        config: config.clone(),
        metrics: metrics.clone(),
        producer: producer.clone(),
        changelog: changelog.clone(),
        changelog_written: Mutex::new(Instant::now()),
        tx,
        state: Mutex::new(ConsumerState {
            parts: HashMap::new(),
            pending: Pending::default(),
        }),
        durable: durable.clone(),
        fatal: fatal.clone(),
        closed: AtomicBool::new(false),
    });
    let worker = Worker {
        config: config.clone(),
        metrics: metrics.clone(),
        producer: producer.clone(),
        model: model.clone(),
        sink,
        next: BTreeMap::new(),
        stored: BTreeMap::new(),
        live_ts: BTreeMap::new(),
        durable,
    };
    let worker_fatal = fatal.clone();
    let worker_handle = std::thread::Builder::new()
        .name("scorer-worker".into())
        .spawn(move || {
            if let Err(e) = worker.run(rx) {
                error!(error = %e, "worker failed");
                lock(&worker_fatal).get_or_insert(format!("worker: {e}"));
            }
        })
        .map_err(|e| ScorerError::Internal(e.to_string()))?;
    let reload_handle = spawn_reloader(&config, model, metrics.clone(), stop.clone());

    let mut cfg = kafka::base_config(k);
    cfg.set("group.id", &k.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", k.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (k.session_timeout_ms / 4).max(100).to_string(),
        );
    for (key, value) in &k.extra {
        cfg.set(key, value);
    }
    let consumer: BaseConsumer<ScorerContext> = cfg.create_with_context(ScorerContext {
        inner: inner.clone(),
    })?;
    if !k.changelog_topic.is_empty() {
        check_changelog_topic(&consumer, k)?;
    }
    consumer.subscribe(&[k.input_topic.as_str()])?;
    metrics.ready.store(true, Ordering::Relaxed);
    info!(topic = %k.input_topic, group = %k.group, brokers = %k.brokers, "consuming");

    let commit_every = Duration::from_millis(k.commit_interval_ms.max(10));
    let mut last_commit = Instant::now();
    let mut result = Ok(());
    while !stop.load(Ordering::Relaxed) {
        if let Some(msg) = lock(&fatal).clone() {
            result = Err(ScorerError::Internal(msg));
            break;
        }
        match consumer.poll(inner.pending_wait()) {
            Some(Ok(m)) => inner.handle(&m),
            Some(Err(e)) => warn!(error = %e, "consumer error (librdkafka retries)"),
            None => {}
        }
        inner.flush_pending(false);
        inner.store_durable(&consumer);
        if last_commit.elapsed() >= commit_every {
            inner.commit(&consumer, CommitMode::Async);
            update_lag(&consumer, &inner);
            last_commit = Instant::now();
        }
    }
    metrics.ready.store(false, Ordering::Relaxed);
    if result.is_ok() {
        info!("shutting down: flushing and committing");
        inner.flush_pending(true);
        let (reply, rx) = sync_channel(1);
        if inner.send(WorkerMsg::Shutdown { reply }) {
            if let Ok(offsets) = rx.recv() {
                inner.store_durable(&consumer);
                inner.store(&consumer, &offsets);
                inner.commit(&consumer, CommitMode::Sync);
            }
        }
        inner.closed.store(true, Ordering::Relaxed);
        consumer.unsubscribe();
        info!("left the consumer group");
    }
    drop(consumer);
    let _ = worker_handle.join();
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = reload_handle {
        let _ = h.join();
    }
    if let Err(e) = producer.flush(Duration::from_secs(10)) {
        warn!(error = %e, "final producer flush");
    }
    if let Some(c) = &changelog {
        if let Err(e) = c.flush(Duration::from_secs(10)) {
            warn!(error = %e, "final window changelog flush");
        }
    }
    if result.is_ok() {
        if let Some(msg) = lock(&fatal).clone() {
            result = Err(ScorerError::Internal(msg));
        }
    }
    result
}

/// The changelog topic must exist with at least the input's partitions (changelog
/// partition p holds input partition p's windows).
fn check_changelog_topic(
    consumer: &BaseConsumer<ScorerContext>,
    k: &crate::config::KafkaConfig,
) -> Result<()> {
    let Some(n) = kafka::partition_count(consumer, &k.changelog_topic)? else {
        return Err(ScorerError::Config(format!(
            "window changelog topic {:?} does not exist: create it (`scorer topics create`, \
             compacted, as many partitions as {:?}) or set kafka.changelog_topic = \"\"",
            k.changelog_topic, k.input_topic
        )));
    };
    if let Some(m) = kafka::partition_count(consumer, &k.input_topic)? {
        if n < m {
            return Err(ScorerError::Config(format!(
                "window changelog topic {:?} has {n} partitions, fewer than the {m} of {:?}",
                k.changelog_topic, k.input_topic
            )));
        }
    }
    Ok(())
}

fn update_lag(consumer: &BaseConsumer<ScorerContext>, inner: &Inner) {
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
            inner
                .metrics
                .consumer_lag
                .get_or_create(&vec![("partition".into(), e.partition().to_string())])
                .set(high - pos);
        }
    }
}

fn spawn_reloader(
    config: &ScorerConfig,
    model: Arc<ModelHandle>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    let every = config.model.reload_interval_ms;
    if every == 0 {
        return None;
    }
    std::thread::Builder::new()
        .name("scorer-reload".into())
        .spawn(move || {
            let step = Duration::from_millis(50);
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(step);
                waited += step;
                if waited < Duration::from_millis(every) {
                    continue;
                }
                waited = Duration::ZERO;
                match model.check_reload() {
                    Ok(Some(version)) => {
                        Metrics::labelled(&metrics.model_reloads, "result", "ok");
                        info!(%version, "model reloaded");
                    }
                    Ok(None) => {}
                    Err(e) => {
                        Metrics::labelled(&metrics.model_reloads, "result", "failed");
                        error!(error = %e, "model reload failed; keeping the current model");
                    }
                }
            }
        })
        .ok()
}

/// The service loop against librdkafka's in-process mock cluster: a fast test double that
/// runs beside the real-broker tests in tests/python/test_scorer_kafka.py, never instead of
/// them.
#[cfg(test)]
mod mock_cluster_tests {
    use super::*;
    use crate::config::PartitionBy;
    use crate::test_support::echo;
    use chrono::NaiveDate;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::BaseProducer;
    use trendscore_schemas::{InputMessage, NUM_FEATURES};

    fn produce(brokers: &str, tickers: usize, weeks: std::ops::Range<usize>) {
        let p: BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .unwrap();
        let base = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
        for w in weeks {
            for t in 0..tickers {
                let mut features = vec![0.5; NUM_FEATURES];
                features[0] = (t * 1000 + w) as f64;
                let msg = InputMessage {
                    ticker: format!("T{t}"),
                    week: (base + chrono::Duration::weeks(w as i64))
                        .format("%Y-%m-%d")
                        .to_string(),
                    features,
                    trend_7day: None,
                    trend_30day: None,
                };
                let value = serde_json::to_vec(&msg).unwrap();
                let key = msg.ticker.clone();
                p.send(BaseRecord::to("in").key(key.as_bytes()).payload(&value))
                    .unwrap();
            }
        }
        p.flush(Duration::from_secs(10)).unwrap();
    }

    fn config(brokers: &str, out: &std::path::Path) -> ScorerConfig {
        let mut c = ScorerConfig::default();
        c.kafka.brokers = brokers.into();
        c.kafka.input_topic = "in".into();
        c.kafka.predictions_topic = "preds".into();
        c.kafka.dead_letter_topic = "dlq".into();
        c.kafka.changelog_topic = "in-changelog".into();
        c.kafka.group = "g".into();
        c.kafka.session_timeout_ms = 6000;
        c.kafka.commit_interval_ms = 100;
        c.sink.output_dir = out.to_path_buf();
        c.sink.partition_by = PartitionBy::None;
        c.sink.max_file_age_ms = 100;
        c.model.reload_interval_ms = 0;
        c
    }

    /// Runs the service until the output holds `rows` predictions, then stops it cleanly.
    fn run_until(cfg: &ScorerConfig, rows: usize) -> Arc<Metrics> {
        let metrics = Arc::new(Metrics::new());
        let stop = Arc::new(AtomicBool::new(false));
        let model = Arc::new(ModelHandle::fixed(Arc::new(echo())));
        let handle = {
            let (cfg, metrics, stop) = (cfg.clone(), metrics.clone(), stop.clone());
            std::thread::spawn(move || run(cfg, model, metrics, stop))
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n = crate::sink::read_all_predictions(&cfg.sink.output_dir)
                .map(|r| r.len())
                .unwrap_or(0);
            if n >= rows || Instant::now() > deadline || handle.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        handle.join().unwrap().unwrap();
        metrics
    }

    fn restored(m: &Metrics, source: &str) -> u64 {
        m.restore_records
            .get_or_create(&vec![("source".into(), source.into())])
            .get()
    }

    #[test]
    fn runs_stops_and_restores_its_windows_from_the_changelog() {
        let cluster = MockCluster::new(1).unwrap();
        for (t, n) in [("in", 2), ("in-changelog", 2), ("preds", 2), ("dlq", 1)] {
            cluster.create_topic(t, n, 1).unwrap();
        }
        let brokers = cluster.bootstrap_servers();
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(&brokers, dir.path());
        let tickers = 4;
        produce(&brokers, tickers, 0..20);
        let first = run_until(&cfg, tickers * (20 - 11));
        assert_eq!(
            restored(&first, "changelog"),
            0,
            "nothing to restore at first"
        );
        assert!(first.changelog_records.get() > 0);
        // a restart mid-stream: the windows come from the changelog, the input is not replayed
        produce(&brokers, tickers, 20..30);
        let second = run_until(&cfg, tickers * (30 - 11));
        assert!(restored(&second, "changelog") >= tickers as u64);
        assert_eq!(restored(&second, "input"), 0);
        let preds = crate::sink::read_all_predictions(dir.path()).unwrap();
        assert_eq!(preds.len(), tickers * (30 - 11), "every window once");
        let mut seen = std::collections::HashSet::new();
        for p in &preds {
            assert!(seen.insert((p.ticker.clone(), p.week)), "duplicate {p:?}");
            // Echo: trend_7d is feature 0 of the newest week = ticker * 1000 + week index
            let t: usize = p.ticker[1..].parse().unwrap();
            let w = (p.week - NaiveDate::from_ymd_opt(2024, 1, 5).unwrap()).num_weeks() as usize;
            assert_eq!(p.trend_7d, (t * 1000 + w) as f32);
            assert_eq!(
                (p.week - p.window_start).num_weeks(),
                11,
                "a full 12-week window across the restart"
            );
        }
    }
    #[test]
    fn a_missing_or_short_changelog_topic_is_refused_at_start() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("in", 2, 1).unwrap();
        let brokers = cluster.bootstrap_servers();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(&brokers, dir.path());
        let start = |cfg: ScorerConfig| {
            let model = Arc::new(ModelHandle::fixed(Arc::new(echo())));
            run(
                cfg,
                model,
                Arc::new(Metrics::new()),
                Arc::new(AtomicBool::new(false)),
            )
        };
        cfg.kafka.changelog_topic = "nope".into();
        let e = start(cfg.clone()).unwrap_err().to_string();
        assert!(e.contains("\"nope\" does not exist"), "{e}");
        cluster.create_topic("short", 1, 1).unwrap();
        cfg.kafka.changelog_topic = "short".into();
        let e = start(cfg).unwrap_err().to_string();
        assert!(e.contains("has 1 partitions, fewer than the 2"), "{e}");
    }
}
