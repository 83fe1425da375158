#!/usr/bin/env python3
"""Resident memory of one scorer instance against the number of tickers it holds windows for.

For each ticker count (--tickers, comma-separated) a fresh topic gets every ticker's --weeks
weekly rows (so every ticker holds a full 12-week window), a scorer (`scorer run`, the
benchmark's settings, --backend) drains it, and once every prediction is durable the
process's resident memory (VmRSS) and peak (VmHWM) are read from /proc. The slope between the
smallest and the largest count is the memory per 1,000 tickers (windows, changelog shadow,
per-ticker state); the intercept is what an instance costs before its first ticker (model
sessions, librdkafka, buffers). Runs against the real nisshi broker on loopback. Asserts
nothing about size.

    python3 tests/python/scorer_memory.py [--tickers 500,5000] [--weeks 14] [--backend ort-cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scorer_bench as sb  # noqa: E402
import scorer_harness as h  # noqa: E402
from scorer_model import build as build_model  # noqa: E402


def mib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(broker, model, tmp, backend: str, tickers: int, weeks: int) -> dict:
    topic = f"mem-{tickers}-{time.time_ns()}"
    broker.create_topics(topic, 2)
    out = os.path.join(tmp, f"out-{topic}")
    os.makedirs(out)
    rows = h.make_rows(tickers, weeks, seed=3)
    h.produce(broker.address, topic, h.interleaved(rows))
    expected = tickers * (weeks - 11)
    proc, log = sb.start_consumer(backend, broker, topic, f"g-{topic}", model, out, tmp, 1024, h.free_port())
    try:
        sb.wait_ready(log, proc, settle=0.0)
        ready_rss = mib(proc.pid, "VmRSS")
        sb.wait_drained(out, expected, proc, log, poll=0.1, timeout=600)
        time.sleep(1.0)  # let the last commit and changelog write settle
        return {"tickers": tickers, "rows": len(rows), "ready_rss_mib": ready_rss,
                "rss_mib": mib(proc.pid, "VmRSS"), "peak_rss_mib": mib(proc.pid, "VmHWM")}
    finally:
        proc.terminate()
        proc.wait(30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickers", default="500,5000", help="ticker counts, comma-separated")
    ap.add_argument("--weeks", type=int, default=14, help="weeks per ticker (12 fill a window)")
    ap.add_argument("--backend", default="ort-cpu")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    counts = sorted(int(x) for x in args.tickers.split(","))
    tmp = tempfile.mkdtemp(prefix="scorer-memory-")
    model = os.path.join(tmp, "model.onnx")
    build_model(model, seed=7, preset="default")
    broker = h.Broker(os.path.join(tmp, "broker"))
    broker.start()
    try:
        results = [measure(broker, model, tmp, args.backend, n, args.weeks) for n in counts]
    finally:
        broker.stop()
    print(f"scorer run, backend {args.backend}, {args.weeks} weeks per ticker, 2 partitions")
    print(f"{'tickers':>8} {'rows':>8} {'RSS ready MiB':>14} {'RSS drained MiB':>16} {'peak MiB':>9}")
    for r in results:
        print(f"{r['tickers']:8d} {r['rows']:8d} {r['ready_rss_mib']:14.0f} {r['rss_mib']:16.0f} {r['peak_rss_mib']:9.0f}")
    if len(results) > 1:
        a, b = results[0], results[-1]
        slope = (b["rss_mib"] - a["rss_mib"]) / (b["tickers"] - a["tickers"]) * 1000
        print(f"per 1,000 tickers: {slope:.1f} MiB resident (drained, {a['tickers']} -> {b['tickers']} tickers)")
        results.append({"per_1000_tickers_mib": slope})
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
