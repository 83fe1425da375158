#!/usr/bin/env python3
"""Build a small test ONNX model for the scorer tests.

Preferred path: `make_checkpoint.py` (random checkpoint in the docs/contracts.md layout) and the
project's `exporter` binary. When no exporter binary is available, the reference PyTorch module
(tests/python/reference_model.py) is exported here with torch.onnx (opset 17, dynamic batch,
normalisation inside, the DESIGN.md metadata properties), which fits the same ONNX contract.

    python3 tests/python/scorer_model.py --out model.onnx [--seed 7] [--preset unidirectional]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import paths  # noqa: E402


def exporter_bin() -> str | None:
    found = paths.binary("exporter")
    return found if found and os.path.exists(found) else None


def torch_export(ckpt: str, out: str) -> None:
    import numpy as np
    import onnx
    import torch

    import reference_model as rm

    model, scaler, cfg = rm.load_checkpoint(ckpt)
    mean = torch.tensor(np.asarray(scaler["mean"], dtype=np.float32))
    std = np.asarray(scaler["std"], dtype=np.float32)
    std = torch.tensor(np.where(std == 0, 1.0, std).astype(np.float32))

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x):
            o = self.m((x - mean) / std)
            return tuple(o[k] for k in rm.OUTPUT_NAMES)

    x = torch.randn(2, 12, 62)
    kwargs = dict(
        input_names=["features"],
        output_names=rm.OUTPUT_NAMES,
        dynamic_axes={"features": {0: "batch"}, **{k: {0: "batch"} for k in rm.OUTPUT_NAMES}},
        opset_version=17,
    )
    try:
        torch.onnx.export(Wrapped().eval(), (x,), out, dynamo=False, **kwargs)
    except TypeError:
        torch.onnx.export(Wrapped().eval(), (x,), out, **kwargs)
    m = onnx.load(out)
    with open(os.path.join(ckpt, "model.safetensors"), "rb") as f:
        version = hashlib.sha256(f.read()).hexdigest()
    props = {
        "model_version": version,
        "feature_names": json.dumps([f"feature_{i}" for i in range(62)]),
        "sequence_length": "12",
        "horizons": "[7, 30]",
        "trained_at": "2026-11-30T00:00:00Z",
        "metrics": "{}",
    }
    del m.metadata_props[:]
    for k, v in props.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, out)


def build(out: str, seed: int = 7, preset: str = "unidirectional") -> str:
    """Writes an ONNX model to `out`; returns which path made it ("exporter" or "torch")."""
    tmp = tempfile.mkdtemp(prefix="scorer-ckpt-")
    try:
        subprocess.run(
            [sys.executable, os.path.join(HERE, "make_checkpoint.py"), "--out", tmp, "--seed", str(seed), "--preset", preset],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        exe = exporter_bin()
        if exe and os.environ.get("SCORER_TEST_TORCH_EXPORT") != "1":
            r = subprocess.run([exe, "--checkpoint", tmp, "--out", out], capture_output=True, text=True)
            if r.returncode == 0:
                return "exporter"
            print(f"exporter failed ({r.returncode}), falling back to torch export:\n{r.stderr[-2000:]}", file=sys.stderr)
        torch_export(tmp, out)
        return "torch"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--preset", default="unidirectional")
    a = ap.parse_args()
    print(build(a.out, a.seed, a.preset))
