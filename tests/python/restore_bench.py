#!/usr/bin/env python3
"""How long a scorer takes to get its windows back on (re)assignment: from the window changelog
(the default) against replaying the whole input partition (`kafka.changelog_topic = ""`).

One topic of N tickers x W weeks on a real nisshi broker. Two consumer groups score all of it,
one with the changelog and one without, and stop cleanly; then each restarts and the script
reads the "windows restored" log lines: seconds, input rows replayed, changelog records read.
Both restores must yield the same windows (same ticker count); the ratio is printed.

    python3 tests/python/restore_bench.py [--tickers 2000] [--weeks 30] [--partitions 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scorer_harness as h  # noqa: E402
from scorer_model import build as build_model  # noqa: E402

def restores_in(path):
    with open(path, errors="replace") as f:
        return h.restores(f.read())


def run_group(broker, topic, model, tmp, name, changelog, expected, partitions):
    out = os.path.join(tmp, f"out-{name}")
    log = os.path.join(tmp, f"{name}.log")
    cfg = h.scorer_config(os.path.join(tmp, f"{name}.toml"), brokers=broker.address, topic=topic, preds="", dlq="",
                          group=f"g-{name}", model=model, out_dir=out, max_rows=256, file_age_ms=500,
                          partition_by="none", changelog=changelog, commit_interval_ms=1000,
                          changelog_interval_ms=10000,
                          extra='[kafka.extra]\n"fetch.wait.max.ms" = "20"\n')
    s = h.Scorer(cfg, log)
    t = time.monotonic()
    h.wait_rows(out, expected, 900, [s])
    scored_s = time.monotonic() - t
    rc, _ = s.terminate()
    assert rc == 0, s.log()[-3000:]
    s = h.Scorer(cfg, log)
    deadline = time.monotonic() + 600
    while len(restores_in(log)) < 2 * partitions and time.monotonic() < deadline:
        time.sleep(0.1)
    rc, _ = s.terminate()
    assert rc == 0, s.log()[-3000:]
    second = restores_in(log)[partitions:2 * partitions]
    assert len(second) == partitions, restores_in(log)
    return scored_s, second


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--weeks", type=int, default=30)
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="restore-bench-")
    model = os.path.join(tmp, "model.onnx")
    build_model(model, seed=7, preset="unidirectional")  # restore time does not depend on the model
    broker = h.Broker(os.path.join(tmp, "broker"))
    broker.start()
    try:
        topic = "restore"
        broker.create_topics(topic, args.partitions)
        rows = h.make_rows(args.tickers, args.weeks, seed=3)
        t = time.monotonic()
        h.produce(broker.address, topic, [(r["ticker"].encode(), h.message(r)) for r in rows])
        print(f"produced {len(rows)} rows in {time.monotonic() - t:.1f} s", flush=True)
        expected = args.tickers * (args.weeks - 11)
        res = {}
        for name, changelog in (("changelog", None), ("input-replay", "")):
            scored_s, second = run_group(broker, topic, model, tmp, name, changelog, expected, args.partitions)
            res[name] = second
            secs = max(r[6] for r in second)
            print(f"{name:13} scored {expected} in {scored_s:.1f} s; restore: slowest partition {secs:.3f} s, "
                  f"sum {sum(r[6] for r in second):.3f} s, input rows replayed {sum(r[2] for r in second)}, "
                  f"changelog records read {sum(r[3] for r in second)}, tickers {sum(r[4] for r in second)}", flush=True)
        a, b = res["changelog"], res["input-replay"]
        assert sum(r[4] for r in a) == sum(r[4] for r in b) == args.tickers, (a, b)
        ratio = sum(r[6] for r in b) / max(sum(r[6] for r in a), 1e-9)
        print(f"\n{args.tickers} tickers x {args.weeks} weeks, {args.partitions} partitions: "
              f"restore from the input replay / from the changelog = x{ratio:.1f} (summed over partitions)")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
