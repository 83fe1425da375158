//! The build pipeline: price series (+ optional market) -> weekly rows with labels, the build
//! report, the manifest, and the files (`rows.parquet` + `rows.parquet.manifest.json`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use trendscore_schemas::WeeklyRow;

use crate::error::{FeaturesError, Result};
use crate::features::{
    compute_ticker, cross_sectional_index, weekly_ends, FEATURES, FEATURE_SET_VERSION,
    MIN_DAILY_CLOSES, MIN_MARKET_CLOSES, MIN_WEEKS, NUM_FEATURES,
};
use crate::input::{read_market, read_prices, DailySeries, Layout, PriceColumn, PriceTable};
use crate::labels::{forward_return, sigma_w, DEFAULT_VOL_FLOOR};
use crate::targets::{
    apply_cross_sectional, apply_target, market_forward_return, CrossSectional, RawLabels, Target,
};

/// Parquet footer key holding the manifest JSON.
pub use trendscore_schemas::weekly::FEATURE_MANIFEST_KEY as MANIFEST_KEY;
/// Parquet footer key holding the feature set version.
pub const VERSION_KEY: &str = "trendscore.features.version";
/// Name used for the market series when none is given.
pub const CROSS_SECTIONAL: &str = "cross_sectional_mean";

/// Settings of `features build` (`--config build.toml`; every field optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildConfig {
    /// Which column of a long file is the close: `auto` (adj_close when present, else close),
    /// `close` or `adj_close`. Default `auto`.
    pub price_column: PriceColumn,
    /// Floor of sigma_w, the weekly volatility the labels divide by. Default 0.005.
    pub vol_floor: f64,
    /// Worker threads for the per-ticker work; 0 = all cores. Default 0.
    pub threads: usize,
    /// What the labels measure: `raw` (default), `excess` (over the market; needs a market
    /// series) or `xs` (over the week's cross-sectional median); see [`crate::targets`].
    pub target: Target,
    /// Features as they are (`none`, default) or as their rank / z-score among the rows of the
    /// same week date (`rank`, `zscore`); see [`crate::targets`].
    pub cross_sectional: CrossSectional,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            price_column: PriceColumn::Auto,
            vol_floor: DEFAULT_VOL_FLOOR,
            threads: 0,
            target: Target::Raw,
            cross_sectional: CrossSectional::None,
        }
    }
}

impl BuildConfig {
    /// Reads a TOML config file; unknown keys are an error.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| FeaturesError::io(path, e))?;
        let cfg: Self = toml::from_str(&text).map_err(|e| FeaturesError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if !(cfg.vol_floor.is_finite() && cfg.vol_floor > 0.0) {
            return Err(FeaturesError::Config {
                path: path.to_path_buf(),
                message: format!("vol_floor must be > 0, got {}", cfg.vol_floor),
            });
        }
        Ok(cfg)
    }
}

/// A ticker that produced no rows, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedTicker {
    /// The ticker.
    pub ticker: String,
    /// Daily closes it had.
    pub daily_closes: usize,
    /// Weeks it had.
    pub weeks: usize,
    /// Why it has no rows.
    pub reason: String,
}

/// Counts of what the build did, written into the manifest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildReport {
    /// Tickers in the input.
    pub tickers_in: usize,
    /// Tickers with at least one row.
    pub tickers_with_rows: usize,
    /// Tickers without rows (too little history), with the reason.
    pub tickers_without_rows: Vec<SkippedTicker>,
    /// Ticker-weeks in the input.
    pub weeks_in: usize,
    /// Rows written.
    pub rows: usize,
    /// Weeks left out: fewer than 253 daily or 53 weekly closes up to the week.
    pub rows_without_history: usize,
    /// Weeks left out: the market series does not reach back 53 weeks / 22 days from the week.
    pub rows_without_market: usize,
    /// Weeks left out because a value was NaN/Inf after the f32 conversion (expected 0).
    pub rows_non_finite: usize,
    /// Rows with a 7-day label.
    pub labels_7d: usize,
    /// Rows with a 30-day label.
    pub labels_30d: usize,
    /// `file:<name>` or `cross_sectional_mean`.
    pub market: String,
    /// First week written.
    pub first_week: Option<chrono::NaiveDate>,
    /// Last week written.
    pub last_week: Option<chrono::NaiveDate>,
}

/// Rows and report of one build.
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    /// Rows sorted by (ticker, week).
    pub rows: Vec<WeeklyRow>,
    /// What happened.
    pub report: BuildReport,
}

/// Builds weekly rows from daily series. `market = None` uses the cross-sectional mean of all
/// input tickers (see [`cross_sectional_index`]).
pub fn build_rows(
    series: &[DailySeries],
    market: Option<&DailySeries>,
    cfg: &BuildConfig,
) -> Result<Built> {
    if cfg.target == Target::Excess && market.is_none() {
        return Err(FeaturesError::Config {
            path: "(build)".into(),
            message: "target `excess` needs a market index series (--market)".into(),
        });
    }
    let (m_dates, m_closes, market_name) = match market {
        Some(m) => (
            m.dates.clone(),
            m.closes.clone(),
            format!("file:{}", m.ticker),
        ),
        None => {
            let views: Vec<_> = series
                .iter()
                .map(|s| (s.dates.as_slice(), s.closes.as_slice()))
                .collect();
            let (d, c) = cross_sectional_index(&views);
            (d, c, CROSS_SECTIONAL.to_string())
        }
    };
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.threads
    }
    .clamp(1, series.len().max(1));
    let chunk = series.len().div_ceil(threads).max(1);
    let per_ticker: Vec<(Vec<(WeeklyRow, RawLabels)>, TickerCounts)> = std::thread::scope(|s| {
        let handles: Vec<_> = series
            .chunks(chunk)
            .map(|part| {
                let (md, mc) = (&m_dates, &m_closes);
                s.spawn(move || {
                    part.iter()
                        .map(|t| ticker_rows(t, md, mc, cfg.vol_floor))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("feature worker panicked"))
            .collect()
    });
    let mut report = BuildReport {
        tickers_in: series.len(),
        market: market_name,
        ..Default::default()
    };
    let mut rows: Vec<(WeeklyRow, RawLabels)> = Vec::new();
    for (t, (r, c)) in series.iter().zip(per_ticker) {
        report.weeks_in += c.weeks;
        report.rows_without_history += c.without_history;
        report.rows_without_market += c.without_market;
        report.rows_non_finite += c.non_finite;
        if r.is_empty() {
            let reason = if c.without_market > 0 && c.without_history < c.weeks {
                "the market series does not cover its history".to_string()
            } else {
                format!(
                    "too little history: needs {MIN_DAILY_CLOSES} daily and {MIN_WEEKS} weekly closes, has {} and {}",
                    t.dates.len(),
                    c.weeks
                )
            };
            tracing::warn!(ticker = %t.ticker, %reason, "ticker left out");
            report.tickers_without_rows.push(SkippedTicker {
                ticker: t.ticker.clone(),
                daily_closes: t.dates.len(),
                weeks: c.weeks,
                reason,
            });
        } else {
            report.tickers_with_rows += 1;
        }
        rows.extend(r);
    }
    if rows.is_empty() {
        return Err(FeaturesError::NoRows(format!(
            "no ticker has enough history (each needs {MIN_DAILY_CLOSES} daily and {MIN_WEEKS} weekly closes, \
             and a market series with {MIN_MARKET_CLOSES} closes covering them); tickers: {}",
            report
                .tickers_without_rows
                .iter()
                .map(|s| format!("{} ({} days)", s.ticker, s.daily_closes))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    rows.sort_by(|a, b| (&a.0.ticker, a.0.week).cmp(&(&b.0.ticker, b.0.week)));
    let (mut rows, raw): (Vec<WeeklyRow>, Vec<RawLabels>) = rows.into_iter().unzip();
    apply_target(&mut rows, &raw, cfg.target);
    apply_cross_sectional(&mut rows, cfg.cross_sectional);
    report.rows = rows.len();
    report.labels_7d = rows.iter().filter(|r| r.trend_7day.is_some()).count();
    report.labels_30d = rows.iter().filter(|r| r.trend_30day.is_some()).count();
    report.first_week = rows.iter().map(|r| r.week).min();
    report.last_week = rows.iter().map(|r| r.week).max();
    Ok(Built { rows, report })
}

#[derive(Default)]
struct TickerCounts {
    weeks: usize,
    without_history: usize,
    without_market: usize,
    non_finite: usize,
}

fn ticker_rows(
    t: &DailySeries,
    m_dates: &[chrono::NaiveDate],
    m_closes: &[f64],
    vol_floor: f64,
) -> (Vec<(WeeklyRow, RawLabels)>, TickerCounts) {
    let (frows, outcome) = compute_ticker(&t.dates, &t.closes, m_dates, m_closes);
    let ends = weekly_ends(&t.dates);
    let w: Vec<f64> = ends.iter().map(|&p| t.closes[p]).collect();
    let mut counts = TickerCounts {
        weeks: outcome.weeks,
        without_history: outcome.without_history,
        without_market: outcome.without_market,
        non_finite: 0,
    };
    let mut out = Vec::with_capacity(frows.len());
    for r in frows {
        let features: Vec<f32> = r.values.iter().map(|&v| v as f32).collect();
        let sigma = sigma_w(&w, r.k, vol_floor);
        let raw = RawLabels {
            r: [7, 30].map(|h| forward_return(&t.dates, &t.closes, r.day, h)),
            m: [7, 30].map(|h| market_forward_return(m_dates, m_closes, t.dates[r.day], h)),
            sigma,
        };
        // The raw target's label (DESIGN.md); `apply_target` rewrites it for the others.
        let label =
            |i: usize, h: f64| raw.r[i].map(|x| (x / (sigma * (h / 7.0).sqrt())).tanh() as f32);
        let (l7, l30) = (label(0, 7.0), label(1, 30.0));
        let finite = features.iter().all(|v| v.is_finite())
            && l7.is_none_or(f32::is_finite)
            && l30.is_none_or(f32::is_finite);
        if !finite {
            tracing::warn!(ticker = %t.ticker, week = %r.week, "row with a non-finite value left out");
            counts.non_finite += 1;
            continue;
        }
        out.push((
            WeeklyRow {
                ticker: t.ticker.clone(),
                week: r.week,
                features,
                trend_7day: l7,
                trend_30day: l30,
            },
            raw,
        ));
    }
    (out, counts)
}

/// Where an input came from, for the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputInfo {
    /// Path as given.
    pub path: String,
    /// sha256 of the file's bytes.
    pub sha256: String,
    /// Long or wide (prices only).
    pub layout: Option<Layout>,
    /// Column the closes came from.
    pub price_column: String,
    /// Data rows read.
    pub rows_read: usize,
    /// Empty wide cells skipped.
    pub missing_cells: usize,
    /// Series (tickers) read.
    pub series: usize,
}

/// The feature manifest: Parquet footer (`trendscore.features.manifest`) and JSON sidecar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Feature set version (`v1`).
    pub feature_set_version: String,
    /// Producer and its version.
    pub producer: String,
    /// One entry per feature column, in order.
    pub features: Vec<ManifestFeature>,
    /// Label definitions and parameters.
    pub labels: LabelInfo,
    /// Cross-sectional transform of the features: `none`, `rank` or `zscore`.
    pub cross_sectional: CrossSectional,
    /// History a row needs.
    pub min_history: MinHistory,
    /// The price file.
    pub prices: Option<InputInfo>,
    /// The market file, when given.
    pub market: Option<InputInfo>,
    /// What the build did.
    pub report: BuildReport,
}

/// One feature in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestFeature {
    /// Column name (`feature_i`).
    pub column: String,
    /// Stable key (`ret_w_lag0`).
    pub name: String,
    /// Family.
    pub family: String,
    /// One-line definition.
    pub definition: String,
    /// Feature set version that defined it.
    pub version: String,
}

/// Label parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelInfo {
    /// Formula.
    pub definition: String,
    /// What `r_h` is measured against: `raw`, `excess` (the market) or `xs` (the week's median).
    pub target: Target,
    /// Horizons in calendar days.
    pub horizons: Vec<u32>,
    /// sigma_w floor.
    pub vol_floor: f64,
    /// Weekly returns in sigma_w.
    pub sigma_weeks: usize,
}

/// History requirement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinHistory {
    /// Daily closes up to the week.
    pub daily_closes: usize,
    /// Weekly closes up to the week.
    pub weeks: usize,
    /// Market closes up to the week date.
    pub market_closes: usize,
}

/// Builds the manifest for a report.
pub fn manifest(
    report: &BuildReport,
    cfg: &BuildConfig,
    prices: Option<InputInfo>,
    market: Option<InputInfo>,
) -> Manifest {
    Manifest {
        feature_set_version: FEATURE_SET_VERSION.to_string(),
        producer: format!("trendscore-features {}", env!("CARGO_PKG_VERSION")),
        features: FEATURES
            .iter()
            .enumerate()
            .map(|(i, f)| ManifestFeature {
                column: format!("feature_{i}"),
                name: f.key.to_string(),
                family: f.family.to_string(),
                definition: f.definition.to_string(),
                version: FEATURE_SET_VERSION.to_string(),
            })
            .collect(),
        labels: LabelInfo {
            definition: "trend_hd = tanh(r_h / (sigma_w * sqrt(h/7))), r_h = P(last close on or before t+h days) / P_t - 1; \
                         sigma_w = max(sample stdev of the last 26 weekly simple returns, vol_floor); null when t+h is after the ticker's last date"
                .to_string(),
            target: cfg.target,
            horizons: trendscore_schemas::HORIZONS.to_vec(),
            vol_floor: cfg.vol_floor,
            sigma_weeks: crate::labels::SIGMA_WEEKS,
        },
        cross_sectional: cfg.cross_sectional,
        min_history: MinHistory {
            daily_closes: MIN_DAILY_CLOSES,
            weeks: MIN_WEEKS,
            market_closes: MIN_MARKET_CLOSES,
        },
        prices,
        market,
        report: report.clone(),
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| FeaturesError::io(path, e))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

fn info(path: &Path, t: &PriceTable) -> Result<InputInfo> {
    Ok(InputInfo {
        path: path.display().to_string(),
        sha256: sha256_file(path)?,
        layout: Some(t.layout),
        price_column: t.price_column.clone(),
        rows_read: t.rows_read,
        missing_cells: t.missing_cells,
        series: t.series.len(),
    })
}

/// The sidecar path: `<out>.manifest.json`.
pub fn sidecar_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

/// `features build`: reads the files, builds, writes `out` (zstd Parquet, manifest in the
/// footer) and `<out>.manifest.json`; both are written to a temporary name and renamed.
pub fn build_files(
    prices: &Path,
    market: Option<&Path>,
    out: &Path,
    cfg: &BuildConfig,
) -> Result<Manifest> {
    let t0 = std::time::Instant::now();
    let table = read_prices(prices, cfg.price_column)?;
    let market_series = market
        .map(|m| read_market(m, cfg.price_column))
        .transpose()?;
    tracing::info!(
        file = %prices.display(),
        tickers = table.series.len(),
        rows = table.rows_read,
        layout = ?table.layout,
        read_ms = t0.elapsed().as_millis() as u64,
        "prices read"
    );
    let built = build_rows(&table.series, market_series.as_ref(), cfg)?;
    let market_info = match (market, &market_series) {
        (Some(p), Some(s)) => Some(InputInfo {
            path: p.display().to_string(),
            sha256: sha256_file(p)?,
            layout: None,
            price_column: s.ticker.clone(),
            rows_read: s.dates.len(),
            missing_cells: 0,
            series: 1,
        }),
        _ => None,
    };
    let man = manifest(&built.report, cfg, Some(info(prices, &table)?), market_info);
    let json = serde_json::to_string_pretty(&man).expect("manifest serialises");
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| FeaturesError::io(dir, e))?;
    }
    let tmp = PathBuf::from(format!("{}.tmp", out.display()));
    trendscore_schemas::write_rows_parquet(
        &tmp,
        &built.rows,
        &[
            (MANIFEST_KEY.to_string(), json.clone()),
            (VERSION_KEY.to_string(), FEATURE_SET_VERSION.to_string()),
        ],
    )?;
    std::fs::rename(&tmp, out).map_err(|e| FeaturesError::io(out, e))?;
    let side = sidecar_path(out);
    let side_tmp = PathBuf::from(format!("{}.tmp", side.display()));
    std::fs::write(&side_tmp, json + "\n").map_err(|e| FeaturesError::io(&side_tmp, e))?;
    std::fs::rename(&side_tmp, &side).map_err(|e| FeaturesError::io(&side, e))?;
    tracing::info!(
        out = %out.display(),
        rows = built.report.rows,
        tickers = built.report.tickers_with_rows,
        skipped_tickers = built.report.tickers_without_rows.len(),
        labels_7d = built.report.labels_7d,
        labels_30d = built.report.labels_30d,
        total_ms = t0.elapsed().as_millis() as u64,
        "weekly rows written"
    );
    debug_assert_eq!(NUM_FEATURES, trendscore_schemas::NUM_FEATURES);
    Ok(man)
}
