#!/usr/bin/env bash
# Starts a single nisshi broker on loopback with SQLite storage, in the background.
#   deploy/broker/start.sh [DATA_DIR] [PORT]
# DATA_DIR (default $TRENDSCORE_CACHE/broker; TRENDSCORE_CACHE defaults to ~/.cache/trendscore)
# holds nisshi.db, broker.log, broker.pid.
# Topics, data and committed offsets survive a restart (same DATA_DIR).
# TLS: BROKER_CERT and BROKER_KEY (PEM files) make the listener accept only TLS;
# BROKER_AUTHENTICATION=1 requires SASL (SCRAM users: `nisshi user create NAME PASSWORD`).
# Prints the bootstrap address (127.0.0.1:PORT) once the port accepts connections.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"  # TRENDSCORE_CACHE, NISSHI_BIN
BROKER="${BROKER_BIN:-$NISSHI_BIN}"
DATA_DIR="${1:-${BROKER_DATA_DIR:-$TRENDSCORE_CACHE/broker}}"
PORT="${2:-${BROKER_PORT:-9092}}"
if [[ ! -x "$BROKER" ]]; then
    echo "broker not found at $BROKER: run deploy/broker/install.sh" >&2
    exit 1
fi
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
if [[ -f "$DATA_DIR/broker.pid" ]] && kill -0 "$(cat "$DATA_DIR/broker.pid")" 2>/dev/null; then
    echo "broker already running (pid $(cat "$DATA_DIR/broker.pid"))" >&2
    echo "127.0.0.1:$PORT"
    exit 0
fi
EXTRA=()
if [[ -n "${BROKER_CERT:-}" ]]; then
    EXTRA+=(--cert "$BROKER_CERT" --key "${BROKER_KEY:?BROKER_KEY goes with BROKER_CERT}")
fi
if [[ "${BROKER_AUTHENTICATION:-0}" == 1 ]]; then
    EXTRA+=(--authentication)
fi
# Another process on the port (another test's broker, say) would answer the readiness probe
# below, and nisshi does not even fail there: it starts and keeps running on a port another
# socket listens on (seen with a plain Python listener). Refuse the port instead.
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "port $PORT is already in use: choose another (BROKER_PORT or the second argument)" >&2
    exit 1
fi
cd "$DATA_DIR"
# Quirks: advertise 127.0.0.1 (not localhost); the sqlite path is relative to the working
# directory even with a leading slash, hence the cd above.
nohup "$BROKER" broker \
    --cluster-id trendscore \
    --listener-url "tcp://127.0.0.1:$PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine "sqlite://nisshi.db" \
    ${EXTRA[@]+"${EXTRA[@]}"} >>"$DATA_DIR/broker.log" 2>&1 &
echo $! >"$DATA_DIR/broker.pid"
for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        echo "127.0.0.1:$PORT"
        exit 0
    fi
    if ! kill -0 "$(cat "$DATA_DIR/broker.pid")" 2>/dev/null; then
        echo "broker exited; see $DATA_DIR/broker.log" >&2
        tail -20 "$DATA_DIR/broker.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "broker did not open port $PORT within 20 s; see $DATA_DIR/broker.log" >&2
exit 1
