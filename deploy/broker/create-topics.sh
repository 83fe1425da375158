#!/usr/bin/env bash
# Creates the scorer's topics explicitly (the scorer creates its own at start; the input topic needs creating).
#   deploy/broker/create-topics.sh [BROKERS] [PARTITIONS]
set -euo pipefail
BROKERS="${1:-127.0.0.1:9092}"
PARTITIONS="${2:-4}"
SCORER="${SCORER_BIN:-${CARGO_TARGET_DIR:-${TRENDSCORE_CACHE:-$HOME/.cache/trendscore}/target}/release/scorer}"
[[ -x "$SCORER" ]] || SCORER="${CARGO_TARGET_DIR:-${TRENDSCORE_CACHE:-$HOME/.cache/trendscore}/target}/debug/scorer"
"$SCORER" topics create --brokers "$BROKERS" --partitions "$PARTITIONS"
