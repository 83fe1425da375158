//! The log set-up every trendscore binary shares: `RUST_LOG`, else a default filter, to
//! stderr (stdout stays free for the JSON reports the binaries print).

use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber. `ansi`: colours on or off; `None` keeps
/// `tracing-subscriber`'s default.
pub fn init(default_filter: &str, ansi: Option<bool>) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr);
    match ansi {
        Some(ansi) => builder.with_ansi(ansi).init(),
        None => builder.init(),
    }
}
