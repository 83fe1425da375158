//! The report's PNGs (plotters): accuracy and AUC per test year against the up-share and 0.5,
//! the model's calibration curve, its mean attention per window step, and its weekly IC over
//! time with a 26-week rolling mean. A plot that cannot be drawn is logged and skipped.

use std::path::Path;

use chrono::Datelike;
use plotters::prelude::*;

use super::bootstrap::MetricSet;
use super::write::files;
use super::{HorizonReport, Report};
use crate::plot::ensure_font;

type Pts = Vec<(f64, f64)>;
type Drawer = fn(&Report, &Path) -> Result<(), String>;

struct Curve<'a> {
    name: &'a str,
    color: RGBColor,
    width: u32,
    points: Pts,
    dots: bool,
}

fn range(vals: impl Iterator<Item = f64>, pad_min: f64) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.08).max(pad_min);
    (lo - pad)..(hi + pad)
}

fn chart(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    lines: &[Curve],
    text: bool,
) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let mut b = ChartBuilder::on(area);
    b.margin(12)
        .x_label_area_size(if text { 32 } else { 0 })
        .y_label_area_size(if text { 56 } else { 0 });
    if text {
        b.caption(title, ("sans-serif", 18));
    }
    let mut c = b.build_cartesian_2d(x, y).map_err(|x| e(&x))?;
    let mut mesh = c.configure_mesh();
    let x_fmt = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    if text {
        mesh.x_desc(x_desc).x_label_formatter(&x_fmt);
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|x| e(&x))?;
    for l in lines {
        let col = l.color;
        let s = c
            .draw_series(LineSeries::new(l.points.clone(), col.stroke_width(l.width)))
            .map_err(|x| e(&x))?;
        if text && !l.name.is_empty() {
            let w = l.width;
            s.label(l.name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(w))
            });
        }
        if l.dots {
            c.draw_series(l.points.iter().map(|p| Circle::new(*p, 3, col.filled())))
                .map_err(|x| e(&x))?;
        }
    }
    if text {
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(&x))?;
    }
    Ok(())
}

fn by_year(hr: &HorizonReport, f: fn(&MetricSet) -> Option<f64>) -> [Pts; 5] {
    let mut out: [Pts; 5] = Default::default();
    for (y, g) in &hr.by_year {
        let Ok(x) = y.parse::<f64>() else { continue };
        let b = &g.baselines;
        for (i, m) in [
            &g.model,
            &b.always_up,
            &b.last_sign,
            &b.momentum_4w,
            &b.logistic,
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(v) = f(m) {
                out[i].push((x, v));
            }
        }
    }
    out
}

const NAMES: [&str; 5] = ["model", "always_up", "last_sign", "momentum_4w", "logistic"];
const COLORS: [RGBColor; 5] = [
    BLUE,
    RGBColor(120, 120, 120),
    RGBColor(0, 150, 0),
    RGBColor(230, 120, 0),
    MAGENTA,
];

fn year_panels(r: &Report, path: &Path) -> Result<(), String> {
    let text = ensure_font();
    let root = BitMapBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((2, 2));
    for (row, h) in ["7d", "30d"].into_iter().enumerate() {
        let hr = &r.horizons[h];
        let years: Vec<f64> = hr.by_year.keys().filter_map(|y| y.parse().ok()).collect();
        let x = range(years.iter().copied(), 0.5);
        for (col, (metric, get)) in [
            (
                "accuracy",
                (|m: &MetricSet| m.accuracy) as fn(&MetricSet) -> Option<f64>,
            ),
            ("AUC", |m: &MetricSet| m.auc),
        ]
        .into_iter()
        .enumerate()
        {
            let series = by_year(hr, get);
            let mut lines: Vec<Curve> = Vec::new();
            for (i, pts) in series.into_iter().enumerate() {
                // always_up's accuracy is the test year's up-share: the base rate line.
                let name = if i == 1 && col == 0 {
                    "always_up = up-share"
                } else if i == 1 {
                    ""
                } else {
                    NAMES[i]
                };
                if i == 1 && col == 1 {
                    continue;
                }
                lines.push(Curve {
                    name,
                    color: COLORS[i],
                    width: if i == 0 { 3 } else { 1 },
                    points: pts,
                    dots: true,
                });
            }
            if col == 1 {
                lines.push(Curve {
                    name: "0.5",
                    color: BLACK,
                    width: 1,
                    points: vec![(x.start, 0.5), (x.end, 0.5)],
                    dots: false,
                });
            }
            let y = range(
                lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)),
                0.02,
            );
            chart(
                &areas[row * 2 + col],
                &format!("{h} {metric} by test year"),
                "year",
                x.clone(),
                y,
                &lines,
                text,
            )?;
        }
    }
    root.present().map_err(|e| e.to_string())
}

fn calibration(r: &Report, path: &Path) -> Result<(), String> {
    let text = ensure_font();
    let root = BitMapBackend::new(path, (1200, 550)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, 2));
    for (i, h) in ["7d", "30d"].into_iter().enumerate() {
        let pts: Pts = r.horizons[h]
            .calibration
            .iter()
            .filter_map(|b| Some((b.mean_p?, b.observed?)))
            .collect();
        let lines = [
            Curve {
                name: "model",
                color: BLUE,
                width: 3,
                points: pts,
                dots: true,
            },
            Curve {
                name: "perfect",
                color: BLACK,
                width: 1,
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                dots: false,
            },
        ];
        chart(
            &areas[i],
            &format!("{h} calibration: observed up-share by predicted p_up"),
            "mean predicted p_up (10 bins)",
            0.0..1.0,
            0.0..1.0,
            &lines,
            text,
        )?;
    }
    root.present().map_err(|e| e.to_string())
}

fn attention(r: &Report, path: &Path) -> Result<(), String> {
    let text = ensure_font();
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let pts: Pts = r
        .attention_mean
        .iter()
        .enumerate()
        .map(|(i, v)| (i as f64 + 1.0, *v))
        .collect();
    let y = range(pts.iter().map(|p| p.1).chain([0.0]), 0.01);
    let n = pts.len().max(2) as f64;
    chart(
        &root,
        "mean attention per window step (1 = oldest week)",
        "week in the window",
        0.5..n + 0.5,
        y,
        &[Curve {
            name: "mean attention",
            color: BLUE,
            width: 3,
            points: pts,
            dots: true,
        }],
        text,
    )?;
    root.present().map_err(|e| e.to_string())
}

fn ic_over_time(r: &Report, path: &Path) -> Result<(), String> {
    let text = ensure_font();
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((2, 1));
    for (i, h) in ["7d", "30d"].into_iter().enumerate() {
        let weekly: Pts = r.horizons[h]
            .ic_weekly
            .iter()
            .filter_map(|w| {
                let x = f64::from(w.week.year()) + f64::from(w.week.ordinal0()) / 365.25;
                Some((x, w.ic?))
            })
            .collect();
        let rolling: Pts = (0..weekly.len())
            .filter(|&k| k + 1 >= 26)
            .map(|k| {
                let s = &weekly[k + 1 - 26..=k];
                (weekly[k].0, s.iter().map(|p| p.1).sum::<f64>() / 26.0)
            })
            .collect();
        let x = range(weekly.iter().map(|p| p.0), 0.1);
        let y = range(weekly.iter().map(|p| p.1).chain([0.0]), 0.05);
        let zero = vec![(x.start, 0.0), (x.end, 0.0)];
        chart(
            &areas[i],
            &format!("{h} weekly IC (rank correlation across tickers) of the model"),
            "year",
            x,
            y,
            &[
                Curve {
                    name: "weekly IC",
                    color: RGBColor(150, 170, 230),
                    width: 1,
                    points: weekly,
                    dots: false,
                },
                Curve {
                    name: "26-week mean",
                    color: BLUE,
                    width: 3,
                    points: rolling,
                    dots: false,
                },
                Curve {
                    name: "",
                    color: BLACK,
                    width: 1,
                    points: zero,
                    dots: false,
                },
            ],
            text,
        )?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Draws every plot into `dir`; failures are logged, not fatal.
pub fn draw_all(dir: &Path, r: &Report) {
    let jobs: [(&str, Drawer); 4] = [
        (files::BY_YEAR_PNG, year_panels),
        (files::CALIBRATION_PNG, calibration),
        (files::ATTENTION_PNG, attention),
        (files::IC_PNG, ic_over_time),
    ];
    for (name, f) in jobs {
        let p = dir.join(name);
        if let Err(e) = f(r, &p) {
            tracing::warn!(plot = %p.display(), error = %e, "could not draw");
        }
    }
}
