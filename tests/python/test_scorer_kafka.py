"""Integration tests of `scorer run` / `scorer backfill` / `scorer replay` against a real
nisshi broker (tansu's successor) on loopback, the real scorer binary and onnxruntime as the offline reference.

Run: python3 -m pytest -x -q tests/python/test_scorer_kafka.py
Needs: the nisshi binary (deploy/broker/install.sh), the scorer binary
(cargo build -p trendscore-scorer), python packages confluent-kafka, onnxruntime, pyarrow,
duckdb, torch (test model).
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.request

import numpy as np
import pytest

import scorer_harness as h
from scorer_model import build as build_model


def setup_topic(broker, name, partitions):
    preds, dlq = broker.create_topics(name, partitions)
    return preds, dlq


def test_backfill_matches_onnxruntime_and_reads_with_duckdb(tmp_path, model):
    rows = h.make_rows(5, 20, seed=3)
    inp = str(tmp_path / "rows.parquet")
    h.write_rows_parquet(rows, inp)
    out = tmp_path / "out"
    import subprocess

    r = subprocess.run([h.scorer_bin(), "backfill", "--model", model, "--input", inp, "--output", str(out), "--backend", h.BACKEND],
                       capture_output=True, text=True, check=True)
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["scored"] == 5 * (20 - 11)
    actual = h.read_output(str(out))
    h.compare(actual, h.score_offline(model, h.windows_by_rules(rows)))
    assert all(a["source_partition"] is None and a["source_offset"] is None for a in actual)
    import duckdb

    files = h.output_files(str(out))
    n, types = duckdb.connect().execute(f"select count(*), typeof(any_value(scored_at)) from read_parquet({files!r})").fetchone()
    assert n == 45 and "TIMESTAMP" in types.upper()


def model_info(metrics: str) -> list:
    """(backend, model_version) of every scorer_model_info series at 1."""
    return sorted(re.findall(r'^scorer_model_info\{backend="([^"]*)",model_version="([^"]*)"\} 1$', metrics, re.M))


def assert_served(series: list, backend: str, version: str) -> None:
    """One model is served, `version` on `backend` (`auto`: whichever backend it chose)."""
    assert len(series) == 1, series
    (got_backend, got_version), = series
    assert got_version == version, series
    assert got_backend == backend or (backend == "auto" and got_backend in {"ort-cuda", "ort-cpu", "tract"}), series


@pytest.mark.parametrize("backend", sorted({h.BACKEND, "tract"}))
def test_exact_output_and_predictions_topic(tmp_path, broker, model, backend):
    topic = f"exact-{backend}"
    preds, dlq = setup_topic(broker, topic, 3)
    n_tickers, weeks = 6, 30
    rows = h.make_rows(n_tickers, weeks, seed=11)
    inp = str(tmp_path / "rows.parquet")
    h.write_rows_parquet(rows, inp)
    import subprocess

    r = subprocess.run([h.scorer_bin(), "replay", "--input", inp, "--brokers", broker.address, "--topic", topic],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip() == str(len(rows))
    out = str(tmp_path / "out")
    port = h.free_port()
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic=topic, preds=preds, dlq=dlq,
                          group=f"g-{topic}", model=model, out_dir=out, http_port=port, backend=backend)
    s = h.Scorer(cfg, str(tmp_path / "scorer.log"))
    try:
        expected_n = n_tickers * (weeks - 11)
        actual = h.wait_rows(out, expected_n, 120, [s])
        assert len(actual) == expected_n
        expected = h.score_offline(model, h.windows_by_rules(rows))
        h.compare(actual, expected)
        assert all(a["source_partition"] is not None and a["source_offset"] is not None for a in actual)
        assert len({a["model_version"] for a in actual}) == 1
        # file names carry topic, partition, first offset; Hive dirs by week
        for f in h.output_files(out):
            assert os.path.basename(os.path.dirname(f)).startswith("week=")
            assert os.path.basename(f).startswith(f"{topic}-")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert f"scorer_rows_scored_total {expected_n}" in metrics
        assert f"scorer_rows_in_total {len(rows)}" in metrics
        # the model being served, with the backend that runs it (auto names what it chose)
        (version,) = {a["model_version"] for a in actual}
        assert_served(model_info(metrics), backend, version)
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).status == 200
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status == 200
        # the predictions topic, read by an independent consumer, holds the same predictions
        msgs = h.consume_all(broker.address, preds, expected_n)
        topic_rows = [json.loads(m.value()) for m in msgs]
        assert len(topic_rows) == expected_n
        assert all(m.key().decode() == json.loads(m.value())["ticker"] for m in msgs)
        by_key = {(a["ticker"], a["week"].isoformat()): a for a in actual}
        for t in topic_rows:
            a = by_key[(t["ticker"], t["week"])]
            for k in ("trend_7d", "p_up_7d", "trend_30d", "p_up_30d"):
                assert t[k] == pytest.approx(a[k], abs=1e-7)
            assert t["model_version"] == a["model_version"]
            assert t["source_offset"] == a["source_offset"]
        rc, secs = s.terminate()
        assert rc == 0, s.log()[-3000:]
        assert secs < 15
        assert "left the consumer group" in s.log()
    finally:
        if s.alive():
            s.kill9()


@pytest.mark.parametrize("changelog", [True, False], ids=["changelog", "input-replay"])
def test_kill9_three_times_gives_the_uninterrupted_output(tmp_path, broker, model, changelog):
    topic = "crash" if changelog else "crash-nolog"
    preds, dlq = setup_topic(broker, topic, 3)
    n_tickers, weeks = 6, 80
    rows = h.make_rows(n_tickers, weeks, seed=5)
    out = str(tmp_path / "out")
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic=topic, preds=preds, dlq=dlq,
                          group=f"g-{topic}", model=model, out_dir=out, max_rows=4, file_age_ms=200,
                          changelog=None if changelog else "")
    import threading

    producer = threading.Thread(target=h.produce, args=(broker.address, topic, h.interleaved(rows)),
                                kwargs={"delay_s": 0.12, "every": n_tickers})
    producer.start()
    rng = random.Random(1234)
    log = str(tmp_path / "scorer.log")
    s = h.Scorer(cfg, log)
    try:
        before = [0, 0, 0]
        for _ in range(3):
            # kill only once this instance owns its partitions and has committed progress on
            # each of them (or caught up), so that every restart restores mid-stream; then at a
            # random point of the next moments
            deadline = time.monotonic() + 60
            while s.log().count("windows restored") < 3 * (_ + 1) and time.monotonic() < deadline:
                time.sleep(0.05)
            while time.monotonic() < deadline:
                now, ends = h.committed_and_ends(broker.address, f"g-{topic}", topic, 3)
                if all(c > b or c == e for c, b, e in zip(now, before, ends)):
                    break
                time.sleep(0.1)
            before = now
            time.sleep(rng.uniform(0.0, 0.5))
            s.kill9()
            s = h.Scorer(cfg, log)
        producer.join()
        # the last instance owns every partition (after the dead one's session expired)
        deadline = time.monotonic() + 60
        while s.log().count("windows restored") < 12 and time.monotonic() < deadline:
            time.sleep(0.1)
        expected = h.score_offline(model, h.windows_by_rules(rows))
        actual = h.wait_rows(out, len(expected), 180, [s])
        h.compare(actual, expected)
        found = h.restores(s.log())
        assert len(found) >= 12, "four starts x three partitions"
        mid = [r for r in found if r[1] > 0]
        _, ends = h.committed_and_ends(broker.address, f"g-{topic}", topic, 3)
        assert len(mid) >= 3 * sum(e > 0 for e in ends), f"every restart should restore windows mid-stream: {found}"
        assert all(r[4] > 0 for r in mid), f"mid-stream restores hold windows: {found}"
        if changelog:
            assert all(r[5] == "changelog" for r in found), found
            # the changelog bounds the replay: far fewer input rows than the committed offsets
            assert sum(r[2] for r in mid) < sum(r[1] for r in mid) / 2, found
        else:
            assert all(r[5] == "input" and r[2] == r[1] for r in mid), found
    finally:
        if s.alive():
            s.kill9()
        producer.join()


def test_windows_restore_from_the_changelog_and_survive_an_offset_reset(tmp_path, broker, model):
    from confluent_kafka import Consumer, TopicPartition

    topic = "clog"
    preds, dlq = setup_topic(broker, topic, 2)
    n_tickers, weeks = 5, 40
    rows = h.make_rows(n_tickers, weeks, seed=21)
    first, second = rows[: n_tickers * 20], rows[n_tickers * 20:]
    out = str(tmp_path / "out")
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic=topic, preds=preds, dlq=dlq,
                          group="g-clog", model=model, out_dir=out, file_age_ms=200)
    log = str(tmp_path / "scorer.log")
    expected = h.score_offline(model, h.windows_by_rules(rows))
    h.produce(broker.address, topic, h.interleaved(first))
    s = h.Scorer(cfg, log)
    try:
        h.wait_rows(out, n_tickers * (20 - 11), 120, [s])
        rc, _ = s.terminate()
        assert rc == 0, s.log()[-3000:]
        # restart: the windows come from the changelog, no input history is replayed
        h.produce(broker.address, topic, h.interleaved(second))
        s = h.Scorer(cfg, log)
        actual = h.wait_rows(out, len(expected), 120, [s])
        h.compare(actual, expected)
        again = h.restores(s.log())[2:]
        assert len(again) == 2 and all(r[5] == "changelog" and r[2] == 0 and r[3] > 0 for r in again), again
        assert sum(r[4] for r in again) == n_tickers, again
        rc, _ = s.terminate()
        assert rc == 0, s.log()[-3000:]
        # an operator resets the group to the start: the changelog is ahead of the committed
        # offsets, so the scorer rebuilds from the input, removes the newer files, and the
        # output is again exactly the uninterrupted run's
        c = Consumer({"bootstrap.servers": broker.address, "group.id": "g-clog", "enable.auto.commit": False})
        c.commit(offsets=[TopicPartition(topic, p, 0) for p in range(2)], asynchronous=False)
        c.close()
        s = h.Scorer(cfg, log)
        deadline = time.monotonic() + 60
        while len(h.restores(s.log())) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "window changelog unusable" in s.log(), s.log()[-3000:]
        actual = h.wait_rows(out, len(expected), 120, [s])
        h.compare(actual, expected)
        rc, _ = s.terminate()
        assert rc == 0, s.log()[-3000:]
        # and the changelog is consistent again: a restart restores from it
        s = h.Scorer(cfg, log)
        deadline = time.monotonic() + 60
        while len(h.restores(s.log())) < 8 and time.monotonic() < deadline:
            time.sleep(0.1)
        last = h.restores(s.log())[6:]
        assert len(last) == 2 and all(r[5] == "changelog" and r[2] == 0 for r in last), last
        assert sum(r[4] for r in last) == n_tickers, last
    finally:
        if s.alive():
            s.kill9()


def test_two_instances_split_and_take_over(tmp_path, broker, model):
    topic = "scale"
    preds, dlq = setup_topic(broker, topic, 4)
    n_tickers, weeks = 8, 40
    rows = h.make_rows(n_tickers, weeks, seed=9)
    out = str(tmp_path / "out")
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic=topic, preds=preds, dlq=dlq,
                          group="g-scale", model=model, out_dir=out, max_rows=8, file_age_ms=300)
    import threading

    producer = threading.Thread(target=h.produce, args=(broker.address, topic, h.interleaved(rows)),
                                kwargs={"delay_s": 0.1, "every": n_tickers})
    a = h.Scorer(cfg, str(tmp_path / "a.log"))
    b = h.Scorer(cfg, str(tmp_path / "b.log"))
    try:
        producer.start()
        # wait until both members own partitions
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ("partitions assigned" in a.log() and "partitions assigned" in b.log()):
            time.sleep(0.5)
        assert "partitions assigned" in a.log() and "partitions assigned" in b.log()
        # and until b has scored (and so committed) some of its own partitions' rows: only
        # then do its windows have to move with the partitions. (Terminating b before it
        # consumed anything left nothing to move, and the assertion below failed on timing.)
        deadline = time.monotonic() + 60
        b_parts: set = set()
        while time.monotonic() < deadline:
            owned = re.findall(r"partitions assigned.*recover=(\[[^\]]*\])", b.log())
            b_parts = {int(p) for p, _ in re.findall(r"\((\d+), (-?\d+)\)", owned[-1])} if owned else set()
            if b_parts and any(r["source_partition"] in b_parts for r in h.read_output(out)):
                break
            time.sleep(0.2)
        assert b_parts and any(r["source_partition"] in b_parts for r in h.read_output(out)), b.log()[-3000:]
        rc, secs = b.terminate()
        assert rc == 0 and secs < 15, b.log()[-3000:]
        producer.join()
        expected = h.score_offline(model, h.windows_by_rules(rows))
        actual = h.wait_rows(out, len(expected), 180, [a])
        h.compare(actual, expected)
        parts = {r["source_partition"] for r in actual}
        assert parts == {0, 1, 2, 3}
        last = re.findall(r"partitions assigned.*recover=(\[[^\]]*\])", a.log())[-1]
        assert len(re.findall(r"\((\d+), (-?\d+)\)", last)) == 4, f"a should own all 4 partitions at the end: {last}"
        # the partitions moved with their windows: restored from the changelog b flushed on revoke
        # (wait for them: the rows can all be durable before a's last rebalance has restored)
        moved = h.wait_restores(a, 4)
        assert all(r[5] == "changelog" for r in moved), moved
        assert sum(r[4] for r in moved) > 0, moved
    finally:
        for s in (a, b):
            if s.alive():
                s.kill9()
        producer.join() if producer.is_alive() else None


def test_bad_rows_meet_their_fate_and_good_rows_are_scored(tmp_path, broker, model):
    topic = "bad"
    preds, dlq = setup_topic(broker, topic, 2)
    rng = np.random.default_rng(2)

    def row(t, w):
        return {"ticker": t, "week": h.week(w), "features": rng.normal(0, 1, 62).astype(np.float32)}

    good = []  # valid rows in the order they are sent (window rules apply to these)
    items = []

    def send_row(r):
        good.append(r)
        items.append((r["ticker"].encode(), h.message(r)))

    def send_raw(key, value):
        items.append((key, value))

    feats = [0.5] * 62
    for w in range(20):
        send_row(row("AAA", w))
        send_row(row("BBB", w))
        if w != 12:  # CCC skips week 12: a gap
            send_row(row("CCC", w))
        if w == 5:
            send_raw(b"AAA", b"{not json")
            send_raw(b"AAA", json.dumps({"ticker": "AAA", "week": h.week(30).isoformat(), "features": feats[:61]}).encode())
            send_raw(b"BBB", json.dumps({"ticker": "BBB", "week": h.week(30).isoformat(), "features": [float("nan")] + feats[1:]}).encode())
            send_raw(b"BBB", json.dumps({"ticker": "BBB", "week": "2024-13-45", "features": feats}).encode())
            send_raw(b"", json.dumps({"ticker": "", "week": h.week(30).isoformat(), "features": feats}).encode())
        if w == 8:
            dup = dict(good[-3])  # AAA week 8 again, different features
            dup["features"] = np.ones(62, np.float32)
            good.append(dup)
            items.append((b"AAA", h.message(dup)))
            late = {"ticker": "BBB", "week": h.week(3), "features": np.ones(62, np.float32)}
            good.append(late)
            items.append((b"BBB", h.message(late)))
    h.produce(broker.address, topic, items)
    out = str(tmp_path / "out")
    port = h.free_port()
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic=topic, preds=preds, dlq=dlq,
                          group="g-bad", model=model, out_dir=out, http_port=port)
    s = h.Scorer(cfg, str(tmp_path / "scorer.log"))
    try:
        windows = h.windows_by_rules(good)
        # AAA and BBB: 20 - 11 = 9 each; CCC: one window at week 11, then the gap at week 12
        # resets it and weeks 13..19 never fill a new one
        assert len(windows) == 19
        expected = h.score_offline(model, windows)
        actual = h.wait_rows(out, len(expected), 120, [s])
        h.compare(actual, expected)
        dl = h.consume_all(broker.address, dlq, 6)
        reasons = {}
        for m in dl:
            hd = {k: v.decode() for k, v in (m.headers() or [])}
            reasons[hd["reason"]] = reasons.get(hd["reason"], 0) + 1
            assert hd["source_topic"] == topic
            assert int(hd["source_offset"]) >= 0 and int(hd["source_partition"]) in (0, 1)
        assert reasons == {"malformed_json": 1, "wrong_width": 1, "non_finite": 1, "bad_date": 1, "empty_ticker": 1, "late": 1}, reasons
        late_msg = [m for m in dl if dict(m.headers())["reason"] == b"late"][0]
        assert json.loads(late_msg.value())["week"] == h.week(3).isoformat()  # original value kept
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "scorer_duplicates_total 1" in metrics
        assert "scorer_gaps_total 1" in metrics
        assert 'scorer_dead_lettered_total{reason="late"} 1' in metrics
    finally:
        if s.alive():
            s.kill9()


def test_broker_restart_mid_run(tmp_path, broker, model):
    topic = "restart"
    preds, dlq = setup_topic(broker, topic, 2)
    n_tickers, weeks = 4, 40
    rows = h.make_rows(n_tickers, weeks, seed=21)
    out = str(tmp_path / "out")
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic=topic, preds=preds, dlq=dlq,
                          group="g-restart", model=model, out_dir=out, max_rows=8, file_age_ms=300)
    s = h.Scorer(cfg, str(tmp_path / "scorer.log"))
    half = len(rows) // 2
    try:
        h.produce(broker.address, topic, h.interleaved(rows[:half]))
        time.sleep(3)
        broker.stop()
        time.sleep(2)
        broker.start()
        h.produce(broker.address, topic, h.interleaved(rows[half:]))
        expected = h.score_offline(model, h.windows_by_rules(rows))
        actual = h.wait_rows(out, len(expected), 180, [s])
        h.compare(actual, expected)
    finally:
        if s.alive():
            s.kill9()


def test_model_hot_reload_keeps_old_on_failure(tmp_path, broker, model):
    import shutil

    topic = "reload"
    preds, dlq = setup_topic(broker, topic, 1)
    live = str(tmp_path / "live.onnx")
    shutil.copy(model, live)
    other = str(tmp_path / "other.onnx")
    build_model(other, seed=8)
    rows = h.make_rows(2, 30, seed=4)
    out = str(tmp_path / "out")
    port = h.free_port()
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic=topic, preds=preds, dlq=dlq,
                          group="g-reload", model=live, out_dir=out, http_port=port)
    s = h.Scorer(cfg, str(tmp_path / "scorer.log"))

    def served():
        return model_info(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
    try:
        h.produce(broker.address, topic, h.interleaved(rows[:40]))  # weeks 0..19
        first = h.wait_rows(out, 2 * 9, 90, [s])
        # a broken file: the old model stays
        with open(live + ".tmp", "wb") as f:
            f.write(b"not an onnx model")
        os.replace(live + ".tmp", live)
        time.sleep(2)
        assert s.alive()
        assert "model reload failed" in s.log()
        v_first = {r["model_version"] for r in first}.pop()
        assert_served(served(), h.BACKEND, v_first)  # a failed reload leaves the old model's series
        h.produce(broker.address, topic, h.interleaved(rows[40:50]))  # weeks 20..24
        mid = h.wait_rows(out, 2 * 14, 60, [s])
        # a good new model: swapped in, its version on the following rows
        shutil.copy(other, live + ".tmp")
        os.replace(live + ".tmp", live)
        deadline = time.monotonic() + 30
        while "model reloaded" not in s.log() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "model reloaded" in s.log()
        h.produce(broker.address, topic, h.interleaved(rows[50:]))
        final = h.wait_rows(out, 2 * 19, 60, [s])
        versions = {}
        for r in final:
            versions.setdefault(r["model_version"], []).append(r["week"])
        assert len(versions) == 2, versions.keys()
        v_old = {r["model_version"] for r in first}.pop()
        assert {r["model_version"] for r in mid} == {v_old}
        new_v = [v for v in versions if v != v_old][0]
        assert min(versions[new_v]) > max(versions[v_old])
        assert_served(served(), h.BACKEND, new_v)  # after a reload only the new model's series
        # rows scored by the new model equal offline scoring with the new model
        exp_new = h.score_offline(other, [w for w in h.windows_by_rules(rows) if w[1] >= min(versions[new_v])])
        h.compare([r for r in final if r["model_version"] == new_v], exp_new)
    finally:
        if s.alive():
            s.kill9()


def test_kill9_at_random_moments_then_recovery_in_bounded_time(tmp_path, broker, model):
    """Kill -9 three times at random moments, twice before the instance can have been
    assigned anything (a crash-looping pod), then start again: the new instance must own its
    partitions within about the session timeout plus the restore, and the output must be
    exactly the uninterrupted run's."""
    topic = "crashloop"
    preds, dlq = setup_topic(broker, topic, 3)
    n_tickers, weeks = 6, 40
    rows = h.make_rows(n_tickers, weeks, seed=17)
    h.produce(broker.address, topic, h.interleaved(rows))
    out = str(tmp_path / "out")
    session_s = 3.0  # scorer_config's session_timeout_ms
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic=topic, preds=preds, dlq=dlq,
                          group=f"g-{topic}", model=model, out_dir=out, max_rows=4, file_age_ms=200)
    log = str(tmp_path / "scorer.log")
    rng = random.Random(99)
    # before assignment: right after start, and after it joined but (likely) before sync
    for delay in (rng.uniform(0.05, 0.3), rng.uniform(0.3, 1.0)):
        s = h.Scorer(cfg, log)
        time.sleep(delay)
        s.kill9()
    # the third kill mid-processing
    s = h.Scorer(cfg, log)
    deadline = time.monotonic() + 60
    while not h.restores(s.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.1, 0.8))
    s.kill9()
    before = len(h.restores(s.log()))
    start = time.monotonic()
    s = h.Scorer(cfg, log)
    try:
        while len(h.restores(s.log())) < before + 3 and time.monotonic() - start < 60:
            time.sleep(0.05)
        owned_after = time.monotonic() - start
        assert len(h.restores(s.log())) >= before + 3, s.log()[-4000:]
        # dead members are evicted after the session timeout; one rebalance round may wait
        # for that, plus start-up and the restore itself
        assert owned_after < 4 * session_s + 10, f"partitions owned only after {owned_after:.1f} s"
        expected = h.score_offline(model, h.windows_by_rules(rows))
        actual = h.wait_rows(out, len(expected), 120, [s])
        h.compare(actual, expected)
    finally:
        if s.alive():
            s.kill9()


def test_one_of_two_instances_killed_the_survivor_takes_over(tmp_path, broker, model):
    topic = "takeover9"
    preds, dlq = setup_topic(broker, topic, 4)
    n_tickers, weeks = 8, 40
    rows = h.make_rows(n_tickers, weeks, seed=23)
    out = str(tmp_path / "out")
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic=topic, preds=preds, dlq=dlq,
                          group=f"g-{topic}", model=model, out_dir=out, max_rows=8, file_age_ms=300)
    import threading

    producer = threading.Thread(target=h.produce, args=(broker.address, topic, h.interleaved(rows)),
                                kwargs={"delay_s": 0.1, "every": n_tickers})
    a = h.Scorer(cfg, str(tmp_path / "a.log"))
    b = h.Scorer(cfg, str(tmp_path / "b.log"))
    try:
        producer.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (h.restores(a.log()) and h.restores(b.log())):
            time.sleep(0.2)
        assert h.restores(a.log()) and h.restores(b.log()), "both members own partitions"
        time.sleep(1.0)
        b.kill9()
        killed = time.monotonic()
        deadline = killed + 60
        while time.monotonic() < deadline:
            last = re.findall(r"partitions assigned.*recover=(\[[^\]]*\])", a.log())
            if last and len(re.findall(r"\((\d+), (-?\d+)\)", last[-1])) == 4:
                break
            time.sleep(0.2)
        took = time.monotonic() - killed
        last = re.findall(r"partitions assigned.*recover=(\[[^\]]*\])", a.log())[-1]
        assert len(re.findall(r"\((\d+), (-?\d+)\)", last)) == 4, f"a should own all 4 partitions: {last}"
        assert took < 4 * 3.0 + 10, f"the survivor took over only after {took:.1f} s"
        producer.join()
        expected = h.score_offline(model, h.windows_by_rules(rows))
        actual = h.wait_rows(out, len(expected), 180, [a])
        h.compare(actual, expected)
    finally:
        for s in (a, b):
            if s.alive():
                s.kill9()
        producer.join() if producer.is_alive() else None


CLIENT = r'''
import sys, time, json
from confluent_kafka import Consumer
brokers, topic, group = sys.argv[1:4]
owned = set()
def on_assign(c, parts):
    owned.clear(); owned.update(p.partition for p in parts)
    print(json.dumps({"t": time.time(), "owned": sorted(owned)}), flush=True)
def on_revoke(c, parts):
    owned.clear()
    print(json.dumps({"t": time.time(), "owned": []}), flush=True)
c = Consumer({"bootstrap.servers": brokers, "group.id": group, "session.timeout.ms": 6000,
              "heartbeat.interval.ms": 1000, "auto.offset.reset": "earliest"})
c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
while True:
    c.poll(0.2)
'''


def test_broker_evicts_a_member_killed_without_leaving(tmp_path, broker):
    """The broker property recovery rests on, shown with two plain confluent-kafka clients:
    SIGKILL one member, and the survivor must be assigned every partition after about the
    session timeout (6 s). tansu 0.6.0 never evicts such a member (measured: its partitions
    stay assigned to the dead member); nisshi 0.8.1 does."""
    import subprocess
    import sys

    topic = "evict"
    broker.create_topics(topic, 4)
    script = tmp_path / "client.py"
    script.write_text(CLIENT)

    def client(name):
        f = open(tmp_path / f"{name}.out", "w")
        return subprocess.Popen([sys.executable, str(script), broker.address, topic, "g-evict"], stdout=f), tmp_path / f"{name}.out"

    def owned(path):
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        return lines[-1]["owned"] if lines else None

    a, a_out = client("a")
    b, b_out = client("b")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            oa, ob = owned(a_out), owned(b_out)
            if oa and ob and sorted(oa + ob) == [0, 1, 2, 3]:
                break
            time.sleep(0.2)
        assert sorted((owned(a_out) or []) + (owned(b_out) or [])) == [0, 1, 2, 3], "both members own partitions"
        b.kill()
        b.wait()
        killed = time.monotonic()
        while time.monotonic() - killed < 45 and owned(a_out) != [0, 1, 2, 3]:
            time.sleep(0.2)
        took = time.monotonic() - killed
        assert owned(a_out) == [0, 1, 2, 3], f"the dead member's partitions are still not re-assigned {took:.0f} s after SIGKILL"
        assert took < 6 + 10, f"re-assigned only after {took:.1f} s (session timeout 6 s)"
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
