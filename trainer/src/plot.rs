//! PNG plots with plotters: `history.png` (loss curves, learning rate, validation direction
//! accuracy) and the attention plot of the attention-analysis example.
//!
//! Text needs a TrueType font: the first of `TRENDSCORE_FONT` and the usual DejaVu/Liberation
//! paths that exists is registered once; without one the plots are drawn without text.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Result, TrainerError};
use crate::history::EpochRecord;

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a font for "sans-serif"; returns whether text can be drawn.
pub(crate) fn ensure_font() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        let env = std::env::var("TRENDSCORE_FONT").ok();
        for p in env
            .iter()
            .map(String::as_str)
            .chain(FONT_CANDIDATES.iter().copied())
        {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        tracing::warn!("no TrueType font found (set TRENDSCORE_FONT); plots have no text");
        false
    })
}

fn err(path: &Path, e: impl std::fmt::Display) -> TrainerError {
    TrainerError::Output {
        path: path.display().to_string(),
        message: format!("plot: {e}"),
    }
}

fn range(vals: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad)..(hi + pad)
}

type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    title: &str,
    x_max: f64,
    series: &[Series],
    text: bool,
    path: &Path,
) -> Result<()> {
    let y = range(series.iter().flat_map(|s| s.2.iter().map(|p| p.1)));
    let mut b = ChartBuilder::on(area);
    b.margin(12)
        .x_label_area_size(if text { 30 } else { 0 })
        .y_label_area_size(if text { 70 } else { 0 });
    if text {
        b.caption(title, ("sans-serif", 20));
    }
    let mut chart = b
        .build_cartesian_2d(1f64..x_max.max(2.0), y)
        .map_err(|e| err(path, e))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("epoch");
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| err(path, e))?;
    for (name, color, pts) in series {
        let c = *color;
        let s = chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(|e| err(path, e))?;
        if text {
            s.label(*name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
            });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(path, e))?;
    }
    Ok(())
}

/// Draws `history.png`: training/validation losses, learning rate, validation direction accuracy.
pub fn history_png(history: &[EpochRecord], path: &Path) -> Result<()> {
    let text = ensure_font();
    let root = BitMapBackend::new(path, (1000, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let areas = root.split_evenly((3, 1));
    let x_max = history.len() as f64;
    let pts = |f: &dyn Fn(&EpochRecord) -> f64| {
        history
            .iter()
            .map(|r| (r.epoch as f64 + 1.0, f(r)))
            .collect::<Vec<_>>()
    };
    panel(
        &areas[0],
        "loss",
        x_max,
        &[
            ("train total", RED, pts(&|r| r.train.total)),
            ("val total", BLUE, pts(&|r| r.val.total)),
            ("val trend 7d", GREEN, pts(&|r| r.val.trend_7d)),
            ("val trend 30d", MAGENTA, pts(&|r| r.val.trend_30d)),
            ("val direction 7d", CYAN, pts(&|r| r.val.direction_7d)),
            (
                "val direction 30d",
                RGBColor(120, 120, 0),
                pts(&|r| r.val.direction_30d),
            ),
        ],
        text,
        path,
    )?;
    panel(
        &areas[1],
        "learning rate",
        x_max,
        &[("lr", BLACK, pts(&|r| r.lr))],
        text,
        path,
    )?;
    panel(
        &areas[2],
        "validation direction accuracy",
        x_max,
        &[
            ("7d", BLUE, pts(&|r| r.val_metrics.h7.direction_accuracy)),
            ("30d", RED, pts(&|r| r.val_metrics.h30.direction_accuracy)),
        ],
        text,
        path,
    )?;
    root.present().map_err(|e| err(path, e))
}

/// Draws attention per week: one line per sample (`samples`, each of length seq) and the
/// average over `all` (rows of length seq) as a thick line; x = week in the window (1 = oldest).
pub fn attention_png(samples: &[Vec<f32>], all: &[Vec<f32>], path: &Path) -> Result<()> {
    let text = ensure_font();
    let seq = all.first().or(samples.first()).map_or(0, Vec::len);
    let mut avg = vec![0.0f64; seq];
    for r in all {
        for (a, v) in avg.iter_mut().zip(r) {
            *a += f64::from(*v) / all.len() as f64;
        }
    }
    let root = BitMapBackend::new(path, (1000, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let areas = root.split_evenly((2, 1));
    let palette = [
        RED,
        BLUE,
        GREEN,
        MAGENTA,
        CYAN,
        RGBColor(120, 120, 0),
        RGBColor(255, 128, 0),
        RGBColor(90, 0, 160),
    ];
    let names: Vec<String> = (0..samples.len()).map(|i| format!("sample {i}")).collect();
    let sample_series: Vec<Series> = samples
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                names[i].as_str(),
                palette[i % palette.len()],
                r.iter()
                    .enumerate()
                    .map(|(t, v)| (t as f64 + 1.0, f64::from(*v)))
                    .collect(),
            )
        })
        .collect();
    panel(
        &areas[0],
        "attention per week, samples",
        seq as f64,
        &sample_series,
        text,
        path,
    )?;
    let avg_series = [(
        "average",
        BLACK,
        avg.iter()
            .enumerate()
            .map(|(t, v)| (t as f64 + 1.0, *v))
            .collect(),
    )];
    panel(
        &areas[1],
        "attention per week, average over all windows",
        seq as f64,
        &avg_series,
        text,
        path,
    )?;
    root.present().map_err(|e| err(path, e))
}
