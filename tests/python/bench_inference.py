#!/usr/bin/env python3
"""Inference throughput of the exported model: Rust ort-cpu and tract beside PyTorch eager
and Python onnxruntime, on the same inputs and thread count, with ratios.

    python3 tests/python/bench_inference.py [--checkpoint CKPT] [--threads 2] [--batches 1,64,1024] [--seconds 3]

Every LSTM form the exporter emits is measured (runners `python-ort-FORM`, `rust-BACKEND-FORM`);
`rust-BACKEND` is the default form and `python-ort` the faster form on Python onnxruntime (the
peer). Without --checkpoint a default-config checkpoint is made with make_checkpoint.py (weights do
not change speed). The Rust numbers come from `exporter bench` (binary: $EXPORTER_BIN, else the
newer of the release and dev builds under $CARGO_TARGET_DIR; the dev profile builds tract and
ort at opt-level 2, so either gives representative figures).
`--device cuda` measures the GPU instead: PyTorch eager on CUDA, Python onnxruntime on its CUDA
execution provider (onnxruntime-gpu; the script fails rather than measure the CPU when the
provider does not take the session) and `exporter bench --backend ort-cuda`; every runner takes
host inputs and returns host outputs in each call, as the scorer does.
The runners take turns: --rounds rounds (3), each giving every runner --seconds/rounds per batch,
and each runner keeps its best round, so a burst of interference on a shared machine costs one
round of one runner rather than its only figure.
Nothing is asserted: the script prints windows/s and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
# The exporter's LSTM forms (`exporter --lstm-form`), its default first.
FORMS = ["op", "unrolled"]
sys.path.insert(0, HERE)
import paths  # noqa: E402
import reference_model as rm  # noqa: E402


def exporter_bin() -> str:
    # The newer of the release and dev builds (paths.binary): a stale release binary must not
    # be measured in place of the code just built (the dev profile builds tract and ort at
    # opt-level 2).
    found = paths.binary("exporter")
    if not found:
        sys.exit(f"exporter binary not found: {paths.BUILD_HINT}")
    return found


def rate(fn, batch: int, seconds: float) -> float:
    fn()  # warm-up
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        calls = 0
        while time.perf_counter() - t0 < seconds / 5 or calls == 0:
            fn()
            calls += 1
        rates.append(calls * batch / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,64,1024")
    ap.add_argument("--seconds", type=float, default=3.0, help="per runner and batch, over all rounds [3]")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over all runners; each keeps its best [3]")
    ap.add_argument("--backends", help="Rust backends for exporter bench [ort-cpu,tract; ort-cuda with --device cuda]")
    ap.add_argument("--device", default="cpu", help="cpu or cuda [cpu]")
    ap.add_argument("--json-out", help="also write the figures as JSON here")
    args = ap.parse_args()
    cuda = args.device == "cuda"
    args.backends = args.backends or ("ort-cuda" if cuda else "ort-cpu,tract")
    batches = [int(b) for b in args.batches.split(",")]
    work = tempfile.mkdtemp(prefix="trendscore-bench-")
    ckpt = args.checkpoint
    if not ckpt:
        ckpt = os.path.join(work, "ckpt")
        subprocess.run([sys.executable, os.path.join(HERE, "make_checkpoint.py"), "--out", ckpt], check=True,
                       capture_output=True)
    # every LSTM form the exporter emits; the default form is the first
    paths = {}
    for form in FORMS:
        paths[form] = os.path.join(work, f"model-{form}.onnx")
        subprocess.run([exporter_bin(), "--checkpoint", ckpt, "--out", paths[form], "--lstm-form", form],
                       check=True, capture_output=True)
    onnx_path = paths[FORMS[0]]

    model, scaler, _ = rm.load_checkpoint(ckpt)
    rng = np.random.default_rng(0)
    mean = np.asarray(scaler["mean"], dtype=np.float32)
    std = np.asarray(scaler["std"], dtype=np.float32)
    std = np.where(std == 0, 1, std).astype(np.float32)
    n = max(batches)
    inputs = (mean + std * rng.standard_normal((n, 12, 62))).astype(np.float32)
    inputs_path = os.path.join(work, "inputs.safetensors")
    save_file({"features": inputs}, inputs_path)

    torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if cuda else "cpu")
    model = model.to(dev)
    tmean, tstd = torch.from_numpy(mean).to(dev), torch.from_numpy(std).to(dev)

    def torch_run(x):
        with torch.inference_mode():
            out = model((x.to(dev) - tmean) / tstd)
            if cuda:  # host out, as every other runner
                {k: v.cpu() for k, v in out.items()}

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    providers = ["CUDAExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    sessions = {}
    for form, path in paths.items():
        sessions[form] = ort.InferenceSession(path, so, providers=providers)
        if sessions[form].get_providers()[0] != providers[0]:
            sys.exit(f"Python onnxruntime did not take {providers[0]} (got {sessions[form].get_providers()}): install "
                     "onnxruntime-gpu and the CUDA libraries it needs")

    def rust_round(form: str, seconds: float) -> dict:
        out_json = os.path.join(work, f"rust-{form}.json")
        cmd = [exporter_bin(), "bench", "--model", paths[form], "--inputs", inputs_path, "--backend", args.backends,
               "--threads", str(args.threads), "--batches", args.batches, "--seconds", str(seconds),
               "--json", out_json]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"exporter bench failed ({res.returncode}):\n{res.stderr[-3000:]}")
        return {(f"rust-{r['backend']}-{form}", r["batch"]): r["windows_per_s"] for r in json.load(open(out_json))}

    # Every runner is measured in each of --rounds rounds, one after the other, and keeps its best
    # round: a few seconds of interference on this shared machine then lower one round of one
    # runner instead of that runner's only figure.
    rounds: dict = {}
    per = args.seconds / args.rounds
    for _ in range(args.rounds):
        got = {}
        for b in batches:
            x = torch.from_numpy(inputs[:b])
            got[("pytorch-eager", b)] = rate(lambda: torch_run(x), b, per)
        for form, sess in sessions.items():
            for b in batches:
                feed = {"features": inputs[:b]}
                got[(f"python-ort-{form}", b)] = rate(lambda: sess.run(None, feed), b, per)
        for form in FORMS:
            got.update(rust_round(form, per))
        for k, v in got.items():
            rounds.setdefault(k, []).append(v)
    results = {k: max(v) for k, v in rounds.items()}
    for k in list(results):  # the default form under the backend's own name
        if k[0].startswith("rust-") and k[0].endswith("-" + FORMS[0]):
            results[(k[0].removesuffix("-" + FORMS[0]), k[1])] = results[k]
    # the peer: Python onnxruntime on whichever form it runs faster
    for b in batches:
        results[("python-ort", b)] = max(results[(f"python-ort-{f}", b)] for f in FORMS)

    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump([{"runner": k[0], "batch": k[1], "threads": args.threads, "device": args.device,
                        "windows_per_s": v}
                       for k, v in results.items()], f)
    names = ["pytorch-eager"] + [f"python-ort-{f}" for f in FORMS] + [
        f"rust-{b}-{f}" for f in FORMS for b in args.backends.split(",")]
    base_runner = "rust-ort-cuda" if cuda else "rust-ort-cpu"
    print(f"device={args.device}  threads={args.threads}  model={onnx_path}  (windows/s; ratios against "
          f"{base_runner} and pytorch-eager)")
    print(f"{'runner':<22}" + "".join(f"{'batch ' + str(b):>30}" for b in batches))
    for nme in names:
        row = f"{nme:<22}"
        for b in batches:
            v = results.get((nme, b))
            base = results.get((base_runner, b))
            pt = results.get(("pytorch-eager", b))
            if v is None:
                row += f"{'-':>30}"
            else:
                rel = f"{v / base:5.2f}x ort" if base else ""
                relp = f"{v / pt:5.2f}x pt" if pt else ""
                row += f"{v:>12.0f} {rel:>9} {relp:>7}"
        print(row)
    if ("rust-tract", batches[0]) in results and ("rust-ort-cpu", batches[0]) in results:
        print("tract slowdown vs ort-cpu: " + ", ".join(
            f"batch {b}: {results[('rust-ort-cpu', b)] / results[('rust-tract', b)]:.2f}x" for b in batches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
