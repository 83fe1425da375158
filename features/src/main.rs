//! `features`: thin CLI over the trendscore-features library (see `features --help`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use trendscore_features::{
    build, fetch, synth, BuildConfig, CrossSectional, PriceColumn, SynthConfig, Target,
};

/// Daily prices -> weekly feature rows and trend labels.
#[derive(Parser)]
#[command(name = "features", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build weekly rows (Parquet) + `<out>.manifest.json` from daily prices.
    Build {
        /// Daily prices: CSV, CSV.gz or Parquet; long (date,ticker,close[,...]) or wide (date + one column per ticker).
        #[arg(long)]
        prices: PathBuf,
        /// Optional market index series (one series); without it the cross-sectional mean of the tickers is used.
        #[arg(long)]
        market: Option<PathBuf>,
        /// Output Parquet file.
        #[arg(long)]
        out: PathBuf,
        /// Optional TOML config (price_column, vol_floor, threads, target, cross_sectional).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Price column of a long file: auto (adj_close if present, else close), close, adj_close.
        #[arg(long, value_parser = parse_price_column)]
        price_column: Option<PriceColumn>,
        /// Labels: raw (the ticker's return, default), excess (over --market) or xs (over the
        /// week's cross-sectional median).
        #[arg(long)]
        target: Option<Target>,
        /// Features as they are (none, default), or their rank / z-score across the tickers of
        /// the same week date (rank, zscore).
        #[arg(long)]
        cross_sectional: Option<CrossSectional>,
    },
    /// Write seeded synthetic daily prices (regime-switching random walk with a planted pattern).
    SynthPrices {
        /// Output CSV (`.csv` or `.csv.gz`).
        #[arg(long)]
        out: PathBuf,
        /// Also write the market index series here.
        #[arg(long)]
        market_out: Option<PathBuf>,
        /// Number of tickers.
        #[arg(long, default_value_t = 20)]
        tickers: usize,
        /// Trading days per ticker.
        #[arg(long, default_value_t = 8300)]
        days: usize,
        /// RNG seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write the wide layout (date + one column per ticker) instead of long.
        #[arg(long)]
        wide: bool,
    },
    /// Fetch the real data (skfolio S&P 500, bokeh stocks) from PyPI wheels into a directory.
    FetchData {
        /// Output directory.
        #[arg(long, default_value = "data")]
        out: PathBuf,
        /// Wheel cache directory (default $TRENDSCORE_CACHE/wheels, $HOME/.cache/trendscore/wheels).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Python interpreter that runs pip.
        #[arg(long, default_value = "python3")]
        python: String,
    },
}

fn parse_price_column(s: &str) -> Result<PriceColumn, String> {
    match s {
        "auto" => Ok(PriceColumn::Auto),
        "close" => Ok(PriceColumn::Close),
        "adj_close" => Ok(PriceColumn::AdjClose),
        _ => Err(format!("expected auto, close or adj_close, got {s:?}")),
    }
}

fn main() -> anyhow::Result<()> {
    trendscore_schemas::logging::init("info", None);
    match Cli::parse().cmd {
        Cmd::Build {
            prices,
            market,
            out,
            config,
            price_column,
            target,
            cross_sectional,
        } => {
            let mut cfg = match &config {
                Some(p) => BuildConfig::from_file(p)?,
                None => BuildConfig::default(),
            };
            if let Some(pc) = price_column {
                cfg.price_column = pc;
            }
            if let Some(t) = target {
                cfg.target = t;
            }
            if let Some(x) = cross_sectional {
                cfg.cross_sectional = x;
            }
            let man = build::build_files(&prices, market.as_deref(), &out, &cfg)
                .with_context(|| format!("features build --prices {}", prices.display()))?;
            println!("{}", serde_json::to_string_pretty(&man.report)?);
        }
        Cmd::SynthPrices {
            out,
            market_out,
            tickers,
            days,
            seed,
            wide,
        } => {
            let cfg = SynthConfig {
                tickers,
                days,
                seed,
                ..SynthConfig::default()
            };
            let p = synth::generate(&cfg);
            if wide {
                synth::write_wide_csv(&out, &p.series)?;
            } else {
                synth::write_long_csv(&out, &p.series)?;
            }
            if let Some(m) = market_out {
                synth::write_wide_csv(&m, std::slice::from_ref(&p.market))?;
            }
            tracing::info!(out = %out.display(), tickers, days, seed, "synthetic prices written");
        }
        Cmd::FetchData { out, cache, python } => {
            let cache = cache.unwrap_or_else(fetch::default_cache_dir);
            for f in fetch::fetch(&out, &cache, &python)? {
                match f {
                    fetch::Fetched::Present(p) => println!("present   {}", p.display()),
                    fetch::Fetched::Extracted(p) => println!("extracted {}", p.display()),
                }
            }
        }
    }
    Ok(())
}
