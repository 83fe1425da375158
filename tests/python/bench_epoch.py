#!/usr/bin/env python3
"""One training epoch: `trainer fit --epochs 1` (tch) beside the same epoch in plain PyTorch.

Both sides train the default model (or --config's) on the same windows of the same rows, on the
same device and thread count: the Rust side is `trainer fit --epochs 1`, timed by the trainer
itself (history.json `seconds`: the epoch's optimisation steps and its validation pass, not
loading or checkpoint writing); the PyTorch side rebuilds the trainer's split and scaler from
that checkpoint (compare_trainers.trainer_windows, which checks both against it), moves the
tensors to the device and runs one epoch of the same recipe (Adam, gradient-norm clipping,
shuffled batches of training.batch_size, then the validation loss), synchronised before the
clock stops. Reported: training windows, seconds per epoch and windows/s for each.

    python3 tests/python/bench_epoch.py --rows ROWS.parquet [--device cpu|cuda] [--threads 2]
        [--batch-sizes 32,1024] [--json-out FILE]
    python3 tests/python/bench_epoch.py --synth TICKERS,WEEKS ...   # rows from `trainer synth`

Nothing is asserted about speed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare_trainers as ct  # noqa: E402
import reference_model  # noqa: E402
from test_trainer_parity import trainer_bin  # noqa: E402


def rust_epoch(rows: Path, out: Path, device: str, threads: int, batch: int | None, config: str | None) -> dict:
    cmd = [str(trainer_bin()), "fit", "--data", str(rows), "--out", str(out), "--epochs", "1", "--device", device,
           "--threads", str(threads), "--no-progress"]
    if batch:
        cmd += ["--batch-size", str(batch)]
    if config:
        cmd += ["--config", config]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"trainer fit --device {device} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    history = json.loads((out / "history.json").read_text())
    return dict(seconds=history[0]["seconds"], wall_seconds=wall)


def torch_epoch(ckpt: Path, data: dict, device: str, threads: int) -> dict:
    torch.set_num_threads(threads)
    cfg = json.loads((ckpt / "config.json").read_text())
    tr = {k: v.to(device) for k, v in data["train"].items()}
    va = {k: v.to(device) for k, v in data["val"].items()}
    run = cfg["training"]  # the trainer's whole TrainConfig
    t, lw, o = run["training"], run["loss"], run["optimizer"]
    w = [lw["trend_7d_weight"], lw["direction_7d_weight"], lw["trend_30d_weight"], lw["direction_30d_weight"]]
    torch.manual_seed(t["seed"])
    model = reference_model.model_from_config(cfg["model"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=o["learning_rate"], weight_decay=o["weight_decay"])
    n, bs = len(tr["x"]), t["batch_size"]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    model.train()
    perm = torch.randperm(n, device=device)
    for i in range(0, n, bs):
        idx = perm[i:i + bs]
        y = {k: v[idx] for k, v in tr.items()}
        loss = ct.loss_parts(model(y["x"]), y, w)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t["max_grad_norm"])
        opt.step()
    val = float(ct.loss_parts(ct.predict(model, va["x"]), va, w))
    sync()
    return dict(seconds=time.perf_counter() - t0, val_loss=val, train_windows=n, val_windows=len(va["x"]),
                batch_size=bs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--rows", type=Path, help="weekly rows (Parquet)")
    src.add_argument("--synth", help="TICKERS,WEEKS of `trainer synth` rows")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both sides) [cpu]")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-sizes", help="comma-separated training.batch_size values, one epoch each "
                    "(both sides) [the config's]")
    ap.add_argument("--config", help="TOML training config for the trainer (defaults otherwise)")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trendscore-epoch-"))
    rows = work / "rows.parquet"
    if a.rows:
        rows.symlink_to(a.rows.resolve())
    else:
        tickers, weeks = a.synth.split(",")
        subprocess.run([str(trainer_bin()), "synth", "--out", str(rows), "--tickers", tickers, "--weeks", weeks],
                       check=True, capture_output=True)
    out, data = [], None
    for i, bs in enumerate([int(b) for b in a.batch_sizes.split(",")] if a.batch_sizes else [None]):
        ckpt = work / f"ckpt{i}"
        rust = rust_epoch(rows, ckpt, a.device, a.threads, bs, a.config)
        if data is None:  # the same rows and split for every batch size: rebuilt (and checked) once
            data, _ = ct.trainer_windows(rows, ckpt)
        py = torch_epoch(ckpt, data, a.device, a.threads)
        res = dict(device=a.device, threads=a.threads, batch_size=py["batch_size"],
                   train_windows=py["train_windows"], val_windows=py["val_windows"], rust_epoch_s=rust["seconds"],
                   rust_fit_wall_s=rust["wall_seconds"], pytorch_epoch_s=py["seconds"],
                   rust_windows_per_s=py["train_windows"] / rust["seconds"],
                   pytorch_windows_per_s=py["train_windows"] / py["seconds"])
        out.append(res)
        print(f"one epoch on {a.device} ({a.threads} threads), {res['train_windows']} training windows + "
              f"{res['val_windows']} validation, batch {res['batch_size']}: trainer {rust['seconds']:.2f}s "
              f"(fit wall {rust['wall_seconds']:.2f}s), PyTorch {py['seconds']:.2f}s, "
              f"trainer/PyTorch speed {py['seconds'] / rust['seconds']:.2f}x", flush=True)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
