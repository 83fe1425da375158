//! Basic training: synthetic weekly rows -> `train::fit` -> checkpoint directory, metrics.
//!
//! `cargo run -p trendscore-trainer --example basic_training [-- OUT_DIR]`
mod common;

use std::path::PathBuf;

use trendscore_trainer::train;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| "runs/examples/basic".into());
    let rows = common::demo_rows(7);
    let cfg = common::demo_config();
    println!(
        "training on {} synthetic rows, writing {}",
        rows.len(),
        out.display()
    );
    let report = train::fit(&rows, std::path::Path::new("synthetic"), &cfg, &out, false)?;
    let m = &report.metrics;
    println!(
        "epochs run: {}, best epoch: {:?}",
        m.epochs_run, m.best_epoch
    );
    println!(
        "test: 7d direction accuracy {:.3} (AUC {:?}), 30d direction accuracy {:.3}",
        m.test.metrics.h7.direction_accuracy,
        m.test.metrics.h7.roc_auc,
        m.test.metrics.h30.direction_accuracy
    );
    println!("see {}/history.png and metrics.json", out.display());
    Ok(())
}
