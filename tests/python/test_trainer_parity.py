"""PyTorch parity of the Rust trainer (tch).

For three model configs (the default; 3 layers / 8 heads / other head widths; unidirectional)
this trains a checkpoint with the real `trainer` binary on synthetic rows, loads it into the
PyTorch module of tests/python/reference_model.py with load_state_dict(strict=True), runs the
probe's raw windows (>= 64, including extreme values) and requires every output to match the
trainer's own CPU outputs stored in probe.safetensors within 1e-5 absolute.

Binary: $TRAINER_BIN, else the newest build in the target dir (tests/python/paths.py). Run: python3 -m pytest -q tests/python/test_trainer_parity.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import paths  # noqa: E402
import reference_model  # noqa: E402

TOL = 1e-5

CONFIGS = {
    "default": "",
    "deep_wide": """
[model]
num_lstm_layers = 3
num_attention_heads = 8
hidden_dim = 64
head_hidden_dims = [48, 24, 12]
dropout_rate = 0.1
""",
    "unidirectional": """
[model]
bidirectional = false
hidden_dim = 32
num_lstm_layers = 2
num_attention_heads = 4
head_hidden_dims = [16]
""",
}


def trainer_bin() -> Path:
    found = paths.binary("trainer")
    if not found or not os.path.isfile(found):
        pytest.fail(f"trainer binary not found ({found or paths.TARGET}): {paths.BUILD_HINT}")
    return Path(found)


def run(args, **kw):
    res = subprocess.run([str(trainer_bin()), *map(str, args)], capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"trainer {args} failed:\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "rows.parquet"
    run(["synth", "--tickers", "6", "--weeks", "70", "--seed", "3", "--out", path])
    return path


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def checkpoint(request, rows, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"ckpt_{request.param}")
    cfg = d / "train.toml"
    cfg.write_text(CONFIGS[request.param])
    ckpt = d / "ckpt"
    run(["fit", "--data", rows, "--out", ckpt, "--config", cfg, "--epochs", "1", "--device", "cpu",
         "--no-progress", "--threads", "2"])
    return request.param, ckpt


def test_checkpoint_loads_strictly_and_matches_trainer_outputs(checkpoint):
    name, ckpt = checkpoint
    model, scaler, cfg = reference_model.load_checkpoint(str(ckpt))  # strict=True inside
    probe = load_file(str(ckpt / "probe.safetensors"))
    raw = probe["features"]
    assert raw.shape[0] >= 64 and raw.shape[1:] == (cfg["sequence"]["sequence_length"], cfg["model"]["input_dim"])
    normalised = reference_model.normalise(raw, scaler)
    assert np.abs(normalised).max() > 50, "probe lacks extreme values"
    out = reference_model.run(model, scaler, raw)
    for key in reference_model.OUTPUT_NAMES:
        assert out[key].shape == probe[key].shape, (name, key, out[key].shape, probe[key].shape)
        diff = float(np.abs(out[key] - probe[key]).max())
        assert diff <= TOL, f"{name}: {key} differs by {diff}"
    # The outputs are not trivially constant (a broken model could agree on zeros). With
    # PyTorch's default init a deep narrow head (deep_wide: 48-24-12) after one epoch varies its
    # trend by only ~1e-5 across the probe, so the check takes the most varying of the outputs.
    spread = max(float(np.std(probe[k], axis=0).max()) for k in reference_model.OUTPUT_NAMES)
    assert spread > 1e-4, spread
    np.testing.assert_allclose(probe["attention_weights"].sum(axis=1), 1.0, atol=1e-5)


def test_config_json_carries_the_contract_sections(checkpoint):
    name, ckpt = checkpoint
    cfg = json.loads((ckpt / "config.json").read_text())
    for key in ["input_dim", "hidden_dim", "num_lstm_layers", "num_attention_heads", "dropout_rate",
                "bidirectional", "head_hidden_dims"]:
        assert key in cfg["model"], key
    assert cfg["format_version"] == 1
    assert len(cfg["features"]["names"]) == cfg["model"]["input_dim"]
    scaler = json.loads((ckpt / "scaler.json").read_text())
    assert scaler["feature_names"] == cfg["features"]["names"]
    if name == "unidirectional":
        from safetensors.torch import load_file as load_torch
        assert not any(k.startswith("encoder.projection") for k in load_torch(str(ckpt / "model.safetensors")))


def test_perturbed_weights_are_detected(checkpoint):
    """The comparison can fail: nudging one weight moves the outputs beyond the tolerance."""
    _, ckpt = checkpoint
    model, scaler, _ = reference_model.load_checkpoint(str(ckpt))
    probe = load_file(str(ckpt / "probe.safetensors"))
    with torch.no_grad():
        model.head_7d.trend.bias.add_(1e-3)
    out = reference_model.run(model, scaler, probe["features"][:64])
    assert np.abs(out["7day_trend"] - probe["7day_trend"][:64]).max() > TOL
