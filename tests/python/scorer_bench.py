#!/usr/bin/env python3
"""End-to-end scorer benchmark: topic -> durable Parquet, against the real nisshi broker.

For each backend (tract; ort-cpu when an ONNX Runtime shared library is found) and for a
minimal Python consumer doing the same job (confluent-kafka + onnxruntime + pyarrow: windows
per ticker, micro-batches, zstd Parquet written to a temp name, fsynced, renamed, offsets
committed after), it measures in the same run:
  1. throughput: N tickers x W weeks already in the topic, then the consumer started: rows/s
     from the moment it owns its partitions to the last prediction durable, and the share of
     that time in inference;
  2. latency: a steady produce rate, produce->durable-Parquet p50/p99 (file appearance time).
Kinds (--backends): tract, ort-cpu, python; `<backend>-nolog` without the window changelog;
`<backend>-s3` writing to s3:// on a moto server on loopback (throughput only).
Prints a table and the scorer/python ratios.

With --pin the broker (and this script) run on one CPU of their own and every consumer on the
others, as when the broker runs on another machine; each scorer backend's inference-only
windows/s is then measured on the consumers' CPUs in the same run (`exporter bench`, batch
--max-rows), and the table gains stream/inference: what the scorer delivers of what its model
alone can do on the cores it has.

    python3 tests/python/scorer_bench.py [--tickers 200] [--weeks 40] [--rate 200] [--seconds 10]
                                         [--pin] [--throughput-only]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scorer_harness as h  # noqa: E402
from scorer_model import build as build_model  # noqa: E402

PY_CONSUMER = r'''
import json, os, sys, time
import numpy as np, onnxruntime as ort, pyarrow as pa, pyarrow.parquet as pq
from confluent_kafka import Consumer
brokers, topic, group, model, out, max_rows, fetch_wait_ms = sys.argv[1:8]
max_rows = int(max_rows)
so = ort.SessionOptions(); so.intra_op_num_threads = len(os.sched_getaffinity(0))  # the CPUs it may use
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
names = [o.name for o in sess.get_outputs()]
c = Consumer({"bootstrap.servers": brokers, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 3000, "fetch.wait.max.ms": int(fetch_wait_ms)})
c.subscribe([topic], on_assign=lambda c, ps: print("ready", flush=True))
win = {}; newest = {}; pend = []; last_msgs = []; infer_s = 0.0; nfile = 0
schema = pa.schema([("ticker", pa.string()), ("week", pa.date32()), ("trend_7d", pa.float32()), ("p_up_7d", pa.float32()),
                    ("trend_30d", pa.float32()), ("p_up_30d", pa.float32()), ("attention", pa.list_(pa.float32())),
                    ("source_partition", pa.int32()), ("source_offset", pa.int64())])
def flush():
    global pend, last_msgs, infer_s, nfile
    if pend:
        x = np.stack([p[3] for p in pend]).astype(np.float32)
        t = time.perf_counter(); r = dict(zip(names, sess.run(None, {"features": x}))); infer_s += time.perf_counter() - t
        def pu(d):
            e = np.exp(d - d.max(1, keepdims=True)); return (e / e.sum(1, keepdims=True))[:, 1]
        import datetime as dt
        tbl = pa.table({"ticker": [p[0] for p in pend], "week": [dt.date.fromisoformat(p[1]) for p in pend],
                        "trend_7d": r["7day_trend"][:, 0], "p_up_7d": pu(r["7day_direction"]).astype(np.float32),
                        "trend_30d": r["30day_trend"][:, 0], "p_up_30d": pu(r["30day_direction"]).astype(np.float32),
                        "attention": list(r["attention_weights"]), "source_partition": [p[4] for p in pend],
                        "source_offset": [p[5] for p in pend]}, schema=schema)
        name = f"py-{pend[0][4]}-{pend[0][5]}-{nfile}.parquet"; nfile += 1
        tmp = os.path.join(out, "." + name)
        pq.write_table(tbl, tmp, compression="zstd")
        fd = os.open(tmp, os.O_RDONLY); os.fsync(fd); os.close(fd)
        os.rename(tmp, os.path.join(out, name))
    if last_msgs:
        c.commit(offsets=None, asynchronous=True) if False else c.commit(asynchronous=True)
    pend = []; last_msgs = []
deadline = None; since = None
while True:
    m = c.poll(0.02)
    if m is not None and not m.error():
        d = json.loads(m.value()); t = d["ticker"]; w = d["week"]
        if newest.get(t) is None or w > newest[t]:
            newest[t] = w
            q = win.setdefault(t, []); q.append(np.asarray(d["features"], np.float32)); del q[:-12]
            if len(q) == 12: pend.append((t, w, None, np.stack(q), m.partition(), m.offset()))
        last_msgs.append(m); since = since or time.monotonic()
    if len(pend) >= max_rows or (since and time.monotonic() - since > 0.2):
        flush(); since = None
        sys.stdout.write(f"infer_s {infer_s}\n"); sys.stdout.flush()
'''


def ort_dylib():
    try:
        import onnxruntime
        d = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
        libs = sorted(glob.glob(os.path.join(d, "libonnxruntime.so*")))
        return libs[0] if libs else None
    except ImportError:
        return None


class S3Out:
    """An s3:// output on a moto server (the `<backend>-s3` kinds): rows counted from the
    objects' Parquet footers, each object read once."""

    def __init__(self, tmp):
        from test_scorer_s3 import Moto

        self.moto = Moto(open(os.path.join(tmp, "moto.log"), "wb"))
        self.moto.bucket("bench")
        self.seen = {}

    def count(self, prefix):
        import pyarrow.fs as pafs

        fs = pafs.S3FileSystem(endpoint_override=self.moto.endpoint, scheme="http", access_key="testing",
                               secret_key="testing", region="us-east-1")
        for key, _ in self.moto.keys("bench", prefix):
            if key.endswith(".parquet") and "/_trendscore_uploads/" not in key and key not in self.seen:
                self.seen[key] = pq.ParquetFile(fs.open_input_file(f"bench/{key}")).metadata.num_rows
        return sum(n for k, n in self.seen.items() if k.startswith(prefix))


S3 = None


ROWS_IN_FILE = {}  # durable files never change: each footer is read once


def count_rows(out):
    """Rows in the durable files under `out`, polled by the clock loop: each file's footer is
    read once, so the measuring costs the consumer under test little CPU."""
    if out.startswith("s3://"):
        return S3.count(out.removeprefix("s3://bench/"))
    n = 0
    for f in glob.glob(os.path.join(out, "**", "*.parquet"), recursive=True):
        if not os.path.basename(f).startswith("."):
            if f not in ROWS_IN_FILE:
                ROWS_IN_FILE[f] = pq.ParquetFile(f).metadata.num_rows
            n += ROWS_IN_FILE[f]
    return n


class FileWatcher(threading.Thread):
    """Notes when each durable file first appears; maps its rows to that time."""

    def __init__(self, out):
        super().__init__(daemon=True)
        self.out, self.seen, self.stop_flag = out, {}, False

    def run(self):
        while not self.stop_flag:
            now = time.time()
            for f in glob.glob(os.path.join(self.out, "**", "*.parquet"), recursive=True):
                if not os.path.basename(f).startswith(".") and f not in self.seen:
                    self.seen[f] = now
            time.sleep(0.01)

    def durable_times(self):
        t = {}
        for f, seen in self.seen.items():
            tbl = pq.read_table(f, columns=["ticker", "week"])
            for tk, wk in zip(tbl.column("ticker").to_pylist(), tbl.column("week").to_pylist()):
                t[(tk, wk.isoformat())] = seen
        return t


COMMIT_INTERVAL_MS = 300  # --commit-interval-ms
CHANGELOG_INTERVAL_MS = 10000  # --changelog-interval-ms
FETCH_WAIT_MS = 20  # --fetch-wait-ms
SCORER_EXTRA = {}  # --scorer-kafka KEY=VALUE
CONSUMER_CPUS = None  # --pin: the CPUs every consumer runs on (None: all)
BROKER_CPUS = None  # --pin: the CPU the broker and this script run on


def start_consumer(kind, broker, topic, group, model, out, tmp, max_rows, http_port):
    if kind == "python":
        script = os.path.join(tmp, "py_consumer.py")
        with open(script, "w") as f:
            f.write(PY_CONSUMER)
        log = open(os.path.join(tmp, f"{group}.log"), "wb")
        p = subprocess.Popen([sys.executable, script, broker.address, topic, group, model, out, str(max_rows),
                              str(FETCH_WAIT_MS)], stdout=log, stderr=subprocess.STDOUT,
                             preexec_fn=h.pin_to(CONSUMER_CPUS))
        return p, log.name
    # "<backend>-nolog": the same without the window changelog (restores replay the input)
    backend = kind.removesuffix("-s3").removesuffix("-nolog")
    changelog = "" if kind.endswith("-nolog") else None
    # Same client setting as the Python consumer above: short fetch waits (the broker answers
    # a fetch only when fetch.wait.max.ms expires, 500 ms by default).
    extra = f'[kafka.extra]\n"fetch.wait.max.ms" = "{FETCH_WAIT_MS}"\n' + "".join(
        f'"{k}" = "{v}"\n' for k, v in SCORER_EXTRA.items())
    cfg = h.scorer_config(os.path.join(tmp, f"{group}.toml"), brokers=broker.address, topic=topic, preds="", dlq="",
                          group=group, model=model, out_dir=out, backend=backend, http_port=http_port,
                          max_rows=max_rows, max_wait_ms=20, file_age_ms=200, extra=extra, partition_by="none",
                          changelog=changelog, commit_interval_ms=COMMIT_INTERVAL_MS,
                          changelog_interval_ms=CHANGELOG_INTERVAL_MS)
    env = S3.moto.env() if out.startswith("s3://") else {}
    if backend == "ort-cpu":
        env["SCORER__MODEL__ORT_DYLIB_PATH"] = ort_dylib()
    s = h.Scorer(cfg, os.path.join(tmp, f"{group}.log"), env=env, cpus=CONSUMER_CPUS)
    return s.proc, s.log_path


def wait_ready(log_path, proc, timeout=60, settle=0.5):
    """Waits until the consumer owns its partitions (then `settle` seconds more)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, open(log_path, errors="replace").read()[-3000:]
        text = open(log_path, errors="replace").read()
        if "partitions assigned" in text or "windows restored" in text or text.startswith("ready") or "\nready" in text:
            time.sleep(settle)
            return
        time.sleep(0.1)
    raise RuntimeError(f"consumer not ready: {open(log_path).read()[-2000:]}")


def wait_drained(out, expected, proc, log_path, poll=0.02, timeout=None):
    """Waits until `expected` predictions are durable under `out`, failing if the consumer
    exits first (or, with `timeout`, if it takes longer than that many seconds)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while count_rows(out) < expected:
        assert proc.poll() is None, open(log_path, errors="replace").read()[-3000:]
        assert deadline is None or time.monotonic() < deadline, \
            f"the consumer did not make {expected} predictions durable in {timeout} s"
        time.sleep(poll)


def inference_stats(kind, log_path, http_port):
    """(seconds spent in inference, mean windows per inference call), from one read of the
    scorer's /metrics (the Python consumer logs its seconds; its flushes are not counted)."""
    nan = float("nan")
    if kind == "python":
        vals = re.findall(r"infer_s ([0-9.e-]+)", open(log_path).read())
        return (float(vals[-1]) if vals else nan), nan
    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5).read().decode()

    def metric(name):
        m = re.search(rf"{name} ([0-9.e+-]+)", text)
        return float(m.group(1)) if m else nan

    calls = metric("scorer_batch_size_count")
    return metric("scorer_inference_seconds_sum"), (metric("scorer_batch_size_sum") / calls if calls else nan)


def cpu_seconds(pid):
    """User + system CPU seconds a live process has used so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def allowed_cpus(pid):
    """The CPUs every thread of a live process may run on, as the kernel reports them (the
    union over its threads; /proc/<pid>/task/*/status `Cpus_allowed_list`)."""
    cpus = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            text = open(f"/proc/{pid}/task/{tid}/status").read()
        except OSError:
            continue
        spec = re.search(r"^Cpus_allowed_list:\s*(\S+)", text, re.M).group(1)
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    return sorted(cpus)


def broker_pid(broker):
    with open(os.path.join(broker.data_dir, "broker.pid")) as f:
        return int(f.read().strip())


def bench_one(kind, broker, model, args, tmp):
    res = {}
    # 1. throughput
    topic = f"bench-tp-{kind}-{time.time_ns()}"
    broker.create_topics(topic, 2)
    out = os.path.join(tmp, f"out-{topic}")
    if kind.endswith("-s3"):
        out = f"s3://bench/{topic}"
    else:
        os.makedirs(out)
    rows = h.make_rows(args.tickers, args.weeks, seed=1)
    items = [(r["ticker"].encode(), h.message(r)) for r in rows]
    expected = args.tickers * (args.weeks - 11)
    port = h.free_port()
    # the rows are in the topic before the consumer starts; the clock starts once it owns
    # its partitions (group join and model load are not timed)
    h.produce(broker.address, topic, items)
    proc, log = start_consumer(kind, broker, topic, f"g-{topic}", model, out, tmp, args.max_rows, port)
    try:
        wait_ready(log, proc, settle=0.0)
        bpid = broker_pid(broker)
        cpu0 = (cpu_seconds(proc.pid), cpu_seconds(bpid))
        t0 = time.monotonic()
        wait_drained(out, expected, proc, log)
        el = time.monotonic() - t0
        # where the CPU went while the topic drained: the consumer's own process and the
        # broker's, as shares of every core's time (the rest: this script, idle, others); with
        # --pin, each as a share of the CPUs it was given
        cores = os.cpu_count() or 1
        res["consumer_cpu_share"] = (cpu_seconds(proc.pid) - cpu0[0]) / (el * len(CONSUMER_CPUS or range(cores)))
        res["broker_cpu_share"] = (cpu_seconds(bpid) - cpu0[1]) / (el * len(BROKER_CPUS or range(cores)))
        res["rows_per_s"] = len(rows) / el
        if args.pin:  # where the kernel let them run, read back (not the request)
            res["consumer_cpus"], res["broker_cpus"] = allowed_cpus(proc.pid), allowed_cpus(bpid)
        res["preds_per_s"] = expected / el
        seconds, res["mean_batch"] = inference_stats(kind, log, port)
        res["infer_share"] = seconds / el
    finally:
        proc.terminate(); proc.wait(30)
    if kind.endswith("-s3") or args.throughput_only:
        return res  # throughput only (the latency phase watches local files)
    # 2. latency at a steady rate
    topic = f"bench-lat-{kind}-{time.time_ns()}"
    broker.create_topics(topic, 2)
    out = os.path.join(tmp, f"out-{topic}")
    os.makedirs(out)
    # warm windows: 11 weeks first (not timed), then the timed weeks
    weeks_needed = 11 + int(np.ceil(args.rate * args.seconds / args.tickers))
    rows = h.make_rows(args.tickers, weeks_needed, seed=2)
    warm = [r for r in rows if r["week"] < h.week(11)]
    timed = [r for r in rows if r["week"] >= h.week(11)]
    proc, log = start_consumer(kind, broker, topic, f"g-{topic}", model, out, tmp, args.max_rows, port)
    watcher = FileWatcher(out)
    watcher.start()
    try:
        wait_ready(log, proc)
        h.produce(broker.address, topic, [(r["ticker"].encode(), h.message(r)) for r in warm])
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": broker.address, "compression.type": "lz4", "linger.ms": 0})
        sent = {}
        interval = 1.0 / args.rate
        t_next = time.monotonic()
        for r in timed:
            now = time.monotonic()
            if t_next > now:
                time.sleep(t_next - now)
            t_next += interval
            sent[(r["ticker"], r["week"].isoformat())] = time.time()
            p.produce(topic, key=r["ticker"].encode(), value=h.message(r), timestamp=int(time.time() * 1000))
            p.poll(0)
        p.flush(30)
        deadline = time.monotonic() + 60
        while count_rows(out) < len(timed) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        watcher.stop_flag = True
        watcher.join()
        dur = watcher.durable_times()
        lat = np.array([dur[k] - t for k, t in sent.items() if k in dur]) * 1000
        res["lat_p50_ms"] = float(np.percentile(lat, 50)) if len(lat) else float("nan")
        res["lat_p99_ms"] = float(np.percentile(lat, 99)) if len(lat) else float("nan")
        res["lat_n"] = int(len(lat))
    finally:
        watcher.stop_flag = True
        proc.terminate(); proc.wait(30)
    return res


def inference_only(kind, model, args, tmp):
    """The backend's inference-only windows/s at batch --max-rows on the consumers' CPUs
    (`exporter bench`, threads = those CPUs), for --pin's stream/inference ratio."""
    from safetensors.numpy import save_file

    backend = kind.removesuffix("-s3").removesuffix("-nolog")
    inputs = os.path.join(tmp, "inference-inputs.safetensors")
    if not os.path.exists(inputs):
        save_file({"features": np.random.default_rng(3).standard_normal((args.max_rows, 12, 62)).astype(np.float32)},
                  inputs)
    out = os.path.join(tmp, f"inference-{backend}.json")
    env = dict(os.environ)
    if backend == "ort-cpu":
        env["ORT_DYLIB_PATH"] = ort_dylib()
    subprocess.run([h.binary("exporter"), "bench", "--model", model, "--inputs", inputs, "--backend", backend,
                    "--threads", str(len(CONSUMER_CPUS)), "--batches", str(args.max_rows),
                    "--seconds", str(args.inference_seconds), "--json", out],
                   check=True, capture_output=True, env=env, preexec_fn=h.pin_to(CONSUMER_CPUS))
    return json.load(open(out))[0]["windows_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickers", type=int, default=200)
    ap.add_argument("--weeks", type=int, default=40)
    ap.add_argument("--rate", type=float, default=200.0, help="messages/s in the latency phase")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--preset", default="default", help="make_checkpoint preset of the model")
    ap.add_argument("--backends", default="tract,ort-cpu,python")
    ap.add_argument("--max-rows", type=int, default=1024,
                    help="the scorer's batch.max_rows, the Python consumer's batch (default 1024, as the scorer's)")
    ap.add_argument("--json-out", help="also write the figures as JSON here")
    ap.add_argument("--commit-interval-ms", type=int, default=300,
                    help="the scorer's kafka.commit_interval_ms (production default 5000)")
    ap.add_argument("--changelog-interval-ms", type=int, default=10000,
                    help="the scorer's kafka.changelog_interval_ms (default 10000)")
    ap.add_argument("--fetch-wait-ms", type=int, default=20,
                    help="fetch.wait.max.ms of both consumers (default 20: the broker holds every fetch this long "
                         "when it has nothing new, so it bounds latency, and each held fetch costs broker CPU)")
    ap.add_argument("--scorer-kafka", action="append", default=[], metavar="KEY=VALUE",
                    help="a librdkafka setting for the scorer's clients (kafka.extra), for experiments; repeatable")
    ap.add_argument("--pin", action="store_true",
                    help="the broker and this script on the last CPU, the consumers on the others; adds each "
                         "backend's inference-only rate on the consumers' CPUs and stream/inference")
    ap.add_argument("--inference-seconds", type=float, default=3.0,
                    help="with --pin: seconds of the inference-only measurement per backend (default 3)")
    ap.add_argument("--throughput-only", action="store_true", help="skip the latency phase")
    args = ap.parse_args()
    global COMMIT_INTERVAL_MS, CHANGELOG_INTERVAL_MS, FETCH_WAIT_MS, CONSUMER_CPUS, BROKER_CPUS
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            ap.error(f"--pin needs two CPUs or more; this process may use {cpus}")
        BROKER_CPUS, CONSUMER_CPUS = {cpus[-1]}, set(cpus[:-1])
    SCORER_EXTRA.update(kv.split("=", 1) for kv in args.scorer_kafka)
    FETCH_WAIT_MS = args.fetch_wait_ms
    COMMIT_INTERVAL_MS = args.commit_interval_ms
    CHANGELOG_INTERVAL_MS = args.changelog_interval_ms
    tmp = tempfile.mkdtemp(prefix="scorer-bench-")
    model = os.path.join(tmp, "model.onnx")
    how = build_model(model, seed=7, preset=args.preset)
    broker = h.Broker(os.path.join(tmp, "broker"))
    broker.start()
    if BROKER_CPUS:
        h.pin_process(broker_pid(broker), BROKER_CPUS)
        os.sched_setaffinity(0, BROKER_CPUS)  # this script's produce and polling stay off the consumers' CPUs
    results = {}
    global S3
    if any(k.endswith("-s3") for k in args.backends.split(",")):
        S3 = S3Out(tmp)
    try:
        for kind in args.backends.split(","):
            if kind.startswith("ort-cpu") and not ort_dylib():
                print("ort-cpu: no libonnxruntime.so found, skipped")
                continue
            results[kind] = bench_one(kind, broker, model, args, tmp)
            if args.pin and kind != "python":
                results[kind]["inference_only_per_s"] = inference_only(kind, model, args, tmp)
            print(kind, json.dumps(results[kind]), flush=True)
    finally:
        broker.stop()
        if S3:
            S3.moto.stop()
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f)
    print(f"\nmodel: preset {args.preset} ({how}); data {args.tickers} tickers x {args.weeks} weeks; latency at {args.rate}/s for {args.seconds}s")
    if args.pin:
        print(f"pinned: consumers on CPUs {sorted(CONSUMER_CPUS)}, the broker and this script on {sorted(BROKER_CPUS)}; "
              "cpu%: share of the CPUs each was given")
    else:
        print("cpu%: share of all cores' time while the topic drained, the consumer's process / the broker's")
    print(f"{'consumer':14} {'rows/s':>10} {'preds/s':>10} {'infer%':>7} {'cpu%':>11} {'p50 ms':>8} {'p99 ms':>8}")
    for k, r in results.items():
        cpu = f"{100*r['consumer_cpu_share']:.0f} / {100*r['broker_cpu_share']:.0f}"
        print(f"{k:14} {r['rows_per_s']:10.0f} {r['preds_per_s']:10.0f} {100*r['infer_share']:6.1f}% {cpu:>11} "
              f"{r.get('lat_p50_ms', float('nan')):8.1f} {r.get('lat_p99_ms', float('nan')):8.1f}")
    if "python" in results:
        base = results["python"]
        for k, r in results.items():
            if k != "python" and "lat_p50_ms" in r:
                print(f"ratio {k}/python: throughput x{r['rows_per_s']/base['rows_per_s']:.2f}, p50 latency x{r['lat_p50_ms']/base['lat_p50_ms']:.2f}")
            elif k != "python":
                print(f"ratio {k}/python: throughput x{r['rows_per_s']/base['rows_per_s']:.2f}")
    for k, r in results.items():
        if "inference_only_per_s" in r:
            print(f"ratio {k} stream/inference only on CPUs {r['consumer_cpus']}: {r['preds_per_s']:.0f} / "
                  f"{r['inference_only_per_s']:.0f} = x{r['preds_per_s']/r['inference_only_per_s']:.2f}")


if __name__ == "__main__":
    main()
