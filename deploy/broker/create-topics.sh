#!/usr/bin/env bash
# Creates the scorer's topics explicitly (the scorer creates its own at start; the input topic needs creating).
#   deploy/broker/create-topics.sh [BROKERS] [PARTITIONS]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"  # TRENDSCORE_CACHE, CARGO_TARGET_DIR
BROKERS="${1:-127.0.0.1:9092}"
PARTITIONS="${2:-4}"
SCORER="${SCORER_BIN:-$CARGO_TARGET_DIR/release/scorer}"
[[ -x "$SCORER" ]] || SCORER="$CARGO_TARGET_DIR/debug/scorer"
"$SCORER" topics create --brokers "$BROKERS" --partitions "$PARTITIONS"
