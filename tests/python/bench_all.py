#!/usr/bin/env python3
"""One benchmark table: every figure beside its peer from the same run (`scripts/bench.sh`).

Runs, one after the other on the same machine and the same default-config model:
  1. a training step, Rust trainer (tch) vs the same step in PyTorch (bench_train_step.py);
  2. inference windows/s per backend (Rust ort-cpu, Rust tract) at batch 1, 64, 256, 1024 vs
     PyTorch eager and Python onnxruntime (bench_inference.py);
  3. `scorer backfill` rows/s on one core and on all cores vs a plain-Python backfill
     (pyarrow + numpy + onnxruntime), and its peak memory (backfill_bench.py);
  4. the scorer service, topic -> durable Parquet rows/s on a real broker, per backend, vs a
     plain-Python consumer (confluent-kafka + onnxruntime + pyarrow), beside the same
     backend's inference-only windows/s at the stream's batch size, and the same to S3 (a moto
     server on loopback) against the local sink (scorer_bench.py); and the same stream again
     with the broker on a CPU of its own and the consumers on the rest (`scorer_bench.py
     --pin`, on a machine with two CPUs or more), beside each backend's inference-only
     windows/s measured on those same CPUs, as when the broker runs on another machine;
  5. the hardware ceiling: the model's FLOPs per window at this machine's measured sgemm peak,
     beside each backend's inference windows/s (roofline.py);
  6. one training epoch, `trainer fit --epochs 1` vs the same epoch in PyTorch (bench_epoch.py);
and, where CUDA is present (`--parts gpu`; the default adds it when PyTorch sees a GPU):
  7. the training step and one epoch on the GPU (batch 32, the default, and 1024), Rust vs
     PyTorch, and ort-cuda windows/s at batch 1024 and 8192 vs PyTorch eager and Python
     onnxruntime on CUDA (onnxruntime-gpu), all host in, host out.
Then prints the machine (CPU, cores, AVX flags, the GPU), the load before and after, and the table.
`--short` uses tiny sizes so CI runs it (it must not rot); it asserts nothing about speed.
`--json-out FILE` writes every figure as JSON. `--rows FILE` trains the epochs on these weekly
rows (e.g. the main job's runs/demo/rows.parquet) instead of `trainer synth` rows.

    python3 tests/python/bench_all.py [--short] [--threads 2] [--parts cpu,gpu] [--rows R] [--json-out bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def machine() -> str:
    model, flags = "?", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = ",".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "amx_tile") if f in flags) or "none"
    desc = f"{model}; {os.cpu_count()} cores; {simd}; {platform.system()} {platform.release()}"
    gpu = gpu_name()
    return desc + (f"; GPU {gpu}" if gpu else "")


def gpu_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 (no torch, no driver: no GPU)
        return None


def auto_backend(model: str, ckpt: str, tmp: str) -> str:
    """The backend `auto` (the default) picks on this machine: what `exporter bench --backend
    auto` reports, in its JSON, that it ran."""
    import scorer_model

    out = os.path.join(tmp, "auto_backend.json")
    subprocess.run([scorer_model.exporter_bin(), "bench", "--model", model,
                    "--inputs", os.path.join(ckpt, "probe.safetensors"), "--backend", "auto",
                    "--batches", "1", "--seconds", "0.1", "--json", out],
                   check=True, capture_output=True)
    with open(out) as f:
        return json.load(f)[0]["backend"]


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def run(script: str, args: list, tmp: str, tag: str = "") -> object:
    out = os.path.join(tmp, script.replace(".py", f"{tag}.json"))
    cmd = [sys.executable, os.path.join(HERE, script), *args, "--json-out", out]
    print("+ " + " ".join(cmd[1:]), flush=True)
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout[-4000:])
        raise SystemExit(f"{script} failed ({r.returncode})")
    print(f"  done in {time.perf_counter() - t:.0f}s", flush=True)
    with open(out) as f:
        return json.load(f)


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def epoch_rows(epoch: list, where: str) -> list:
    return [(f"train epoch{where}, batch {e['batch_size']}, {e['train_windows']} win", "trainer fit --epochs 1",
             e["rust_windows_per_s"], "PyTorch, same epoch", e["pytorch_windows_per_s"], "win/s") for e in epoch]


def backfill_rows(backfill: list, where: str) -> list:
    rows = []
    plain = next(r for r in backfill if r["who"].startswith("plain"))
    for r in backfill:
        if r is plain:
            continue
        small = r.get("max_rows_in_memory", 0) < 2_000_000
        what = f"{where}backfill, {r['threads']} thr" + (f", ≤{r['max_rows_in_memory']} rows in memory" if small else "")
        rows.append((what, r["who"], r["rows_per_s"], "plain Python (CPU), 2 thr", plain["rows_per_s"], "rows/s"))
    return rows


def rates(infer: list) -> dict:
    """bench_inference.py's JSON as (runner, batch) -> windows/s."""
    return {(r["runner"], r["batch"]): r["windows_per_s"] for r in infer}


def ceiling_rows(roof: dict, infer: list) -> list:
    inf = rates(infer)
    rows = []
    for c in roof["batches"]:
        for backend in ("ort-cpu", "tract"):
            if ("rust-" + backend, c["batch"]) in inf:
                rows.append((f"inference vs ceiling, batch {c['batch']}", f"{backend}, op LSTM",
                             inf[("rust-" + backend, c["batch"])], "its FLOPs at sgemm peak",
                             c["ceiling_peak_windows_per_s"], "win/s"))
    return rows


def ceiling_line(roof: dict) -> str:
    peaks = ", ".join(f"{v:.0f} GFLOP/s on {t} thr" for t, v in roof["peak_gflops"].items())
    flops = roof["batches"][0]["flops_per_window"] / 1e6
    big = roof["batches"][-1]
    return (f"ceiling: numpy/OpenBLAS sgemm peak {peaks} ({roof['openblas_core']} kernels, the fastest of "
            f"{', '.join(roof['openblas_cores_tried'])}); the model is {flops:.2f} MFLOP per window "
            f"(its matrix products); at batch {big['batch']} its own product shapes run at "
            f"{big['products_gflops']:.0f} GFLOP/s in OpenBLAS = {big['ceiling_products_windows_per_s']:.0f} win/s "
            f"(roofline.py)")


def pinned_rows(pinned: dict) -> list:
    """The stream with the broker on its own CPU (scorer_bench.py --pin): rows/s against the
    plain-Python consumer on the same CPUs, preds/s against inference only on them."""
    if not pinned:
        return []
    rows = []
    py = pinned.get("python", {}).get("rows_per_s")
    for kind, r in pinned.items():
        if kind == "python":
            continue
        cpus = ",".join(map(str, r["consumer_cpus"]))
        rows.append((f"stream, broker on its own CPU (CPUs {cpus})", f"scorer {kind}", r["rows_per_s"],
                     "Python consumer, same CPUs", py, "rows/s"))
        rows.append((f"stream vs inference only, CPUs {cpus}", f"scorer {kind}", r["preds_per_s"],
                     f"{kind} inference, same CPUs", r["inference_only_per_s"], "win/s"))
    return rows


def cpu_rows(train, infer, backfill, stream, epoch) -> list:
    rows = []
    for t in train:
        rows.append((f"train step, batch {t['batch']}", "Rust trainer (tch)", t["rust_seq_per_s"],
                     "PyTorch", t["pytorch_seq_per_s"], "seq/s"))
    rows += epoch_rows(epoch, "")
    inf = rates(infer)
    batches = sorted({b for _, b in inf})
    for b in batches:
        for backend in ("tract", "ort-cpu"):
            for form in ("op", "unrolled"):
                if (f"rust-{backend}-{form}", b) in inf:
                    rows.append((f"inference, batch {b}", f"{backend}, {form} LSTM", inf[(f"rust-{backend}-{form}", b)],
                                 "Python onnxruntime, best form", inf.get(("python-ort", b)), "win/s"))
        if ("pytorch-eager", b) in inf:
            rows.append((f"inference, batch {b}", "PyTorch eager", inf[("pytorch-eager", b)],
                         "Python onnxruntime, best form", inf.get(("python-ort", b)), "win/s"))
    rows += backfill_rows(backfill, "")
    py = stream.get("python", {}).get("rows_per_s")
    stream_batch = 1024  # the scorer's default batch.max_rows, what scorer_bench.py runs
    for kind, r in stream.items():
        if kind == "python":
            continue
        if kind.endswith("-s3"):
            local = stream.get(kind.removesuffix("-s3"), {}).get("rows_per_s")
            rows.append(("stream to S3 (moto) vs local sink", f"scorer {kind}", r["rows_per_s"],
                         "the same, local directory", local, "rows/s"))
            continue
        rows.append(("stream topic->Parquet", f"scorer {kind}", r["rows_per_s"], "plain Python consumer", py, "rows/s"))
        only = inf.get(("rust-" + kind, stream_batch)) or inf.get(("rust-" + kind, max(batches)))
        rows.append(("stream vs inference only", f"scorer {kind}", r["preds_per_s"], f"{kind} inference only", only,
                     "win/s"))
    return rows


def gpu_rows(gpu: dict) -> list:
    rows = [(f"GPU train step, batch {t['batch']}", "Rust trainer (tch), CUDA", t["rust_seq_per_s"],
             "PyTorch, CUDA", t["pytorch_seq_per_s"], "seq/s") for t in gpu["train"]]
    rows += epoch_rows(gpu["epoch"], " on GPU")
    inf = rates(gpu["infer"])
    for b in sorted({b for _, b in inf}):
        for form in ("op", "unrolled"):
            if (f"rust-ort-cuda-{form}", b) in inf:
                rows.append((f"GPU inference, batch {b}", f"ort-cuda, {form} LSTM", inf[(f"rust-ort-cuda-{form}", b)],
                             "Python onnxruntime CUDA, best", inf.get(("python-ort", b)), "win/s"))
        rows.append((f"GPU inference, batch {b}", "PyTorch eager, CUDA", inf[("pytorch-eager", b)],
                     "Python onnxruntime CUDA, best", inf.get(("python-ort", b)), "win/s"))
    return rows + backfill_rows(gpu["backfill"], "GPU ")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="tiny sizes: it must run; figures mean little")
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 2))
    ap.add_argument("--parts", help="cpu, gpu or cpu,gpu [cpu, and gpu when PyTorch sees a GPU]")
    ap.add_argument("--rows", help="weekly rows (Parquet) for the training epochs [trainer synth rows]")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    parts = set((a.parts or ("cpu,gpu" if gpu_name() else "cpu")).split(","))
    if parts - {"cpu", "gpu"}:
        ap.error(f"--parts: unknown {sorted(parts - {'cpu', 'gpu'})}")
    rows_arg = ["--rows", os.path.abspath(a.rows)] if a.rows else None
    tmp = tempfile.mkdtemp(prefix="trendscore-bench-")
    ckpt = os.path.join(tmp, "ckpt")
    subprocess.run([sys.executable, os.path.join(HERE, "make_checkpoint.py"), "--out", ckpt, "--preset", "default"],
                   check=True, stdout=subprocess.DEVNULL)
    import scorer_model  # noqa: E402  (the exporter binary it resolves is the one under test)

    model = os.path.join(tmp, "model.onnx")
    subprocess.run([scorer_model.exporter_bin(), "--checkpoint", ckpt, "--out", model], check=True,
                   stdout=subprocess.DEVNULL)
    threads = str(a.threads)
    auto = auto_backend(model, ckpt, tmp)
    load0 = loadavg()
    t0 = time.time()
    train = infer = backfill = stream = epoch = roof = pinned = None
    can_pin = len(os.sched_getaffinity(0)) >= 2  # scorer_bench.py --pin: a CPU for the broker, the rest for the consumers
    gpu = {}
    if "cpu" in parts and a.short:
        train = run("bench_train_step.py", ["--threads", threads, "--iters", "2", "--batches", "32"], tmp)
        infer = run("bench_inference.py", ["--checkpoint", ckpt, "--threads", threads, "--batches", "1,64",
                                           "--seconds", "0.3"], tmp)
        roof = run("roofline.py", ["--model", model, "--threads", threads, "--batches", "1,64", "--seconds", "0.05"],
                   tmp)
        backfill = run("backfill_bench.py", ["--model", model, "--short"], tmp)
        stream = run("scorer_bench.py", ["--tickers", "10", "--weeks", "20", "--rate", "50", "--seconds", "1",
                                         "--backends", "tract,ort-cpu,python,tract-s3"], tmp)
        if can_pin:
            pinned = run("scorer_bench.py", ["--tickers", "10", "--weeks", "20", "--pin", "--throughput-only",
                                             "--inference-seconds", "0.2", "--backends", "tract,python"], tmp,
                         tag="pinned")
        epoch = run("bench_epoch.py", [*(rows_arg or ["--synth", "3,80"]), "--threads", threads], tmp)
    elif "cpu" in parts:
        train = run("bench_train_step.py", ["--threads", threads, "--iters", "15", "--batches", "32,256"], tmp)
        infer = run("bench_inference.py", ["--checkpoint", ckpt, "--threads", threads,
                                           "--batches", "1,64,256,1024", "--seconds", "3"], tmp)
        roof = run("roofline.py", ["--model", model, "--threads", threads, "--batches", "1,64,256,1024"], tmp)
        backfill = run("backfill_bench.py", ["--model", model, "--tickers", "500", "--weeks", "600"], tmp)
        stream = run("scorer_bench.py", ["--tickers", "200", "--weeks", "300", "--rate", "200", "--seconds", "10",
                                         "--backends", "tract,ort-cpu,python,tract-s3"], tmp)
        if can_pin:
            pinned = run("scorer_bench.py", ["--tickers", "200", "--weeks", "300", "--pin", "--throughput-only",
                                             "--backends", "tract,ort-cpu,python"], tmp, tag="pinned")
        epoch = run("bench_epoch.py", [*(rows_arg or ["--synth", "20,300"]), "--threads", threads], tmp)
    if "gpu" in parts:
        short = a.short
        gpu["train"] = run("bench_train_step.py", ["--device", "cuda", "--threads", threads, "--iters",
                                                   "2" if short else "20", "--batches", "32" if short else "32,1024"],
                           tmp, tag="gpu")
        gpu["epoch"] = run("bench_epoch.py", [*(rows_arg or ["--synth", "3,80" if short else "200,600"]),
                                              "--device", "cuda", "--threads", threads,
                                              "--batch-sizes", "32" if short else "32,1024"], tmp, tag="gpu")
        gpu["infer"] = run("bench_inference.py", ["--checkpoint", ckpt, "--device", "cuda", "--threads", threads,
                                                  "--batches", "64,1024" if short else "1024,8192",
                                                  "--seconds", "0.3" if short else "3"], tmp, tag="gpu")
        gpu["backfill"] = run("backfill_bench.py", ["--model", model, "--backends", "ort-cuda",
                                                    *(["--short"] if short else ["--tickers", "500", "--weeks", "600"])],
                              tmp, tag="gpu")
    load1 = loadavg()

    rows = []  # (what, ours, ours_value, peer, peer_value, unit)
    if "cpu" in parts:
        rows += cpu_rows(train, infer, backfill, stream, epoch)
        rows += pinned_rows(pinned)
        rows += ceiling_rows(roof, infer)
    if "gpu" in parts:
        rows += gpu_rows(gpu)

    print()
    print(f"machine: {machine()}")
    print(f"backend auto (the default) runs here: {auto}")
    if roof:
        print(ceiling_line(roof))
    print(f"threads: {threads} (inference, training, plain Python); backfill all cores = {os.cpu_count()}; "
          f"load average {load0} before, {load1} after; {time.time() - t0:.0f}s; "
          f"{'SHORT mode: tiny sizes, figures not meaningful' if a.short else 'full sizes'}")
    print()
    print(f"| {'what':44} | {'ours':28} | {'ours':>9} | {'peer (same run)':30} | {'peer':>9} | {'ratio':>6} | unit |")
    print(f"|{'-' * 46}|{'-' * 30}|{'-' * 11}|{'-' * 32}|{'-' * 11}|{'-' * 8}|------|")
    for what, ours, v, peer, pv, unit in rows:
        pvs = f"{pv:9.0f}" if pv else f"{'-':>9}"
        print(f"| {what:44} | {ours:28} | {v:9.0f} | {peer:30} | {pvs} | {ratio(v, pv):>6} | {unit} |")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"machine": machine(), "threads": a.threads, "load_before": load0, "load_after": load1,
                       "short": a.short, "auto_backend": auto, "train": train, "inference": infer, "backfill": backfill,
                       "stream": stream, "stream_pinned": pinned, "epoch": epoch, "ceiling": roof, "gpu": gpu}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.exit(main())
