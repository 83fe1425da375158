"""The whole artifact flow with the real binaries, checked by independent readers.

synthetic weekly rows -> `trainer fit` (libtorch) -> `exporter` (ONNX) -> `exporter verify`
(tch probe vs ort CPU vs tract) -> `trainer predict` (tch) and `scorer backfill` (tract and
ort CPU) -> Parquet read back with DuckDB and pyarrow. The trainer's predictions and the
scorer's must agree within 1e-5 on every window; the row count must be N x (W - 11).

Binaries come from $TRENDSCORE_BIN (default: $CARGO_TARGET_DIR/debug); scripts/test.sh builds them.
"""

import glob
import os
import subprocess

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

BIN = os.environ.get(
    "TRENDSCORE_BIN",
    os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/trendscore/target")), "debug"),
)
N_TICKERS, N_WEEKS = 5, 80

TINY = """
[model]
hidden_dim = 16
num_lstm_layers = 2
num_attention_heads = 2
head_hidden_dims = [8]
[training]
batch_size = 16
epochs = 2
progress = false
[scheduler]
kind = "none"
"""


def run(*args, cwd=None):
    exe = os.path.join(BIN, args[0])
    if not os.path.exists(exe):
        pytest.fail(f"{exe} is missing: build the workspace binaries first (scripts/test.sh does)")
    res = subprocess.run([exe, *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{args} failed:\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipeline")
    rows = d / "rows.parquet"
    run("trainer", "synth", "--out", str(rows), "--tickers", str(N_TICKERS), "--weeks", str(N_WEEKS), "--seed", "3")
    cfg = d / "tiny.toml"
    cfg.write_text(TINY)
    ckpt = d / "ckpt"
    run("trainer", "fit", "--data", str(rows), "--out", str(ckpt), "--config", str(cfg), "--device", "cpu", "--no-progress")
    model = d / "model.onnx"
    run("exporter", "--checkpoint", str(ckpt), "--out", str(model))
    tch_preds = d / "tch.parquet"
    run("trainer", "predict", "--checkpoint", str(ckpt), "--data", str(rows), "--out", str(tch_preds), "--device", "cpu")
    return {"dir": d, "rows": rows, "ckpt": ckpt, "model": model, "tch": tch_preds}


def test_checkpoint_has_the_documented_files(flow):
    for name in ["model.safetensors", "config.json", "scaler.json", "probe.safetensors", "metrics.json", "history.json", "history.png"]:
        assert (flow["ckpt"] / name).exists(), name
    assert (flow["model"].parent / "model.json").exists() or any(flow["model"].parent.glob("*.json"))


def test_exported_model_matches_the_trainer_on_every_backend(flow):
    res = run("exporter", "verify", "--checkpoint", str(flow["ckpt"]), "--model", str(flow["model"]), "--backend", "all")
    print(res.stdout)


def _backfill(flow, backend):
    out = flow["dir"] / f"backfill-{backend}"
    run("scorer", "backfill", "--model", str(flow["model"]), "--input", str(flow["rows"]), "--output", str(out), "--backend", backend)
    files = glob.glob(str(out / "**" / "*.parquet"), recursive=True)
    assert files, f"no parquet written under {out}"
    return out


def _keyed(table):
    d = table.to_pydict()
    return {(t, str(w)): i for i, (t, w) in enumerate(zip(d["ticker"], d["week"]))}, d


@pytest.mark.parametrize("backend", ["tract", "ort-cpu"])
def test_backfill_equals_trainer_predictions(flow, backend):
    out = _backfill(flow, backend)
    # Independent reader 1: DuckDB over the Hive-partitioned directory.
    con = duckdb.connect()
    n, n_distinct = con.execute(
        f"select count(*), count(distinct (ticker, week)) from read_parquet('{out}/**/*.parquet', hive_partitioning=false)"
    ).fetchone()
    assert n == N_TICKERS * (N_WEEKS - 11) == n_distinct
    # Independent reader 2: pyarrow, compared value by value with the trainer's own predictions.
    import pyarrow as pa
    files = sorted(glob.glob(str(out / "**" / "*.parquet"), recursive=True))
    scored = pa.concat_tables([pq.read_table(f, partitioning=None) for f in files])
    tch = pq.read_table(str(flow["tch"]))
    assert tch.num_rows == n
    ks, s = _keyed(scored)
    kt, t = _keyed(tch)
    assert ks.keys() == kt.keys()
    worst = 0.0
    for key, i in ks.items():
        j = kt[key]
        for col in ["trend_7d", "p_up_7d", "trend_30d", "p_up_30d"]:
            worst = max(worst, abs(s[col][i] - t[col][j]))
        worst = max(worst, float(np.max(np.abs(np.array(s["attention"][i]) - np.array(t["attention"][j])))))
        assert s["window_start"][i] == t["window_start"][j]
        assert s["model_version"][i] == t["model_version"][j]
        assert s["source_partition"][i] is None and s["source_offset"][i] is None
    assert worst <= 1e-5, f"{backend} differs from the trainer by {worst}"
