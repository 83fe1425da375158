//! End-to-end tests of the exporter and the inference backends on checkpoints made by
//! tests/python/make_checkpoint.py (random-init PyTorch reference model; probe outputs from
//! reference_model.run). Needs python3 with torch, numpy and safetensors, and the Python
//! onnxruntime package for the ort-cpu backend.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use trendscore_exporter::checkpoint::Checkpoint;
use trendscore_exporter::graph::LstmForm;
use trendscore_exporter::verify::{verify, VerifyOptions, BATCH_SIZES};
use trendscore_exporter::{export, ExportError, ExportOptions};
use trendscore_infer::{load_model, BackendChoice, BackendKind, InferError, LoadOptions};

mod common;
use common::make_checkpoint;

/// Makes (once per test binary) a checkpoint for `preset` and returns its directory.
fn checkpoint(preset: &'static str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = DIR
        .get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .join(preset);
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !root.join("probe.safetensors").exists() {
        make_checkpoint(&root, preset, None);
    }
    root
}

/// A private copy of a preset checkpoint, to break.
fn copy_of(preset: &'static str) -> (tempfile::TempDir, PathBuf) {
    let src = checkpoint(preset);
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("ckpt");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    (dir, dst)
}

/// Exports `preset` in every LSTM form and runs the parity suite on ort-cpu and tract.
fn export_and_verify(preset: &'static str) {
    for form in [LstmForm::Op, LstmForm::Unrolled] {
        eprintln!("lstm form {}", form.as_str());
        export_and_verify_in(preset, form);
    }
}

fn export_and_verify_in(preset: &'static str, lstm_form: LstmForm) {
    let ckpt = checkpoint(preset);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.onnx");
    let opts = ExportOptions {
        lstm_form,
        ..ExportOptions::default()
    };
    let report = export(&ckpt, &out, &opts).expect("export");
    assert!(out.is_file() && dir.path().join("model.json").is_file());
    assert!(report.parity.passed(1e-5), "{}", report.parity);
    assert!(report.parity.windows >= 64);

    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("model.json")).unwrap()).unwrap();
    assert_eq!(card["model_version"], report.model_version);
    assert_eq!(card["sequence_length"], 12);
    assert_eq!(card["feature_names"].as_array().unwrap().len(), 62);
    assert_eq!(card["lstm_form"], lstm_form.as_str());
    let onnx = std::fs::read(&out).unwrap();
    let model = <tract_onnx::pb::ModelProto as prost::Message>::decode(onnx.as_slice()).unwrap();
    let graph = model.graph.unwrap();
    let has_lstm_op = graph.node.iter().any(|n| n.op_type == "LSTM");
    let meta = |k: &str| {
        model
            .metadata_props
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.clone())
    };
    assert_eq!(meta("lstm_form").as_deref(), Some(lstm_form.as_str()));
    assert_eq!(
        has_lstm_op,
        lstm_form == LstmForm::Op,
        "an ONNX LSTM node iff the op form"
    );

    let v = verify(
        &ckpt,
        &out,
        &VerifyOptions {
            threads: Some(2),
            ..VerifyOptions::on(vec![BackendChoice::OrtCpu, BackendChoice::Tract], 3)
        },
    )
    .expect("verify");
    for c in &v.cases {
        eprintln!("{c}");
    }
    assert!(v.passed(), "worst diff {:e}", v.worst());
    for backend in ["ort-cpu", "tract"] {
        for b in BATCH_SIZES {
            assert!(
                v.cases
                    .iter()
                    .any(|c| c.backend == backend && c.windows == b && c.case.contains("probe")),
                "{backend} batch {b} not covered"
            );
        }
        assert!(v
            .cases
            .iter()
            .any(|c| c.backend == backend && c.case.contains("f64 reference")));
    }
    assert!(v
        .cases
        .iter()
        .any(|c| c.case.contains("vs ort-cpu") && c.windows == 1024));
}

#[test]
fn default_config_exports_and_matches_trainer_on_ort_and_tract() {
    export_and_verify("default");
}

#[test]
fn unidirectional_config_exports_and_matches() {
    export_and_verify("unidirectional");
}

#[test]
fn deeper_config_with_more_heads_and_head_layers_exports_and_matches() {
    export_and_verify("deep");
}

#[test]
fn auto_backend_runs_ort_cpu_without_cuda_and_ort_cuda_errors() {
    let ckpt = checkpoint("unidirectional");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    export(&ckpt, &out, &ExportOptions::default()).unwrap();
    assert!(dir.path().join("m.json").is_file(), "card is <stem>.json");
    let m = load_model(&out, &LoadOptions::default()).unwrap();
    // These machines have no GPU and the CPU-only onnxruntime wheel: auto runs ONNX Runtime
    // on the CPU (without the library it runs tract: tests/auto_without_ort.rs).
    assert_eq!(m.backend(), BackendKind::OrtCpu);
    let info = m.info();
    assert_eq!(info.sequence_length, 12);
    assert_eq!(info.input_dim, 62);
    assert_eq!(info.horizons, vec![7, 30]);
    assert_eq!(info.feature_names[61], "feature_61");
    assert_eq!(
        info.model_version,
        Checkpoint::load(&ckpt).unwrap().weights_sha256
    );
    let err = load_model(
        &out,
        &LoadOptions {
            backend: BackendChoice::OrtCuda,
            ..Default::default()
        },
    )
    .err()
    .expect("no CUDA here");
    assert!(matches!(err, InferError::CudaUnavailable(_)), "{err}");
    // ort-cpu with an explicit library path that does not exist still finds the wheel or
    // names the path it could not use.
    let cpu = load_model(
        &out,
        &LoadOptions {
            backend: BackendChoice::OrtCpu,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(cpu.backend(), BackendKind::OrtCpu);
    // wrong input length is a clear error, not a panic
    let err = cpu.predict(&[0.0; 10], 1).err().unwrap();
    assert!(
        err.to_string()
            .contains("expected batch 1 x sequence_length 12 x input_dim 62"),
        "{err}"
    );
    // outputs are probabilities / weights
    let probe = Checkpoint::load(&ckpt).unwrap().probe;
    let o = cpu.predict(&probe.features.data, probe.len()).unwrap();
    for i in 0..o.batch {
        assert!((0.0..=1.0).contains(&o.p_up_7d(i)) && (0.0..=1.0).contains(&o.p_up_30d(i)));
        let s: f32 = o.attention_row(i).iter().sum();
        assert!((s - 1.0).abs() < 1e-5, "attention row {i} sums to {s}");
    }
}

fn export_err(ckpt: &Path) -> (ExportError, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.onnx");
    let Err(err) = export(ckpt, &out, &ExportOptions::default()) else {
        panic!("export must fail");
    };
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a failed export left files behind"
    );
    (err, dir)
}

/// Rewrites model.safetensors through `f` (name -> (shape, data)).
fn rewrite_weights(
    ckpt: &Path,
    f: impl FnOnce(&mut std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)>),
) {
    let path = ckpt.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut m: std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let data = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (n, (v.shape().to_vec(), data))
        })
        .collect();
    f(&mut m);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = m
        .into_iter()
        .map(|(n, (s, d))| (n, s, d.iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = raw
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
}

#[test]
fn missing_weights_file_is_named() {
    let (_d, ckpt) = copy_of("unidirectional");
    std::fs::remove_file(ckpt.join("model.safetensors")).unwrap();
    let (err, _o) = export_err(&ckpt);
    assert!(matches!(err, ExportError::MissingFile(_)), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn truncated_weights_file_is_a_clear_error() {
    let (_d, ckpt) = copy_of("unidirectional");
    let p = ckpt.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let (err, _o) = export_err(&ckpt);
    assert!(matches!(err, ExportError::Safetensors { .. }), "{err}");
    assert!(err.to_string().contains("truncated or corrupt"), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let (_d, ckpt) = copy_of("unidirectional");
    rewrite_weights(&ckpt, |m| {
        m.remove("head_30d.direction.bias");
    });
    let (err, _o) = export_err(&ckpt);
    let s = err.to_string();
    assert!(
        s.contains("head_30d.direction.bias") && s.contains("missing"),
        "{s}"
    );
}

#[test]
fn wrong_shape_is_named_with_expected_and_found() {
    let (_d, ckpt) = copy_of("unidirectional");
    rewrite_weights(&ckpt, |m| {
        let t = m.get_mut("attention.out_proj.bias").unwrap();
        t.0 = vec![t.1.len() - 1];
        t.1.pop();
    });
    let (err, _o) = export_err(&ckpt);
    let s = err.to_string();
    assert!(
        s.contains("attention.out_proj.bias") && s.contains("[47]") && s.contains("[48]"),
        "{s}"
    );
}

#[test]
fn extra_tensor_means_config_does_not_match_weights() {
    let (_d, ckpt) = copy_of("unidirectional");
    rewrite_weights(&ckpt, |m| {
        m.insert(
            "encoder.lstm.weight_ih_l1".into(),
            (vec![2], vec![0.0, 0.0]),
        );
    });
    let (err, _o) = export_err(&ckpt);
    let s = err.to_string();
    assert!(
        s.contains("encoder.lstm.weight_ih_l1") && s.contains("config does not match"),
        "{s}"
    );
}

#[test]
fn config_that_does_not_match_the_weights_is_refused() {
    let (_d, ckpt) = copy_of("unidirectional");
    let p = ckpt.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    cfg["model"]["bidirectional"] = serde_json::Value::Bool(true);
    std::fs::write(&p, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (err, _o) = export_err(&ckpt);
    let s = err.to_string();
    assert!(s.contains("_reverse") && s.contains("missing"), "{s}");

    cfg["model"]["bidirectional"] = serde_json::Value::Bool(false);
    cfg["model"]["hidden_dim"] = serde_json::json!(64);
    std::fs::write(&p, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (err, _o) = export_err(&ckpt);
    let s = err.to_string();
    assert!(s.contains("shape") && s.contains("192"), "{s}");
}

#[test]
fn scaler_of_the_wrong_width_is_refused() {
    let (_d, ckpt) = copy_of("unidirectional");
    let p = ckpt.join("scaler.json");
    let mut sc: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    sc["mean"].as_array_mut().unwrap().pop();
    std::fs::write(&p, serde_json::to_vec(&sc).unwrap()).unwrap();
    let (err, _o) = export_err(&ckpt);
    let s = err.to_string();
    assert!(
        s.contains("scaler.json") && s.contains("mean has 61 entries"),
        "{s}"
    );
}

#[test]
fn malformed_config_names_file_and_problem() {
    let (_d, ckpt) = copy_of("unidirectional");
    std::fs::write(ckpt.join("config.json"), br#"{"model": {"input_dim": 62}}"#).unwrap();
    let (err, _o) = export_err(&ckpt);
    let s = err.to_string();
    assert!(s.contains("config.json") && s.contains("hidden_dim"), "{s}");
}

#[test]
fn exporter_never_writes_a_model_that_fails_its_probe() {
    let (_d, ckpt) = copy_of("unidirectional");
    // Change one weight slightly: the probe (trainer outputs) no longer matches the graph.
    rewrite_weights(&ckpt, |m| {
        let t = m.get_mut("head_7d.trend.bias").unwrap();
        t.1[0] += 1e-3;
    });
    let (err, _o) = export_err(&ckpt);
    assert!(matches!(err, ExportError::Parity { .. }), "{err}");
    let s = err.to_string();
    assert!(
        s.contains("7day_trend") && s.contains("nothing written"),
        "{s}"
    );
}

#[test]
fn verify_rejects_a_model_from_another_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.onnx");
    export(
        &checkpoint("unidirectional"),
        &out,
        &ExportOptions::default(),
    )
    .unwrap();
    let Err(err) = verify(
        &checkpoint("deep"),
        &out,
        &VerifyOptions::on(vec![BackendChoice::Tract], 1),
    ) else {
        panic!("mismatched model");
    };
    assert!(
        err.to_string().contains("exported from another checkpoint"),
        "{err}"
    );
}
