#!/usr/bin/env bash
# The main job, end to end, on real market data and through the stream:
#   real daily prices (PyPI wheels) -> weekly feature rows -> a short CPU training -> ONNX
#   -> a Kafka-protocol broker -> `scorer replay` of the held-out weeks -> `scorer run --drain`
#   -> Parquet; then `scorer backfill` over the whole history, and a check that the stream and
#   the backfill agree on every held-out prediction (the job fails if they do not).
# Everything lands in $OUT (default runs/demo). TRAIN_CONFIG (default configs/demo.toml) and
# BACKEND (default auto: ort CUDA when present, else ort on the CPU, else tract) can be overridden.
# The broker: the real one (nisshi, deploy/broker) when it is installed, else the scorer's
# EMBEDDED stand-in (librdkafka's mock cluster, a test double; BROKER=embedded forces it,
# BROKER=real requires the real one).
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
scripts/setup.sh
. scripts/env.sh
OUT=${OUT:-runs/demo}
TRAIN_CONFIG=${TRAIN_CONFIG:-configs/demo.toml}
BACKEND=${BACKEND:-auto}
BROKER=${BROKER:-auto}
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
say() { echo; echo "== $* (+$(( $(date +%s) - T0 ))s)"; }

say "build (one cargo invocation for the whole workspace)"
cargo build -q --workspace --bins
BIN="$CARGO_TARGET_DIR/debug"

say "real data (skfolio S&P 500 sample and index, from PyPI)"
"$BIN/features" fetch-data --out data

say "features"
"$BIN/features" build --prices data/sp500_dataset.csv.gz --market data/sp500_index.csv.gz \
  --out "$OUT/rows.parquet"

say "train (a short CPU run: $TRAIN_CONFIG)"
# Training is seeded: the same rows, config and trainer give the same checkpoint, so a rerun
# with nothing changed reuses it (FRESH=1 trains anyway).
STAMP=$(cat "$OUT/rows.parquet" "$TRAIN_CONFIG" "$BIN/trainer" | sha256sum | cut -c1-16)
if [ "${FRESH:-0}" != 1 ] && [ -f "$OUT/checkpoint/.inputs" ] && [ "$(cat "$OUT/checkpoint/.inputs")" = "$STAMP" ]; then
  echo "checkpoint up to date (same rows, config and trainer): reused $OUT/checkpoint"
else
  rm -rf "$OUT/checkpoint"
  "$BIN/trainer" fit --data "$OUT/rows.parquet" --out "$OUT/checkpoint" --config "$TRAIN_CONFIG"
  echo "$STAMP" > "$OUT/checkpoint/.inputs"
fi
"$BIN/trainer" evaluate --checkpoint "$OUT/checkpoint" --data "$OUT/rows.parquet" --split test \
  --out "$OUT/evaluate-test.json" > /dev/null

say "evaluate honestly (trainer report --folds single: the test period beside naive baselines)"
# The report retrains on fit's split (its own run of the same config) and scores the test
# period with week-block bootstrap intervals beside always-up, last-sign, momentum and a
# logistic regression. Reused like the checkpoint when nothing changed. The full
# walk-forward study is `trainer report` without --folds (README, Quality).
RSTAMP=$(echo "$STAMP report single" | sha256sum | cut -c1-16)
if [ "${FRESH:-0}" != 1 ] && [ -f "$OUT/report/.inputs" ] && [ "$(cat "$OUT/report/.inputs")" = "$RSTAMP" ]; then
  echo "report up to date: reused $OUT/report"
else
  rm -rf "$OUT/report"
  "$BIN/trainer" report --data "$OUT/rows.parquet" --out "$OUT/report" --config "$TRAIN_CONFIG" \
    --folds single --no-progress > /dev/null
  echo "$RSTAMP" > "$OUT/report/.inputs"
fi

say "export"
"$BIN/exporter" --checkpoint "$OUT/checkpoint" --out "$OUT/model.onnx"

say "broker"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NISSHI="$NISSHI_BIN"  # scripts/env.sh
if [ "$BROKER" = real ] || { [ "$BROKER" = auto ] && [ -x "$NISSHI" ]; }; then
  rm -rf "$OUT/broker"
  BROKERS=$(deploy/broker/start.sh "$OUT/broker" "$PORT")
  trap 'deploy/broker/stop.sh "$OUT/broker" >/dev/null' EXIT
  BROKER_KIND="nisshi 0.8.1 (the real Kafka-protocol broker, deploy/broker)"
  "$BIN/scorer" topics create --brokers "$BROKERS" --partitions 4 2>/dev/null
else
  # the embedded stand-in has no CreateTopics: the scorer's topics are made up front
  "$BIN/scorer" embedded-broker --topic weekly-rows:4 --topic weekly-rows-changelog:4 \
    --topic predictions:4 --topic weekly-rows-dlq:4 >"$OUT/embedded-broker.addr" 2>"$OUT/embedded-broker.log" &
  EMB=$!
  trap 'kill $EMB 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do [ -s "$OUT/embedded-broker.addr" ] && break; sleep 0.1; done
  BROKERS=$(head -1 "$OUT/embedded-broker.addr")
  BROKER_KIND="EMBEDDED stand-in (librdkafka mock cluster, a test double: install the real broker with SETUP_BROKER=1 scripts/setup.sh)"
fi
echo "broker: $BROKER_KIND at $BROKERS"

say "replay the held-out weeks (and the 11 weeks before them, the first windows' context)"
python3 - "$OUT" <<'PY'
import datetime as dt, json, sys
import pyarrow.compute as pc, pyarrow.parquet as pq
out = sys.argv[1]
ev = json.load(open(f"{out}/evaluate-test.json"))
first = dt.date.fromisoformat(ev["first_week"])
monday = first - dt.timedelta(days=first.weekday())
start = monday - dt.timedelta(weeks=11)
t = pq.read_table(f"{out}/rows.parquet")
pq.write_table(t.filter(pc.field("week") >= start), f"{out}/heldout-input.parquet")
print(f"held-out weeks {ev['first_week']} .. {ev['last_week']}; replaying weeks from {start}")
PY
"$BIN/scorer" replay --input "$OUT/heldout-input.parquet" --brokers "$BROKERS" --partitions 4

say "scorer run --drain (the service: consume, window, score, Parquet + predictions topic, then stop)"
rm -rf "$OUT/stream"
SCORER__KAFKA__SESSION_TIMEOUT_MS=6000 SCORER__KAFKA__COMMIT_INTERVAL_MS=1000 \
  "$BIN/scorer" run --drain --brokers "$BROKERS" --model "$OUT/model.onnx" --backend "$BACKEND" \
  --output-dir "$OUT/stream" --group "demo-$$" --http-listen "" 2>"$OUT/scorer-run.log"

say "scorer backfill (the whole history, offline, same pipeline)"
rm -rf "$OUT/predictions"
"$BIN/scorer" backfill --model "$OUT/model.onnx" --input "$OUT/rows.parquet" \
  --output "$OUT/predictions" --backend "$BACKEND" > "$OUT/backfill.json"

say "check: the stream and the backfill agree on the held-out weeks (DuckDB)"
python3 - "$OUT" "$BROKER_KIND" "$(( $(date +%s) - T0 ))" <<'PY'
import json, sys
import duckdb
out, broker_kind, secs = sys.argv[1], sys.argv[2], sys.argv[3]
ev = json.load(open(f"{out}/evaluate-test.json"))
con = duckdb.connect()
s = f"read_parquet('{out}/stream/**/*.parquet', hive_partitioning=false)"
b = f"read_parquet('{out}/predictions/**/*.parquet', hive_partitioning=false)"
held = f"week between DATE '{ev['first_week']}' and DATE '{ev['last_week']}'"
n_stream = con.execute(f"select count(*) from {s} where {held}").fetchone()[0]
n_back = con.execute(f"select count(*) from {b} where {held}").fetchone()[0]
only_b = con.execute(f"select count(*) from (select ticker, week from {b} where {held} except select ticker, week from {s})").fetchone()[0]
only_s = con.execute(f"select count(*) from (select ticker, week from {s} where {held} except select ticker, week from {b})").fetchone()[0]
worst = con.execute(f"""select max(greatest(abs(x.trend_7d - y.trend_7d), abs(x.p_up_7d - y.p_up_7d),
                              abs(x.trend_30d - y.trend_30d), abs(x.p_up_30d - y.p_up_30d)))
                       from {s} x join {b} y using (ticker, week) where x.{held}""").fetchone()[0]
dups = con.execute(f"select count(*) - count(distinct (ticker, week)) from {s}").fetchone()[0]
ok = n_stream > 0 and only_b == 0 and only_s == 0 and dups == 0 and worst is not None and worst <= 1e-5
total, tickers, first, last = con.execute(f"select count(*), count(distinct ticker), min(week), max(week) from {b}").fetchone()
m7, m30 = ev["metrics"]["7d"], ev["metrics"]["30d"]
rep = json.load(open(f"{out}/report/report.json"))
def report_lines():
    f = lambda v: "n/a" if v is None else f"{v:.3f}"
    ci = lambda c: "[n/a]" if not c else f"[{c[0]:.3f}, {c[1]:.3f}]"
    lines = [f"trainer report ({out}/report/report.md; a retrained model on the same split, {rep['target']} labels):"]
    for h, name in [("7d", "7-day "), ("30d", "30-day")]:
        r = rep["horizons"][h]
        m, vs = r["model"], r["vs_best_baseline"]["auc"]
        lines.append(f"  {name}: AUC {f(m['auc'])} {ci(m['auc_ci'])} vs best baseline {vs['baseline']} {f(vs['baseline_value'])}"
                     f"; accuracy {f(m['accuracy'])} {ci(m['accuracy_ci'])} vs always-up {f(r['baselines']['always_up']['accuracy'])}")
    lines.append("  verdict: " + rep["verdict"].replace("\n", " "))
    return "\n".join(lines)
print(f"""
what ran: real S&P 500 prices -> features -> a short CPU training -> ONNX -> broker [{broker_kind}]
          -> scorer replay -> scorer run --drain -> Parquet; scorer backfill over the whole history
stream   : {n_stream} held-out predictions ({ev['first_week']} .. {ev['last_week']}) in {out}/stream/
backfill : {total} predictions for {tickers} tickers, {first} .. {last}, in {out}/predictions/
agreement: {'OK' if ok else 'FAILED'}: held-out rows stream {n_stream} / backfill {n_back}, only in backfill {only_b},
           only in stream {only_s}, duplicates {dups}, largest difference {worst}
held-out direction accuracy (test split, {ev['windows']} windows):
  7-day : {m7['direction_accuracy']:.3f}   always-up {m7['up_rate']:.3f}   AUC {m7.get('roc_auc') or float('nan'):.3f}
  30-day: {m30['direction_accuracy']:.3f}   always-up {m30['up_rate']:.3f}   AUC {m30.get('roc_auc') or float('nan'):.3f}
  (always-up = the accuracy of saying "up" every week: the base rate a model must beat)
{report_lines()}
files    : {out}/rows.parquet, checkpoint/ (history.png), report/ (report.md, plots), model.onnx + model.json,
           stream/, predictions/
wall time: {secs} s
""")
if not ok:
    sys.exit("the stream and the backfill disagree on the held-out weeks")
PY
echo "done: $OUT"
