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
    /// `session.timeout.ms` of the consumer. Default 10000.
    pub session_timeout_ms: u64,
    /// How often stored offsets are committed, in ms. Default 5000.
    pub commit_interval_ms: u64,
    /// Least time between two writes of the window changelog, in ms (a write follows a
    /// commit; revoke and shutdown always write). Longer = less changelog traffic during a
    /// fast catch-up, but a restore after a crash replays up to this much more input.
    /// Default 10000.
    pub changelog_interval_ms: u64,
    /// How long restoring a partition's windows may take before the scorer gives up, in ms.
    /// Default 120000.
    pub restore_timeout_ms: u64,
    /// Extra librdkafka properties for every client (consumer and producer), e.g.
    /// `{ "security.protocol" = "ssl" }`. Default empty.
    pub extra: BTreeMap<String, String>,
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
            commit_interval_ms: 5_000,
            changelog_interval_ms: 10_000,
            restore_timeout_ms: 120_000,
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
    /// `auto` (ort CUDA, else tract on CPU), `ort-cuda`, `ort-cpu` or `tract`. Default `auto`.
    pub backend: BackendChoice,
    /// Path of `libonnxruntime.so` for the ort backends; unset = the loader's default.
    pub ort_dylib_path: Option<PathBuf>,
    /// Intra-op threads of the backend; unset = the backend's default.
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
    /// Most windows in one inference call. Default 256.
    pub max_rows: usize,
    /// Longest a ready window waits for its batch to fill, in ms. Default 20.
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_rows: 256,
            max_wait_ms: 20,
        }
    }
}

/// What happens when a ticker skips one or more ISO weeks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionBy {
    /// `week=YYYY-MM-DD/` (the predicted week).
    #[default]
    Week,
    /// `year=YYYY/`.
    Year,
    /// All files in the output directory.
    None,
}

/// Parquet sink settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// Output directory. Default `predictions`.
    pub output_dir: PathBuf,
    /// Hive-style directories: `week`, `year` or `none`. Default `week`.
    pub partition_by: PartitionBy,
    /// A file is closed once it holds this many rows. Default 100000.
    pub max_rows_per_file: usize,
    /// A file is closed once it holds about this many bytes. Default 128 MiB.
    pub max_bytes_per_file: u64,
    /// A file is closed this long after it was opened, in ms, checked on a timer even with
    /// no new data. This also bounds how long offsets wait to be committed. Default 30000.
    pub max_file_age_ms: u64,
    /// Most files open at once; opening one more first closes the files of the partition
    /// that holds the oldest one. Default 64.
    pub max_open_files: usize,
    /// zstd level of the files. Default 3.
    pub zstd_level: i32,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            output_dir: PathBuf::from("predictions"),
            partition_by: PartitionBy::Week,
            max_rows_per_file: 100_000,
            max_bytes_per_file: 128 << 20,
            max_file_age_ms: 30_000,
            max_open_files: 64,
            zstd_level: 3,
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
    toml::Value::Table(root)
        .try_into()
        .map_err(|e: toml::de::Error| ScorerError::Config(e.to_string()))
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
        assert_eq!(c.sink.partition_by, PartitionBy::Week);
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
    fn wrong_type_is_a_clear_error() {
        let env = vec![("SCORER__BATCH__MAX_ROWS".to_string(), "many".to_string())];
        let err = load(None, env, &[]).unwrap_err().to_string();
        assert!(err.contains("max_rows"), "{err}");
    }
}
