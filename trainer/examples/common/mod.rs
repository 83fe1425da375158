//! Shared set-up of the examples: a checkpoint given as the first argument, or a small model
//! trained on synthetic rows into `runs/examples/<name>` (about a minute on 2 CPU cores).
#![allow(dead_code)] // each example uses a part

use std::path::PathBuf;

use trendscore_schemas::synth::synthetic_rows;
use trendscore_schemas::WeeklyRow;
use trendscore_trainer::{train, TrainConfig};

/// Synthetic rows standing in for real data (seed decides which).
pub fn demo_rows(seed: u64) -> Vec<WeeklyRow> {
    synthetic_rows(24, 120, seed)
}

/// A config small enough for a demo.
pub fn demo_config() -> TrainConfig {
    let mut c = TrainConfig::default();
    c.model.hidden_dim = 32;
    c.model.num_attention_heads = 4;
    c.model.num_lstm_layers = 1;
    c.model.head_hidden_dims = vec![32, 16];
    c.model.dropout_rate = 0.3;
    c.training.epochs = 8;
    c.training.batch_size = 64;
    c.training.early_stopping_patience = 3;
    c.scheduler.warmup_epochs = 1;
    c.optimizer.kind = trendscore_trainer::config::OptimizerKind::Adamw;
    c.optimizer.learning_rate = 2e-3;
    c.optimizer.weight_decay = 0.05;
    c
}

/// The checkpoint named on the command line, or a freshly trained demo one.
pub fn checkpoint_or_train(name: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::args().nth(1) {
        return Ok(PathBuf::from(p));
    }
    let out = PathBuf::from("runs/examples").join(name);
    if !out.join("model.safetensors").exists() {
        println!(
            "no checkpoint given: training a demo model into {}",
            out.display()
        );
        train::fit(
            &demo_rows(7),
            std::path::Path::new("synthetic"),
            &demo_config(),
            &out,
            false,
        )?;
    }
    Ok(out)
}
