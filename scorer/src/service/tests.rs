//! The real service (`app::run_with`) against librdkafka's in-process mock cluster: a fast
//! test double that runs beside the real-broker tests in tests/python/test_scorer_kafka.py,
//! never instead of them.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use trendscore_schemas::{InputMessage, PredictionRow, WeeklyRow, NUM_FEATURES};

use crate::app::{run_with, Shutdown, Telemetry};
use crate::config::{PartitionBy, ScorerConfig, SinkConfig};
use crate::model::ModelHandle;
use crate::sink::read_all_predictions;
use crate::test_support::{echo, FailsAfter, Held};
use crate::{Result, ScorerError};

fn base() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 5).unwrap()
}

/// Rows of `tickers` tickers over `weeks`; feature 0 = ticker * 1000 + week index.
fn rows(tickers: usize, weeks: std::ops::Range<usize>) -> Vec<WeeklyRow> {
    let mut out = Vec::new();
    for w in weeks {
        for t in 0..tickers {
            let mut features = vec![0.5; NUM_FEATURES];
            features[0] = (t * 1000 + w) as f32;
            out.push(WeeklyRow {
                ticker: format!("T{t}"),
                week: base() + chrono::Duration::weeks(w as i64),
                features,
                trend_7day: None,
                trend_30day: None,
            });
        }
    }
    out
}

fn produce_values(brokers: &str, topic: &str, msgs: &[(String, Vec<u8>)]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for (key, value) in msgs {
        p.send(BaseRecord::to(topic).key(key.as_bytes()).payload(value))
            .unwrap();
    }
    p.flush(Duration::from_secs(10)).unwrap();
}

fn messages(rows: &[WeeklyRow]) -> Vec<(String, Vec<u8>)> {
    rows.iter()
        .map(|r| {
            let msg = InputMessage {
                ticker: r.ticker.clone(),
                week: r.week.format("%Y-%m-%d").to_string(),
                features: r.features.iter().map(|&f| f64::from(f)).collect(),
                trend_7day: None,
                trend_30day: None,
            };
            (r.ticker.clone(), serde_json::to_vec(&msg).unwrap())
        })
        .collect()
}

fn produce(brokers: &str, topic: &str, rows: &[WeeklyRow]) {
    produce_values(brokers, topic, &messages(rows));
}

fn cluster(
    topics: &[(&str, i32)],
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).unwrap();
    for &(t, n) in topics {
        cluster.create_topic(t, n, 1).unwrap();
    }
    cluster
}

const TOPICS: [(&str, i32); 4] = [("in", 2), ("in-changelog", 2), ("preds", 2), ("dlq", 2)];

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
    c.kafka.create_topics = false; // the mock cluster has no CreateTopics
    c.sink = SinkConfig {
        output_dir: out.to_path_buf(),
        partition_by: PartitionBy::None,
        max_file_age_ms: 100,
        ..SinkConfig::default()
    };
    c.model.reload_interval_ms = 0;
    c.http.listen = String::new();
    c
}

struct Running {
    telemetry: Telemetry,
    shutdown: Shutdown,
    handle: std::thread::JoinHandle<Result<()>>,
}

fn start_with(cfg: &ScorerConfig, model: Arc<dyn trendscore_infer::InferenceModel>) -> Running {
    let telemetry = Telemetry::new(cfg);
    let shutdown = Shutdown::new();
    let handle = {
        let (cfg, t, s) = (cfg.clone(), telemetry.clone(), shutdown.clone());
        let model = Arc::new(ModelHandle::fixed(model));
        std::thread::spawn(move || run_with(cfg, model, t, s))
    };
    Running {
        telemetry,
        shutdown,
        handle,
    }
}

fn start(cfg: &ScorerConfig) -> Running {
    start_with(cfg, Arc::new(echo()))
}

fn wait_rows(cfg: &ScorerConfig, rows: usize, r: &Running) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = read_all_predictions(&cfg.sink.output_dir)
            .map(|r| r.len())
            .unwrap_or(0);
        if n >= rows || Instant::now() > deadline || r.handle.is_finished() {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Running {
    fn stop(self) -> (Telemetry, Result<()>) {
        self.shutdown.trigger();
        let r = self.handle.join().unwrap();
        (self.telemetry, r)
    }
}

/// Runs the service until the output holds `rows` predictions, then stops it cleanly.
fn run_until(cfg: &ScorerConfig, rows: usize) -> Telemetry {
    let r = start(cfg);
    wait_rows(cfg, rows, &r);
    let (t, result) = r.stop();
    result.unwrap();
    t
}

fn restored(t: &Telemetry, source: &str) -> u64 {
    t.metrics
        .restore_records
        .get_or_create(&vec![("source".into(), source.into())])
        .get()
}

fn check_exact(preds: &[PredictionRow], tickers: usize, weeks: usize) {
    assert_eq!(preds.len(), tickers * (weeks - 11), "every window once");
    let mut seen = std::collections::HashSet::new();
    for p in preds {
        assert!(seen.insert((p.ticker.clone(), p.week)), "duplicate {p:?}");
        // Echo: trend_7d is feature 0 of the newest week = ticker * 1000 + week index
        let t: usize = p.ticker[1..].parse().unwrap();
        let w = (p.week - base()).num_weeks() as usize;
        assert_eq!(p.trend_7d, (t * 1000 + w) as f32);
        assert_eq!((p.week - p.window_start).num_weeks(), 11, "a full window");
    }
}

#[test]
fn runs_stops_and_restores_its_windows_from_the_changelog() {
    let cluster = cluster(&TOPICS);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&brokers, dir.path());
    let tickers = 4;
    produce(&brokers, "in", &rows(tickers, 0..20));
    let first = run_until(&cfg, tickers * (20 - 11));
    assert_eq!(
        restored(&first, "changelog"),
        0,
        "nothing to restore at first"
    );
    assert!(first.metrics.changelog_records.get() > 0);
    // a restart mid-stream: the windows come from the changelog, the input is not replayed
    produce(&brokers, "in", &rows(tickers, 20..30));
    let second = run_until(&cfg, tickers * (30 - 11));
    assert!(restored(&second, "changelog") >= tickers as u64);
    assert_eq!(restored(&second, "input"), 0);
    check_exact(&read_all_predictions(dir.path()).unwrap(), tickers, 30);
}

#[test]
fn drain_stops_by_itself_once_caught_up_with_the_exact_output() {
    let cluster = cluster(&TOPICS);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&brokers, dir.path());
    cfg.run.drain = true;
    cfg.sink.max_file_age_ms = 60_000; // the files close because of the drain, not a timer
    produce(&brokers, "in", &rows(3, 0..25));
    let r = start(&cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !r.handle.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(r.handle.is_finished(), "drain did not stop the run");
    r.handle.join().unwrap().unwrap();
    check_exact(&read_all_predictions(dir.path()).unwrap(), 3, 25);
    // the offsets are committed: a second drain reads nothing new and adds nothing
    let again = start(&cfg);
    again.handle.join().unwrap().unwrap();
    assert!(restored(&again.telemetry, "changelog") > 0);
    check_exact(&read_all_predictions(dir.path()).unwrap(), 3, 25);
}

#[test]
fn missing_topics_and_a_short_changelog_are_refused_at_start() {
    let cluster = cluster(&[("in", 2), ("preds", 2), ("dlq", 2)]);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&brokers, dir.path());
    let err = |cfg: &ScorerConfig| {
        let r = start(cfg);
        r.handle.join().unwrap().unwrap_err().to_string()
    };
    cfg.kafka.changelog_topic = "nope".into();
    let e = err(&cfg);
    assert!(
        e.contains("\"nope\"") && e.contains("kafka.create_topics is false"),
        "{e}"
    );
    cluster.create_topic("short", 1, 1).unwrap();
    cfg.kafka.changelog_topic = "short".into();
    let e = err(&cfg);
    assert!(e.contains("has 1 partitions, fewer than the 2"), "{e}");
    cfg.kafka.input_topic = "absent".into();
    let e = err(&cfg);
    assert!(e.contains("input topic \"absent\" does not exist"), "{e}");
}

/// Stream and backfill share the pipeline: the same input gives the same prediction rows
/// (apart from the Kafka lineage columns and the scoring time), with duplicates, gaps, late
/// and invalid rows in it.
#[test]
fn stream_and_backfill_give_identical_rows() {
    let cluster = cluster(&TOPICS);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&brokers, &dir.path().join("stream"));
    let mut input = rows(3, 0..30);
    input.retain(|r| !(r.ticker == "T1" && r.week == base() + chrono::Duration::weeks(14)));
    let mut dup = input[40].clone();
    dup.features[0] = -1.0;
    input.insert(41, dup); // the same ticker and week again, right after: a duplicate
    let late = input[10].clone();
    input.push(late); // an old week at the end: late (a dead letter)
    produce(&brokers, "in", &input);
    produce_values(&brokers, "in", &[("T0".into(), b"{not json".to_vec())]);
    // T0 and T2: 30 - 11 windows each; T1 restarts after its gap: (14 - 11) + (15 - 11)
    let expected_n = 2 * 19 + 7;
    let t = run_until(&cfg, expected_n);
    assert_eq!(t.metrics.duplicates.get(), 1);
    assert_eq!(
        t.metrics.dead_letter_count(crate::validate::Reason::Late),
        1
    );
    assert_eq!(
        t.metrics
            .dead_letter_count(crate::validate::Reason::MalformedJson),
        1
    );
    let stream = read_all_predictions(&cfg.sink.output_dir).unwrap();
    let offline_cfg = SinkConfig {
        output_dir: dir.path().join("backfill"),
        ..cfg.sink.clone()
    };
    crate::backfill::backfill_rows(&echo(), input, &offline_cfg, cfg.window.gap_policy, 7).unwrap();
    let offline = read_all_predictions(&offline_cfg.output_dir).unwrap();
    assert_eq!(stream.len(), expected_n);
    let strip = |rows: &[PredictionRow]| -> Vec<PredictionRow> {
        rows.iter()
            .map(|r| PredictionRow {
                source_partition: None,
                source_offset: None,
                scored_at: base().and_hms_opt(0, 0, 0).unwrap().and_utc(),
                ..r.clone()
            })
            .collect()
    };
    assert_eq!(strip(&stream), strip(&offline));
    assert!(stream.iter().all(|r| r.source_offset.is_some()));
}

fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).unwrap().offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .collect()
}

fn topic_payloads(brokers: &str, topic: &str, partitions: i32) -> Vec<Vec<u8>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            use rdkafka::Message;
            out.push(m.payload().unwrap_or_default().to_vec());
        }
    }
    out
}

fn topic_keys(brokers: &str, topic: &str, partitions: i32) -> Vec<(String, String)> {
    topic_payloads(brokers, topic, partitions)
        .iter()
        .map(|payload| {
            let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
            (
                v["ticker"].as_str().unwrap().to_string(),
                v["week"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A prediction whose delivery fails for good never lets its offset be committed: the run
/// stops with the delivery error, and after a restart the topic holds the record.
#[test]
fn a_failed_delivery_never_lets_its_offset_be_committed() {
    let cluster = cluster(&[("in", 2), ("preds", 2), ("dlq", 2)]);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&brokers, dir.path());
    cfg.kafka.changelog_topic = String::new(); // only the predictions producer produces
    let tickers = 2;
    produce(&brokers, "in", &rows(tickers, 0..16));
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let r = start(&cfg);
    let e = r.handle.join().unwrap().unwrap_err();
    let (partition, offset) = failed_delivery(&e, "preds");
    assert!(e.to_string().contains("not stored past it"), "{e}");
    let c = committed(&brokers, "g", "in", 2);
    assert!(
        c[partition as usize] <= offset,
        "partition {partition} committed {c:?} past the failed record at {offset}"
    );
    // the broker accepts again: a restart redoes what was not committed (drained, so it
    // does not stop on the files the first run left, which it removes and writes again)
    let expected = tickers * (16 - 11);
    cfg.run.drain = true;
    start(&cfg).handle.join().unwrap().unwrap();
    check_exact(&read_all_predictions(dir.path()).unwrap(), tickers, 16);
    let keys: std::collections::HashSet<_> = topic_keys(&brokers, "preds", 2).into_iter().collect();
    assert_eq!(keys.len(), expected, "every prediction is in the topic");
}

/// The model fails in the middle of the stream: the service stops with the model's error (not
/// a generic "worker stopped"), and a restart with a working model gives the exact output
/// (so nothing was committed past what was durable, and nothing is written twice).
#[test]
fn a_model_error_stops_the_service_with_that_error_and_loses_nothing() {
    let cluster = cluster(&TOPICS);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&brokers, dir.path());
    cfg.batch.max_rows = 4; // several model calls
    let tickers = 3;
    produce(&brokers, "in", &rows(tickers, 0..20));
    let model = Arc::new(FailsAfter {
        inner: echo(),
        ok_calls: 2,
        calls: Default::default(),
    });
    let r = start_with(&cfg, model);
    let e = r.handle.join().unwrap().unwrap_err();
    assert!(
        matches!(&e, ScorerError::Model(m) if m.contains("failed on purpose")),
        "expected the model's error, got {e}"
    );
    let written = read_all_predictions(dir.path())
        .map(|r| r.len())
        .unwrap_or(0);
    assert!(
        written <= 2 * 4,
        "{written} rows written from two successful calls of 4"
    );
    // A commit past a row that was not durable would leave it out of the restart's output,
    // a row written twice would show up twice: check_exact fails on either.
    cfg.run.drain = true;
    start(&cfg).handle.join().unwrap().unwrap();
    check_exact(&read_all_predictions(dir.path()).unwrap(), tickers, 20);
}

/// The partition and offset of the record whose delivery to `want_topic` failed, from the
/// service's error (a panic when it is any other error).
fn failed_delivery(e: &ScorerError, want_topic: &str) -> (i32, i64) {
    match e {
        ScorerError::Delivery {
            topic,
            partition,
            offset,
            ..
        } => {
            assert_eq!(topic, want_topic);
            (*partition, *offset)
        }
        other => panic!("expected a delivery error, got {other}"),
    }
}

/// A file rolls while a record produced for one of its rows still waits for the broker (here
/// a dead letter in the middle of a partition, whose delivery then fails for good): the
/// committed offset stops at the file's first offset, never inside the file, so the restart
/// removes the file and writes its rows once (a commit inside it would keep the file and
/// write its later rows again).
#[test]
fn a_commit_never_falls_inside_a_durable_file() {
    let cluster = cluster(&[("in", 2), ("preds", 2), ("dlq", 2)]);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&brokers, dir.path());
    cfg.kafka.changelog_topic = String::new();
    cfg.kafka.predictions_topic = String::new(); // the dead letter is the only record produced
    cfg.sink.max_file_age_ms = 60_000; // one file per partition, closed at the stop
    let (tickers, weeks) = (2, 16);
    let mut msgs = messages(&rows(tickers, 0..weeks));
    // T0's 14th message is not JSON: a dead letter between its weeks 12 and 13
    let pos = msgs
        .iter()
        .enumerate()
        .filter(|(_, m)| m.0 == "T0")
        .nth(13)
        .unwrap()
        .0;
    msgs.insert(pos, ("T0".into(), b"not json".to_vec()));
    produce_values(&brokers, "in", &msgs);
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let e = start(&cfg).handle.join().unwrap().unwrap_err();
    let (partition, offset) = failed_delivery(&e, "dlq");
    // the precondition: the first run left a durable file with rows before and after it
    let first = read_all_predictions(dir.path()).unwrap();
    let offsets: Vec<i64> = first
        .iter()
        .filter(|r| r.source_partition == Some(partition))
        .filter_map(|r| r.source_offset)
        .collect();
    let lo = *offsets.iter().min().unwrap();
    assert!(
        lo < offset && offsets.iter().any(|&o| o > offset),
        "{offsets:?} around {offset}"
    );
    let c = committed(&brokers, "g", "in", 2)[partition as usize];
    assert!(c <= lo, "committed {c} inside the durable file {lo}..");
    cfg.run.drain = true;
    start(&cfg).handle.join().unwrap().unwrap();
    check_exact(&read_all_predictions(dir.path()).unwrap(), tickers, weeks);
    let dead = topic_payloads(&brokers, "dlq", 2);
    assert_eq!(dead, vec![b"not json".to_vec()], "the dead letter, once");
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text[9..12].parse().unwrap();
    (code, text)
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// `/readyz` is not ready before the partitions are assigned and restored; `/healthz` goes
/// unhealthy while inference is stuck and healthy again after.
#[test]
fn readiness_waits_for_restore_and_liveness_sees_a_stuck_model_call() {
    let cluster = cluster(&TOPICS);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&brokers, dir.path());
    let addr = free_addr();
    cfg.http.listen = addr.clone();
    cfg.health.stall_timeout_ms = 1000;
    produce(&brokers, "in", &rows(2, 0..14));
    let hold = Arc::new(AtomicBool::new(true));
    let model = Arc::new(Held {
        inner: echo(),
        hold: hold.clone(),
    });
    let r = start_with(&cfg, model);
    // readiness: 503 until every assigned partition is restored
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut saw_not_ready = false;
    loop {
        assert!(Instant::now() < deadline, "never ready");
        let Ok(_) = std::net::TcpStream::connect(&addr) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let (code, text) = http_get(&addr, "/readyz");
        if code == 200 {
            let m = http_get(&addr, "/metrics").1;
            assert!(
                m.contains("scorer_restore_seconds_count 2"),
                "ready before both partitions were restored: {m}"
            );
            break;
        }
        assert_eq!(code, 503);
        assert!(
            text.contains("starting") || text.contains("rebalancing"),
            "{text}"
        );
        saw_not_ready = true;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        saw_not_ready,
        "never saw /readyz answer 503 before the assignment"
    );
    // liveness: the inference stage is stuck in predict
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, text) = http_get(&addr, "/healthz");
        if code == 503 {
            assert!(text.contains("inference loop made no progress"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "never unhealthy: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    hold.store(false, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if http_get(&addr, "/healthz").0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never healthy again");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(wait_rows(&cfg, 2 * 3, &r), 2 * 3);
    r.stop().1.unwrap();
}
