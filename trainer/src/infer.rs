//! Using a checkpoint: `evaluate` (loss and metrics on a split of new or old rows) and
//! `predict` (one DESIGN.md prediction row per full window, written as Parquet).

use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};
use trendscore_schemas::{now_ms, predictions_to_batch, PredictionRow, WeeklyRow};

use crate::checkpoint::LoadedModel;
use crate::data::{self, Corpus};
use crate::error::{Result, TrainerError};
use crate::loss;
use crate::train::{evaluate_split, predictions_of, run_batched, EvalSummary};

/// Which windows `evaluate` scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    /// The test split of the checkpoint's split rule applied to these rows.
    Test,
    /// The validation split.
    Val,
    /// Every labelled window.
    All,
}

/// Output of `evaluate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluateReport {
    /// Split scored.
    pub split: EvalSplit,
    /// Windows scored.
    pub windows: usize,
    /// The earliest predicted week (newest week of a window) among them.
    pub first_week: chrono::NaiveDate,
    /// The latest predicted week among them.
    pub last_week: chrono::NaiveDate,
    /// Loss and metrics.
    #[serde(flatten)]
    pub summary: EvalSummary,
    /// sha256 of model.safetensors.
    pub model_version: String,
}

/// Scores the labelled windows of `rows` chosen by `which` with the checkpoint's scaler.
pub fn evaluate(
    m: &LoadedModel,
    rows: &[WeeklyRow],
    source: &Path,
    which: EvalSplit,
) -> Result<EvaluateReport> {
    let cfg = &m.config.training;
    let corpus = corpus(m, rows, source)?;
    let windows = match which {
        EvalSplit::All => corpus
            .windows()
            .into_iter()
            .filter(|w| corpus.is_labelled(*w))
            .collect::<Vec<_>>(),
        EvalSplit::Test | EvalSplit::Val => {
            let sp = data::split(&corpus, &m.config.sequence, m.config.seed, source)?;
            if which == EvalSplit::Test {
                sp.test
            } else {
                sp.val
            }
        }
    };
    if windows.is_empty() {
        return Err(TrainerError::data(
            source,
            "no labelled full windows to evaluate",
        ));
    }
    let newest = windows
        .iter()
        .map(|w| corpus.end_week(*w))
        .max()
        .expect("non-empty");
    let oldest = windows
        .iter()
        .map(|w| corpus.end_week(*w))
        .min()
        .expect("non-empty");
    let w = data::sample_weights(&corpus, &windows, &cfg.loss, newest);
    let t = data::to_tensors(&corpus, &windows, &m.scaler, &w, m.vs.device());
    let loss_fn = loss::build(&cfg.loss);
    Ok(EvaluateReport {
        split: which,
        windows: windows.len(),
        first_week: oldest,
        last_week: newest,
        summary: evaluate_split(&m.model, &t, loss_fn.as_ref()),
        model_version: m.model_version.clone(),
    })
}

/// The windows of `rows` under the checkpoint's feature list and sequence length.
fn corpus(m: &LoadedModel, rows: &[WeeklyRow], source: &Path) -> Result<Corpus> {
    Corpus::new(
        rows,
        &m.config.features.names,
        m.config.sequence.sequence_length,
        source,
    )
}

/// One prediction row per full window of `rows` (labelled or not), oldest first per ticker.
pub fn predict(m: &LoadedModel, rows: &[WeeklyRow], source: &Path) -> Result<Vec<PredictionRow>> {
    let corpus = corpus(m, rows, source)?;
    let windows = corpus.windows();
    if windows.is_empty() {
        return Err(TrainerError::data(
            source,
            format!(
                "no window of {} consecutive weeks in any ticker",
                corpus.seq_len
            ),
        ));
    }
    let raw = data::raw_tensor(&corpus, &windows);
    let x = normalise_tensor(&m.scaler, &raw).to_device(m.vs.device());
    let out = run_batched(&m.model, &x, 1024);
    let p = predictions_of(&out);
    let seq = corpus.seq_len;
    let scored_at = now_ms();
    Ok(windows
        .iter()
        .enumerate()
        .map(|(i, w)| PredictionRow {
            ticker: corpus.series[w.series].ticker.clone(),
            week: corpus.end_week(*w),
            model_version: m.model_version.clone(),
            trend_7d: p.trend_7d[i],
            p_up_7d: p.p_up_7d[i],
            trend_30d: p.trend_30d[i],
            p_up_30d: p.p_up_30d[i],
            attention: p.attention[i * seq..(i + 1) * seq].to_vec(),
            window_start: corpus.start_week(*w),
            scored_at,
            source_partition: None,
            source_offset: None,
        })
        .collect())
}

/// Normalises a raw (n, seq, f) CPU tensor with the scaler (f64 arithmetic, as PyTorch users do).
pub fn normalise_tensor(scaler: &data::Scaler, raw: &Tensor) -> Tensor {
    let size = raw.size();
    let flat = Vec::<f32>::try_from(raw.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default();
    Tensor::from_slice(&scaler.normalise(&flat)).view(size.as_slice())
}

/// Writes prediction rows as zstd Parquet with DESIGN.md's prediction schema.
pub fn write_predictions(path: &Path, rows: &[PredictionRow]) -> Result<()> {
    write_parquet(path, &predictions_to_batch(rows)?)
}

/// Writes one record batch as a zstd Parquet file (the trainer's outputs: predictions, the
/// report's out-of-sample rows and training windows).
pub(crate) fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    let out = |e: parquet::errors::ParquetError| TrainerError::Output {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let file = File::create(path).map_err(|e| TrainerError::io(path, e))?;
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(out)?;
    w.write(batch).map_err(out)?;
    w.close().map_err(out)?;
    Ok(())
}
