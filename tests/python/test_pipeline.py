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

import paths

BIN = os.environ.get("TRENDSCORE_BIN", os.path.join(paths.TARGET, "debug"))
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


@pytest.fixture(scope="module")
def ensemble_flow(flow):
    d = flow["dir"]
    ens = d / "ensemble"
    run("trainer", "fit", "--data", str(flow["rows"]), "--out", str(ens), "--config", str(d / "tiny.toml"),
        "--device", "cpu", "--no-progress", "--seeds", "2")
    model = d / "ensemble.onnx"
    run("exporter", "--checkpoint", str(ens), "--out", str(model))
    return {"dir": ens, "model": model}


def test_a_seed_ensemble_trains_its_members_and_scores_their_mean(ensemble_flow, flow):
    import json

    import pyarrow as pa

    ens = ensemble_flow["dir"]
    manifest = json.loads((ens / "ensemble.json").read_text())
    assert manifest["members"] == ["seed42", "seed43"] and manifest["seeds"] == [42, 43]
    m = manifest["metrics"]
    assert len(m["members"]) == 2
    assert m["ensemble"]["test"]["7d"]["n"] == m["members"][0]["test"]["metrics"]["7d"]["n"] > 0
    # the members differ (two seeds), and each is a complete checkpoint
    w = [json.loads((ens / s / "config.json").read_text())["seed"] for s in manifest["members"]]
    assert w == [42, 43]
    # a valid ONNX file by the reference checker (full shape inference), contract outputs
    import onnx
    proto = onnx.load(str(ensemble_flow["model"]))
    onnx.checker.check_model(proto, full_check=True)
    assert [o.name for o in proto.graph.output] == [
        "7day_trend", "7day_direction", "30day_trend", "30day_direction", "attention_weights"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["ensemble_members"]) and meta["model_version"] == json.loads(
        (ensemble_flow["model"].with_suffix(".json")).read_text())["model_version"]
    # the parity suite of the ensemble on every CPU backend
    print(run("exporter", "verify", "--checkpoint", str(ens), "--model", str(ensemble_flow["model"]),
              "--backend", "all").stdout)
    # each member's own predictions (libtorch), averaged here; the scorer with the ensemble ONNX
    member_preds = []
    for s in manifest["members"]:
        p = flow["dir"] / f"member-{s}.parquet"
        run("trainer", "predict", "--checkpoint", str(ens / s), "--data", str(flow["rows"]), "--out", str(p),
            "--device", "cpu")
        member_preds.append(_keyed(pq.read_table(str(p))))
    out = flow["dir"] / "backfill-ensemble"
    run("scorer", "backfill", "--model", str(ensemble_flow["model"]), "--input", str(flow["rows"]),
        "--output", str(out), "--backend", "tract")
    files = sorted(glob.glob(str(out / "**" / "*.parquet"), recursive=True))
    ks, s = _keyed(pa.concat_tables([pq.read_table(f, partitioning=None) for f in files]))
    card = json.loads((ensemble_flow["model"].with_suffix(".json")).read_text())
    assert len(ks) == N_TICKERS * (N_WEEKS - 11)
    worst = 0.0
    for key, i in ks.items():
        for col in ["trend_7d", "p_up_7d", "trend_30d", "p_up_30d"]:
            mean = np.mean([t[col][k[key]] for k, t in member_preds])
            worst = max(worst, abs(s[col][i] - mean))
        assert s["model_version"][i] == card["model_version"]
    assert worst <= 1e-5, f"ensemble differs from the mean of its members by {worst}"
    assert card["model_version"] not in {t["model_version"][0] for _, t in member_preds}
    # evaluate/predict name the ensemble instead of failing on a missing config.json
    exe = os.path.join(BIN, "trainer")
    res = subprocess.run([exe, "evaluate", "--checkpoint", str(ens), "--data", str(flow["rows"])],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "seed ensemble" in res.stderr, res.stderr


def test_the_label_target_travels_from_the_features_to_the_model(tmp_path):
    import json

    import onnx

    prices = tmp_path / "prices.csv"
    run("features", "synth-prices", "--out", str(prices), "--tickers", "4", "--days", "900", "--seed", "5")
    rows = tmp_path / "rows.parquet"
    run("features", "build", "--prices", str(prices), "--out", str(rows), "--target", "xs",
        "--cross-sectional", "rank")
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY.replace("epochs = 2", "epochs = 1"))
    ckpt = tmp_path / "ckpt"
    run("trainer", "fit", "--data", str(rows), "--out", str(ckpt), "--config", str(cfg), "--device", "cpu",
        "--no-progress")
    data = json.loads((ckpt / "config.json").read_text())["data"]
    assert (data["target"], data["cross_sectional"], data["feature_set_version"]) == ("xs", "rank", "v1")
    model = tmp_path / "model.onnx"
    run("exporter", "--checkpoint", str(ckpt), "--out", str(model))
    assert json.loads((tmp_path / "model.json").read_text())["data"]["target"] == "xs"
    meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert (meta["label_target"], meta["feature_transform"]) == ("xs", "rank")
    # rows with no manifest: recorded as unknown, never guessed
    ckpt2 = tmp_path / "ckpt-synth"
    synth = tmp_path / "synth.parquet"
    run("trainer", "synth", "--out", str(synth), "--tickers", "2", "--weeks", "60", "--seed", "1")
    run("trainer", "fit", "--data", str(synth), "--out", str(ckpt2), "--config", str(cfg), "--device", "cpu",
        "--no-progress")
    assert json.loads((ckpt2 / "config.json").read_text())["data"]["target"] == "unknown"
