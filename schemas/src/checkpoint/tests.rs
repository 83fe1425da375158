//! The checkpoint contract against documents in the formats that exist: the trainer's
//! config.json (every key it writes today), and tests/python/make_checkpoint.py's.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::*;

/// A config.json exactly as `trainer fit` writes it (format 1), small sizes.
fn trainer_config_json() -> Value {
    let model = json!({
        "input_dim": 3, "hidden_dim": 8, "num_lstm_layers": 1, "num_attention_heads": 2,
        "dropout_rate": 0.1, "bidirectional": false, "head_hidden_dims": [4]
    });
    let sequence = json!({
        "sequence_length": 12, "horizons": [7, 30], "train_ratio": 0.7, "val_ratio": 0.15,
        "split": "time"
    });
    let features = json!({"names": ["feature_0", "feature_5", "feature_9"]});
    json!({
        "format_version": 1,
        "model": model,
        "training": {
            "model": model,
            "training": {
                "batch_size": 32, "epochs": 3, "early_stopping_patience": 15,
                "early_stopping_metric": "val_loss", "min_delta": 0.0,
                "max_grad_norm": 1.0, "seed": 7, "device": "cpu", "num_threads": 0,
                "progress": false
            },
            "loss": {
                "kind": "lstm", "trend_7d_weight": 1.0, "direction_7d_weight": 0.5,
                "trend_30d_weight": 1.0, "direction_30d_weight": 0.5,
                "recency_half_life_weeks": 52.0, "volatility_feature": "feature_1",
                "volatility_epsilon": 0.001
            },
            "optimizer": {
                "kind": "adam", "learning_rate": 0.001, "weight_decay": 1e-5, "beta1": 0.9,
                "beta2": 0.999, "eps": 1e-8, "momentum": 0.9
            },
            "scheduler": {
                "kind": "cosine", "warmup_epochs": 5, "min_lr": 1e-6, "plateau_factor": 0.5,
                "plateau_patience": 5, "plateau_threshold": 0.0001
            },
            "sequence": sequence,
            "features": features
        },
        "sequence": sequence,
        "features": features,
        "data": {"rows": "runs/rows.parquet", "feature_set_version": "v1", "target": "xs",
                 "cross_sectional": "none"},
        "trained_at": "2026-11-30T12:00:00Z",
        "seed": 7
    })
}

fn write(dir: &Path, name: &str, v: &Value) {
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

#[test]
fn the_trainers_config_json_parses_and_writes_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let doc = trainer_config_json();
    write(dir.path(), files::CONFIG, &doc);
    let c = CheckpointConfig::<Value>::load(dir.path()).unwrap();
    assert_eq!(c.format_version, 1);
    assert_eq!(c.model.hidden_dim, 8);
    assert!(!c.model.bidirectional);
    assert_eq!(c.sequence.split, SplitMode::Time);
    assert_eq!(c.features.names[1], "feature_5");
    assert_eq!(c.trained_at, "2026-11-30T12:00:00Z");
    assert_eq!(c.seed, 7);
    assert_eq!(
        c.training, doc["training"],
        "an opaque training section is kept whole"
    );
    // Same keys, same values: the format is unchanged.
    assert_eq!(serde_json::to_value(&c).unwrap(), doc);
    let out = tempfile::tempdir().unwrap();
    c.save(out.path()).unwrap();
    assert_eq!(CheckpointConfig::<Value>::load(out.path()).unwrap(), c);
}

#[test]
fn make_checkpoint_py_configs_and_unknown_keys_parse_with_defaults() {
    let mut doc = trainer_config_json();
    doc["training"] = json!({"note": "random initialisation", "preset": "default"});
    doc["sequence"] = json!({"sequence_length": 12, "horizons": [7, 30]});
    doc["model"]["from_the_future"] = json!(true);
    doc["features"]["also_new"] = json!([1, 2]);
    doc["new_section"] = json!({});
    let c = CheckpointConfig::<Value>::from_json(Path::new("config.json"), &doc).unwrap();
    assert_eq!(c.sequence, SequenceConfig::default());
    assert_eq!(c.training["preset"], "default");
    // Without the optional keys.
    let obj = doc.as_object_mut().unwrap();
    for k in ["format_version", "trained_at", "seed"] {
        obj.remove(k);
    }
    doc["model"].as_object_mut().unwrap().remove("dropout_rate");
    let c = CheckpointConfig::<Value>::from_json(Path::new("config.json"), &doc).unwrap();
    assert_eq!(
        (c.format_version, c.seed, c.trained_at.as_str()),
        (1, 42, "")
    );
    assert_eq!(c.model.dropout_rate, ModelConfig::default().dropout_rate);
}

/// A typed training section, strict like the trainer's TOML structs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Run {
    model: ModelConfig,
    sequence: SequenceConfig,
    features: FeaturesConfig,
    epochs: usize,
}

impl TrainingSection for Run {
    fn model(&self) -> &ModelConfig {
        &self.model
    }
    fn sequence(&self) -> &SequenceConfig {
        &self.sequence
    }
    fn features(&self) -> &FeatureSection {
        &self.features
    }
    fn seed(&self) -> u64 {
        9
    }
}

#[test]
fn a_typed_training_section_drops_unknown_keys_and_round_trips() {
    let run = Run {
        epochs: 4,
        ..Default::default()
    };
    let c = CheckpointConfig::from_train(&run, DataSection::default(), "now".into());
    assert_eq!(
        (c.seed, &c.model, &c.features),
        (9, &run.model, &run.features)
    );
    let mut doc = serde_json::to_value(&c).unwrap();
    doc["training"]["removed_in_a_later_version"] = json!(1);
    doc["training"]["model"]["also_removed"] = json!(1);
    let back = CheckpointConfig::<Run>::from_json(Path::new("config.json"), &doc).unwrap();
    assert_eq!(back, c);
}

#[test]
fn missing_or_invalid_sections_are_clear_errors() {
    let p = Path::new("ckpt/config.json");
    let e = |doc: &Value| {
        CheckpointConfig::<Value>::from_json(p, doc)
            .unwrap_err()
            .to_string()
    };
    let s = e(&json!({"model": {"input_dim": 62}}));
    assert!(
        s.contains("ckpt/config.json") && s.contains("missing field `hidden_dim`"),
        "{s}"
    );
    let mut doc = trainer_config_json();
    doc.as_object_mut().unwrap().remove("sequence");
    assert!(e(&doc).contains("missing section \"sequence\""));
    let mut doc = trainer_config_json();
    doc["model"]["hidden_dim"] = json!("wide");
    let s = e(&doc);
    assert!(
        s.contains("section \"model\"") && s.contains("invalid type"),
        "{s}"
    );
    let mut doc = trainer_config_json();
    doc["model"]["num_attention_heads"] = json!(3);
    let s = e(&doc);
    assert!(s.contains("num_attention_heads (3) must divide"), "{s}");
    let mut doc = trainer_config_json();
    doc["features"]["names"] = json!(["a"]);
    assert!(e(&doc).contains("model.input_dim is 3 but features.names lists 1"));
    let mut doc = trainer_config_json();
    doc["format_version"] = json!(2);
    assert!(e(&doc).contains("format_version 2 is not supported"));
    assert!(e(&json!([1])).contains("expected a JSON object"));
    let mut doc = trainer_config_json();
    doc["model"] = json!(5);
    assert!(e(&doc).contains("expected an object"));
    let missing = CheckpointConfig::<Value>::load(Path::new("/nonexistent/ckpt")).unwrap_err();
    assert!(
        matches!(missing, CheckpointError::MissingFile(_)),
        "{missing}"
    );
}

#[test]
fn spec_checks_the_scaler_against_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let doc = trainer_config_json();
    write(dir.path(), files::CONFIG, &doc);
    let names: Vec<String> = serde_json::from_value(doc["features"]["names"].clone()).unwrap();
    let scaler = Scaler {
        feature_names: names.clone(),
        mean: vec![0.0, 1.0, 2.0],
        std: vec![1.0, 0.0, 3.0],
    };
    scaler.save(&dir.path().join(files::SCALER)).unwrap();
    let spec = CheckpointSpec::<Value>::load(dir.path()).unwrap();
    assert_eq!(spec.scaler, scaler);
    let mut other = scaler.clone();
    other.feature_names.swap(0, 1);
    other.save(&dir.path().join(files::SCALER)).unwrap();
    let s = CheckpointSpec::<Value>::load(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        s.contains("scaler.json") && s.contains("differ from config.json"),
        "{s}"
    );
    let short = Scaler {
        feature_names: names[..2].to_vec(),
        mean: vec![0.0; 2],
        std: vec![1.0; 2],
    };
    short.save(&dir.path().join(files::SCALER)).unwrap();
    let s = CheckpointSpec::<Value>::load(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        s.contains("feature_names has 2 entries but config.json model.input_dim is 3"),
        "{s}"
    );
}

#[test]
fn probe_outputs_are_the_onnx_outputs() {
    assert_eq!(probe_outputs(12).map(|(n, _)| n), OUTPUT_NAMES);
    assert_eq!(probe_outputs(12)[4], ("attention_weights", 12));
}

#[test]
fn the_data_section_is_optional_and_round_trips() {
    let mut doc = trainer_config_json();
    doc.as_object_mut().unwrap().remove("data");
    let c = CheckpointConfig::<Value>::from_json(Path::new("config.json"), &doc).unwrap();
    assert_eq!(c.data.target, data::UNKNOWN);
    assert_eq!(c.data.cross_sectional, data::UNKNOWN);
    doc["data"] = json!({"rows": "r.parquet", "target": "xs", "cross_sectional": "rank",
                         "feature_set_version": "v1", "added_later": 1});
    let c = CheckpointConfig::<Value>::from_json(Path::new("config.json"), &doc).unwrap();
    assert_eq!(
        (c.data.target.as_str(), c.data.cross_sectional.as_str()),
        ("xs", "rank")
    );
    let again = serde_json::to_value(&c).unwrap();
    assert_eq!(again["data"]["target"], "xs");
    assert!(again["data"].get("added_later").is_none());
}

#[cfg(feature = "synth")]
#[test]
fn the_data_section_comes_from_the_rows_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let rows = crate::synth::synthetic_rows(1, 20, 1);
    let manifest = json!({"feature_set_version": "v1", "cross_sectional": "zscore",
                          "labels": {"target": "excess", "horizons": [7, 30]}});
    let pq = dir.path().join("rows.parquet");
    crate::write_rows_parquet(
        &pq,
        &rows,
        &[(
            crate::weekly::FEATURE_MANIFEST_KEY.into(),
            manifest.to_string(),
        )],
    )
    .unwrap();
    let (d, why) = DataSection::of_rows(&pq);
    assert_eq!(why, None);
    assert_eq!(
        (
            d.target.as_str(),
            d.cross_sectional.as_str(),
            d.feature_set_version.as_str()
        ),
        ("excess", "zscore", "v1")
    );
    assert_eq!(d.rows, pq.display().to_string());

    // no footer key: the sidecar is read; neither: unknown, with the reason
    let bare = dir.path().join("bare.parquet");
    crate::write_rows_parquet(&bare, &rows, &[]).unwrap();
    let (d, why) = DataSection::of_rows(&bare);
    assert_eq!(d.target, data::UNKNOWN);
    assert!(why.unwrap().contains("no feature manifest"));
    std::fs::write(
        dir.path().join("bare.parquet.manifest.json"),
        json!({"labels": {"target": "xs"}}).to_string(),
    )
    .unwrap();
    let (d, why) = DataSection::of_rows(&bare);
    assert_eq!((d.target.as_str(), why), ("xs", None));
    assert_eq!(d.cross_sectional, data::UNKNOWN);
}

#[test]
fn an_ensemble_manifest_round_trips_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("seed1")).unwrap();
    std::fs::create_dir_all(dir.path().join("seed2")).unwrap();
    let m = EnsembleManifest {
        format_version: 1,
        members: vec!["seed1".into(), "seed2".into()],
        seeds: vec![1, 2],
        combine: COMBINE_RULE.into(),
        metrics: json!({}),
    };
    assert!(!EnsembleManifest::is_ensemble(dir.path()));
    m.save(dir.path()).unwrap();
    assert!(EnsembleManifest::is_ensemble(dir.path()));
    assert_eq!(EnsembleManifest::load(dir.path()).unwrap(), m);
    assert_eq!(m.member_dirs(dir.path())[1], dir.path().join("seed2"));
    let e = |doc: Value| {
        std::fs::write(dir.path().join(ENSEMBLE_FILE), doc.to_string()).unwrap();
        EnsembleManifest::load(dir.path()).unwrap_err().to_string()
    };
    let base = serde_json::to_value(&m).unwrap();
    let with = |k: &str, v: Value| {
        let mut d = base.clone();
        d[k] = v;
        d
    };
    assert!(e(with("members", json!([]))).contains("at least one member"));
    assert!(e(with("seeds", json!([1]))).contains("2 members but 1 seeds"));
    assert!(e(with("members", json!(["seed1", "seed3"]))).contains("\"seed3\" does not exist"));
    assert!(e(with("members", json!(["../x", "seed1"]))).contains("inside the ensemble"));
    assert!(e(with("format_version", json!(2))).contains("format_version 2"));
}
