//! Multi-horizon comparison: the 7-day and 30-day heads side by side on the test split.
//!
//! `cargo run -p trendscore-trainer --example multi_horizon [-- CKPT_DIR]`
mod common;

use tch::Device;
use trendscore_trainer::checkpoint;
use trendscore_trainer::infer::{self, EvalSplit};

fn opt(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.4}"))
}

fn main() -> anyhow::Result<()> {
    let ckpt = common::checkpoint_or_train("multi_horizon")?;
    let m = checkpoint::load(&ckpt, Device::Cpu)?;
    let rows = common::demo_rows(7);
    let r = infer::evaluate(
        &m,
        &rows,
        std::path::Path::new("synthetic"),
        EvalSplit::Test,
    )?;
    let (a, b) = (&r.summary.metrics.h7, &r.summary.metrics.h30);
    println!("test split, {} windows", r.windows);
    println!("{:<20} {:>10} {:>10}", "metric", "7d", "30d");
    let rows: Vec<(&str, String, String)> = vec![
        ("MSE", format!("{:.4}", a.mse), format!("{:.4}", b.mse)),
        ("RMSE", format!("{:.4}", a.rmse), format!("{:.4}", b.rmse)),
        ("MAE", format!("{:.4}", a.mae), format!("{:.4}", b.mae)),
        ("Pearson", opt(a.pearson), opt(b.pearson)),
        (
            "direction accuracy",
            format!("{:.4}", a.direction_accuracy),
            format!("{:.4}", b.direction_accuracy),
        ),
        ("precision (up)", opt(a.precision), opt(b.precision)),
        ("recall (up)", opt(a.recall), opt(b.recall)),
        ("F1 (up)", opt(a.f1), opt(b.f1)),
        ("ROC AUC", opt(a.roc_auc), opt(b.roc_auc)),
        (
            "share up",
            format!("{:.4}", a.up_rate),
            format!("{:.4}", b.up_rate),
        ),
    ];
    for (name, x, y) in rows {
        println!("{name:<20} {x:>10} {y:>10}");
    }
    Ok(())
}
