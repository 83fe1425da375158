#!/usr/bin/env bash
# The main job, end to end, on real market data:
#   real daily prices (PyPI wheels) -> weekly feature rows -> trained checkpoint -> ONNX model
#   -> scored predictions in Parquet, read back by DuckDB.
# Everything lands in $OUT (default runs/demo). TRAIN_CONFIG (default configs/demo.toml) and
# BACKEND (default auto: ort CUDA when present, else tract on CPU) can be overridden.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
OUT=${OUT:-runs/demo}
TRAIN_CONFIG=${TRAIN_CONFIG:-configs/demo.toml}
BACKEND=${BACKEND:-auto}
mkdir -p "$OUT"

echo "== build"
for p in trendscore-features trendscore-trainer trendscore-exporter trendscore-scorer; do
  cargo build -q -p "$p" --bins
done
BIN="$CARGO_TARGET_DIR/debug"

echo "== real data (skfolio S&P 500 sample and index, from PyPI)"
"$BIN/features" fetch-data --out data

echo "== features"
"$BIN/features" build --prices data/sp500_dataset.csv.gz --market data/sp500_index.csv.gz \
  --out "$OUT/rows.parquet"

echo "== train"
rm -rf "$OUT/checkpoint"
"$BIN/trainer" fit --data "$OUT/rows.parquet" --out "$OUT/checkpoint" --config "$TRAIN_CONFIG"
"$BIN/trainer" evaluate --checkpoint "$OUT/checkpoint" --data "$OUT/rows.parquet" --split test \
  --out "$OUT/evaluate-test.json" > /dev/null

echo "== export"
"$BIN/exporter" --checkpoint "$OUT/checkpoint" --out "$OUT/model.onnx"

echo "== score (offline backfill, the scorer's own window and sink code)"
rm -rf "$OUT/predictions"
"$BIN/scorer" backfill --model "$OUT/model.onnx" --input "$OUT/rows.parquet" \
  --output "$OUT/predictions" --backend "$BACKEND"

echo "== read back (DuckDB)"
python3 - "$OUT" <<'PY'
import json, sys, duckdb
out = sys.argv[1]
con = duckdb.connect()
q = f"read_parquet('{out}/predictions/**/*.parquet', hive_partitioning=false)"
n, tickers, first, last = con.execute(f"select count(*), count(distinct ticker), min(week), max(week) from {q}").fetchone()
print(f"{n} predictions for {tickers} tickers, weeks {first} .. {last}")
print(con.execute(f"select ticker, week, round(trend_7d, 3) trend_7d, round(p_up_7d, 3) p_up_7d, round(trend_30d, 3) trend_30d, round(p_up_30d, 3) p_up_30d from {q} order by week desc, ticker limit 5").fetchall())
m = json.load(open(f"{out}/evaluate-test.json"))
print("test split:", json.dumps(m)[:600])
PY
echo "done: $OUT (checkpoint/history.png, model.onnx, model.json, predictions/)"
