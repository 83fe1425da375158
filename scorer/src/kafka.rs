//! Kafka plumbing shared by `scorer run`, `scorer replay` and `scorer topics`: client
//! settings, a producer context that counts failed deliveries, dead-letter records, topic
//! creation and replay of a weekly-rows file into the input topic.
//!
//! Broker notes (tansu 0.6.0, see deploy/broker/README.md): producers use lz4 (snappy
//! batches make tansu drop the connection), no transactions; topics are created
//! explicitly.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use trendscore_schemas::{read_rows, InputMessage};

use crate::config::KafkaConfig;
use crate::{Result, ScorerError};

/// Settings every client gets: `bootstrap.servers` plus `kafka.extra`.
pub fn base_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    for (key, value) in &k.extra {
        c.set(key, value);
    }
    c
}

/// Producer settings: idempotent, lz4, long delivery timeout so a broker restart is ridden
/// out by librdkafka's retries.
pub fn producer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = base_config(k);
    c.set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "300000");
    // The user's `kafka.extra` wins over these defaults.
    for (key, value) in &k.extra {
        c.set(key, value);
    }
    c
}

/// Producer context: counts deliveries that failed after librdkafka's retries.
#[derive(Default)]
pub struct CountingContext {
    /// Failed deliveries.
    pub failed: AtomicU64,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "produce failed after retries");
        }
    }
}

/// The producer the scorer and replay use.
pub type ScorerProducer = ThreadedProducer<CountingContext>;

/// Builds the shared producer.
pub fn producer(k: &KafkaConfig) -> Result<Arc<ScorerProducer>> {
    let p: ScorerProducer = producer_config(k).create_with_context(CountingContext::default())?;
    Ok(Arc::new(p))
}

/// Deliveries of `producer` that failed so far.
pub fn failed_deliveries(producer: &ScorerProducer) -> u64 {
    producer.context().failed.load(Ordering::Relaxed)
}

/// Sends a record, waiting while the local queue is full.
pub fn send_blocking(
    producer: &ScorerProducer,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// Headers of a dead-letter record.
pub fn dead_letter_headers(
    reason: &str,
    detail: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> OwnedHeaders {
    let partition = partition.to_string();
    let offset = offset.to_string();
    OwnedHeaders::new()
        .insert(Header {
            key: "reason",
            value: Some(reason),
        })
        .insert(Header {
            key: "error",
            value: Some(detail),
        })
        .insert(Header {
            key: "source_topic",
            value: Some(topic),
        })
        .insert(Header {
            key: "source_partition",
            value: Some(partition.as_str()),
        })
        .insert(Header {
            key: "source_offset",
            value: Some(offset.as_str()),
        })
}

/// One topic to create.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
    /// Topic configs, e.g. `cleanup.policy = compact`.
    pub config: Vec<(String, String)>,
}

impl TopicSpec {
    /// A plain topic.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            config: Vec::new(),
        }
    }

    /// A compacted topic (the window changelog).
    pub fn compacted(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            config: vec![("cleanup.policy".into(), "compact".into())],
            ..Self::new(name, partitions)
        }
    }
}

/// The changelog producer: the shared settings plus `enable.gapless.guarantee`, so a failed
/// batch stops the producer instead of letting a later marker land after a lost record.
pub fn changelog_producer(k: &KafkaConfig) -> Result<Arc<ScorerProducer>> {
    let mut c = producer_config(k);
    c.set("enable.gapless.guarantee", "true");
    let p: ScorerProducer = c.create_with_context(CountingContext::default())?;
    Ok(Arc::new(p))
}

/// Partition count of `topic`, `None` when the broker does not know it.
pub fn partition_count<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    topic: &str,
) -> Result<Option<usize>> {
    use rdkafka::consumer::Consumer;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|&n| n > 0))
}

/// Creates topics; existing topics are left as they are.
pub async fn create_topics(brokers: &str, topics: &[TopicSpec]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            t.config.iter().fold(
                NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(1)),
                |n, (k, v)| n.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(new.iter(), &opts).await? {
        match result {
            Ok(name) => tracing::info!(topic = %name, "topic created"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::info!(topic = %name, "topic exists")
            }
            Err((name, code)) => {
                return Err(ScorerError::Config(format!(
                    "creating topic {name}: {code}"
                )))
            }
        }
    }
    Ok(())
}

/// Produces every row of `input` (weekly rows: Parquet, CSV or CSV.gz) to `topic`, keyed
/// by ticker, ordered by (week, ticker) so tickers interleave and each ticker's weeks stay
/// in order; message timestamp = the week (midnight UTC). Returns the number of rows.
pub fn replay(input: &Path, k: &KafkaConfig, topic: &str) -> Result<usize> {
    let mut rows = read_rows(input)?;
    rows.sort_by(|a, b| (a.week, &a.ticker).cmp(&(b.week, &b.ticker)));
    let producer = producer(k)?;
    for row in &rows {
        let msg = InputMessage {
            ticker: row.ticker.clone(),
            week: row.week.format("%Y-%m-%d").to_string(),
            features: row.features.iter().map(|&f| f64::from(f)).collect(),
            trend_7day: row.trend_7day.map(f64::from),
            trend_30day: row.trend_30day.map(f64::from),
        };
        let value = serde_json::to_vec(&msg).map_err(|e| ScorerError::Internal(e.to_string()))?;
        let ts = row
            .week
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0);
        send_blocking(
            &producer,
            BaseRecord::to(topic)
                .key(row.ticker.as_bytes())
                .payload(value.as_slice())
                .timestamp(ts),
        )?;
    }
    producer.flush(Duration::from_secs(120))?;
    let failed = failed_deliveries(&producer);
    if failed > 0 {
        return Err(ScorerError::Internal(format!(
            "{failed} rows failed to produce"
        )));
    }
    Ok(rows.len())
}
