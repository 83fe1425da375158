//! Build speed on 20 tickers x 33 years of daily prices (synthetic, wide CSV like skfolio's
//! sp500_dataset; the real file too when `data/sp500_dataset.csv.gz` has been fetched).
//!
//! Criterion groups: `read_csv` (the baseline: parsing and validating the CSV alone),
//! `build_rows` (features + labels from parsed series, no I/O), `build_files` (read + build +
//! Parquet + manifest). At the end a same-run summary prints each stage's median time and its
//! ratio to the CSV read, and the per-ticker build time.
//!
//! Run: `cargo bench -p trendscore-features --bench build`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use trendscore_features::build::build_files;
use trendscore_features::synth::write_wide_csv;
use trendscore_features::{
    build_rows, generate, read_prices, BuildConfig, PriceColumn, SynthConfig,
};

struct Inputs {
    _dir: tempfile::TempDir,
    csv: PathBuf,
    out: PathBuf,
}

fn inputs() -> Inputs {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("prices.csv");
    let p = generate(&SynthConfig::default()); // 20 tickers x 8300 trading days
    write_wide_csv(&csv, &p.series).expect("write csv");
    let out = dir.path().join("rows.parquet");
    Inputs {
        _dir: dir,
        csv,
        out,
    }
}

fn real_file() -> Option<PathBuf> {
    let manifest: PathBuf = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    let p = manifest.join("../data/sp500_dataset.csv.gz");
    p.exists().then_some(p)
}

fn benches(c: &mut Criterion) {
    let inp = inputs();
    let cfg = BuildConfig::default();
    let table = read_prices(&inp.csv, PriceColumn::Auto).expect("read");
    let mut g = c.benchmark_group("synthetic_20x33y");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("read_csv", |b| {
        b.iter(|| read_prices(&inp.csv, PriceColumn::Auto).expect("read"))
    });
    g.bench_function("build_rows", |b| {
        b.iter(|| build_rows(&table.series, None, &cfg).expect("build"))
    });
    g.bench_function("build_files", |b| {
        b.iter(|| build_files(&inp.csv, None, &inp.out, &cfg).expect("build files"))
    });
    g.finish();
    if let Some(real) = real_file() {
        let mut g = c.benchmark_group("skfolio_sp500");
        g.sample_size(10).measurement_time(Duration::from_secs(8));
        let out = inp.out.with_file_name("real.parquet");
        let index = real.with_file_name("sp500_index.csv.gz");
        g.bench_function("read_csv_gz", |b| {
            b.iter(|| read_prices(&real, PriceColumn::Auto).expect("read"))
        });
        g.bench_function("build_files_with_index", |b| {
            b.iter(|| build_files(&real, Some(&index), &out, &cfg).expect("build files"))
        });
        g.finish();
    }
}

fn median(mut f: impl FnMut(), n: usize) -> Duration {
    let mut t: Vec<Duration> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[n / 2]
}

/// Same-run ratios against the CSV-read baseline.
fn summary() {
    let inp = inputs();
    let cfg = BuildConfig::default();
    let table = read_prices(&inp.csv, PriceColumn::Auto).expect("read");
    let n = 5;
    let read = median(
        || drop(read_prices(&inp.csv, PriceColumn::Auto).expect("read")),
        n,
    );
    let build = median(
        || drop(build_rows(&table.series, None, &cfg).expect("build")),
        n,
    );
    let one = BuildConfig {
        threads: 1,
        ..cfg.clone()
    };
    let build1 = median(
        || drop(build_rows(&table.series, None, &one).expect("build")),
        n,
    );
    let files = median(
        || drop(build_files(&inp.csv, None, &inp.out, &cfg).expect("files")),
        n,
    );
    let tickers = table.series.len();
    let rows = build_rows(&table.series, None, &cfg)
        .expect("build")
        .rows
        .len();
    println!("\n== features build summary (20 tickers x 8300 days, {rows} rows; median of {n}) ==");
    println!(
        "read_csv (baseline)        {:>9.1} ms  1.00x",
        read.as_secs_f64() * 1e3
    );
    for (name, d) in [
        ("build_rows (all cores)", build),
        ("build_rows (1 thread)", build1),
        ("build_files (end to end)", files),
    ] {
        println!(
            "{name:<26} {:>9.1} ms  {:.2}x read_csv",
            d.as_secs_f64() * 1e3,
            d.as_secs_f64() / read.as_secs_f64()
        );
    }
    println!(
        "per ticker (1 thread)      {:>9.2} ms  (read_csv per ticker {:.2} ms)",
        build1.as_secs_f64() * 1e3 / tickers as f64,
        read.as_secs_f64() * 1e3 / tickers as f64
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
