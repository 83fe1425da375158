//! Producers whose delivery reports (acknowledged or failed for good) reach the owner of
//! each record, tagged with the input message it belongs to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::{ClientContext, Message};

use super::producer_config;
use crate::config::KafkaConfig;
use crate::{Result, ScorerError};

/// Which input message a produced record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// A prediction or dead letter of the input message at `offset` of `partition`.
    Message {
        /// Input partition.
        partition: i32,
        /// Input offset.
        offset: i64,
    },
    /// A record that covers no input offset (changelog, replay).
    Untagged,
}

/// What the producer reported for one record: acknowledged (`error: None`) or failed after
/// librdkafka's retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The record's tag.
    pub tag: Tag,
    /// The topic it was for.
    pub topic: String,
    /// The error, when the delivery failed for good.
    pub error: Option<String>,
}

/// Producer context: sends every delivery report (success or failure) to a channel, so the
/// owner of the records can count them as delivered only once the broker acknowledged them.
pub struct DeliveryContext {
    reports: crossbeam_channel::Sender<Delivery>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Tag>;
    fn delivery(&self, result: &DeliveryResult<'_>, tag: Box<Tag>) {
        let (topic, error) = match result {
            Ok(m) => (m.topic().to_string(), None),
            Err((e, m)) => (m.topic().to_string(), Some(e.to_string())),
        };
        // The receiver is gone only when its owner stopped; nothing is waiting then.
        let _ = self.reports.send(Delivery {
            tag: *tag,
            topic,
            error,
        });
    }
}

/// How long one call of the polling thread waits for delivery reports. Reports are handled
/// as they arrive whatever this is; it bounds only how long dropping the producer waits for
/// the thread to notice.
const POLL: Duration = Duration::from_millis(1000);

/// The producer the scorer and replay use: a `BaseProducer` (every `Producer` method through
/// `Deref`) and a thread of its own that serves its delivery reports.
///
/// This replaces rdkafka's `ThreadedProducer`, whose thread polls for 100 ms at a time.
/// `BaseProducer::poll` (rdkafka 0.38 and 0.39) loops until its deadline, and it hands
/// librdkafka the time left in whole milliseconds. So it spins through the last fraction of a
/// millisecond of every call, at up to 1 ms in 100: about 1 % of a core, idle or busy, in each
/// scorer. Here each call lasts `POLL`, so the spin is at most 0.1 % of one core.
pub struct ScorerProducer {
    producer: Arc<BaseProducer<DeliveryContext>>,
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<()>>,
}

impl ScorerProducer {
    fn start(producer: BaseProducer<DeliveryContext>) -> Result<Self> {
        let producer = Arc::new(producer);
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (producer, stop) = (Arc::clone(&producer), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("scorer-producer".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        producer.poll(POLL);
                    }
                })
                .map_err(|e| {
                    ScorerError::Internal(format!("starting the producer's polling thread: {e}"))
                })?
        };
        Ok(Self {
            producer,
            stop,
            poller: Some(poller),
        })
    }
}

impl std::ops::Deref for ScorerProducer {
    type Target = BaseProducer<DeliveryContext>;
    fn deref(&self) -> &Self::Target {
        &self.producer
    }
}

impl Drop for ScorerProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.poller.take() {
            // The thread only polls; a panic there has nothing to hand over.
            let _ = t.join();
        }
    }
}

/// A record for [`ScorerProducer`].
pub type Record<'a> = BaseRecord<'a, [u8], [u8], Box<Tag>>;

/// A record to `topic` tagged `tag`.
pub fn record(topic: &str, tag: Tag) -> Record<'_> {
    BaseRecord::with_opaque_to(topic, Box::new(tag))
}

/// Builds a producer with `config`; its delivery reports arrive on the returned channel.
pub fn producer_with(
    config: &ClientConfig,
) -> Result<(Arc<ScorerProducer>, crossbeam_channel::Receiver<Delivery>)> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let p: BaseProducer<DeliveryContext> =
        config.create_with_context(DeliveryContext { reports: tx })?;
    Ok((Arc::new(ScorerProducer::start(p)?), rx))
}

/// The shared producer of predictions and dead letters.
pub fn producer(
    k: &KafkaConfig,
) -> Result<(Arc<ScorerProducer>, crossbeam_channel::Receiver<Delivery>)> {
    producer_with(&producer_config(k)?)
}

/// Sends a record, waiting while the local queue is full.
pub fn send_blocking(producer: &ScorerProducer, mut record: Record<'_>) -> Result<()> {
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

/// The changelog producer: the shared settings plus `enable.gapless.guarantee`, so a failed
/// batch stops the producer instead of letting a later marker land after a lost record.
pub fn changelog_producer(
    k: &KafkaConfig,
) -> Result<(Arc<ScorerProducer>, crossbeam_channel::Receiver<Delivery>)> {
    let mut c = producer_config(k)?;
    c.set("enable.gapless.guarantee", "true");
    producer_with(&c)
}
