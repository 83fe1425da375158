//! Seed ensembles end to end: members made by tests/python/make_checkpoint.py (random-init
//! PyTorch reference models, different seeds), an `ensemble.json` beside them, the exported
//! ensemble ONNX on ONNX Runtime and tract against the members' own exported graphs averaged
//! here by hand (mean trend, mean attention, mean p_up). Needs python3 with torch, numpy and
//! safetensors, and the Python onnxruntime package.

use std::path::Path;

use trendscore_exporter::checkpoint::Checkpoint;
use trendscore_exporter::verify::{generated_windows, verify, VerifyOptions};
use trendscore_exporter::{export, ExportError, ExportOptions};
use trendscore_infer::{load_model, BackendChoice, LoadOptions, ModelOutputs};
use trendscore_schemas::checkpoint::{EnsembleManifest, COMBINE_RULE};

mod common;
use common::make_checkpoint;

fn make_member(out: &Path, preset: &str, seed: u64) {
    make_checkpoint(out, preset, Some(seed));
}

/// An ensemble directory of `preset` members with `seeds`.
fn ensemble(presets: &[(&str, u64)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut members = Vec::new();
    for (preset, seed) in presets {
        let name = format!("seed{seed}");
        make_member(&dir.path().join(&name), preset, *seed);
        members.push(name);
    }
    EnsembleManifest {
        format_version: 1,
        members,
        seeds: presets.iter().map(|p| p.1).collect(),
        combine: COMBINE_RULE.into(),
        metrics: serde_json::json!({"note": "test ensemble"}),
    }
    .save(dir.path())
    .unwrap();
    dir
}

fn opts(b: BackendChoice) -> LoadOptions {
    LoadOptions {
        backend: b,
        intra_threads: Some(2),
        ..Default::default()
    }
}

fn softmax_up(d: &[f32], i: usize) -> f64 {
    let (a, b) = (f64::from(d[2 * i]), f64::from(d[2 * i + 1]));
    1.0 / (1.0 + (a - b).exp())
}

#[test]
fn an_ensemble_onnx_equals_the_mean_of_its_members_on_ort_and_tract() {
    let seeds = [3u64, 4];
    let dir = ensemble(&seeds.map(|s| ("default", s)));
    let out_dir = tempfile::tempdir().unwrap();
    let ens_path = out_dir.path().join("ensemble.onnx");
    let report = export(dir.path(), &ens_path, &ExportOptions::default()).expect("export");
    assert!(report.parity.passed(1e-5), "{}", report.parity);

    // each member exported on its own, as a user would
    let mut member_paths = Vec::new();
    for s in seeds {
        let p = out_dir.path().join(format!("member{s}.onnx"));
        export(
            &dir.path().join(format!("seed{s}")),
            &p,
            &ExportOptions::default(),
        )
        .unwrap();
        member_paths.push(p);
    }
    let first = Checkpoint::load(&dir.path().join("seed3")).unwrap();
    let n = 300;
    let feats = generated_windows(&first, n, 99);
    let mut versions = Vec::new();
    for backend in [BackendChoice::OrtCpu, BackendChoice::Tract] {
        let ens = load_model(&ens_path, &opts(backend)).unwrap();
        versions.push(ens.info().model_version.clone());
        let got = ens.predict(&feats, n).unwrap();
        let members: Vec<ModelOutputs> = member_paths
            .iter()
            .map(|p| {
                load_model(p, &opts(backend))
                    .unwrap()
                    .predict(&feats, n)
                    .unwrap()
            })
            .collect();
        let k = members.len() as f64;
        let mut worst = 0.0f64;
        for i in 0..n {
            let mean = |f: &dyn Fn(&ModelOutputs) -> f64| members.iter().map(f).sum::<f64>() / k;
            let pairs = [
                (
                    f64::from(got.trend_7d[i]),
                    mean(&|m| f64::from(m.trend_7d[i])),
                ),
                (
                    f64::from(got.trend_30d[i]),
                    mean(&|m| f64::from(m.trend_30d[i])),
                ),
                (
                    softmax_up(&got.direction_7d, i),
                    mean(&|m| softmax_up(&m.direction_7d, i)),
                ),
                (
                    softmax_up(&got.direction_30d, i),
                    mean(&|m| softmax_up(&m.direction_30d, i)),
                ),
            ];
            for (a, b) in pairs {
                worst = worst.max((a - b).abs());
            }
            for s in 0..12 {
                let a = f64::from(got.attention[i * 12 + s]);
                let b = mean(&|m| f64::from(m.attention[i * 12 + s]));
                worst = worst.max((a - b).abs());
            }
            assert!(got.direction_7d[2 * i..2 * i + 2]
                .iter()
                .chain(&got.direction_30d[2 * i..2 * i + 2])
                .all(|v| v.is_finite()));
        }
        assert!(
            worst <= 1e-5,
            "{backend:?}: ensemble vs mean of members: {worst:e}"
        );
    }
    // one version for the ensemble, not any member's
    assert_eq!(versions[0], versions[1]);
    assert_eq!(versions[0], report.model_version);
    for s in seeds {
        let m = Checkpoint::load(&dir.path().join(format!("seed{s}"))).unwrap();
        assert_ne!(m.weights_sha256, report.model_version);
    }

    // the card names the members and the rule
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("ensemble.json")).unwrap())
            .unwrap();
    let members = card["ensemble"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[1]["seed"], 4);
    assert_eq!(card["ensemble"]["combine"], COMBINE_RULE);
    assert_eq!(card["metrics"]["note"], "test ensemble");

    // the parity suite of an ensemble, on both backends
    let v = verify(
        dir.path(),
        &ens_path,
        &VerifyOptions {
            threads: Some(2),
            ..VerifyOptions::on(vec![BackendChoice::OrtCpu, BackendChoice::Tract], 5)
        },
    )
    .unwrap();
    for c in &v.cases {
        eprintln!("{c}");
    }
    assert!(v.passed(), "worst {:e}", v.worst());
    for b in ["ort-cpu", "tract"] {
        assert!(v
            .cases
            .iter()
            .any(|c| c.backend == b && c.case.contains("f64 references")));
        assert!(v
            .cases
            .iter()
            .any(|c| c.backend == b && c.windows == 1024 && c.case.contains("members")));
    }
    // a member's ONNX is not the ensemble's
    let err = verify(
        dir.path(),
        &member_paths[0],
        &VerifyOptions::on(vec![BackendChoice::Tract], 5),
    )
    .unwrap_err();
    assert!(err.to_string().contains("model_version"), "{err}");
}

#[test]
fn members_of_different_shapes_are_refused_with_the_member_named() {
    let dir = ensemble(&[("default", 1), ("unidirectional", 2)]);
    let out = tempfile::tempdir().unwrap();
    let err = export(
        dir.path(),
        &out.path().join("e.onnx"),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ExportError::Inconsistent { path, reason }
            if path.ends_with("seed2") && reason.contains("model sizes")),
        "{err}"
    );
    assert!(!out.path().join("e.onnx").exists());
    // a manifest naming a missing member is a clear error too
    std::fs::remove_dir_all(dir.path().join("seed2")).unwrap();
    let err = export(
        dir.path(),
        &out.path().join("e.onnx"),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("\"seed2\" does not exist"),
        "{err}"
    );
}
