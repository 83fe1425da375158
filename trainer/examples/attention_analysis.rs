//! Attention analysis: which weeks of the 12-week window the model looks at, for a few samples
//! and on average, written as `attention.png` beside the checkpoint.
//!
//! `cargo run -p trendscore-trainer --example attention_analysis [-- CKPT_DIR]`
mod common;

use tch::Device;
use trendscore_trainer::{checkpoint, infer, plot};

fn main() -> anyhow::Result<()> {
    let ckpt = common::checkpoint_or_train("attention")?;
    let m = checkpoint::load(&ckpt, Device::Cpu)?;
    let rows = common::demo_rows(99);
    let preds = infer::predict(&m, &rows, std::path::Path::new("synthetic"))?;
    let all: Vec<Vec<f32>> = preds.iter().map(|p| p.attention.clone()).collect();
    let samples: Vec<Vec<f32>> = all
        .iter()
        .step_by((all.len() / 5).max(1))
        .take(5)
        .cloned()
        .collect();
    let out = ckpt.join("attention.png");
    plot::attention_png(&samples, &all, &out)?;
    let seq = all[0].len();
    println!(
        "average attention per week over {} windows (week 1 = oldest):",
        all.len()
    );
    for t in 0..seq {
        let avg = all.iter().map(|a| f64::from(a[t])).sum::<f64>() / all.len() as f64;
        println!(
            "  week {:>2}: {:.4} {}",
            t + 1,
            avg,
            "#".repeat((avg * 200.0) as usize)
        );
    }
    println!("plot written to {}", out.display());
    Ok(())
}
