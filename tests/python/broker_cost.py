#!/usr/bin/env python3
"""What the co-located broker costs a consumer, measured in broker CPU (nisshi on loopback).

Why the stream benchmark's broker share matters: on a two-core machine every core-second the
broker takes is one the model does not get (README, "Where the stream's time goes"). This
starts a broker, fills a topic with N tickers x W weeks of feature rows (the scorer's input
messages), and measures the broker's CPU (user + system, /proc) for a bare confluent-kafka
consumer:
  1. idle: subscribed to an empty topic, at each --idle-waits fetch.wait.max.ms;
  2. draining the backlog at --rate messages/s (0: as fast as it can), for each variant:
     librdkafka's defaults, and with prefetch queues (queued.max.messages.kbytes) of
     --queues KB, all at --fetch-wait-ms.
Prints one line per measurement: messages/s, broker microseconds per message, broker share
of one core. Asserts nothing about speed.

    python3 tests/python/broker_cost.py [--tickers 200] [--weeks 300] [--rate 6000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scorer_harness as h  # noqa: E402
from scorer_bench import broker_pid, cpu_seconds  # noqa: E402


def idle_cost(broker, topic, wait_ms, seconds):
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": broker.address, "group.id": f"idle-{time.time_ns()}",
                  "auto.offset.reset": "earliest", "fetch.wait.max.ms": wait_ms})
    c.subscribe([topic])
    end = time.monotonic() + 3  # join the group first
    while time.monotonic() < end:
        c.poll(0.2)
    bp = broker_pid(broker)
    c0, t0 = cpu_seconds(bp), time.monotonic()
    while time.monotonic() - t0 < seconds:
        c.poll(0.2)
    share = (cpu_seconds(bp) - c0) / (time.monotonic() - t0)
    c.close()
    return share


def drain_cost(broker, topic, expect, rate, settings):
    """(messages/s, broker CPU seconds per message, broker share of one core)."""
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": broker.address, "group.id": f"drain-{time.time_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False, **settings})
    c.subscribe([topic])
    bp = broker_pid(broker)
    n, t0, c0 = 0, None, 0.0
    while n < expect:
        msgs = c.consume(600, 1.0)
        if msgs and t0 is None:
            t0, c0 = time.monotonic(), cpu_seconds(bp)
        n += sum(1 for m in msgs if not m.error())
        if t0 is not None and rate > 0:
            ahead = t0 + n / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    el = time.monotonic() - t0
    cpu = cpu_seconds(bp) - c0
    c.close()
    return n / el, cpu / n, cpu / el


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickers", type=int, default=200)
    ap.add_argument("--weeks", type=int, default=300)
    ap.add_argument("--rate", type=float, default=6000.0, help="messages/s the consumer takes (0: unthrottled)")
    ap.add_argument("--fetch-wait-ms", type=int, default=20, help="fetch.wait.max.ms while draining (default 20, as the benchmarks)")
    ap.add_argument("--idle-waits", default="20,100,500", help="fetch.wait.max.ms values of the idle measurement")
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    ap.add_argument("--queues", default="2048,8192,16384", help="queued.max.messages.kbytes variants")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="broker-cost-")
    broker = h.Broker(os.path.join(tmp, "broker"))
    broker.start()
    try:
        broker.create_topics("idle", 2)
        for w in [int(x) for x in args.idle_waits.split(",") if x]:
            print(f"idle consumer, fetch.wait.max.ms {w:4d}: broker {idle_cost(broker, 'idle', w, args.idle_seconds):6.1%} of a core",
                  flush=True)
        rows = h.make_rows(args.tickers, args.weeks, seed=1)
        broker.create_topics("backlog", 2)
        h.produce(broker.address, "backlog", h.interleaved(rows))
        variants = [("librdkafka defaults", {})] + [
            (f"queued.max.messages.kbytes {q}", {"queued.max.messages.kbytes": q})
            for q in [int(x) for x in args.queues.split(",") if x]]
        for name, extra in variants:
            settings = {"fetch.wait.max.ms": args.fetch_wait_ms, **extra}
            rate, per, share = drain_cost(broker, "backlog", len(rows), args.rate, settings)
            print(f"drain, {name:34s} {rate:8.0f} msg/s  broker {per * 1e6:6.1f} us/msg  {share:6.1%} of a core", flush=True)
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
