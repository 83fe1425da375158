#!/usr/bin/env bash
# End to end through the real broker, for the main job:
#   scorer/e2e.sh ROWS.parquet MODEL.onnx WORKDIR [BACKEND]
# 1. `scorer backfill` ROWS -> WORKDIR/backfill (offline reference);
# 2. starts tansu (WORKDIR/broker), creates topics, `scorer replay` ROWS into the input topic;
# 3. `scorer run` until WORKDIR/stream holds as many rows as the backfill, then SIGTERM;
# 4. checks streaming == backfill within 1e-5 (pyarrow), prints the counts, stops the broker.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"  # TRENDSCORE_CACHE, CARGO_TARGET_DIR
ROWS="$1"; MODEL="$2"; WORK="$3"; BACKEND="${4:-auto}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="$CARGO_TARGET_DIR"
SCORER="${SCORER_BIN:-$TARGET/debug/scorer}"
mkdir -p "$WORK"
PORT="${BROKER_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
BROKERS="127.0.0.1:$PORT"
rm -rf "$WORK/backfill" "$WORK/stream"
"$SCORER" backfill --model "$MODEL" --input "$ROWS" --output "$WORK/backfill" --backend "$BACKEND" >"$WORK/backfill.json"
EXPECTED="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["scored"])' "$WORK/backfill.json")"
"$ROOT/deploy/broker/start.sh" "$WORK/broker" "$PORT" >/dev/null
trap '"$ROOT/deploy/broker/stop.sh" "$WORK/broker" >/dev/null' EXIT
"$SCORER" topics create --brokers "$BROKERS" --partitions 4
"$SCORER" replay --input "$ROWS" --brokers "$BROKERS" --topic weekly-rows >/dev/null
SCORER__KAFKA__SESSION_TIMEOUT_MS=3000 SCORER__SINK__MAX_FILE_AGE_MS=1000 \
  "$SCORER" run --brokers "$BROKERS" --model "$MODEL" --output-dir "$WORK/stream" \
  --backend "$BACKEND" --group "e2e-$$" --http-listen "" 2>"$WORK/scorer.log" &
PID=$!
python3 - "$WORK/stream" "$EXPECTED" "$PID" <<'PY'
import glob, os, sys, time
import pyarrow.parquet as pq
out, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline = time.time() + 600
while time.time() < deadline:
    files = [f for f in glob.glob(os.path.join(out, "**", "*.parquet"), recursive=True) if not os.path.basename(f).startswith(".")]
    got = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if got >= n:
        break
    os.kill(pid, 0)
    time.sleep(1)
else:
    sys.exit(f"timed out: {got} of {n} rows")
PY
kill -TERM "$PID"; wait "$PID"
python3 - "$WORK/backfill" "$WORK/stream" <<'PY'
import glob, os, sys
import numpy as np, pyarrow.parquet as pq
def load(d):
    rows = {}
    for f in glob.glob(os.path.join(d, "**", "*.parquet"), recursive=True):
        if os.path.basename(f).startswith("."):
            continue
        for r in pq.read_table(f).to_pylist():
            k = (r["ticker"], r["week"])
            assert k not in rows, f"duplicate {k}"
            rows[k] = r
    return rows
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys(), (len(a), len(b))
worst = max(max(abs(a[k][c] - b[k][c]) for c in ("trend_7d", "p_up_7d", "trend_30d", "p_up_30d")) for k in a)
worst = max(worst, max(float(np.max(np.abs(np.array(a[k]["attention"]) - np.array(b[k]["attention"])))) for k in a))
assert worst <= 1e-5, worst
print(f"e2e ok: {len(b)} streamed predictions == backfill (max abs diff {worst:.2e})")
PY
