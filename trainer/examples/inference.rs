//! Inference on new data: load a checkpoint, score every full 12-week window of rows the model
//! has never seen, print the latest prediction per ticker and write them as Parquet.
//!
//! `cargo run -p trendscore-trainer --example inference [-- CKPT_DIR [ROWS_FILE]]`
mod common;

use std::collections::BTreeMap;

use tch::Device;
use trendscore_trainer::{checkpoint, infer};

fn main() -> anyhow::Result<()> {
    let ckpt = common::checkpoint_or_train("inference")?;
    let m = checkpoint::load(&ckpt, Device::cuda_if_available())?;
    let (rows, source) = match std::env::args().nth(2) {
        Some(p) => (trendscore_schemas::read_rows(std::path::Path::new(&p))?, p),
        None => (
            common::demo_rows(2024),
            "new synthetic rows (seed 2024)".to_string(),
        ),
    };
    let preds = infer::predict(&m, &rows, std::path::Path::new(&source))?;
    println!(
        "model_version {}: {} windows scored from {source}",
        m.model_version,
        preds.len()
    );
    let mut latest = BTreeMap::new();
    for p in &preds {
        latest.insert(p.ticker.clone(), p);
    }
    println!(
        "{:<8} {:>10} {:>9} {:>8} {:>9} {:>8}",
        "ticker", "week", "trend_7d", "p_up_7d", "trend_30d", "p_up_30d"
    );
    for (t, p) in latest {
        println!(
            "{t:<8} {:>10} {:>9.4} {:>8.3} {:>9.4} {:>8.3}",
            p.week, p.trend_7d, p.p_up_7d, p.trend_30d, p.p_up_30d
        );
    }
    let out = ckpt.join("new_predictions.parquet");
    infer::write_predictions(&out, &preds)?;
    println!("written to {}", out.display());
    Ok(())
}
