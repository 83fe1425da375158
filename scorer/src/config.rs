//! The service configuration. Layers, later wins: built-in defaults, the TOML file
//! (`--config`), environment variables `SCORER__SECTION__FIELD=value` (e.g.
//! `SCORER__KAFKA__BROKERS=127.0.0.1:9092`, `SCORER__BATCH__MAX_ROWS=512`), then command-line
//! flags. Env values are read as TOML scalars when they parse as one (`512`, `true`), else
//! as strings. Unknown keys are errors in every layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use trendscore_infer::BackendChoice;

use crate::{Result, ScorerError};

/// The whole `scorer run` configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScorerConfig {
    /// Broker, topics, consumer group and client settings.
    pub kafka: KafkaConfig,
    /// The model file, backend and hot reload.
    pub model: ModelConfig,
    /// Micro-batching of ready windows before inference.
    pub batch: BatchConfig,
    /// Window rules.
    pub window: WindowConfig,
    /// The Parquet sink.
    pub sink: SinkConfig,
    /// The HTTP server for `/metrics`, `/healthz` and `/readyz`.
    pub http: HttpConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Liveness bounds.
    pub health: HealthConfig,
    /// How the run ends.
    pub run: RunConfig,
}

/// Kafka settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// `bootstrap.servers`. Default `127.0.0.1:9092`.
    pub brokers: String,
    /// Topic of weekly input rows (key = ticker). Default `weekly-rows`.
    pub input_topic: String,
    /// Topic predictions are produced to (key = ticker, JSON value); empty = off.
    /// Default `predictions`.
    pub predictions_topic: String,
    /// Dead-letter topic (original key/value, reason headers); empty = log and count only.
    /// Default `weekly-rows-dlq`.
    pub dead_letter_topic: String,
    /// Compacted changelog topic of window state (key = ticker, one partition per input
    /// partition); empty = off, and a newly assigned partition's windows are then rebuilt by
    /// replaying the whole input partition (needs unlimited input retention).
    /// Default `weekly-rows-changelog`.
    pub changelog_topic: String,
    /// Consumer group id. Default `trendscore-scorer`.
    pub group: String,
    /// `session.timeout.ms` of the consumer: a member that stops heartbeating (a killed
    /// pod) loses its partitions this long after its last heartbeat. Default 10000.
    pub session_timeout_ms: u64,
    /// `max.poll.interval.ms` of the consumer, also the group's rebalance timeout (how long
    /// the broker waits for members to rejoin). The consumer loop polls at least every
    /// 100 ms except inside a rebalance, where a restore may take up to
    /// `restore_timeout_ms`, so this must exceed `restore_timeout_ms`. Default 60000.
    pub max_poll_interval_ms: u64,
    /// Static group membership (`group.instance.id`, e.g. the pod name): a restarted
    /// instance with the same id takes its partitions back without waiting for a rebalance,
    /// and a clean exit does not trigger one (its partitions wait `session_timeout_ms` for
    /// it). Unset or empty = dynamic membership (a clean exit leaves the group at once).
    /// Default unset.
    pub group_instance_id: Option<String>,
    /// Create the predictions, dead-letter and changelog topics at start when they are
    /// missing (the changelog compacted, all with the input's partition count). `false` for
    /// locked-down clusters: missing topics are then a clear error at start. Default true.
    pub create_topics: bool,
    /// How often stored offsets are committed, in ms. Default 5000.
    pub commit_interval_ms: u64,
    /// Least time between two writes of the window changelog, in ms (a write follows a
    /// commit; revoke and shutdown always write). Longer = less changelog traffic during a
    /// fast catch-up, but a restore after a crash replays up to this much more input.
    /// Default 10000.
    pub changelog_interval_ms: u64,
    /// How long restoring a partition's windows may take before the scorer gives up, in ms
    /// (less than `max_poll_interval_ms`). Default 45000.
    pub restore_timeout_ms: u64,
    /// TLS and SASL for every client (see [`SecurityConfig`]).
    pub security: SecurityConfig,
    /// Extra librdkafka properties for every client (consumer, producers, admin), applied
    /// last, so they win over everything above, e.g. `{ "ssl.cipher.suites" = "..." }`.
    /// Keys that look secret (password, secret, key) are masked by `--print-config`.
    /// Default empty.
    pub extra: BTreeMap<String, String>,
}

/// `security.protocol` of the Kafka clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no SASL (the default; local brokers).
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS (test set-ups only: the password crosses the network in clear
    /// with PLAIN).
    SaslPlaintext,
    /// SASL over TLS (managed Kafka: MSK, Confluent Cloud, Aiven, ...).
    SaslSsl,
}

/// The SASL mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    /// `PLAIN` (user and password; only over TLS outside tests).
    #[serde(rename = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256`.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

/// TLS and SASL settings of every Kafka client. The password is never in the config: it is
/// read at start from `sasl_password_file` or the variable `sasl_password_env` names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`. Default `plaintext`.
    pub protocol: SecurityProtocol,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; required with SASL. Default unset.
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name; required with SASL. Default unset.
    pub sasl_username: Option<String>,
    /// File holding the SASL password (a trailing newline is dropped), e.g. a mounted
    /// Secret. Default unset.
    pub sasl_password_file: Option<PathBuf>,
    /// Name of the environment variable holding the SASL password. Default unset.
    pub sasl_password_env: Option<String>,
    /// PEM file of the CA that signed the brokers' certificates; unset = the system's
    /// trust store. Default unset.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `key_file`). Default unset.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`. Default unset.
    pub key_file: Option<PathBuf>,
    /// Check that the broker's certificate names the host connected to. Default true.
    pub verify_hostname: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password_file: None,
            sasl_password_env: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            verify_hostname: true,
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            input_topic: "weekly-rows".into(),
            predictions_topic: "predictions".into(),
            dead_letter_topic: "weekly-rows-dlq".into(),
            changelog_topic: "weekly-rows-changelog".into(),
            group: "trendscore-scorer".into(),
            session_timeout_ms: 10_000,
            max_poll_interval_ms: 60_000,
            group_instance_id: None,
            create_topics: true,
            commit_interval_ms: 5_000,
            changelog_interval_ms: 10_000,
            restore_timeout_ms: 45_000,
            security: SecurityConfig::default(),
            extra: BTreeMap::new(),
        }
    }
}

/// Model settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Path of the exported ONNX model. Default `model.onnx`.
    pub path: PathBuf,
    /// `auto` (ort CUDA, else ort on the CPU when the ONNX Runtime library loads, else tract),
    /// `ort-cuda`, `ort-cpu` or `tract`. Default `auto`.
    pub backend: BackendChoice,
    /// Path of `libonnxruntime.so` for the ort backends; unset = the loader's default.
    pub ort_dylib_path: Option<PathBuf>,
    /// Threads one inference call uses: on the CPU backends a batch is cut into chunks scored
    /// by this many single-threaded sessions at once (infer/README.md); on ort-cuda, ONNX
    /// Runtime's intra-op threads. Unset = all cores.
    pub intra_threads: Option<usize>,
    /// How often the model file is checked for a new version, in ms; 0 = no hot reload.
    /// Default 5000.
    pub reload_interval_ms: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("model.onnx"),
            backend: BackendChoice::default(),
            ort_dylib_path: None,
            intra_threads: None,
            reload_interval_ms: 5_000,
        }
    }
}

/// Micro-batching settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Most windows in one inference call. Default 1024: with a backlog (catch-up,
    /// replays) a call then holds 16 chunks of 64 for the CPU backends' worker threads, so a
    /// worker the broker or the encoder delays leaves little idle at the end of a call
    /// (`scorer_bench.py`, 200 tickers x 300 weeks, 2 cores: tract 3,130 -> 3,653 rows/s,
    /// ort-cpu 6,223 -> 6,322 from 256). A live stream's batches are due by `max_wait_ms`
    /// long before they are this full.
    pub max_rows: usize,
    /// Longest a ready window waits for its batch to fill, in ms. Default 20.
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_rows: 1024,
            max_wait_ms: 20,
        }
    }
}

/// What happens when a ticker skips one or more ISO weeks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GapPolicy {
    /// The window restarts at the row after the gap (DESIGN.md default).
    #[default]
    Reset,
    /// The window keeps its rows and treats the row after the gap as the next week.
    Carry,
}

/// Window rules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowConfig {
    /// `reset` or `carry`. Default `reset`.
    pub gap_policy: GapPolicy,
}

/// How prediction files are laid out in directories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionBy {
    /// `week=YYYY-MM-DD/` (the predicted week).
    Week,
    /// `year=YYYY/` (the default).
    #[default]
    Year,
    /// All files in the output directory.
    None,
}

/// Parquet sink settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// Where the files go: a local directory (a plain path or `file:///path`) or an object
    /// store URL: `s3://bucket/prefix` (also S3-compatible servers such as MinIO, with
    /// `object_store.endpoint`), `gs://bucket/prefix`, `az://container/prefix`.
    /// Default `predictions`.
    pub output_dir: PathBuf,
    /// Hive-style directories: `year` (`year=YYYY/`), `week` (`week=YYYY-MM-DD/`) or
    /// `none`. `year` keeps files large during a catch-up or backfill (every week of a
    /// year in one file per roll) while readers still prune by year and, with row-group
    /// statistics, by week; `week` gives one directory per predicted week, many small files
    /// when history is replayed. Default `year`.
    pub partition_by: PartitionBy,
    /// A file is closed once it holds this many rows. Default 1000000.
    pub max_rows_per_file: usize,
    /// A file is closed once it holds about this many bytes. Default 128 MiB.
    pub max_bytes_per_file: u64,
    /// A file is closed this long after it was opened, in ms, checked on a timer even with
    /// no new data. This also bounds how long offsets wait to be committed. Default 30000.
    pub max_file_age_ms: u64,
    /// Most files open at once; opening one more first closes the files of the partition
    /// that holds the oldest one. Default 64.
    pub max_open_files: usize,
    /// Rows per Parquet row group (DuckDB, Spark and Athena read row groups of 100k+ rows
    /// best). Default 131072.
    pub row_group_rows: usize,
    /// zstd level of the files. Default 3.
    pub zstd_level: i32,
    /// Object-store settings (used when `output_dir` is an object-store URL).
    pub object_store: ObjectStoreConfig,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            output_dir: PathBuf::from("predictions"),
            partition_by: PartitionBy::Year,
            max_rows_per_file: 1_000_000,
            max_bytes_per_file: 128 << 20,
            max_file_age_ms: 30_000,
            max_open_files: 64,
            row_group_rows: 131_072,
            zstd_level: 3,
            object_store: ObjectStoreConfig::default(),
        }
    }
}

/// Object-store settings. Credentials are never set here: they come from the environment
/// the cloud SDKs use (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`; `GOOGLE_SERVICE_ACCOUNT`,
/// `GOOGLE_APPLICATION_CREDENTIALS`; `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`
/// ...), or from the instance's role. These fields override the environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStoreConfig {
    /// S3 endpoint override, e.g. `http://127.0.0.1:9000` for MinIO or a local moto server.
    /// Default unset (AWS, or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// S3 region. Default unset (`AWS_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// Allow plain HTTP endpoints (local servers only). Default false.
    pub allow_http: bool,
    /// Files at least this large are uploaded in parts of this size (multipart upload);
    /// smaller ones with one PUT at close. At least 5 MiB (S3's smallest part).
    /// Default 16 MiB.
    pub part_size_bytes: u64,
}

impl Default for ObjectStoreConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: None,
            allow_http: false,
            part_size_bytes: 16 << 20,
        }
    }
}

/// HTTP settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address of `/metrics`, `/healthz`, `/readyz`; empty = off.
    /// Default `127.0.0.1:9464`.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

/// Shutdown settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// After SIGTERM/SIGINT the scorer flushes, commits and leaves the group within this
    /// many ms, or exits with status 2. Default 20000.
    pub timeout_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { timeout_ms: 20_000 }
    }
}

/// Liveness settings (see [`crate::health`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// `/healthz` fails once the consumer loop, the inference stage or the worker has made no
    /// progress for this many ms (a wedged poll, an inference call that never returns).
    /// Longer than any wait the loops make on purpose (a 30 s broker request, a restore
    /// beats as it reads).
    /// Default 60000.
    pub stall_timeout_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            stall_timeout_ms: 60_000,
        }
    }
}

/// How a run ends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Stop by itself once every assigned partition is consumed up to the end offset it
    /// had when it was assigned: close the files, commit, leave the group, exit 0 (batch
    /// jobs, tests; `scorer run --drain`). Default false (run until SIGTERM).
    pub drain: bool,
}

impl ScorerConfig {
    /// The config as `--print-config` shows it: `kafka.extra` values whose keys look secret
    /// are masked (the SASL password is never in the config at all).
    pub fn redacted(&self) -> Self {
        let mut c = self.clone();
        for (k, v) in c.kafka.extra.iter_mut() {
            let k = k.to_ascii_lowercase();
            if ["password", "secret", "key", "token", "jaas"]
                .iter()
                .any(|s| k.contains(s))
            {
                *v = "<redacted>".into();
            }
        }
        c
    }

    /// Checks the values that the types alone do not.
    pub fn validate(&self) -> Result<()> {
        let k = &self.kafka;
        if k.restore_timeout_ms >= k.max_poll_interval_ms {
            return Err(ScorerError::Config(format!(
                "kafka.restore_timeout_ms ({}) must be less than kafka.max_poll_interval_ms ({}): \
                 a restore runs inside a rebalance",
                k.restore_timeout_ms, k.max_poll_interval_ms
            )));
        }
        if k.session_timeout_ms == 0 || self.batch.max_rows == 0 {
            return Err(ScorerError::Config(
                "kafka.session_timeout_ms and batch.max_rows must be positive".into(),
            ));
        }
        if k.input_topic.is_empty() || k.group.is_empty() {
            return Err(ScorerError::Config(
                "kafka.input_topic and kafka.group must be set".into(),
            ));
        }
        Ok(())
    }
}

/// Builds the config from an optional TOML file, the environment (`vars`, usually
/// `std::env::vars()`) and flag overrides given as `("section.field", value)` pairs.
pub fn load(
    file: Option<&Path>,
    vars: impl IntoIterator<Item = (String, String)>,
    flags: &[(&str, String)],
) -> Result<ScorerConfig> {
    let mut root = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| crate::io_err(path, e))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| ScorerError::Config(format!("{}: {e}", path.display())))?;
            table
        }
        None => toml::Table::new(),
    };
    let mut env: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with("SCORER__"))
        .collect();
    env.sort();
    for (key, raw) in env {
        let path: Vec<String> = key["SCORER__".len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        set_path(&mut root, &path, scalar(&raw), &key)?;
    }
    for (key, raw) in flags {
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        set_path(&mut root, &path, toml::Value::String(raw.clone()), key)?;
    }
    let config: ScorerConfig = toml::Value::Table(root)
        .try_into()
        .map_err(|e: toml::de::Error| ScorerError::Config(e.to_string()))?;
    config.validate()?;
    Ok(config)
}

fn scalar(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn set_path(
    root: &mut toml::Table,
    path: &[String],
    value: toml::Value,
    origin: &str,
) -> Result<()> {
    let Some((last, parents)) = path.split_last() else {
        return Err(ScorerError::Config(format!("{origin}: empty key")));
    };
    let mut table = root;
    for part in parents {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| ScorerError::Config(format!("{origin}: `{part}` is not a section")))?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_complete_and_documented_values() {
        let c = load(None, Vec::new(), &[]).unwrap();
        assert_eq!(c, ScorerConfig::default());
        assert_eq!(c.window.gap_policy, GapPolicy::Reset);
        assert_eq!(c.sink.partition_by, PartitionBy::Year);
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "[kafka]\nbrokers = \"file:1\"\ngroup = \"g-file\"\ninput_topic = \"t-file\"\n[batch]\nmax_rows = 7\n[window]\ngap_policy = \"carry\"\n",
        )
        .unwrap();
        let env = vec![
            ("SCORER__KAFKA__GROUP".to_string(), "g-env".to_string()),
            (
                "SCORER__KAFKA__INPUT_TOPIC".to_string(),
                "t-env".to_string(),
            ),
            ("SCORER__BATCH__MAX_WAIT_MS".to_string(), "99".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let flags = [("kafka.input_topic", "t-flag".to_string())];
        let c = load(Some(&path), env, &flags).unwrap();
        assert_eq!(c.kafka.brokers, "file:1");
        assert_eq!(c.kafka.group, "g-env");
        assert_eq!(c.kafka.input_topic, "t-flag");
        assert_eq!(c.batch.max_rows, 7);
        assert_eq!(c.batch.max_wait_ms, 99);
        assert_eq!(c.window.gap_policy, GapPolicy::Carry);
    }

    #[test]
    fn unknown_keys_are_rejected_in_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "[kafka]\nbrokerz = \"x\"\n").unwrap();
        let err = load(Some(&path), Vec::new(), &[]).unwrap_err().to_string();
        assert!(err.contains("brokerz"), "{err}");
        let env = vec![("SCORER__SINK__MAX_ROWZ".to_string(), "1".to_string())];
        let err = load(None, env, &[]).unwrap_err().to_string();
        assert!(err.contains("max_rowz"), "{err}");
    }

    #[test]
    fn a_restore_longer_than_the_poll_interval_is_refused() {
        let env = vec![(
            "SCORER__KAFKA__RESTORE_TIMEOUT_MS".to_string(),
            "60000".to_string(),
        )];
        let err = load(None, env, &[]).unwrap_err().to_string();
        assert!(err.contains("max_poll_interval_ms"), "{err}");
    }

    #[test]
    fn print_config_masks_secret_looking_extras() {
        let mut c = ScorerConfig::default();
        c.kafka
            .extra
            .insert("sasl.password".into(), "hunter2".into());
        c.kafka
            .extra
            .insert("ssl.key.password".into(), "hunter3".into());
        c.kafka.extra.insert("client.id".into(), "me".into());
        let text = toml::to_string_pretty(&c.redacted()).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("hunter3"),
            "{text}"
        );
        assert!(text.contains("\"me\""), "{text}");
    }

    #[test]
    fn security_settings_load_from_env() {
        let env = vec![
            (
                "SCORER__KAFKA__SECURITY__PROTOCOL".to_string(),
                "sasl_ssl".to_string(),
            ),
            (
                "SCORER__KAFKA__SECURITY__SASL_MECHANISM".to_string(),
                "SCRAM-SHA-256".to_string(),
            ),
            (
                "SCORER__KAFKA__SECURITY__SASL_PASSWORD_ENV".to_string(),
                "KAFKA_PW".to_string(),
            ),
        ];
        let c = load(None, env, &[]).unwrap();
        assert_eq!(c.kafka.security.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(
            c.kafka.security.sasl_mechanism,
            Some(SaslMechanism::ScramSha256)
        );
        assert_eq!(
            c.kafka.security.sasl_password_env.as_deref(),
            Some("KAFKA_PW")
        );
    }

    #[test]
    fn wrong_type_is_a_clear_error() {
        let env = vec![("SCORER__BATCH__MAX_ROWS".to_string(), "many".to_string())];
        let err = load(None, env, &[]).unwrap_err().to_string();
        assert!(err.contains("max_rows"), "{err}");
    }
}
