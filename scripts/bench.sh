#!/usr/bin/env bash
# One benchmark table (tests/python/bench_all.py): training step vs PyTorch, inference per
# backend vs PyTorch eager and Python onnxruntime, backfill vs a plain-Python backfill, the
# scorer service vs a plain-Python consumer, every figure beside its peer from the same run,
# with the machine and its load. Needs the broker (scripts/setup.sh with SETUP_BROKER=1, or
# scripts/test.sh once). Measure on a quiet machine: nothing compiling.
#
#   scripts/bench.sh            # full sizes (about 10 minutes on 2 cores)
#   scripts/bench.sh --short    # tiny sizes: what CI runs so the command cannot rot
#   scripts/bench.sh --json-out runs/bench.json
set -euo pipefail
cd "$(dirname "$0")/.."
SETUP_BROKER=1 scripts/setup.sh >/dev/null
. scripts/env.sh
# The same build as the tests and the main job (dev profile: dependencies and the scorer's
# hot crates at opt-level 2), one invocation for the workspace.
cargo build -q --workspace --all-targets
export TRENDSCORE_BIN="$CARGO_TARGET_DIR/debug"
export FEATURES_BIN="$TRENDSCORE_BIN/features" TRAINER_BIN="$TRENDSCORE_BIN/trainer"
export EXPORTER_BIN="$TRENDSCORE_BIN/exporter" SCORER_BIN="$TRENDSCORE_BIN/scorer"
exec python3 tests/python/bench_all.py "$@"
