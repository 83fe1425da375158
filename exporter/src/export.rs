//! `export`: checkpoint -> model.onnx + model card, refusing to write a model that fails its
//! own probe on tract.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use trendscore_infer::tract_backend::TractModel;
use trendscore_infer::{BackendChoice, InferenceModel, LoadOptions, ModelInfo};
use trendscore_schemas::checkpoint::EnsembleManifest;

use crate::checkpoint::Checkpoint;
use crate::ensemble::{check_against_members, Ensemble};
use crate::graph::{build_model, encode, LstmForm, OPSET};
use crate::parity::{check_probe, ParityCase, TOLERANCE};
use crate::ExportError;

/// Options of one export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Max abs difference allowed between tract and the probe (default 1e-5, DESIGN.md).
    pub tolerance: f32,
    /// The ONNX form of the LSTM encoder (default [`LstmForm::Op`]).
    pub lstm_form: LstmForm,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            tolerance: TOLERANCE,
            lstm_form: LstmForm::default(),
        }
    }
}

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct ExportReport {
    /// The ONNX file.
    pub onnx_path: PathBuf,
    /// The model card.
    pub card_path: PathBuf,
    /// sha256 of model.safetensors.
    pub model_version: String,
    /// ONNX file size in bytes.
    pub onnx_bytes: usize,
    /// The tract self-check on the probe.
    pub parity: ParityCase,
}

/// The model card (model.json), written beside the ONNX file.
#[derive(Clone, Debug, Serialize)]
pub struct ModelCard {
    /// sha256 hex of model.safetensors (also the ONNX `model_version`).
    pub model_version: String,
    /// The ONNX file name.
    pub onnx_file: String,
    /// sha256 hex of the ONNX file.
    pub onnx_sha256: String,
    /// ONNX opset.
    pub opset: i64,
    /// The form of the LSTM encoder in the graph (`op` or `unrolled`).
    pub lstm_form: LstmForm,
    /// Feature names in input order.
    pub feature_names: Vec<String>,
    /// Weeks per window.
    pub sequence_length: usize,
    /// Horizons in days.
    pub horizons: Vec<u32>,
    /// When the checkpoint was trained.
    pub trained_at: String,
    /// The checkpoint directory exported.
    pub checkpoint: String,
    /// config.json `data` section: the rows trained on, their label `target` (`raw`,
    /// `excess`, `xs`; what `p_up` means) and feature transform (`cross_sectional`).
    pub data: trendscore_schemas::checkpoint::DataSection,
    /// config.json `model` section.
    pub model_config: serde_json::Value,
    /// config.json `training` section (null when absent).
    pub training_config: serde_json::Value,
    /// metrics.json.
    pub metrics: serde_json::Value,
    /// Export-time parity of tract against the probe.
    pub parity: ParityCase,
    /// The tolerance applied.
    pub parity_tolerance: f32,
    /// Exporter version.
    pub exporter_version: String,
    /// For a seed ensemble: its members and how their outputs are combined; null for one model.
    pub ensemble: Option<EnsembleCard>,
}

/// The ensemble part of a model card.
#[derive(Clone, Debug, Serialize)]
pub struct EnsembleCard {
    /// The combining rule (`ensemble.json` `combine`).
    pub combine: String,
    /// The members in graph order.
    pub members: Vec<MemberCard>,
    /// Each member's single-model graph against its own probe on tract.
    pub member_parity: Vec<ParityCase>,
}

/// One ensemble member in the model card.
#[derive(Clone, Debug, Serialize)]
pub struct MemberCard {
    /// Its checkpoint directory.
    pub checkpoint: String,
    /// sha256 of its model.safetensors.
    pub model_version: String,
    /// Its training seed.
    pub seed: u64,
    /// When it was trained.
    pub trained_at: String,
}

/// The ONNX metadata properties of DESIGN.md's ONNX contract.
pub fn metadata(ckpt: &Checkpoint) -> Vec<(String, String)> {
    vec![
        ("model_version".into(), ckpt.weights_sha256.clone()),
        (
            "feature_names".into(),
            serde_json::to_string(&ckpt.scaler.feature_names).expect("strings serialise"),
        ),
        (
            "sequence_length".into(),
            ckpt.config.sequence.sequence_length.to_string(),
        ),
        (
            "horizons".into(),
            serde_json::to_string(&ckpt.config.sequence.horizons).expect("ints serialise"),
        ),
        ("trained_at".into(), ckpt.config.trained_at.clone()),
        ("metrics".into(), ckpt.metrics_json.clone()),
        ("label_target".into(), ckpt.config.data.target.clone()),
        (
            "feature_transform".into(),
            ckpt.config.data.cross_sectional.clone(),
        ),
    ]
}

/// Builds the ONNX bytes for a loaded checkpoint, its LSTM encoder in `form` (no checks, no I/O).
pub fn onnx_bytes(ckpt: &Checkpoint, form: LstmForm) -> Vec<u8> {
    encode(&build_model(ckpt, &metadata(ckpt), form))
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let io = |e| ExportError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io)
}

/// The card path for an ONNX path: same directory and stem, `.json` (model.onnx -> model.json).
pub fn card_path(onnx: &Path) -> PathBuf {
    onnx.with_extension("json")
}

/// The export refusal: `parity` beyond `tolerance` on tract means nothing is written.
fn refuse_beyond(parity: &ParityCase, tolerance: f32, what: &str) -> Result<(), ExportError> {
    if parity.passed(tolerance) {
        return Ok(());
    }
    Err(ExportError::Parity {
        backend: "tract".into(),
        details: format!("{what}{parity} exceeds tolerance {tolerance:e}; nothing written"),
    })
}

fn tract_options() -> LoadOptions {
    LoadOptions {
        backend: BackendChoice::Tract,
        ..Default::default()
    }
}

impl ModelCard {
    /// The card of `bytes` written to `out`, describing `ckpt` (for an ensemble: its first
    /// member, whose sizes, features and data the others share); the caller sets what an
    /// ensemble changes.
    fn of(
        ckpt: &Checkpoint,
        out: &Path,
        bytes: &[u8],
        parity: &ParityCase,
        opts: &ExportOptions,
    ) -> Self {
        ModelCard {
            model_version: ckpt.weights_sha256.clone(),
            onnx_file: out
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            onnx_sha256: hex::encode(Sha256::digest(bytes)),
            opset: OPSET,
            lstm_form: opts.lstm_form,
            feature_names: ckpt.scaler.feature_names.clone(),
            sequence_length: ckpt.config.sequence.sequence_length,
            horizons: ckpt.config.sequence.horizons.clone(),
            trained_at: ckpt.config.trained_at.clone(),
            checkpoint: ckpt.dir.display().to_string(),
            data: ckpt.config.data.clone(),
            model_config: serde_json::to_value(&ckpt.config.model).expect("config serialises"),
            training_config: ckpt.config.training.clone(),
            metrics: serde_json::from_str(&ckpt.metrics_json).unwrap_or(serde_json::Value::Null),
            parity: parity.clone(),
            parity_tolerance: opts.tolerance,
            exporter_version: env!("CARGO_PKG_VERSION").into(),
            ensemble: None,
        }
    }
}

/// Writes the ONNX file, then its card (each atomically), and reports what was written.
fn write_model(out: &Path, bytes: &[u8], card: ModelCard) -> Result<ExportReport, ExportError> {
    let card_bytes = serde_json::to_vec_pretty(&card).expect("card serialises");
    let card_path = card_path(out);
    write_atomic(out, bytes)?;
    write_atomic(&card_path, &card_bytes)?;
    Ok(ExportReport {
        onnx_path: out.to_path_buf(),
        card_path,
        model_version: card.model_version,
        onnx_bytes: bytes.len(),
        parity: card.parity,
    })
}

/// Exports the checkpoint in `ckpt_dir` to `out` (+ the model card beside it).
///
/// Before anything is written, the ONNX bytes are loaded in tract and the checkpoint's probe
/// windows run through them; if any output differs from the probe by more than
/// `opts.tolerance`, this returns [`ExportError::Parity`] and writes nothing.
pub fn export(
    ckpt_dir: &Path,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    if EnsembleManifest::is_ensemble(ckpt_dir) {
        return export_ensemble(ckpt_dir, out, opts);
    }
    let ckpt = Checkpoint::load(ckpt_dir)?;
    let m = &ckpt.config.model;
    tracing::info!(
        checkpoint = %ckpt_dir.display(),
        hidden = m.hidden_dim,
        layers = m.num_lstm_layers,
        bidirectional = m.bidirectional,
        heads = m.num_attention_heads,
        "checkpoint loaded"
    );
    let bytes = onnx_bytes(&ckpt, opts.lstm_form);
    let info = ModelInfo::from_onnx_bytes(&bytes)?;
    let tract = TractModel::from_bytes(&bytes, info, &tract_options())?;
    let parity = check_probe(&tract, &ckpt.probe, ckpt.probe.len())?;
    tracing::info!(%parity, "self-check on tract");
    refuse_beyond(&parity, opts.tolerance, "")?;
    let card = ModelCard::of(&ckpt, out, &bytes, &parity, opts);
    write_model(out, &bytes, card)
}

/// Windows generated (besides the first member's probe) for the ensemble self-check.
const ENSEMBLE_CHECK_GENERATED: usize = 64;

/// [`export`] of a seed ensemble directory: each member's own graph must match its probe on
/// tract, and the ensemble graph must equal the combining rule applied to the members'
/// graphs (on the first member's probe windows and generated ones) before anything is written.
fn export_ensemble(
    dir: &Path,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    let ens = Ensemble::load(dir)?;
    tracing::info!(ensemble = %dir.display(), members = ens.members.len(), "ensemble loaded");
    let members = ens.member_models(&tract_options(), opts.lstm_form)?;
    let mut member_parity = Vec::new();
    for (m, model) in ens.members.iter().zip(&members) {
        let case = check_probe(model.as_ref(), &m.probe, m.probe.len())?;
        refuse_beyond(
            &case,
            opts.tolerance,
            &format!("member {}: ", m.dir.display()),
        )?;
        member_parity.push(case);
    }
    let bytes = ens.onnx_bytes(opts.lstm_form);
    let info = ModelInfo::from_onnx_bytes(&bytes)?;
    let tract = TractModel::from_bytes(&bytes, info, &tract_options())?;
    let first = &ens.members[0];
    let mut feats = first.probe.features.data.clone();
    feats.extend(crate::verify::generated_windows(
        first,
        ENSEMBLE_CHECK_GENERATED,
        11,
    ));
    let n = first.probe.len() + ENSEMBLE_CHECK_GENERATED;
    let parity = check_against_members(
        &tract as &dyn InferenceModel,
        &members,
        &feats,
        n,
        "probe+generated",
    )?;
    tracing::info!(%parity, "ensemble self-check on tract");
    refuse_beyond(&parity, opts.tolerance, "")?;
    let mut card = ModelCard::of(first, out, &bytes, &parity, opts);
    card.model_version = ens.model_version.clone();
    card.trained_at = ens.trained_at();
    card.checkpoint = dir.display().to_string();
    card.metrics = ens.manifest.metrics.clone();
    card.ensemble = Some(EnsembleCard {
        combine: ens.manifest.combine.clone(),
        members: ens
            .members
            .iter()
            .zip(&ens.manifest.seeds)
            .map(|(m, seed)| MemberCard {
                checkpoint: m.dir.display().to_string(),
                model_version: m.weights_sha256.clone(),
                seed: *seed,
                trained_at: m.config.trained_at.clone(),
            })
            .collect(),
        member_parity,
    });
    write_model(out, &bytes, card)
}
