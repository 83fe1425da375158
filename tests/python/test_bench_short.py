"""The benchmark command runs (short mode) and prints its one table with every section:
it asserts nothing about speed, only that the command has not rotted."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_bench_all_short(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, os.path.join(HERE, "bench_all.py"), "--short", "--json-out", str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    table = r.stdout
    for section in ("train step", "train epoch", "inference, batch 64", "backfill", "stream topic->Parquet",
                    "stream vs inference only", "stream to S3", "machine:", "load average",
                    "backend auto (the default) runs here:"):
        assert section in table, f"{section!r} missing:\n{table[-3000:]}"
    data = json.loads(out.read_text())
    # these machines have ONNX Runtime's CPU library: auto never runs tract here
    assert data["auto_backend"] in {"ort-cpu", "ort-cuda"}, data["auto_backend"]
    runners = {(i["runner"], i["batch"]) for i in data["inference"]}
    for runner in ("pytorch-eager", "python-ort", "rust-tract", "rust-ort-cpu"):
        assert (runner, 64) in runners, runners
    assert {"tract", "ort-cpu", "python", "tract-s3"} <= set(data["stream"]), data["stream"].keys()
    for kind, r in data["stream"].items():
        assert r["rows_per_s"] > 0, (kind, r)
    for e in data["epoch"]:  # one epoch on each side, over the same training windows
        assert e["train_windows"] > 0 and e["rust_windows_per_s"] > 0 and e["pytorch_windows_per_s"] > 0, e
    assert data["epoch"], data.keys()
    assert any(b["who"].startswith("plain") for b in data["backfill"])
    assert all(b["rows_per_s"] > 0 for b in data["backfill"])


def test_broker_cost_short():
    """The broker-cost probe behind the README's stream profile runs and reports every line."""
    r = subprocess.run([sys.executable, os.path.join(HERE, "broker_cost.py"), "--tickers", "5", "--weeks", "20",
                        "--rate", "0", "--idle-waits", "20", "--idle-seconds", "0.5", "--queues", "2048"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    lines = r.stdout.splitlines()
    assert any(line.startswith("idle consumer, fetch.wait.max.ms   20") for line in lines), r.stdout
    drains = [line for line in lines if line.startswith("drain, ")]
    assert len(drains) == 2 and all("us/msg" in line for line in drains), r.stdout


def test_scorer_memory_short():
    """The memory probe behind docs/operations.md's capacity figure runs and reports a slope."""
    r = subprocess.run([sys.executable, os.path.join(HERE, "scorer_memory.py"), "--tickers", "20,60", "--weeks", "13"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "per 1,000 tickers:" in r.stdout, r.stdout
    sizes = [line.split() for line in r.stdout.splitlines() if line.split()[:1] in (["20"], ["60"])]
    assert len(sizes) == 2 and all(float(s[3]) > 10 for s in sizes), r.stdout  # a real process's RSS, in MiB
