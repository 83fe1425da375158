#!/usr/bin/env python3
"""Backfill benchmark: `scorer backfill` rows/s on all cores against one core (scaling) and
against a plain-Python backfill doing the same job in the same run (pyarrow + numpy windows +
onnxruntime on 2 threads + pyarrow Parquet), plus the peak memory (RSS) of the scorer with the
default and with a small `--max-rows-in-memory` on the same input.

    python3 tests/python/backfill_bench.py [--tickers 500] [--weeks 600] [--backends tract,ort-cpu]
                                           [--model MODEL.onnx] [--short]

Prints a table and one JSON line per measurement (`{"bench": "backfill", ...}`)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scorer_harness as h  # noqa: E402

PLAIN = r'''
import datetime as dt, os, sys, time
import numpy as np, onnxruntime as ort, pyarrow as pa, pyarrow.parquet as pq
inp, model, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t0 = time.perf_counter()
so = ort.SessionOptions(); so.intra_op_num_threads = threads
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
names = [o.name for o in sess.get_outputs()]
t = pq.read_table(inp)
feat = np.stack([t.column(f"feature_{i}").to_numpy() for i in range(62)], axis=1).astype(np.float32)
tick = t.column("ticker").to_pylist(); week = t.column("week").to_numpy().astype("datetime64[D]").astype(np.int64)
order = np.lexsort((week, np.array(tick)))
iso = (week + 3) // 7   # days since 1970-01-01 (a Thursday) -> Monday-based week index
X, meta = [], []
start = 0
ticks = np.array(tick)[order]; iw = iso[order]; fo = feat[order]; wk = week[order]
n = len(order)
while start < n:
    end = start
    while end < n and ticks[end] == ticks[start]:
        end += 1
    run = start
    for i in range(start, end):
        if i > start and iw[i] != iw[i - 1] + 1:
            run = i            # a gap (or a duplicate week) restarts the window
        if i - run + 1 >= 12:
            X.append(fo[i - 11:i + 1]); meta.append((ticks[i], wk[i], wk[i - 11]))
    start = end
rows = {k: [] for k in ["ticker", "week", "window_start", "trend_7d", "p_up_7d", "trend_30d", "p_up_30d", "attention"]}
X = np.stack(X)
for i in range(0, len(X), 1024):
    r = dict(zip(names, sess.run(None, {"features": X[i:i + 1024]})))
    def pu(d):
        e = np.exp(d - d.max(1, keepdims=True)); return (e / e.sum(1, keepdims=True))[:, 1]
    rows["trend_7d"].append(r["7day_trend"][:, 0]); rows["p_up_7d"].append(pu(r["7day_direction"]))
    rows["trend_30d"].append(r["30day_trend"][:, 0]); rows["p_up_30d"].append(pu(r["30day_direction"]))
    rows["attention"].extend(list(r["attention_weights"]))
tab = pa.table({"ticker": [m[0] for m in meta], "week": pa.array([m[1] for m in meta], pa.int32()).cast(pa.date32()),
                "window_start": pa.array([m[2] for m in meta], pa.int32()).cast(pa.date32()),
                "trend_7d": np.concatenate(rows["trend_7d"]), "p_up_7d": np.concatenate(rows["p_up_7d"]),
                "trend_30d": np.concatenate(rows["trend_30d"]), "p_up_30d": np.concatenate(rows["p_up_30d"]),
                "attention": pa.array([list(a) for a in rows["attention"]], pa.list_(pa.float32()))})
os.makedirs(out, exist_ok=True)
pq.write_table(tab, os.path.join(out, "part-0.parquet"), compression="zstd")
print(len(meta), time.perf_counter() - t0)
'''


def run_timed(cmd, env=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", *cmd], capture_output=True, text=True, env=env)
    secs = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    rss = int([line for line in r.stderr.splitlines() if line.startswith("MAXRSS")][-1].split()[1])
    del before
    return r.stdout, secs, rss * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickers", type=int, default=500)
    ap.add_argument("--weeks", type=int, default=600)
    ap.add_argument("--backends", default="tract,ort-cpu")
    ap.add_argument("--model", help="an exported model (default: the test model of scorer_model.py)")
    ap.add_argument("--json-out", help="also write the figures as JSON here")
    ap.add_argument("--short", action="store_true", help="tiny sizes (CI: it must run, it asserts nothing)")
    a = ap.parse_args()
    if a.short:
        a.tickers, a.weeks = 20, 60
    tmp = tempfile.mkdtemp(prefix="backfill-bench-")
    model = a.model or os.path.join(tmp, "model.onnx")
    if not a.model:
        from scorer_model import build as build_model
        build_model(model, seed=7)
    rows = h.make_rows(a.tickers, a.weeks, seed=3)
    inp = os.path.join(tmp, "rows.parquet")
    h.write_rows_parquet(rows, inp)
    n_rows = len(rows)
    load0 = open("/proc/loadavg").read().split()[:3]
    cores = os.cpu_count()
    results = []

    def scorer(backend, threads, extra=()):
        out = os.path.join(tmp, f"out-{backend}-{threads}-{len(extra)}")
        stdout, secs, rss = run_timed([h.scorer_bin(), "backfill", "--model", model, "--input", inp, "--output", out,
                                       "--backend", backend, "--threads", str(threads), *extra])
        rep = json.loads(stdout.strip().splitlines()[-1])
        return {"bench": "backfill", "who": f"scorer {backend}", "threads": threads, "rows": n_rows,
                "windows": rep["scored"], "secs": secs, "rows_per_s": n_rows / secs, "max_rss_bytes": rss,
                "max_rows_in_memory": int(extra[1]) if extra else 2_000_000, "groups": rep["groups"]}

    stdout, secs, rss = run_timed([sys.executable, "-c", PLAIN, inp, model, os.path.join(tmp, "plain"), "2"])
    plain = {"bench": "backfill", "who": "plain Python (pyarrow+numpy+onnxruntime)", "threads": 2, "rows": n_rows,
             "windows": int(stdout.split()[0]), "secs": secs, "rows_per_s": n_rows / secs, "max_rss_bytes": rss}
    results.append(plain)
    for backend in a.backends.split(","):
        one = scorer(backend, 1)
        allc = scorer(backend, cores)
        small = scorer(backend, cores, ("--max-rows-in-memory", str(max(n_rows // 8, 1000))))
        results += [one, allc, small]
    load1 = open("/proc/loadavg").read().split()[:3]
    print(f"\nbackfill of {n_rows} rows ({a.tickers} tickers x {a.weeks} weeks), {cores} cores, "
          f"load {' '.join(load0)} -> {' '.join(load1)}")
    print(f"{'who':45} {'threads':>7} {'rows/s':>9} {'x plain':>8} {'secs':>7} {'max RSS':>9} {'groups':>6}")
    for r in results:
        print(f"{r['who']:45} {r['threads']:>7} {r['rows_per_s']:>9.0f} {r['rows_per_s'] / plain['rows_per_s']:>8.2f} "
              f"{r['secs']:>7.2f} {r['max_rss_bytes'] / 2**20:>7.0f}MB {r.get('groups', ''):>6}")
    for r in results:
        r.update({"load_before": load0, "load_after": load1, "baseline_rows_per_s": plain["rows_per_s"]})
        print(json.dumps(r))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
