#!/usr/bin/env bash
# Runs the scorer's integration tests against a real nisshi broker on loopback.
#   scorer/integration.sh [pytest args...]
# Uses $SCORER_BIN (else builds the workspace's binaries), installs the broker if missing
# (deploy/broker/install.sh), then runs tests/python/test_scorer_kafka.py (each test module starts and
# stops its own broker on a free port). The test model comes from the exporter binary when it
# is built, else from torch.onnx (tests/python/scorer_model.py).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"  # TRENDSCORE_CACHE, CARGO_TARGET_DIR
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
"$ROOT/deploy/broker/install.sh"
# The binaries scripts/test.sh built (one workspace build); built here when run alone.
if [[ -z "${SCORER_BIN:-}" ]]; then
  cargo build -q --workspace --bins
  export SCORER_BIN="$CARGO_TARGET_DIR/debug/scorer"
fi
export EXPORTER_BIN="${EXPORTER_BIN:-$CARGO_TARGET_DIR/debug/exporter}"
cd "$ROOT/tests/python"
exec python3 -m pytest -x -q test_scorer_kafka.py "$@"
