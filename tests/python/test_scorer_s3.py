"""The scorer and the backfill writing Parquet to object storage: a real S3-compatible server
(moto, from PyPI) on loopback, the real broker, the real scorer binary; the output is read
back by independent readers (boto3 for the bucket's objects and uploads, pyarrow's own S3
filesystem for the Parquet)."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import scorer_harness as h

CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


class Moto:
    def __init__(self, log):
        self.port = h.free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(self.port)], stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def env(self):
        return {**CREDS, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true"}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")

    def bucket(self, name):
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket, prefix=""):
        out, token = [], None
        c = self.client()
        while True:
            kw = {"Bucket": bucket, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
            r = c.list_objects_v2(**kw)
            out += [(o["Key"], o["ETag"]) for o in r.get("Contents", [])]
            if not r.get("IsTruncated"):
                return sorted(out)
            token = r["NextContinuationToken"]

    def read(self, bucket, prefix):
        """Every Parquet object under prefix, read with pyarrow's own S3 client."""
        fs = pafs.S3FileSystem(endpoint_override=self.endpoint, scheme="http", access_key="testing",
                               secret_key="testing", region="us-east-1")
        for _ in range(20):
            rows = []
            try:
                for key, _ in self.keys(bucket, prefix):
                    if key.endswith(".parquet") and "/_trendscore_uploads/" not in key:
                        rows += pq.read_table(f"{bucket}/{key}", filesystem=fs).to_pylist()
                return rows
            except (FileNotFoundError, OSError):  # a new owner removed it (past the committed offset)
                time.sleep(0.1)
        raise AssertionError("objects keep vanishing while read")

    def wait_rows(self, bucket, prefix, n, timeout, procs=()):
        """Waits until the objects hold exactly n distinct (ticker, week) rows, twice in a row
        (a restarted owner may still be removing and rewriting files past its committed offset)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for p in procs:
                assert p.alive(), p.log()[-4000:]
            rows = self.read(bucket, prefix)
            keys = {(r["ticker"], r["week"]) for r in rows}
            if len(rows) == n and len(keys) == n:
                if last == n:
                    return rows
                last = n
            else:
                last = None
            time.sleep(0.7)
        raise AssertionError(f"timed out: {len(self.read(bucket, prefix))} rows of {n}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    m = Moto(open(tmp_path_factory.mktemp("moto") / "moto.log", "wb"))
    yield m
    m.stop()


def s3_config(tmp_path, broker, moto, model, topic, url, **kw):
    preds, dlq = broker.create_topics(topic, kw.pop("partitions", 3))
    extra = f"[sink.object_store]\nendpoint = \"{moto.endpoint}\"\nallow_http = true\n"
    return h.scorer_config(str(tmp_path / f"{topic}.toml"), brokers=broker.address, topic=topic, preds=preds, dlq=dlq,
                           group=f"g-{topic}", model=model, out_dir=url, extra=extra, **kw)


def test_stream_to_s3_gives_the_exact_output(tmp_path, broker, moto, model):
    bucket = moto.bucket("stream")
    rows = h.make_rows(6, 30, seed=41)
    cfg = s3_config(tmp_path, broker, moto, model, "s3-exact", f"s3://{bucket}/preds", partition_by="year")
    h.produce(broker.address, "s3-exact", h.interleaved(rows))
    s = h.Scorer(cfg, str(tmp_path / "scorer.log"), env=moto.env(), args=["--drain"])
    assert s.wait(180) == 0, s.log()[-4000:]
    expected = h.score_offline(model, h.windows_by_rules(rows))
    actual = moto.read(bucket, "preds/")
    h.compare(actual, expected)
    keys = [k for k, _ in moto.keys(bucket)]
    assert all(k.startswith("preds/year=") and "/s3-exact-" in k for k in keys), keys


def test_kill9_three_times_with_the_output_on_s3(tmp_path, broker, moto, model):
    bucket = moto.bucket("crash")
    topic = "s3-crash"
    n_tickers, weeks = 6, 70
    rows = h.make_rows(n_tickers, weeks, seed=43)
    cfg = s3_config(tmp_path, broker, moto, model, topic, f"s3://{bucket}/out", max_rows=4, file_age_ms=200,
                    partition_by="week")
    producer = threading.Thread(target=h.produce, args=(broker.address, topic, h.interleaved(rows)),
                                kwargs={"delay_s": 0.12, "every": n_tickers})
    producer.start()
    rng = random.Random(7)
    log = str(tmp_path / "scorer.log")
    s = h.Scorer(cfg, log, env=moto.env())
    try:
        for i in range(3):
            deadline = time.monotonic() + 60
            while len(h.restores(s.log())) < 3 * (i + 1) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.2, 1.5))
            s.kill9()
            s = h.Scorer(cfg, log, env=moto.env())
        producer.join()
        expected = h.score_offline(model, h.windows_by_rules(rows))
        h.compare(moto.wait_rows(bucket, "out/", len(expected), 180, [s]), expected)
    finally:
        if s.alive():
            s.kill9()
        producer.join()


def test_two_instances_share_a_bucket_one_is_killed(tmp_path, broker, moto, model):
    bucket = moto.bucket("shared")
    topic = "s3-two"
    n_tickers, weeks = 8, 40
    rows = h.make_rows(n_tickers, weeks, seed=47)
    cfg = s3_config(tmp_path, broker, moto, model, topic, f"s3://{bucket}/p", partitions=4, max_rows=8,
                    file_age_ms=300)
    producer = threading.Thread(target=h.produce, args=(broker.address, topic, h.interleaved(rows)),
                                kwargs={"delay_s": 0.1, "every": n_tickers})
    a = h.Scorer(cfg, str(tmp_path / "a.log"), env=moto.env())
    b = h.Scorer(cfg, str(tmp_path / "b.log"), env=moto.env())
    try:
        producer.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (h.restores(a.log()) and h.restores(b.log())):
            time.sleep(0.2)
        assert h.restores(a.log()) and h.restores(b.log())
        time.sleep(1.0)
        b.kill9()
        producer.join()
        expected = h.score_offline(model, h.windows_by_rules(rows))
        actual = moto.wait_rows(bucket, "p/", len(expected), 180, [a])
        h.compare(actual, expected)
        assert {r["source_partition"] for r in actual} == {0, 1, 2, 3}
    finally:
        for s in (a, b):
            if s.alive():
                s.kill9()
        producer.join() if producer.is_alive() else None


def test_an_upload_a_crash_left_unfinished_is_aborted_on_assignment(tmp_path, broker, moto, model):
    """What a kill -9 in the middle of a multipart upload leaves: an unfinished upload (invisible,
    but billed) and the scorer's marker naming it. On assignment the scorer aborts it."""
    bucket = moto.bucket("orphans")
    topic = "s3-orphan"
    cfg = s3_config(tmp_path, broker, moto, model, topic, f"s3://{bucket}/o", partitions=1)
    c = moto.client()
    name = f"{topic}-0-{5:020d}.parquet"
    key = f"o/year=2023/{name}"
    up = c.create_multipart_upload(Bucket=bucket, Key=key)
    c.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=1, Body=b"x" * (5 << 20))
    c.put_object(Bucket=bucket, Key=f"o/_trendscore_uploads/{name}.json",
                 Body=json.dumps({"key": key, "upload_id": up["UploadId"]}).encode())
    # another partition's marker is not this partition's business
    other = f"{topic}-7-{5:020d}.parquet"
    c.put_object(Bucket=bucket, Key=f"o/_trendscore_uploads/{other}.json", Body=b"{}")
    assert len(c.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 1
    rows = h.make_rows(2, 14, seed=5)
    h.produce(broker.address, topic, h.interleaved(rows))
    s = h.Scorer(cfg, str(tmp_path / "scorer.log"), env=moto.env(), args=["--drain"])
    assert s.wait(120) == 0, s.log()[-4000:]
    assert c.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    keys = [k for k, _ in moto.keys(bucket, "o/_trendscore_uploads/")]
    assert keys == [f"o/_trendscore_uploads/{other}.json"]
    h.compare(moto.read(bucket, "o/"), h.score_offline(model, h.windows_by_rules(rows)))


def backfill(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([h.scorer_bin(), "backfill", *args], capture_output=True, text=True, env=e, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_sharded_backfill_to_s3_equals_the_local_unsharded_run(tmp_path, moto, model):
    bucket = moto.bucket("backfill")
    rows = h.make_rows(12, 40, seed=53)
    # the history split in two files by week, given as a glob
    h.write_rows_parquet(rows[: 12 * 20], str(tmp_path / "rows-a.parquet"))
    h.write_rows_parquet(rows[12 * 20:], str(tmp_path / "rows-b.parquet"))
    glob = str(tmp_path / "rows-*.parquet")
    local = tmp_path / "local"
    r = backfill(["--model", model, "--input", glob, "--output", str(local), "--backend", h.BACKEND])
    assert r["scored"] == 12 * 29 and r["files_in"] == 2
    expected = h.score_offline(model, h.windows_by_rules(rows))
    h.compare(h.read_output(str(local)), expected)
    url = f"s3://{bucket}/bf"
    for i in range(3):
        backfill(["--model", model, "--input", glob, "--output", url, "--shard", f"{i}/3", "--backend", h.BACKEND,
                  "--s3-endpoint", moto.endpoint, "--s3-allow-http"], moto.env())
    h.compare(moto.read(bucket, "bf/"), expected)
    before = dict(moto.keys(bucket, "bf/"))
    assert all("backfill-3-" in k for k in before)
    # re-running shard 1 replaces exactly its own objects
    backfill(["--model", model, "--input", glob, "--output", url, "--shard", "1/3", "--backend", h.BACKEND,
              "--s3-endpoint", moto.endpoint, "--s3-allow-http"], moto.env())
    after = dict(moto.keys(bucket, "bf/"))
    for k, etag in before.items():
        if "backfill-3-1-" not in k:
            assert after.get(k) == etag, f"{k} of another shard changed"
    h.compare(moto.read(bucket, "bf/"), expected)


def test_a_large_backfill_file_goes_up_in_parts(tmp_path, moto, model):
    """A file larger than one part (5 MiB) is a real multipart upload, completed at close."""
    bucket = moto.bucket("multipart")
    rows = h.make_rows(64, 1300, seed=59)
    inp = str(tmp_path / "big.parquet")
    h.write_rows_parquet(rows, inp)
    r = backfill(["--model", model, "--input", inp, "--output", f"s3://{bucket}/big", "--partition-by", "none", "--part-size-mib", "5",
                  "--backend", h.BACKEND, "--s3-endpoint", moto.endpoint, "--s3-allow-http"], moto.env())
    assert r["scored"] == 64 * (1300 - 11)
    sizes = [moto.client().head_object(Bucket=bucket, Key=k)["ContentLength"] for k, _ in moto.keys(bucket, "big/")]
    assert max(sizes) > 5 << 20, sizes
    etags = [e for _, e in moto.keys(bucket, "big/")]
    assert any("-" in e for e in etags), f"no multipart ETag among {etags}"
    assert len(moto.read(bucket, "big/")) == r["scored"]
