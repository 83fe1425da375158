//! Kafka plumbing shared by `scorer run`, `scorer replay` and `scorer topics`:
//! - this module: client settings (bootstrap, security, `kafka.extra`) for consumers and
//!   producers, and the start-up connection check that turns a wrong password or an
//!   untrusted certificate into a clear error instead of a hang;
//! - [`security`]: TLS and SASL settings ([`crate::config::SecurityConfig`]);
//! - [`produce`]: producers whose every delivery report reaches the owner of the record;
//! - [`topics`]: topic specs, creation and the start-up check of the scorer's own topics;
//! - [`replay`]: `scorer replay`, a weekly-rows file into the input topic;
//! - [`embedded`]: librdkafka's mock cluster as a labelled stand-in broker for the main job.
//!
//! Broker notes (see deploy/broker/README.md): producers use lz4 (snappy batches make the
//! local broker drop the connection), no transactions.

pub mod embedded;
pub mod produce;
pub mod replay;
pub mod security;
pub mod topics;

use std::time::Duration;

use rdkafka::config::ClientConfig;

use crate::config::KafkaConfig;
use crate::Result;

pub use produce::*;
pub use replay::replay;
pub use topics::*;

/// Settings every client gets: `bootstrap.servers`, the TLS/SASL settings of
/// `kafka.security`, then `kafka.extra` (which wins).
pub fn base_config(k: &KafkaConfig) -> Result<ClientConfig> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    security::apply(&k.security, &mut c)?;
    for (key, value) in &k.extra {
        c.set(key, value);
    }
    Ok(c)
}

/// Producer settings: idempotent, lz4, long delivery timeout so a broker restart is ridden
/// out by librdkafka's retries.
pub fn producer_config(k: &KafkaConfig) -> Result<ClientConfig> {
    let mut c = base_config(k)?;
    c.set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "300000");
    // The user's `kafka.extra` wins over these defaults.
    for (key, value) in &k.extra {
        c.set(key, value);
    }
    Ok(c)
}

/// Consumer settings of the group member: offsets stored by hand after durability, never
/// automatically; session, heartbeat and poll-interval bounds from the config; static
/// membership when `group_instance_id` is set.
pub fn consumer_config(k: &KafkaConfig) -> Result<ClientConfig> {
    let mut c = base_config(k)?;
    c.set("group.id", &k.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", k.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (k.session_timeout_ms / 4).max(100).to_string(),
        )
        .set("max.poll.interval.ms", k.max_poll_interval_ms.to_string());
    if let Some(id) = k.group_instance_id.as_deref().filter(|s| !s.is_empty()) {
        c.set("group.instance.id", id);
    }
    for (key, value) in &k.extra {
        c.set(key, value);
    }
    Ok(c)
}

/// Records the client errors librdkafka reports (it retries them itself, for ever).
#[derive(Default)]
struct ProbeContext {
    errors: std::sync::Mutex<Vec<String>>,
}

impl rdkafka::ClientContext for ProbeContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        e.push(format!("{error}: {reason}"));
    }
}

impl rdkafka::consumer::ConsumerContext for ProbeContext {}

/// Whether a client error is one a retry cannot fix (wrong credentials, an untrusted or
/// mismatched certificate, a TLS/plaintext mismatch).
fn is_setup_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "authentication",
        "sasl",
        "ssl handshake",
        "certificate verify failed",
        "certificate",
        "ssl",
        "disconnected while requesting apiversion",
        "unsupported sasl mechanism",
    ]
    .iter()
    .any(|p| t.contains(p))
}

/// Connects to the brokers once before anything else, so that a wrong password, an
/// untrusted certificate or an unreachable broker is a clear error at start instead of a
/// client that retries silently for ever.
pub fn check_connection(k: &KafkaConfig, timeout: Duration) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer<ProbeContext> =
        base_config(k)?.create_with_context(ProbeContext::default())?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match consumer.fetch_metadata(None, Duration::from_millis(1500)) {
            Ok(_) => return Ok(()),
            Err(e) => {
                let seen = consumer
                    .context()
                    .errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                if let Some(fatal) = seen.iter().find(|s| is_setup_error(s)) {
                    return Err(crate::ScorerError::Config(format!(
                        "cannot connect to Kafka at {}: {fatal} (check kafka.security: \
                         protocol, sasl_mechanism, sasl_username, the password, ca_file)",
                        k.brokers
                    )));
                }
                if std::time::Instant::now() >= deadline {
                    let last = seen.last().cloned().unwrap_or_else(|| e.to_string());
                    return Err(crate::ScorerError::Config(format!(
                        "cannot reach Kafka at {} within {timeout:?}: {last}",
                        k.brokers
                    )));
                }
            }
        }
    }
}
