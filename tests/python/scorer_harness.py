"""Helpers for the scorer integration tests and the scorer benchmark: broker, data, offline
scoring, output readers and scorer processes. Used by test_scorer_kafka.py and
scorer_bench.py; nothing here is a test double: the broker is the real nisshi process, the
scorer the real binary, the offline reference onnxruntime."""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import signal
import socket
import subprocess
import time
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from paths import CACHE, ROOT, TARGET, binary  # noqa: F401 (CACHE: for the tests that use the harness)
SEQ = 12
DIM = 62
BASE_WEEK = dt.date(2023, 1, 6)  # a Friday
# Backend the integration tests run the scorer with (tract, ort-cpu, auto).
BACKEND = os.environ.get("SCORER_TEST_BACKEND", "ort-cpu")


def scorer_bin() -> str:
    found = binary("scorer")
    if not found:
        raise RuntimeError(f"scorer binary not built ({TARGET}): build it with scripts/test.sh")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A real nisshi broker on loopback (deploy/broker/start.sh), SQLite storage in data_dir.
    With `cert`/`key` its listener accepts only TLS; with `authentication` it requires SASL."""

    def __init__(self, data_dir: str, port: Optional[int] = None, cert: Optional[str] = None,
                 key: Optional[str] = None, authentication: bool = False):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        if cert:
            self.env.update({"BROKER_CERT": cert, "BROKER_KEY": key})
        if authentication:
            self.env["BROKER_AUTHENTICATION"] = "1"

    def start(self) -> None:
        subprocess.run([os.path.join(ROOT, "deploy/broker/start.sh"), self.data_dir, str(self.port)], check=True,
                       stdout=subprocess.DEVNULL, env=self.env)

    def stop(self) -> None:
        subprocess.run([os.path.join(ROOT, "deploy/broker/stop.sh"), self.data_dir], check=True, stdout=subprocess.DEVNULL)

    def create_topics(self, input_topic: str, partitions: int) -> Tuple[str, str]:
        preds, dlq = f"{input_topic}-predictions", f"{input_topic}-dlq"
        subprocess.run(
            [scorer_bin(), "topics", "create", "--brokers", self.address, "--input-topic", input_topic,
             "--predictions-topic", preds, "--dead-letter-topic", dlq, "--changelog-topic", f"{input_topic}-changelog",
             "--partitions", str(partitions)],
            check=True, capture_output=True,
        )
        return preds, dlq


def week(i: int) -> dt.date:
    return BASE_WEEK + dt.timedelta(weeks=i)


def make_rows(n_tickers: int, weeks: int, seed: int = 1) -> List[dict]:
    """Rows ordered (week, ticker): interleaved across tickers, in order within each."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(weeks):
        for t in range(n_tickers):
            rows.append({"ticker": f"T{t:03d}", "week": week(w), "features": rng.normal(0, 1, DIM).astype(np.float32)})
    return rows


def write_rows_parquet(rows: List[dict], path: str) -> None:
    cols = {
        "ticker": pa.array([r["ticker"] for r in rows], pa.string()),
        "week": pa.array([r["week"] for r in rows], pa.date32()),
    }
    feats = np.stack([r["features"] for r in rows]) if rows else np.zeros((0, DIM), np.float32)
    for i in range(DIM):
        cols[f"feature_{i}"] = pa.array(feats[:, i], pa.float32())
    cols["trend_7day"] = pa.array([None] * len(rows), pa.float32())
    cols["trend_30day"] = pa.array([None] * len(rows), pa.float32())
    pq.write_table(pa.table(cols), path)


def message(row: dict) -> bytes:
    return json.dumps({"ticker": row["ticker"], "week": row["week"].isoformat(), "features": [float(x) for x in row["features"]]}).encode()


def windows_by_rules(rows: Iterable[dict], gap_policy: str = "reset") -> List[Tuple[str, dt.date, dt.date, np.ndarray]]:
    """An independent implementation of DESIGN.md's window rules over *valid* rows in arrival
    order: duplicates and late weeks are skipped, gaps reset (or carry)."""
    state: Dict[str, Tuple[dt.date, List[Tuple[dt.date, np.ndarray]]]] = {}
    out = []
    for r in rows:
        t, w = r["ticker"], r["week"]
        newest, win = state.get(t, (None, []))
        if newest is not None:
            # ISO weeks: the same ISO week is a duplicate, an earlier one is late
            mon_w = w - dt.timedelta(days=w.weekday())
            mon_n = newest - dt.timedelta(days=newest.weekday())
            if mon_w <= mon_n:
                continue
            gap = (mon_w - mon_n).days // 7 > 1
            if gap and gap_policy == "reset":
                win = []
        win = (win + [(w, r["features"])])[-SEQ:]
        state[t] = (w, win)
        if len(win) == SEQ:
            out.append((t, w, win[0][0], np.stack([f for _, f in win])))
    return out


def score_offline(model_path: str, windows) -> Dict[Tuple[str, dt.date], dict]:
    import onnxruntime as ort

    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    out = {}
    for i in range(0, len(windows), 256):
        chunk = windows[i:i + 256]
        x = np.stack([w[3] for w in chunk]).astype(np.float32)
        res = dict(zip(names, sess.run(None, {"features": x})))
        def p_up(d):
            e = np.exp(d - d.max(axis=1, keepdims=True))
            return (e / e.sum(axis=1, keepdims=True))[:, 1]
        pu7, pu30 = p_up(res["7day_direction"]), p_up(res["30day_direction"])
        for j, (t, w, start, _) in enumerate(chunk):
            out[(t, w)] = {
                "window_start": start,
                "trend_7d": float(res["7day_trend"][j, 0]),
                "p_up_7d": float(pu7[j]),
                "trend_30d": float(res["30day_trend"][j, 0]),
                "p_up_30d": float(pu30[j]),
                "attention": res["attention_weights"][j].astype(np.float64),
            }
    return out


def output_files(out_dir: str) -> List[str]:
    return sorted(p for p in glob.glob(os.path.join(out_dir, "**", "*.parquet"), recursive=True) if not os.path.basename(p).startswith("."))


def read_output(out_dir: str) -> List[dict]:
    """Every row of the final files under out_dir. A file listed but gone before it is read
    (a new owner of the partition removed it as past the committed offset) restarts the read."""
    for _ in range(20):
        rows = []
        try:
            for f in output_files(out_dir):
                rows.extend(pq.read_table(f).to_pylist())
            return rows
        except FileNotFoundError:
            time.sleep(0.1)
    raise AssertionError(f"files under {out_dir} keep vanishing while read")


def compare(actual: List[dict], expected: Dict[Tuple[str, dt.date], dict], tol: float = 1e-5) -> None:
    keys = [(r["ticker"], r["week"]) for r in actual]
    dupes = len(keys) - len(set(keys))
    assert dupes == 0, f"{dupes} duplicated (ticker, week) rows"
    missing = set(expected) - set(keys)
    extra = set(keys) - set(expected)
    assert not missing and not extra, f"missing {sorted(missing)[:5]} ({len(missing)}), extra {sorted(extra)[:5]} ({len(extra)})"
    worst = 0.0
    for r in actual:
        e = expected[(r["ticker"], r["week"])]
        assert r["window_start"] == e["window_start"], (r["ticker"], r["week"], r["window_start"], e["window_start"])
        for k in ("trend_7d", "p_up_7d", "trend_30d", "p_up_30d"):
            worst = max(worst, abs(r[k] - e[k]))
        assert len(r["attention"]) == SEQ
        worst = max(worst, float(np.max(np.abs(np.asarray(r["attention"]) - e["attention"]))))
    assert worst <= tol, f"max abs difference {worst} > {tol}"


def scorer_config(path: str, *, brokers: str, topic: str, preds: str, dlq: str, group: str, model: str,
                  out_dir: str, backend: str = BACKEND, http_port: int = 0, max_rows: int = 64,
                  max_wait_ms: int = 20, file_age_ms: int = 500, extra: str = "", partition_by: str = "week",
                  changelog: Optional[str] = None, commit_interval_ms: int = 300,
                  changelog_interval_ms: int = 300) -> str:
    """A scorer TOML config; the window changelog is `{topic}-changelog` (as `Broker.create_topics`
    makes it) unless `changelog` names another ("" = none: restore by replaying the input)."""
    changelog = f"{topic}-changelog" if changelog is None else changelog
    text = f"""
[kafka]
brokers = "{brokers}"
input_topic = "{topic}"
predictions_topic = "{preds}"
dead_letter_topic = "{dlq}"
changelog_topic = "{changelog}"
group = "{group}"
session_timeout_ms = 3000
commit_interval_ms = {commit_interval_ms}
changelog_interval_ms = {changelog_interval_ms}
[model]
path = "{model}"
backend = "{backend}"
reload_interval_ms = 300
[batch]
max_rows = {max_rows}
max_wait_ms = {max_wait_ms}
[sink]
output_dir = "{out_dir}"
partition_by = "{partition_by}"
max_file_age_ms = {file_age_ms}
[http]
listen = "{'127.0.0.1:%d' % http_port if http_port else ''}"
[shutdown]
timeout_ms = 15000
{extra}
"""
    with open(path, "w") as f:
        f.write(text)
    return path


def pin_to(cpus: Optional[set]):
    """A `preexec_fn` that holds a child process to `cpus` (None: leaves it as it is). The
    affinity is set before exec, so every thread the child starts inherits it."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def pin_process(pid: int, cpus: set) -> None:
    """Holds every thread of a running process to `cpus`; threads it starts later inherit it."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            pass


class Scorer:
    """A `scorer run` process."""

    def __init__(self, config: str, log: str, env: Optional[dict] = None, args: Iterable[str] = (),
                 cpus: Optional[set] = None):
        """`cpus`: the CPUs the process (and every thread it starts) may run on [all]."""
        self.log_path = log
        self.logf = open(log, "ab")
        e = dict(os.environ)
        e.setdefault("RUST_LOG", "info,ort=warn,librdkafka=warn")
        e.update(env or {})
        self.proc = subprocess.Popen([scorer_bin(), "run", "--config", config, *args], stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=e, preexec_fn=pin_to(cpus))

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout: float = 30) -> Tuple[int, float]:
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        return rc, time.monotonic() - t

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def produce(brokers: str, topic: str, items: Iterable[Tuple[Optional[bytes], Optional[bytes]]], delay_s: float = 0.0,
            every: int = 1, timestamp_now: bool = False) -> int:
    """Produces (key, value) pairs in order with a confluent-kafka producer (lz4, idempotent)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": brokers, "compression.type": "lz4", "enable.idempotence": True, "linger.ms": 5})
    n = 0
    for key, value in items:
        while True:
            try:
                kw = {"timestamp": int(time.time() * 1000)} if timestamp_now else {}
                p.produce(topic, key=key, value=value, **kw)
                break
            except BufferError:
                p.poll(0.05)
        n += 1
        p.poll(0)
        if delay_s and n % every == 0:
            p.flush(30)
            time.sleep(delay_s)
    remaining = p.flush(120)
    assert remaining == 0, f"{remaining} messages not delivered"
    return n


def interleaved(rows: Iterable[dict]) -> List[Tuple[bytes, bytes]]:
    """(key, message) of each row in order, keyed by ticker."""
    return [(r["ticker"].encode(), message(r)) for r in rows]


def committed_and_ends(brokers: str, group: str, topic: str, partitions: int) -> Tuple[List[int], List[int]]:
    """The group's committed offset (0 when none) and the end offset of each partition."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        committed = [max(tp.offset, 0) for tp in sorted(got, key=lambda tp: tp.partition)]
        ends = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)]
        return committed, ends
    finally:
        c.close()


def consume_all(brokers: str, topic: str, expect: int, timeout: float = 60.0) -> list:
    """Reads a topic from the beginning with an independent confluent-kafka consumer."""
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": brokers, "group.id": f"reader-{time.time_ns()}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 6000})
    c.subscribe([topic])
    msgs = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(msgs) < expect:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        msgs.append(m)
    # drain a little more to catch extras
    end = time.monotonic() + 2
    while time.monotonic() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            msgs.append(m)
    c.close()
    return msgs


RESTORED = re.compile(r"windows restored partition=(\d+) committed=(\d+) rows=(\d+) changelog_records=(\d+) "
                      r"tickers=(\d+) source=\"?(\w+)\"? secs=([0-9.e-]+)")


def restores(log_text: str) -> List[tuple]:
    """The scorer's "windows restored" log lines: (partition, committed offset, input rows replayed,
    changelog records read, tickers, source, seconds) per restore, in log order."""
    return [(int(p), int(c), int(r), int(cl), int(t), src, float(secs))
            for p, c, r, cl, t, src, secs in RESTORED.findall(log_text)]


def wait_restores(scorer: "Scorer", n: int, timeout: float = 60.0) -> List[tuple]:
    """Waits until the scorer has logged n "windows restored" lines after its last "partitions
    assigned" line (a rebalance's restores follow the assignment; reading the log in between
    sees the previous assignment's restores) and returns them."""
    deadline = time.monotonic() + timeout
    after: List[tuple] = []
    while time.monotonic() < deadline:
        text = scorer.log()
        at = text.rfind("partitions assigned")
        after = restores(text[at:]) if at >= 0 else []
        if len(after) >= n:
            return after
        assert scorer.alive(), f"scorer exited early:\n{text[-4000:]}"
        time.sleep(0.2)
    raise AssertionError(f"{len(after)} of {n} restores after the last assignment:\n{scorer.log()[-4000:]}")


def wait_rows(out_dir: str, n: int, timeout: float, procs: Iterable[Scorer] = ()) -> List[dict]:
    """Waits until the output holds n rows (and nothing changes for a moment)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for p in procs:
            assert p.alive(), f"scorer exited early:\n{p.log()[-4000:]}"
        rows = read_output(out_dir)
        if len(rows) >= n:
            if last == len(rows):
                return rows
            last = len(rows)
        time.sleep(0.5)
    raise AssertionError(f"timed out with {len(read_output(out_dir))} of {n} rows")
