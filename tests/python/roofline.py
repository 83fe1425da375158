#!/usr/bin/env python3
"""The hardware limit of inference on this machine: the exported model's matrix products at
this machine's own measured sgemm speed.

1. Counts the model's multiply-add FLOPs per window from the graph itself. It runs the model
   once on Python onnxruntime at each batch with every MatMul / Gemm / LSTM input added as a
   graph output, so each product has the shape the runtime sees. An LSTM node counts as ONNX
   Runtime computes it: per direction, one input projection over all steps, (T*B, in) x
   (in, 4H), and one recurrent product per step, (B, H) x (H, 4H). Elementwise work (gates,
   softmax, ReLU, normalisation) is left out: it is under 1 % of the FLOPs.
2. Measures numpy's sgemm (its bundled OpenBLAS) in a child process held to --threads by
   OPENBLAS_NUM_THREADS: the peak, on 1024 x 1024 x 1024 products, on 1 thread and on
   --threads; and the rate on each of the model's own product shapes, each the fastest of
   repeated blocks of calls. OpenBLAS's kernels are the fastest of the kernel sets this CPU
   can run (`OPENBLAS_CORETYPE`: as the environment has it, OpenBLAS's own detection, and
   SkylakeX where the CPU has AVX-512), timed on the peak product: an environment that pins
   `OPENBLAS_CORETYPE=Haswell` (the development VM does) would otherwise hold the ceiling to
   AVX2 on a CPU with full-width AVX-512 (2026-12-08, Zen 5: 114 GFLOP/s per core on Haswell
   kernels, 215 on SkylakeX), and a ceiling below what a runtime does is no ceiling.
3. Prints two ceilings in windows/s per batch: the FLOPs at the peak, and the products each at
   its own measured speed (what a runtime that did nothing but the model's products, each as
   fast as OpenBLAS does it, would reach). The second is the one to compare a backend with; it
   is an estimate, not a proof: a runtime's kernels can beat OpenBLAS on small shapes.

    python3 tests/python/roofline.py --model model.onnx [--threads 2] [--batches 1,64,1024]

Asserts nothing about speed. Used by bench_all.py (the "ceiling" rows of scripts/bench.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter

import numpy as np

PEAK_N = 1024


def _shapes_of(model_path: str, batch: int) -> tuple[dict, object]:
    """(name -> shape of every MatMul/Gemm/LSTM input, from one run of the model at `batch`;
    the graph)."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(model_path)
    g = m.graph
    init = {i.name: list(i.dims) for i in g.initializer}
    graph_inputs = {i.name for i in g.input}
    have_outputs = {o.name for o in g.output}
    wanted = set()
    for n in g.node:
        if n.op_type in ("MatMul", "Gemm", "LSTM"):
            wanted |= {x for x in n.input[:2] if x and x not in init}
    for name in sorted(wanted - graph_inputs - have_outputs):
        g.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    inp = g.input[0]
    dims = [d.dim_value or batch for d in inp.type.tensor_type.shape.dim]
    feed = {inp.name: np.zeros(dims, dtype=np.float32)}
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    shapes = dict(init)
    shapes.update({k: list(v.shape) for k, v in zip(names, sess.run(names, feed))})
    shapes[inp.name] = dims
    return shapes, g


def products(model_path: str, batch: int) -> list[tuple[tuple[int, int, int, int], int]]:
    """The model's matrix products at `batch`: [((count_inside, M, K, N), calls)], where a
    batched MatMul over leading dims is one call of `count_inside` products."""
    shapes, g = _shapes_of(model_path, batch)
    out: Counter = Counter()
    for n in g.node:
        if n.op_type == "MatMul":
            a, b = shapes[n.input[0]], shapes[n.input[1]]
            if len(a) < 2 or len(b) < 2:
                continue
            lead = np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
            out[(int(np.prod(lead)) if lead else 1, a[-2], a[-1], b[-1])] += 1
        elif n.op_type == "Gemm":
            attrs = {x.name: x.i for x in n.attribute}
            a, b = shapes[n.input[0]], shapes[n.input[1]]
            m_, k = (a[1], a[0]) if attrs.get("transA") else (a[0], a[1])
            nn = b[0] if attrs.get("transB") else b[1]
            out[(1, m_, k, nn)] += 1
        elif n.op_type == "LSTM":
            x, w, r = shapes[n.input[0]], shapes[n.input[1]], shapes[n.input[2]]
            layout = {a.name: a.i for a in n.attribute}.get("layout", 0)
            t, b = (x[1], x[0]) if layout else (x[0], x[1])
            dirs, four_h, inp = w
            hidden = r[2]
            out[(1, t * b, inp, four_h)] += dirs
            out[(1, b, hidden, four_h)] += dirs * t
    return sorted(out.items())


def flops(prods: list) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of [((count, M, K, N), calls)] products."""
    return sum(2 * c * m * k * n * calls for (c, m, k, n), calls in prods)


def flops_per_window(model_path: str, batch: int = 1) -> float:
    """The model's product FLOPs per window."""
    return flops(products(model_path, batch)) / batch


def _time_shapes(shapes: list, seconds: float) -> list[float]:
    """Seconds per call of each (count, M, K, N) product, on the threads numpy was started with:
    the fastest of repeated blocks of calls (each block at least a millisecond) in `seconds`, so a
    burst of interference on a shared machine lowers some blocks, not the figure. A ceiling is
    what the hardware does at its best, so the best block is the right one to keep."""
    rng = np.random.default_rng(0)
    res = []
    for c, m, k, n in shapes:
        a = rng.standard_normal((c, m, k) if c > 1 else (m, k), dtype=np.float32)
        b = rng.standard_normal((c, k, n) if c > 1 else (k, n), dtype=np.float32)
        o = np.empty((c, m, n) if c > 1 else (m, n), dtype=np.float32)
        np.matmul(a, b, out=o)
        t = time.perf_counter()
        np.matmul(a, b, out=o)
        per_block = max(1, int(1e-3 / max(time.perf_counter() - t, 1e-9)))
        best, blocks, t0 = float("inf"), 0, time.perf_counter()
        while blocks < 3 or time.perf_counter() - t0 < seconds:
            t = time.perf_counter()
            for _ in range(per_block):
                np.matmul(a, b, out=o)
            best = min(best, (time.perf_counter() - t) / per_block)
            blocks += 1
        res.append(best)
    return res


def _openblas_core() -> str | None:
    """The kernel set numpy's bundled OpenBLAS runs in this process (its `get_corename`), or None
    where that OpenBLAS does not say."""
    import ctypes
    import glob
    libs = glob.glob(os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs", "*openblas*"))
    for lib in libs:
        try:
            dll = ctypes.CDLL(lib)
        except OSError:
            continue
        for sym in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            f = getattr(dll, sym, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                return f().decode()
    return None


# OPENBLAS_CORETYPE values to try: None = the environment as it is, "" = the variable removed
# (OpenBLAS detects the CPU itself), then kernel sets named for an instruction set the CPU has.
def core_candidates() -> list:
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        flags = set()
    cands = [None, ""]
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        cands.append("SkylakeX")
    return cands


def time_shapes(shapes: list, threads: int, seconds: float, core=None) -> tuple[list[float], str | None]:
    """`_time_shapes` in a child process whose OpenBLAS runs on `threads` threads, with
    OPENBLAS_CORETYPE as the environment has it (core None), removed (""), or set to `core`;
    returns the seconds per call and the kernel set OpenBLAS reports it ran."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    if core == "":
        env.pop("OPENBLAS_CORETYPE", None)
    elif core is not None:
        env["OPENBLAS_CORETYPE"] = core
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--_time", json.dumps([list(s) for s in shapes]),
                        "--seconds", str(seconds)], env=env, capture_output=True, text=True, check=True)
    out = json.loads(r.stdout)
    return out["seconds"], out["core"]


def measure(model_path: str, threads: int, batches: list[int], seconds: float) -> dict:
    peak_shape = (1, PEAK_N, PEAK_N, PEAK_N)
    peak_flops = flops([(peak_shape, 1)])
    # the kernel set: the fastest on the peak product at --threads, each candidate once
    tried, by_core = {}, {}
    for cand in core_candidates():
        (sec,), name = time_shapes([peak_shape], threads, 4 * seconds, cand)
        name = name or ("environment" if cand is None else cand or "detected")
        if name not in tried or peak_flops / sec / 1e9 > tried[name]:
            tried[name], by_core[name] = peak_flops / sec / 1e9, cand
    best = max(tried, key=tried.get)
    core = by_core[best]
    peak = {t: tried[best] if t == threads else peak_flops / time_shapes([peak_shape], t, 4 * seconds, core)[0][0] / 1e9
            for t in sorted({1, threads})}
    rows = []
    for b in batches:
        prods = products(model_path, b)
        per_call, _ = time_shapes([s for s, _ in prods], threads, seconds, core)
        t_batch = sum(t * calls for t, (_, calls) in zip(per_call, prods))
        total = flops(prods)
        rows.append({"batch": b, "flops_per_window": total / b,
                     "ceiling_peak_windows_per_s": peak[threads] * 1e9 * b / total,
                     "ceiling_products_windows_per_s": b / t_batch,
                     "products_gflops": total / t_batch / 1e9,
                     "products": [{"count": c, "m": m, "k": k, "n": n, "calls": calls, "seconds_per_call": t}
                                  for ((c, m, k, n), calls), t in zip(prods, per_call)]})
    return {"threads": threads, "peak_gflops": {str(t): v for t, v in peak.items()}, "peak_shape": PEAK_N,
            "openblas_core": best, "openblas_cores_tried": tried, "batches": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,64,1024")
    # 1 s, not less: at 0.3 s the two-thread peak read 133-195 GFLOP/s in five runs minutes apart
    # on the 2-core development VM, at 1 s 200-202 in three
    ap.add_argument("--seconds", type=float, default=1.0, help="time per product shape (the peak: 4x) [1.0]")
    ap.add_argument("--json-out")
    ap.add_argument("--_time", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._time:
        print(json.dumps({"seconds": _time_shapes([tuple(s) for s in json.loads(a._time)], a.seconds),
                          "core": _openblas_core()}))
        return 0
    if not a.model:
        ap.error("--model is required")
    res = measure(a.model, a.threads, [int(x) for x in a.batches.split(",")], a.seconds)
    peaks = ", ".join(f"{v:.1f} GFLOP/s on {t} thread{'s' if t != '1' else ''}" for t, v in res["peak_gflops"].items())
    tried = ", ".join(f"{k} {v:.0f}" for k, v in res["openblas_cores_tried"].items())
    print(f"sgemm peak (numpy/OpenBLAS, {PEAK_N}^3, {res['openblas_core']} kernels; tried on {a.threads} threads, "
          f"GFLOP/s: {tried}): {peaks}")
    for r in res["batches"]:
        print(f"batch {r['batch']:5d}: {r['flops_per_window'] / 1e6:6.2f} MFLOP/window; ceiling at peak "
              f"{r['ceiling_peak_windows_per_s']:8.0f} win/s; the model's products at their own sgemm speed "
              f"{r['products_gflops']:6.1f} GFLOP/s = {r['ceiling_products_windows_per_s']:8.0f} win/s")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
