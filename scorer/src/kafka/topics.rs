//! Topics: specs, creation, and the start-up check of the topics the scorer owns.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use super::base_config;
use crate::config::KafkaConfig;
use crate::{Result, ScorerError};

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
    pub fn new(name: impl AsRef<str>, partitions: i32) -> Self {
        Self {
            name: name.as_ref().to_string(),
            partitions,
            config: Vec::new(),
        }
    }

    /// A compacted topic (the window changelog).
    pub fn compacted(name: impl AsRef<str>, partitions: i32) -> Self {
        Self {
            config: vec![("cleanup.policy".into(), "compact".into())],
            ..Self::new(name, partitions)
        }
    }
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
pub async fn create_topics(k: &KafkaConfig, topics: &[TopicSpec]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(k)?.create()?;
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

/// [`create_topics`] from blocking code, for the topics that do not exist yet (existing ones
/// are kept as they are; a broker without CreateTopics is fine when nothing is missing).
pub fn create_topics_blocking(k: &KafkaConfig, topics: &[TopicSpec]) -> Result<()> {
    let probe: rdkafka::consumer::BaseConsumer = base_config(k)?.create()?;
    let mut missing = Vec::new();
    for t in topics {
        match partition_count(&probe, &t.name)? {
            Some(_) => tracing::info!(topic = %t.name, "topic exists"),
            None => missing.push(t.clone()),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ScorerError::Internal(format!("tokio runtime: {e}")))?
        .block_on(create_topics(k, &missing))
}

/// The topics `scorer run` owns, checked (and with `kafka.create_topics`, created) before it
/// joins the group: the input topic must exist; the predictions, dead-letter and changelog
/// topics get the input's partition count, the changelog compacted. A changelog with fewer
/// partitions than the input is refused (changelog partition p holds input partition p's
/// windows).
pub fn prepare_topics<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    k: &KafkaConfig,
) -> Result<()> {
    let Some(n) = partition_count(consumer, &k.input_topic)? else {
        return Err(ScorerError::Config(format!(
            "input topic {:?} does not exist (create it, e.g. `scorer topics create`, or \
             produce to it with `scorer replay`)",
            k.input_topic
        )));
    };
    let n = n as i32;
    let owned = [
        (
            &k.predictions_topic,
            TopicSpec::new(&k.predictions_topic, n),
        ),
        (
            &k.dead_letter_topic,
            TopicSpec::new(&k.dead_letter_topic, n),
        ),
        (
            &k.changelog_topic,
            TopicSpec::compacted(&k.changelog_topic, n),
        ),
    ];
    let mut missing = Vec::new();
    for (name, spec) in owned {
        if !name.is_empty() && partition_count(consumer, name)?.is_none() {
            missing.push(spec);
        }
    }
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|t| t.name.as_str()).collect();
        if !k.create_topics {
            return Err(ScorerError::Config(format!(
                "topics {names:?} do not exist and kafka.create_topics is false: create them \
                 (`scorer topics create`; the changelog compacted, with as many partitions as \
                 {:?}) or set kafka.create_topics = true",
                k.input_topic
            )));
        }
        tracing::info!(topics = ?names, "creating the scorer's topics");
        create_topics_blocking(k, &missing)?;
    }
    if !k.changelog_topic.is_empty() {
        let m = wait_for_partitions(consumer, &k.changelog_topic)?;
        if m < n as usize {
            return Err(ScorerError::Config(format!(
                "window changelog topic {:?} has {m} partitions, fewer than the {n} of {:?}",
                k.changelog_topic, k.input_topic
            )));
        }
    }
    Ok(())
}

/// The partition count of a topic just created (metadata may lag a moment behind).
fn wait_for_partitions<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    topic: &str,
) -> Result<usize> {
    for _ in 0..50 {
        if let Some(n) = partition_count(consumer, topic)? {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(ScorerError::Config(format!(
        "topic {topic:?} does not exist"
    )))
}
