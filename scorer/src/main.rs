//! `scorer`: command-line entry. Parses flags, sets up tracing and signals, calls the library.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use trendscore_infer::{BackendChoice, LoadOptions};
use trendscore_scorer::config::{self, GapPolicy, PartitionBy, SinkConfig};
use trendscore_scorer::kafka::{self, TopicSpec};
use trendscore_scorer::metrics::{self, Metrics};
use trendscore_scorer::scoring::ModelHandle;
use trendscore_scorer::{backfill, service};

#[derive(Parser)]
#[command(name = "scorer", about = "trendscore scoring service")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Consume weekly rows from Kafka and write predictions (config: file, then SCORER__* env, then flags).
    Run {
        /// TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides kafka.brokers.
        #[arg(long)]
        brokers: Option<String>,
        /// Overrides kafka.input_topic.
        #[arg(long)]
        input_topic: Option<String>,
        /// Overrides kafka.group.
        #[arg(long)]
        group: Option<String>,
        /// Overrides model.path.
        #[arg(long)]
        model: Option<String>,
        /// Overrides sink.output_dir.
        #[arg(long)]
        output_dir: Option<String>,
        /// Overrides model.backend (auto, ort-cuda, ort-cpu, tract).
        #[arg(long)]
        backend: Option<String>,
        /// Overrides http.listen ("" = off).
        #[arg(long)]
        http_listen: Option<String>,
        /// Print the effective config as TOML and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Score a weekly-rows file offline into Parquet predictions.
    Backfill {
        /// Exported ONNX model.
        #[arg(long)]
        model: PathBuf,
        /// Weekly rows (Parquet, CSV, CSV.gz).
        #[arg(long)]
        input: PathBuf,
        /// Output directory.
        #[arg(long)]
        output: PathBuf,
        /// Backend.
        #[arg(long, default_value = "auto")]
        backend: BackendChoice,
        /// Windows per inference call.
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// week, year or none.
        #[arg(long, default_value = "week")]
        partition_by: String,
        /// reset or carry.
        #[arg(long, default_value = "reset")]
        gap_policy: String,
    },
    /// Produce a weekly-rows file to the input topic (keyed by ticker, interleaved, timestamp = week).
    Replay {
        /// Weekly rows (Parquet, CSV, CSV.gz).
        #[arg(long)]
        input: PathBuf,
        /// bootstrap.servers.
        #[arg(long)]
        brokers: String,
        /// Input topic.
        #[arg(long)]
        topic: String,
    },
    /// Topic administration.
    Topics {
        #[command(subcommand)]
        cmd: TopicsCmd,
    },
}

#[derive(Subcommand)]
enum TopicsCmd {
    /// Create the input, predictions, dead-letter and changelog topics (existing ones are kept).
    Create {
        /// bootstrap.servers.
        #[arg(long)]
        brokers: String,
        /// Input topic.
        #[arg(long, default_value = "weekly-rows")]
        input_topic: String,
        /// Predictions topic.
        #[arg(long, default_value = "predictions")]
        predictions_topic: String,
        /// Dead-letter topic.
        #[arg(long, default_value = "weekly-rows-dlq")]
        dead_letter_topic: String,
        /// Window changelog topic (compacted, as many partitions as the input); "" = none.
        #[arg(long, default_value = "weekly-rows-changelog")]
        changelog_topic: String,
        /// Partitions of the input, predictions and changelog topics.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
}

fn enum_from_str<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .with_context(|| format!("bad {what}: {s:?}"))
}

fn main() -> Result<()> {
    trendscore_schemas::logging::init(
        "info,ort=warn,librdkafka=warn",
        Some(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    );
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            config,
            brokers,
            input_topic,
            group,
            model,
            output_dir,
            backend,
            http_listen,
            print_config,
        } => {
            let mut flags = Vec::new();
            let pairs = [
                ("kafka.brokers", brokers),
                ("kafka.input_topic", input_topic),
                ("kafka.group", group),
                ("model.path", model),
                ("sink.output_dir", output_dir),
                ("model.backend", backend),
                ("http.listen", http_listen),
            ];
            for (k, v) in pairs {
                if let Some(v) = v {
                    flags.push((k, v));
                }
            }
            let cfg = config::load(config.as_deref(), std::env::vars(), &flags)?;
            if print_config {
                println!("{}", toml::to_string_pretty(&cfg)?);
                return Ok(());
            }
            run(cfg)
        }
        Cmd::Backfill {
            model,
            input,
            output,
            backend,
            batch,
            partition_by,
            gap_policy,
        } => {
            let opts = LoadOptions {
                backend,
                ..LoadOptions::default()
            };
            let handle = ModelHandle::load(&model, opts)?;
            let m = handle.current();
            tracing::info!(backend = %m.backend(), version = %m.info().model_version, "model loaded");
            let sink = SinkConfig {
                output_dir: output,
                partition_by: enum_from_str::<PartitionBy>(&partition_by, "--partition-by")?,
                ..SinkConfig::default()
            };
            let gap: GapPolicy = enum_from_str(&gap_policy, "--gap-policy")?;
            let report = backfill::backfill_file(m.as_ref(), &input, &sink, gap, batch)?;
            println!(
                "{}",
                serde_json::json!({"rows_in": report.rows_in, "scored": report.scored, "files": report.files, "gaps": report.gaps})
            );
            Ok(())
        }
        Cmd::Replay {
            input,
            brokers,
            topic,
        } => {
            let k = config::KafkaConfig {
                brokers,
                ..Default::default()
            };
            let n = kafka::replay(&input, &k, &topic)?;
            println!("{n}");
            Ok(())
        }
        Cmd::Topics {
            cmd:
                TopicsCmd::Create {
                    brokers,
                    input_topic,
                    predictions_topic,
                    dead_letter_topic,
                    changelog_topic,
                    partitions,
                },
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let mut specs = vec![
                TopicSpec::new(input_topic, partitions),
                TopicSpec::new(predictions_topic, partitions),
                TopicSpec::new(dead_letter_topic, 1),
            ];
            if !changelog_topic.is_empty() {
                specs.push(TopicSpec::compacted(changelog_topic, partitions));
            }
            rt.block_on(kafka::create_topics(&brokers, &specs))?;
            Ok(())
        }
    }
}

fn run(cfg: config::ScorerConfig) -> Result<()> {
    let opts = LoadOptions {
        backend: cfg.model.backend,
        ort_dylib_path: cfg.model.ort_dylib_path.clone(),
        intra_threads: cfg.model.intra_threads,
    };
    let handle = Arc::new(ModelHandle::load(&cfg.model.path, opts)?);
    {
        let m = handle.current();
        tracing::info!(backend = %m.backend(), version = %m.info().model_version, path = %cfg.model.path.display(), "model loaded");
    }
    let metrics = Arc::new(Metrics::new());
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let shutdown_timeout = Duration::from_millis(cfg.shutdown.timeout_ms);
    let http_stop = Arc::new(tokio::sync::Notify::new());
    if !cfg.http.listen.is_empty() {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(&cfg.http.listen))
            .with_context(|| format!("binding {}", cfg.http.listen))?;
        tracing::info!(addr = %listener.local_addr()?, "metrics server");
        let m = metrics.clone();
        let n = http_stop.clone();
        rt.spawn(async move {
            if let Err(e) = metrics::serve(listener, m, async move { n.notified().await }).await {
                tracing::error!(error = %e, "metrics server");
            }
        });
    }
    {
        let stop = stop.clone();
        rt.spawn(async move {
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
            stop.store(true, Ordering::Relaxed);
            std::thread::spawn(move || {
                std::thread::sleep(shutdown_timeout);
                tracing::error!(?shutdown_timeout, "shutdown took too long; exiting");
                std::process::exit(2);
            });
        });
    }
    let result = service::run(cfg, handle, metrics, stop);
    http_stop.notify_waiters();
    rt.shutdown_timeout(Duration::from_secs(1));
    result.context("scorer run")
}
