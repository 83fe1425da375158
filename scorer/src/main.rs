//! `scorer`: command-line entry. Parses flags, sets up tracing and signals, calls the library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use trendscore_infer::BackendChoice;
use trendscore_scorer::app::{self, Shutdown};
use trendscore_scorer::backfill::{self, BackfillOptions, Shard};
use trendscore_scorer::config::{self, GapPolicy, PartitionBy, ScorerConfig, SinkConfig};
use trendscore_scorer::kafka::{self, TopicSpec};

#[derive(Parser)]
#[command(name = "scorer", about = "trendscore scoring service", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// The config layers every Kafka command reads: a TOML file, then `SCORER__*` environment
/// variables (e.g. `SCORER__KAFKA__SECURITY__PROTOCOL=sasl_ssl`), then these flags.
#[derive(Args)]
struct ConfigArgs {
    /// TOML config file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides kafka.brokers.
    #[arg(long)]
    brokers: Option<String>,
}

impl ConfigArgs {
    fn load(&self, mut flags: Vec<(&'static str, Option<String>)>) -> Result<ScorerConfig> {
        flags.push(("kafka.brokers", self.brokers.clone()));
        let flags: Vec<(&str, String)> = flags
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        Ok(config::load(
            self.config.as_deref(),
            std::env::vars(),
            &flags,
        )?)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Consume weekly rows from Kafka and write predictions (config: file, then SCORER__* env, then flags).
    Run {
        #[command(flatten)]
        cfg: ConfigArgs,
        /// Overrides kafka.input_topic.
        #[arg(long)]
        input_topic: Option<String>,
        /// Overrides kafka.group.
        #[arg(long)]
        group: Option<String>,
        /// Overrides model.path.
        #[arg(long)]
        model: Option<String>,
        /// Overrides sink.output_dir (a path, file:///path, s3://bucket/prefix, gs://..., az://...).
        #[arg(long)]
        output_dir: Option<String>,
        /// Overrides model.backend (auto, ort-cuda, ort-cpu, tract).
        #[arg(long)]
        backend: Option<String>,
        /// Overrides http.listen ("" = off).
        #[arg(long)]
        http_listen: Option<String>,
        /// Stop once every assigned partition is consumed up to its end offset at
        /// assignment (commit, close files, leave the group, exit 0); sets run.drain.
        #[arg(long)]
        drain: bool,
        /// Print the effective config as TOML (secrets masked) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Score weekly-rows files offline into Parquet predictions (local or object storage).
    Backfill {
        /// Exported ONNX model.
        #[arg(long)]
        model: PathBuf,
        /// Weekly rows: a Parquet/CSV/CSV.gz file, a directory of them, or a glob
        /// ("data/rows-*.parquet"); may be given several times.
        #[arg(long, required = true)]
        input: Vec<String>,
        /// Output: a directory, file:///path, s3://bucket/prefix, gs://... or az://...
        #[arg(long)]
        output: PathBuf,
        /// Score only shard I of N (tickers split by a stable hash), e.g. 0/4; output
        /// names carry the shard, and a re-run replaces exactly this shard's files.
        #[arg(long, default_value = "0/1")]
        shard: Shard,
        /// Backend.
        #[arg(long, default_value = "auto")]
        backend: BackendChoice,
        /// Windows per inference call.
        #[arg(long, default_value_t = 1024)]
        batch: usize,
        /// Parallel scoring threads (0 = one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Most input rows held in memory at once (tickers are scored in groups of about
        /// this many rows).
        #[arg(long, default_value_t = 2_000_000)]
        max_rows_in_memory: usize,
        /// Hive-style directories of the output.
        #[arg(long, value_enum, default_value_t = PartitionBy::Year)]
        partition_by: PartitionBy,
        /// What a gap of one or more weeks does to a window.
        #[arg(long, value_enum, default_value_t = GapPolicy::Reset)]
        gap_policy: GapPolicy,
        /// S3 endpoint override (e.g. http://127.0.0.1:9000 for MinIO), as
        /// sink.object_store.endpoint.
        #[arg(long)]
        s3_endpoint: Option<String>,
        /// Allow plain-HTTP object-store endpoints (local servers).
        #[arg(long)]
        s3_allow_http: bool,
        /// Object-store files at least this large go up as multipart uploads of parts of
        /// this size, in MiB (at least 5), as sink.object_store.part_size_bytes.
        #[arg(long, default_value_t = 16)]
        part_size_mib: u64,
    },
    /// Produce a weekly-rows file to the input topic (keyed by ticker, interleaved, timestamp = week).
    Replay {
        #[command(flatten)]
        cfg: ConfigArgs,
        /// Weekly rows (Parquet, CSV, CSV.gz).
        #[arg(long)]
        input: PathBuf,
        /// Input topic (default: kafka.input_topic).
        #[arg(long)]
        topic: Option<String>,
        /// Partitions of the topic when it has to be created.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
    /// Topic administration.
    Topics {
        #[command(subcommand)]
        cmd: TopicsCmd,
    },
    /// An EMBEDDED stand-in broker (librdkafka's in-process mock cluster) for the main job
    /// when the real broker is not installed: not durable, topics created up front, a test
    /// double. Prints its bootstrap address and runs until SIGTERM/SIGINT.
    EmbeddedBroker {
        /// Topics to create, NAME:PARTITIONS (repeatable).
        #[arg(long = "topic")]
        topics: Vec<kafka::embedded::EmbeddedTopic>,
    },
}

#[derive(Subcommand)]
enum TopicsCmd {
    /// Create the input, predictions, dead-letter and changelog topics (existing ones are kept).
    Create {
        #[command(flatten)]
        cfg: ConfigArgs,
        /// Input topic (default: kafka.input_topic).
        #[arg(long)]
        input_topic: Option<String>,
        /// Predictions topic (default: kafka.predictions_topic).
        #[arg(long)]
        predictions_topic: Option<String>,
        /// Dead-letter topic (default: kafka.dead_letter_topic).
        #[arg(long)]
        dead_letter_topic: Option<String>,
        /// Window changelog topic (compacted, as many partitions as the input); "" = none
        /// (default: kafka.changelog_topic).
        #[arg(long)]
        changelog_topic: Option<String>,
        /// Partitions of every topic.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
}

fn main() -> Result<()> {
    // First, before any thread: freed tensors stay in the heap for the next model call.
    let kept = trendscore_infer::allocator::keep_freed_memory();
    trendscore_schemas::logging::init(
        "info,ort=warn,librdkafka=warn",
        Some(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    );
    tracing::debug!(kept, "allocator tuned to keep freed memory");
    match Cli::parse().cmd {
        Cmd::Run {
            cfg,
            input_topic,
            group,
            model,
            output_dir,
            backend,
            http_listen,
            drain,
            print_config,
        } => {
            let mut cfg = cfg.load(vec![
                ("kafka.input_topic", input_topic),
                ("kafka.group", group),
                ("model.path", model),
                ("sink.output_dir", output_dir),
                ("model.backend", backend),
                ("http.listen", http_listen),
            ])?;
            cfg.run.drain |= drain;
            if print_config {
                println!("{}", toml::to_string_pretty(&cfg.redacted())?);
                return Ok(());
            }
            let shutdown = Shutdown::new();
            on_signals(
                shutdown.clone(),
                Duration::from_millis(cfg.shutdown.timeout_ms),
            )?;
            app::run(cfg, shutdown).context("scorer run")
        }
        Cmd::Backfill {
            model,
            input,
            output,
            shard,
            backend,
            batch,
            threads,
            max_rows_in_memory,
            partition_by,
            gap_policy,
            s3_endpoint,
            s3_allow_http,
            part_size_mib,
        } => {
            let mut sink = SinkConfig {
                output_dir: output,
                partition_by,
                ..SinkConfig::default()
            };
            sink.object_store.endpoint = s3_endpoint;
            sink.object_store.allow_http = s3_allow_http;
            sink.object_store.part_size_bytes = part_size_mib << 20;
            let opts = BackfillOptions {
                model,
                backend,
                inputs: input,
                sink,
                shard,
                gap_policy,
                batch,
                threads,
                max_rows_in_memory,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let report = backfill::run(&opts).context("scorer backfill")?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Cmd::Replay {
            cfg,
            input,
            topic,
            partitions,
        } => {
            let cfg = cfg.load(vec![("kafka.input_topic", topic)])?;
            let k = &cfg.kafka;
            kafka::check_connection(k, Duration::from_secs(30))?;
            kafka::create_topics_blocking(k, &[TopicSpec::new(&k.input_topic, partitions)])?;
            let n = kafka::replay(&input, k, &k.input_topic)?;
            println!("{n}");
            Ok(())
        }
        Cmd::EmbeddedBroker { topics } => {
            let shutdown = Shutdown::new();
            on_signals(shutdown.clone(), Duration::from_secs(5))?;
            kafka::embedded::serve(&topics, &shutdown, |addr| {
                println!("{addr}");
                tracing::warn!(%addr, "EMBEDDED broker (librdkafka mock cluster): a test double, nothing is durable");
            })?;
            Ok(())
        }
        Cmd::Topics {
            cmd:
                TopicsCmd::Create {
                    cfg,
                    input_topic,
                    predictions_topic,
                    dead_letter_topic,
                    changelog_topic,
                    partitions,
                },
        } => {
            let cfg = cfg.load(vec![
                ("kafka.input_topic", input_topic),
                ("kafka.predictions_topic", predictions_topic),
                ("kafka.dead_letter_topic", dead_letter_topic),
                ("kafka.changelog_topic", changelog_topic),
            ])?;
            let k = &cfg.kafka;
            kafka::check_connection(k, Duration::from_secs(30))?;
            let mut specs = vec![TopicSpec::new(&k.input_topic, partitions)];
            for name in [&k.predictions_topic, &k.dead_letter_topic] {
                if !name.is_empty() {
                    specs.push(TopicSpec::new(name, partitions));
                }
            }
            if !k.changelog_topic.is_empty() {
                specs.push(TopicSpec::compacted(&k.changelog_topic, partitions));
            }
            kafka::create_topics_blocking(k, &specs)?;
            Ok(())
        }
    }
}

/// SIGTERM or SIGINT triggers `shutdown`; if the clean stop takes longer than `timeout`,
/// the process exits with status 2.
fn on_signals(shutdown: Shutdown, timeout: Duration) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("scorer-signals".into())
        .spawn(move || {
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    tracing::error!("cannot install signal handlers");
                    return;
                };
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM"),
                    _ = int.recv() => tracing::info!("SIGINT"),
                }
            });
            shutdown.trigger();
            std::thread::sleep(timeout);
            tracing::error!(?timeout, "shutdown took too long; exiting");
            std::process::exit(2);
        })?;
    Ok(())
}
