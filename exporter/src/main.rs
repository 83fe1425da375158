//! `exporter`: checkpoint -> ONNX, parity verification, inference benchmark.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use trendscore_exporter::bench::{bench, BenchOptions};
use trendscore_exporter::graph::LstmForm;
use trendscore_exporter::parity::TOLERANCE;
use trendscore_exporter::verify::{verify, VerifyOptions};
use trendscore_exporter::{export, ExportOptions};
use trendscore_infer::BackendChoice;

/// Export a trendscore checkpoint to ONNX (`exporter --checkpoint CKPT --out model.onnx`),
/// verify parity (`exporter verify`), or benchmark inference (`exporter bench`).
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    export: Option<ExportArgs>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Export a checkpoint (same as the top-level form).
    Export(ExportArgs),
    /// Run the parity suite of a checkpoint and an ONNX file on the given backends.
    Verify(VerifyArgs),
    /// Measure windows/s per backend and batch size.
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// Checkpoint directory (model.safetensors, config.json, scaler.json, probe.safetensors),
    /// or a seed-ensemble directory (`trainer fit --seeds N`: ensemble.json + one checkpoint
    /// per member), exported as one graph averaging its members.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Output ONNX file; the model card is written beside it with the extension .json.
    #[arg(long)]
    out: PathBuf,
    /// Max abs difference to the probe allowed on tract before refusing to write.
    #[arg(long, default_value_t = TOLERANCE)]
    tolerance: f32,
    /// The ONNX form of the LSTM encoder: `op` (one ONNX LSTM node per layer; the faster
    /// form on ONNX Runtime and tract) or `unrolled` (plain MatMul/element-wise nodes over the
    /// fixed steps, for runtimes without an LSTM kernel).
    #[arg(long, default_value = "op")]
    lstm_form: LstmForm,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Checkpoint (or seed-ensemble) directory.
    #[arg(long)]
    checkpoint: PathBuf,
    /// ONNX file exported from it.
    #[arg(long)]
    model: PathBuf,
    /// all | ort-cpu | tract | ort-cuda | auto
    #[arg(long, default_value = "all")]
    backend: String,
    /// Max abs difference allowed.
    #[arg(long, default_value_t = TOLERANCE)]
    tolerance: f32,
    /// Intra-op threads.
    #[arg(long)]
    threads: Option<usize>,
    /// ONNX Runtime library path (else ORT_DYLIB_PATH, else the Python onnxruntime package).
    #[arg(long)]
    ort_dylib_path: Option<PathBuf>,
    /// Seed of the generated windows.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// ONNX file.
    #[arg(long)]
    model: PathBuf,
    /// safetensors file whose `features` tensor (n, seq, dim) holds the raw input windows.
    #[arg(long)]
    inputs: PathBuf,
    /// all | ort-cpu | tract | ort-cuda | auto (the backend the scorer's default picks)
    #[arg(long, default_value = "all")]
    backend: String,
    /// Comma-separated batch sizes.
    #[arg(long, default_value = "1,64,1024", value_delimiter = ',')]
    batches: Vec<usize>,
    /// Intra-op threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seconds per (backend, batch).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// ONNX Runtime library path.
    #[arg(long)]
    ort_dylib_path: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn backends(s: &str) -> anyhow::Result<Vec<BackendChoice>> {
    if s == "all" {
        return Ok(vec![BackendChoice::OrtCpu, BackendChoice::Tract]);
    }
    s.split(',')
        .map(|b| b.parse::<BackendChoice>().map_err(anyhow::Error::from))
        .collect()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cmd = match (cli.command, cli.export) {
        (Some(c), _) => c,
        (None, Some(e)) => Command::Export(e),
        (None, None) => {
            anyhow::bail!("give --checkpoint CKPT --out model.onnx, or a subcommand (see --help)")
        }
    };
    match cmd {
        Command::Export(a) => {
            let r = export(
                &a.checkpoint,
                &a.out,
                &ExportOptions {
                    tolerance: a.tolerance,
                    lstm_form: a.lstm_form,
                },
            )
            .with_context(|| format!("exporting {}", a.checkpoint.display()))?;
            println!(
                "wrote {} ({} bytes, model_version {}) and {}; tract parity on {} probe windows: max abs diff {:.2e}",
                r.onnx_path.display(),
                r.onnx_bytes,
                r.model_version,
                r.card_path.display(),
                r.parity.windows,
                r.parity.worst()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(a) => {
            let opts = VerifyOptions {
                backends: backends(&a.backend)?,
                tolerance: a.tolerance,
                threads: a.threads,
                ort_dylib_path: a.ort_dylib_path,
                seed: a.seed,
            };
            let report = verify(&a.checkpoint, &a.model, &opts).with_context(|| {
                format!(
                    "verifying {} against {}",
                    a.model.display(),
                    a.checkpoint.display()
                )
            })?;
            for c in &report.cases {
                let mark = if c.passed(report.tolerance) {
                    "ok  "
                } else {
                    "FAIL"
                };
                println!("{mark} {c}");
            }
            if let Some(p) = a.json {
                std::fs::write(&p, serde_json::to_vec_pretty(&report)?)
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            if report.passed() {
                println!(
                    "parity OK: worst max abs diff {:.2e} <= {:e}",
                    report.worst(),
                    report.tolerance
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "parity FAILED: worst max abs diff {:.2e} > {:e}",
                    report.worst(),
                    report.tolerance
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::Bench(a) => {
            let probe_like = load_inputs(&a.inputs)?;
            let opts = BenchOptions {
                backends: backends(&a.backend)?,
                batches: a.batches,
                threads: Some(a.threads),
                seconds: a.seconds,
                ort_dylib_path: a.ort_dylib_path,
            };
            let results = bench(&a.model, &probe_like, &opts)?;
            println!("{:<9} {:>6} {:>14}", "backend", "batch", "windows/s");
            for r in &results {
                println!("{:<9} {:>6} {:>14.0}", r.backend, r.batch, r.windows_per_s);
            }
            if let Some(p) = a.json {
                std::fs::write(&p, serde_json::to_vec_pretty(&results)?)
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads the `features` tensor of a safetensors file (any (n, seq, dim)).
fn load_inputs(path: &std::path::Path) -> anyhow::Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("parsing {}", path.display()))?;
    let t = st
        .tensor("features")
        .with_context(|| format!("{}: no tensor \"features\"", path.display()))?;
    anyhow::ensure!(
        t.dtype() == safetensors::Dtype::F32,
        "{}: features must be F32",
        path.display()
    );
    Ok(t.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn main() -> ExitCode {
    // First, before any thread: freed tensors stay in the heap for the next model call.
    let kept = trendscore_infer::allocator::keep_freed_memory();
    trendscore_schemas::logging::init("info", None);
    tracing::debug!(kept, "allocator tuned to keep freed memory");
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
