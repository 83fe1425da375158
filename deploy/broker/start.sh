#!/usr/bin/env bash
# Starts a single tansu broker on loopback with SQLite storage, in the background.
#   deploy/broker/start.sh [DATA_DIR] [PORT]
# DATA_DIR (default $HOME/.cache/trendscore/broker) holds tansu.db, broker.log, broker.pid.
# Topics, data and committed offsets survive a restart (same DATA_DIR).
# Prints the bootstrap address (127.0.0.1:PORT) once the port accepts connections.
set -euo pipefail
TANSU="${TANSU:-$HOME/.cache/trendscore/tansu-0.6.0/bin/tansu}"
DATA_DIR="${1:-${BROKER_DATA_DIR:-$HOME/.cache/trendscore/broker}}"
PORT="${2:-${BROKER_PORT:-9092}}"
if [[ ! -x "$TANSU" ]]; then
    echo "tansu not found at $TANSU: run deploy/broker/install.sh" >&2
    exit 1
fi
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
if [[ -f "$DATA_DIR/broker.pid" ]] && kill -0 "$(cat "$DATA_DIR/broker.pid")" 2>/dev/null; then
    echo "broker already running (pid $(cat "$DATA_DIR/broker.pid"))" >&2
    echo "127.0.0.1:$PORT"
    exit 0
fi
cd "$DATA_DIR"
# Quirks (tansu 0.6.0): advertise 127.0.0.1 (not localhost); the sqlite path is relative to
# the working directory even with a leading slash, hence the cd above.
nohup "$TANSU" broker \
    --cluster-id trendscore \
    --listener-url "tcp://127.0.0.1:$PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine "sqlite://tansu.db" >>"$DATA_DIR/broker.log" 2>&1 &
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
