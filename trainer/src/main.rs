//! `trainer`: parses the command line, sets up tracing, runs the library.
use clap::Parser;

fn main() -> anyhow::Result<()> {
    trendscore_schemas::logging::init("info", None);
    trendscore_trainer::cli::run(trendscore_trainer::cli::Cli::parse())
}
