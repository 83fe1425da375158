"""Independent checks of the exporter's ONNX files, with the Python ONNX toolchain.

For each preset checkpoint (tests/python/make_checkpoint.py): export with the Rust
`exporter` binary, then
  * onnx.checker.check_model(full_check=True) passes (opset 17, shapes inferable);
  * inputs/outputs/metadata are exactly DESIGN.md's ONNX contract;
  * Python onnxruntime on the probe equals the probe (= reference_model.run) within 1e-5;
  * onnxruntime equals reference_model.run on fresh random windows at batch 1, 7 and 1024.
A checkpoint whose probe was tampered with is refused (non-zero exit, no file written).

The exporter binary: $EXPORTER_BIN, else the newest build in the target dir
(tests/python/paths.py).
Run: python3 -m pytest -q tests/python/test_onnx_export.py
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from safetensors.numpy import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import paths  # noqa: E402
import reference_model as rm  # noqa: E402

TOL = 1e-5


def exporter_bin() -> str:
    found = paths.binary("exporter")
    if not found or not os.path.isfile(found):
        pytest.fail(f"exporter binary not found ({found or paths.TARGET}): {paths.BUILD_HINT}")
    return found


def make_ckpt(path, preset):
    subprocess.run([sys.executable, os.path.join(HERE, "make_checkpoint.py"), "--out", str(path), "--preset", preset],
                   check=True, capture_output=True)
    return path


@pytest.fixture(scope="module", params=[(p, f) for p in ["default", "unidirectional", "deep"] for f in ["unrolled", "op"]],
                ids=lambda pf: f"{pf[0]}-{pf[1]}")
def exported(request, tmp_path_factory):
    """(checkpoint, model.onnx) of each preset in each LSTM form the exporter emits."""
    preset, form = request.param
    d = tmp_path_factory.mktemp(f"{preset}-{form}")
    ckpt = make_ckpt(d / "ckpt", preset)
    out = d / "model.onnx"
    r = subprocess.run([exporter_bin(), "--checkpoint", str(ckpt), "--out", str(out), "--lstm-form", form],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return ckpt, out


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def test_checker_full_check_passes(exported):
    _, out = exported
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    ops = {n.op_type for n in model.graph.node}
    form = {p.key: p.value for p in model.metadata_props}["lstm_form"]
    assert ("LSTM" in ops) == (form == "op"), (form, ops)
    assert "Softmax" in ops and "Gemm" in ops, ops
    # the scaler is the first thing the input meets
    first = [n for n in model.graph.node if "features" in n.input]
    assert [n.op_type for n in first] == ["Sub"], first


def test_contract_names_shapes_and_metadata(exported):
    ckpt, out = exported
    model = onnx.load(str(out))
    (inp,) = model.graph.input
    assert inp.name == "features"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [12, 62] and isinstance(dims[0], str), dims
    assert [o.name for o in model.graph.output] == rm.OUTPUT_NAMES
    meta = {p.key: p.value for p in model.metadata_props}
    assert set(meta) >= {"model_version", "feature_names", "sequence_length", "horizons", "trained_at", "metrics"}
    with open(ckpt / "model.safetensors", "rb") as f:
        assert meta["model_version"] == hashlib.sha256(f.read()).hexdigest()
    assert json.loads(meta["feature_names"]) == [f"feature_{i}" for i in range(62)]
    assert meta["sequence_length"] == "12"
    assert json.loads(meta["horizons"]) == [7, 30]
    json.loads(meta["metrics"])
    card = json.loads((out.parent / "model.json").read_text())
    assert card["model_version"] == meta["model_version"]
    assert card["parity"]["windows"] >= 64


def test_onnxruntime_matches_probe(exported):
    ckpt, out = exported
    probe = load_file(str(ckpt / "probe.safetensors"))
    assert probe["features"].shape[0] >= 64
    got = dict(zip(rm.OUTPUT_NAMES, session(out).run(rm.OUTPUT_NAMES, {"features": probe["features"]})))
    for name in rm.OUTPUT_NAMES:
        diff = float(np.max(np.abs(got[name] - probe[name])))
        assert diff <= TOL, f"{name}: max abs diff {diff:.3e}"


@pytest.mark.parametrize("batch", [1, 7, 1024])
def test_onnxruntime_matches_reference_on_random_windows(exported, batch):
    ckpt, out = exported
    model, scaler, _cfg = rm.load_checkpoint(str(ckpt))
    rng = np.random.default_rng(batch)
    mean = np.asarray(scaler["mean"])
    std = np.where(np.asarray(scaler["std"]) == 0, 1.0, np.asarray(scaler["std"]))
    raw = (mean + std * 3.0 * rng.standard_normal((batch, 12, 62))).astype(np.float32)
    want = rm.run(model, scaler, raw)
    got = dict(zip(rm.OUTPUT_NAMES, session(out).run(rm.OUTPUT_NAMES, {"features": raw})))
    for name in rm.OUTPUT_NAMES:
        assert got[name].shape == want[name].shape, name
        diff = float(np.max(np.abs(got[name] - want[name])))
        assert diff <= TOL, f"{name} batch {batch}: max abs diff {diff:.3e}"


def test_tampered_probe_is_refused_and_nothing_written(tmp_path):
    ckpt = make_ckpt(tmp_path / "ckpt", "unidirectional")
    probe = load_file(str(ckpt / "probe.safetensors"))
    probe["30day_trend"] = probe["30day_trend"] + np.float32(1e-3)
    save_file(probe, str(ckpt / "probe.safetensors"))
    out = tmp_path / "out" / "model.onnx"
    r = subprocess.run([exporter_bin(), "--checkpoint", str(ckpt), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "parity" in r.stderr and "30day_trend" in r.stderr, r.stderr
    assert not out.exists() and not (tmp_path / "out" / "model.json").exists()
    leftovers = os.listdir(tmp_path / "out") if (tmp_path / "out").exists() else []
    assert leftovers == [], leftovers
