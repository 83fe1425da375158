#!/usr/bin/env bash
# Stops the broker started by start.sh with the same DATA_DIR (SIGTERM, then SIGKILL after 10 s).
#   deploy/broker/stop.sh [DATA_DIR]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"  # TRENDSCORE_CACHE, CARGO_TARGET_DIR
DATA_DIR="${1:-${BROKER_DATA_DIR:-$TRENDSCORE_CACHE/broker}}"
PIDFILE="$DATA_DIR/broker.pid"
[[ -f "$PIDFILE" ]] || { echo "no broker pid file in $DATA_DIR"; exit 0; }
PID="$(cat "$PIDFILE")"
if kill -0 "$PID" 2>/dev/null; then
    kill "$PID"
    for _ in $(seq 1 100); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$PID" 2>/dev/null && kill -9 "$PID"
fi
rm -f "$PIDFILE"
echo "broker stopped"
