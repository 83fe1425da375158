//! `trainer`: parses the command line, sets up tracing, runs the library.
use clap::Parser;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    trendscore_trainer::cli::run(trendscore_trainer::cli::Cli::parse())
}
