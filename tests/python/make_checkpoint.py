#!/usr/bin/env python3
"""Write a trendscore checkpoint directory from a random-initialised reference model.

Stands in for `trainer fit` in the exporter/inference tests: the layout is exactly
docs/contracts.md (model.safetensors, config.json, scaler.json, probe.safetensors,
metrics.json, history.json). The probe's outputs come from reference_model.run, so an
exported ONNX file that matches the probe matches the PyTorch module of DESIGN.md.

    python3 tests/python/make_checkpoint.py --out /tmp/ckpt [--preset default|unidirectional|deep] [--seed 7]

Presets:
  default         DESIGN.md defaults: hidden 128, 2 layers, bidirectional, 4 heads, head dims [64, 32]
  unidirectional  hidden 48, 1 layer, forward only, 2 heads, head dims [16]
  deep            hidden 96, 3 layers, bidirectional, 8 heads, head dims [48, 24, 12]
Individual --hidden-dim/--layers/--heads/--head-dims/--unidirectional flags override a preset.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_model as rm  # noqa: E402

SEQUENCE_LENGTH = 12
INPUT_DIM = 62

PRESETS = {
    "default": dict(hidden_dim=128, num_lstm_layers=2, num_attention_heads=4, bidirectional=True, head_hidden_dims=[64, 32]),
    "unidirectional": dict(hidden_dim=48, num_lstm_layers=1, num_attention_heads=2, bidirectional=False, head_hidden_dims=[16]),
    "deep": dict(hidden_dim=96, num_lstm_layers=3, num_attention_heads=8, bidirectional=True, head_hidden_dims=[48, 24, 12]),
}


def probe_windows(rng: np.random.Generator, mean: np.ndarray, std: np.ndarray, n: int) -> np.ndarray:
    """(n, 12, 62) raw windows: typical values plus extremes (huge, tiny, constant, zero)."""
    s = np.where(std == 0.0, 1.0, std)
    x = mean + s * rng.standard_normal((n, SEQUENCE_LENGTH, INPUT_DIM))
    extremes = [
        np.full((SEQUENCE_LENGTH, INPUT_DIM), 1e6),
        np.full((SEQUENCE_LENGTH, INPUT_DIM), -1e6),
        np.zeros((SEQUENCE_LENGTH, INPUT_DIM)),
        np.broadcast_to(mean, (SEQUENCE_LENGTH, INPUT_DIM)).copy(),  # normalises to exactly 0
        mean + s * 1e3 * rng.standard_normal((SEQUENCE_LENGTH, INPUT_DIM)),  # z-scores ~1e3
        mean + s * 50.0 * np.sign(rng.standard_normal((SEQUENCE_LENGTH, INPUT_DIM))),  # saturating
        np.full((SEQUENCE_LENGTH, INPUT_DIM), 1e-30),
        mean + s * rng.standard_normal((SEQUENCE_LENGTH, INPUT_DIM)) * np.linspace(0, 100, SEQUENCE_LENGTH)[:, None],
    ]
    for i, e in enumerate(extremes):
        x[i] = e
    # one spike per window in a few more windows
    for i in range(len(extremes), len(extremes) + 8):
        t, f = rng.integers(0, SEQUENCE_LENGTH), rng.integers(0, INPUT_DIM)
        x[i, t, f] = rng.choice([-1e5, 1e5])
    return x.astype(np.float32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--probe-size", type=int, default=64)
    ap.add_argument("--hidden-dim", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--head-dims", type=str, help="comma-separated, e.g. 64,32")
    ap.add_argument("--unidirectional", action="store_true")
    args = ap.parse_args(argv)
    if args.probe_size < 16:
        ap.error("--probe-size must be >= 16 (the probe holds 16 extreme windows)")

    cfg = dict(PRESETS[args.preset])
    if args.hidden_dim is not None:
        cfg["hidden_dim"] = args.hidden_dim
    if args.layers is not None:
        cfg["num_lstm_layers"] = args.layers
    if args.heads is not None:
        cfg["num_attention_heads"] = args.heads
    if args.head_dims is not None:
        cfg["head_hidden_dims"] = [int(v) for v in args.head_dims.split(",") if v]
    if args.unidirectional:
        cfg["bidirectional"] = False
    model_cfg = {"input_dim": INPUT_DIM, **cfg, "dropout_rate": 0.2}
    model_cfg = {k: model_cfg[k] for k in rm.MODEL_KEYS}

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = rm.model_from_config(model_cfg)
    model.eval()
    # PyTorch's default init gives near-constant outputs; sharpen the attention and heads so the
    # probe's outputs (trend up to ~1, logits of several units, peaked attention) test parity
    # where it matters.
    with torch.no_grad():
        model.attention.in_proj_weight[: 2 * model_cfg["hidden_dim"]].mul_(6.0)
        for head in (model.head_7d, model.head_30d):
            for p in head.parameters():
                p.mul_(3.0)

    names = [f"feature_{i}" for i in range(INPUT_DIM)]
    mean = rng.normal(0.0, 10.0, INPUT_DIM)
    std = rng.uniform(0.05, 5.0, INPUT_DIM)
    std[[3, 40]] = 0.0  # constant features in training: read as std 1
    scaler = {"feature_names": names, "mean": [float(np.float32(v)) for v in mean], "std": [float(np.float32(v)) for v in std]}

    raw = probe_windows(rng, np.asarray(scaler["mean"]), np.asarray(scaler["std"]), args.probe_size)
    outputs = rm.run(model, scaler, raw)

    os.makedirs(args.out, exist_ok=True)
    state = {k: v.detach().contiguous().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    save_file(state, os.path.join(args.out, "model.safetensors"))
    save_file({"features": raw, **{k: np.ascontiguousarray(v.astype(np.float32)) for k, v in outputs.items()}},
              os.path.join(args.out, "probe.safetensors"))
    config = {
        "format_version": 1,
        "model": model_cfg,
        "training": {"note": "random initialisation by tests/python/make_checkpoint.py", "preset": args.preset},
        "sequence": {"sequence_length": SEQUENCE_LENGTH, "horizons": [7, 30]},
        "features": {"names": names},
        "trained_at": "2026-11-30T12:00:00Z",
        "seed": args.seed,
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(args.out, "scaler.json"), "w") as f:
        json.dump(scaler, f)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"test": {"mae_7d": None, "note": "untrained"}}, f)
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump([], f)
    print(f"wrote {args.out} ({args.preset}, {sum(v.size for v in state.values())} parameters, probe {raw.shape})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
