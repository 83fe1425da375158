//! An embedded stand-in broker for the main job on a machine without the real one:
//! librdkafka's in-process mock cluster, listening on loopback TCP, so other processes
//! (`scorer replay`, `scorer run`) talk to it over the Kafka protocol as to a broker.
//!
//! It is a test double, labelled as such wherever it is used: nothing survives its process,
//! it has no CreateTopics (the topics are created here, up front), and it implements only
//! what librdkafka's own tests need. The tests never use it in place of the real broker
//! (deploy/broker); `scripts/demo.sh` uses it only when the real one is not installed.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::app::Shutdown;
use crate::{Result, ScorerError};

/// A topic to create: `NAME:PARTITIONS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedTopic {
    /// Name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
}

impl std::str::FromStr for EmbeddedTopic {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, n) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("topic {s:?}: expected NAME:PARTITIONS"))?;
        let partitions: i32 = n.parse().map_err(|e| format!("topic {s:?}: {e}"))?;
        if name.is_empty() || partitions < 1 {
            return Err(format!(
                "topic {s:?}: expected NAME:PARTITIONS with PARTITIONS >= 1"
            ));
        }
        Ok(Self {
            name: name.to_string(),
            partitions,
        })
    }
}

/// Starts the mock cluster with `topics`, calls `ready` with its bootstrap address, and
/// keeps it up until `shutdown` is triggered.
pub fn serve(
    topics: &[EmbeddedTopic],
    shutdown: &Shutdown,
    ready: impl FnOnce(&str),
) -> Result<()> {
    let cluster: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1)?;
    for t in topics {
        cluster
            .create_topic(&t.name, t.partitions, 1)
            .map_err(|e| ScorerError::Config(format!("embedded broker: topic {}: {e}", t.name)))?;
    }
    ready(&cluster.bootstrap_servers());
    while !shutdown.is_triggered() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(())
}
