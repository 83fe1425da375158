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
                    "backend auto (the default) runs here:", "inference vs ceiling, batch 64", "ceiling: "):
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
    if len(os.sched_getaffinity(0)) >= 2:  # the stream again, the broker on a CPU of its own
        for section in ("stream, broker on its own CPU", "stream vs inference only, CPUs"):
            assert section in table, f"{section!r} missing:\n{table[-3000:]}"
        pinned = data["stream_pinned"]
        assert {"tract", "python"} <= set(pinned), pinned.keys()
        for kind, r in pinned.items():
            # read back from the kernel: the consumer never shared the broker's CPU
            assert r["consumer_cpus"] and r["broker_cpus"] and not set(r["consumer_cpus"]) & set(r["broker_cpus"]), r
            assert r["rows_per_s"] > 0, (kind, r)
        assert pinned["tract"]["inference_only_per_s"] > 0, pinned["tract"]
    for e in data["epoch"]:  # one epoch on each side, over the same training windows
        assert e["train_windows"] > 0 and e["rust_windows_per_s"] > 0 and e["pytorch_windows_per_s"] > 0, e
    assert data["epoch"], data.keys()
    assert any(b["who"].startswith("plain") for b in data["backfill"])
    assert all(b["rows_per_s"] > 0 for b in data["backfill"])
    roof = data["ceiling"]
    assert all(v > 1 for v in roof["peak_gflops"].values()), roof["peak_gflops"]  # a real sgemm, in GFLOP/s
    # the peak at --threads is the fastest OpenBLAS kernel set tried, and the one reported
    tried = roof["openblas_cores_tried"]
    assert tried and roof["openblas_core"] == max(tried, key=tried.get), roof
    assert roof["peak_gflops"][str(roof["threads"])] == tried[roof["openblas_core"]], roof
    assert [b["batch"] for b in roof["batches"]] == [1, 64], roof["batches"]
    assert all(b["ceiling_peak_windows_per_s"] > 0 and b["ceiling_products_windows_per_s"] > 0
               for b in roof["batches"])


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


def test_scorer_idle_short():
    """The idle probe runs and names the scorer's threads; the producer's polling thread stays
    under 1 % of a core (rdkafka's ThreadedProducer spun at 1.6-1.75 %, scorer/README.md)."""
    r = subprocess.run([sys.executable, os.path.join(HERE, "scorer_idle.py"), "--seconds", "8"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    threads = dict(line.rsplit(None, 1) for line in r.stdout.splitlines()[1:])
    threads = {k.strip(): float(v) for k, v in threads.items()}
    for name in ("scorer", "scorer-producer", "scorer-worker", "scorer-inferenc", "broker"):
        assert name in threads, r.stdout
    assert threads["scorer-producer"] < 1.0, r.stdout


def test_scorer_memory_short():
    """The memory probe behind docs/operations.md's capacity figure runs and reports a slope."""
    r = subprocess.run([sys.executable, os.path.join(HERE, "scorer_memory.py"), "--tickers", "20,60", "--weeks", "13"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "per 1,000 tickers:" in r.stdout, r.stdout
    sizes = [line.split() for line in r.stdout.splitlines() if line.split()[:1] in (["20"], ["60"])]
    assert len(sizes) == 2 and all(float(s[3]) > 10 for s in sizes), r.stdout  # a real process's RSS, in MiB


def test_roofline_counts_the_model_flops(tmp_path):
    """The ceiling's FLOP count comes from the graph itself and agrees with the model's config:
    the LSTM products of the op form are exactly 2 directions x 12 steps x 2 x 4H x (in + H) per
    layer, the count per window does not depend on the batch, and the unrolled form differs from
    the op form by exactly the recurrent products it leaves out at step 0 (a zero state)."""
    sys.path.insert(0, HERE)
    import roofline
    import scorer_model

    ckpt = tmp_path / "ckpt"
    subprocess.run([sys.executable, os.path.join(HERE, "make_checkpoint.py"), "--out", str(ckpt), "--preset",
                    "default"], check=True, capture_output=True)
    models = {}
    for form in ("op", "unrolled"):
        models[form] = str(tmp_path / f"{form}.onnx")
        subprocess.run([scorer_model.exporter_bin(), "--checkpoint", str(ckpt), "--out", models[form],
                        "--lstm-form", form], check=True, capture_output=True)
    cfg = json.loads((ckpt / "config.json").read_text())
    m, t = cfg["model"], cfg["sequence"]["sequence_length"]
    h, dirs, layers = m["hidden_dim"], 2 if m["bidirectional"] else 1, m["num_lstm_layers"]
    ins = [m["input_dim"]] + [dirs * h] * (layers - 1)
    lstm = sum(dirs * t * 2 * 4 * h * (i + h) for i in ins)
    batch = 8
    prods = roofline.products(models["op"], batch)
    lstm_counted = roofline.flops([p for p in prods if p[0][3] == 4 * h]) / batch
    assert lstm_counted == lstm, (lstm_counted, lstm)
    op = roofline.flops_per_window(models["op"], batch)
    assert op == roofline.flops_per_window(models["op"], 1)
    assert lstm < op < 1.25 * lstm, (op, lstm)  # attention and heads: the rest, small
    skipped_step0 = layers * dirs * 2 * h * 4 * h
    assert op - roofline.flops_per_window(models["unrolled"], batch) == skipped_step0
