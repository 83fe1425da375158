"""Training-step throughput: the Rust trainer (tch) beside the same step in PyTorch.

One optimisation step = forward in training mode (dropout on), LSTMLoss (MSE on both trends +
cross-entropy on both directions, weights 1/0.5/1/0.5), backward, global gradient-norm clipping
at 1.0 and an Adam update (lr 1e-3, weight decay 1e-5), on random (batch, 12, 62) inputs with the
default model (BiLSTM 2x128, 4 heads, heads [64, 32]). Both sides run on the same device (the
CPU by default, with the same intra-op thread count; `--device cuda` on the GPU, inputs already
there, each step synchronised before the clock stops); the median step time is reported as
sequences/s and the ratio Rust / PyTorch is printed (> 1 means the Rust trainer is faster).

Usage: python3 tests/python/bench_train_step.py [--threads N] [--iters N] [--batches 32,256] [--device cpu]
Rust side: `trainer bench-step` ($TRAINER_BIN or the debug build under $CARGO_TARGET_DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import reference_model  # noqa: E402
from test_trainer_parity import trainer_bin  # noqa: E402


def torch_step_rate(batch: int, threads: int, iters: int, warmup: int = 3, device: str = "cpu") -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    model = reference_model.TrendModel().to(device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    x = torch.randn(batch, 12, 62, device=device)
    t7 = torch.rand(batch, device=device) * 2 - 1
    t30 = torch.rand(batch, device=device) * 2 - 1
    d7, d30 = (t7 > 0).long(), (t30 > 0).long()

    def step():
        out = model(x)
        loss = (F.mse_loss(out["7day_trend"].squeeze(1), t7) + 0.5 * F.cross_entropy(out["7day_direction"], d7)
                + F.mse_loss(out["30day_trend"].squeeze(1), t30) + 0.5 * F.cross_entropy(out["30day_direction"], d30))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    return batch / times[len(times) // 2]


def rust_step_rate(batch: int, threads: int, iters: int, device: str = "cpu") -> float:
    res = subprocess.run([str(trainer_bin()), "bench-step", "--batch", str(batch), "--threads", str(threads),
                          "--iters", str(iters), "--device", device], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"trainer bench-step --device {device} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])["sequences_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--iters", type=int, default=15)
    ap.add_argument("--batches", default="32,256")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both sides) [cpu]")
    ap.add_argument("--json-out", help="also write the figures as JSON here")
    a = ap.parse_args()
    print(f"{a.device} train step, default model, {a.threads} threads, median of {a.iters} steps "
          f"(torch {torch.__version__})")
    print(f"{'batch':>6} {'rust seq/s':>12} {'pytorch seq/s':>14} {'rust/pytorch':>13}")
    out = []
    for b in [int(v) for v in a.batches.split(",")]:
        r = rust_step_rate(b, a.threads, a.iters, a.device)
        p = torch_step_rate(b, a.threads, a.iters, device=a.device)
        print(f"{b:>6} {r:>12.1f} {p:>14.1f} {r / p:>13.2f}")
        out.append({"batch": b, "threads": a.threads, "device": a.device, "rust_seq_per_s": r,
                    "pytorch_seq_per_s": p})
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()
