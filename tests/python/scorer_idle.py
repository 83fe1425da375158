#!/usr/bin/env python3
"""What an idle scorer costs: CPU per thread of a `scorer run` with nothing to score.

A production scorer waits most of its life. This starts the real broker (nisshi on loopback)
and one scorer on an empty topic, lets it join its group, then samples /proc for --seconds:
the CPU of each of the scorer's threads (by name) and of the broker, as percent of one core.
Asserts nothing about speed.

    python3 tests/python/scorer_idle.py [--seconds 20] [--backend tract]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scorer_harness as h  # noqa: E402
from scorer_bench import broker_pid, cpu_seconds, wait_ready  # noqa: E402
from scorer_model import build as build_model  # noqa: E402


def thread_cpu(pid: int) -> dict:
    """CPU seconds so far of each live thread of `pid`, summed by thread name."""
    out: dict = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
        except OSError:
            continue  # the thread ended meanwhile
        name = head.split("(", 1)[1]
        fields = tail.split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--backend", default="tract")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="scorer-idle-")
    model = os.path.join(tmp, "model.onnx")
    build_model(model, seed=7, preset="default")
    broker = h.Broker(os.path.join(tmp, "broker"))
    broker.start()
    try:
        topic = "idle"
        broker.create_topics(topic, 2)
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        cfg = h.scorer_config(os.path.join(tmp, "scorer.toml"), brokers=broker.address, topic=topic,
                              preds=f"{topic}-predictions", dlq=f"{topic}-dlq", group="idle", model=model,
                              out_dir=out, backend=args.backend, commit_interval_ms=5000,
                              changelog_interval_ms=10000)
        s = h.Scorer(cfg, os.path.join(tmp, "scorer.log"))
        try:
            wait_ready(s.log_path, s.proc, settle=3.0)
            bpid = broker_pid(broker)
            t0, c0, b0 = time.monotonic(), thread_cpu(s.proc.pid), cpu_seconds(bpid)
            time.sleep(args.seconds)
            el, c1, b1 = time.monotonic() - t0, thread_cpu(s.proc.pid), cpu_seconds(bpid)
        finally:
            s.terminate()
    finally:
        broker.stop()
    per = {k: 100 * (v - c0.get(k, 0.0)) / el for k, v in c1.items()}
    print(f"idle {el:.1f} s, % of one core ({os.sysconf('SC_CLK_TCK')} ticks/s):")
    for name, pct in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"  {name:24} {pct:6.2f}")
    print(f"  {'scorer, all threads':24} {sum(per.values()):6.2f}")
    print(f"  {'broker':24} {100 * (b1 - b0) / el:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
