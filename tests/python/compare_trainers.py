#!/usr/bin/env python3
"""Does `trainer fit` learn as well as a plain PyTorch loop? (issue 12, part 4)

Makes synthetic weekly rows with signal with the project's own generator
(`features synth-prices` + `features build`, 10 tickers x 260 weeks by default), then for each
seed trains

- `trainer fit` (the real binary), and
- a plain PyTorch loop on the DESIGN.md module of tests/python/reference_model.py,

with the guide's recipe (Adam 1e-3, weight decay 1e-5, cosine schedule with 5 warm-up epochs
set once per epoch, batch 32, 12 epochs, clipping 1.0, loss weights 1/.5/1/.5, best validation
epoch restored) on IDENTICAL windows: the PyTorch side rebuilds the trainer's time split from
the rules of trainer/README.md, checks it against the counts and boundaries in the trainer's
metrics.json, and normalises with the trainer's own scaler.json. Both models are evaluated by
the same Python code on the same held-out test windows (the trainer's reported test figures are
checked against that evaluation).

It also compares initialisation: `trainer fit --epochs 0` writes the freshly initialised
weights, whose per-tensor standard deviation is set beside PyTorch's default init of the same
module.

Prints a table of both distributions (mean and std over seeds of the test MSE and direction
accuracy, 7- and 30-day) and a verdict against the goal: mean 7-day test MSE within 10% and
7-day direction accuracy within 1 point.

    python3 tests/python/compare_trainers.py [--seeds 5] [--epochs 12] [--json-out out.json]

Binaries: --trainer (default $TRAINER_BIN, else the newest build in the target dir) and
--features (default $FEATURES_BIN, likewise); tests/python/paths.py says where they are looked for.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import paths  # noqa: E402
import reference_model  # noqa: E402

# features/src/features.rs: MIN_DAILY_CLOSES, the history a weekly row needs.
MIN_DAILY_CLOSES = 253
MAX_HORIZON_DAYS = 30
GOAL_MSE_REL = 0.10
GOAL_ACC_POINTS = 0.01
# Tensors this small have too noisy an empirical std to compare.
INIT_MIN_NUMEL = 64


def default_bin(name: str) -> Path:
    return Path(paths.binary(name) or Path(paths.TARGET) / "debug" / name)


def run(cmd: List, what: str) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed ({res.returncode}): {' '.join(map(str, cmd))}\n{res.stderr[-4000:]}")
    return res


# ----------------------------------------------------------------------------------------------
# Data


def make_rows(source: str, features_bin: Path, trainer: Path, work: Path, tickers: int, weeks: int,
              seed: int) -> Path:
    """`features`: synthetic daily prices -> `features build` weekly rows, each ticker's last
    `weeks` weeks. `trainer`: `trainer synth`'s weekly rows (a stronger planted signal)."""
    if source == "trainer":
        rows = work / "rows.parquet"
        run([trainer, "synth", "--tickers", tickers, "--weeks", weeks, "--seed", seed, "--out", rows], "trainer synth")
        return rows
    prices = work / "prices.csv"
    built = work / "built.parquet"
    days = MIN_DAILY_CLOSES + 5 * weeks + 25
    run([features_bin, "synth-prices", "--out", prices, "--tickers", tickers, "--days", days, "--seed", seed],
        "features synth-prices")
    run([features_bin, "build", "--prices", prices, "--out", built], "features build")
    table = pq.read_table(built)
    tick = np.asarray(table["ticker"].to_pylist())
    week = table["week"].to_numpy().astype("datetime64[D]").astype(np.int64)
    keep = np.zeros(len(tick), dtype=bool)
    for t in np.unique(tick):
        idx = np.flatnonzero(tick == t)
        idx = idx[np.argsort(week[idx])][-weeks:]
        keep[idx] = True
    rows = work / "rows.parquet"
    pq.write_table(table.filter(keep), rows)
    return rows


def iso_week_index(days: np.ndarray) -> np.ndarray:
    """schemas::iso_week_index on days since 1970-01-01 (a Thursday)."""
    monday = days - (days + 3) % 7
    return (monday - 4) // 7


class Corpus:
    """The trainer's windows (data.rs): per ticker, sorted by week, runs of consecutive ISO weeks."""

    def __init__(self, rows: Path, names: List[str], seq_len: int):
        t = pq.read_table(rows)
        tick = np.asarray(t["ticker"].to_pylist())
        week = t["week"].to_numpy().astype("datetime64[D]").astype(np.int64)
        feats = np.stack([t[n].to_numpy().astype(np.float32) for n in names], axis=1)
        lab7 = t["trend_7day"].to_numpy(zero_copy_only=False).astype(np.float64)
        lab30 = t["trend_30day"].to_numpy(zero_copy_only=False).astype(np.float64)
        self.seq_len = seq_len
        self.series = []
        for name in sorted(set(tick.tolist()), key=lambda s: s.encode()):
            idx = np.flatnonzero(tick == name)
            idx = idx[np.argsort(week[idx], kind="stable")]
            self.series.append(dict(week=week[idx], x=feats[idx], t7=lab7[idx], t30=lab30[idx]))
        self.windows = []  # (series, end)
        for si, s in enumerate(self.series):
            wk = iso_week_index(s["week"])
            run_len = 0
            for i in range(len(wk)):
                run_len = run_len + 1 if i > 0 and wk[i] - wk[i - 1] == 1 else 1
                if run_len >= seq_len:
                    self.windows.append((si, i))

    def end_week(self, w) -> int:
        return int(self.series[w[0]]["week"][w[1]])

    def labelled(self, w) -> bool:
        s = self.series[w[0]]
        return not (math.isnan(s["t7"][w[1]]) or math.isnan(s["t30"][w[1]]))

    def time_split(self, train_ratio: float, val_ratio: float):
        """data.rs `split` (time mode): cut the distinct last weeks, purge label overlaps."""
        lab = [w for w in self.windows if self.labelled(w)]
        dates = sorted({self.end_week(w) for w in lab})
        n = len(dates)
        i_val = min(max(math.floor(n * train_ratio), 1), n - 2)
        i_test = min(max(math.floor(n * (train_ratio + val_ratio)), i_val + 1), n - 1)
        val_start, test_start = dates[i_val], dates[i_test]
        tr, va, te, purged = [], [], [], 0
        for w in lab:
            end = self.end_week(w)
            if end >= test_start:
                te.append(w)
                continue
            boundary, dest = (val_start, tr) if end < val_start else (test_start, va)
            if end + MAX_HORIZON_DAYS < boundary:
                dest.append(w)
            else:
                purged += 1
        summary = dict(windows=len(self.windows), unlabelled=len(self.windows) - len(lab), purged=int(purged),
                       train=len(tr), val=len(va), test=len(te),
                       val_start=str(np.datetime64(val_start, "D")), test_start=str(np.datetime64(test_start, "D")))
        return tr, va, te, summary

    def scaler(self, windows) -> Dict[str, np.ndarray]:
        """data.rs `fit_scaler`: mean and population std (f64) over the distinct training rows."""
        rows = sorted({(si, r) for si, end in windows for r in range(end + 1 - self.seq_len, end + 1)})
        x = np.stack([self.series[si]["x"][r] for si, r in rows]).astype(np.float64)
        return dict(mean=x.mean(axis=0), std=x.std(axis=0))

    def tensors(self, windows, scaler: dict) -> Dict[str, torch.Tensor]:
        raw = np.stack([self.series[si]["x"][end + 1 - self.seq_len:end + 1] for si, end in windows])
        t7 = np.array([self.series[si]["t7"][end] for si, end in windows], dtype=np.float32)
        t30 = np.array([self.series[si]["t30"][end] for si, end in windows], dtype=np.float32)
        return dict(x=torch.from_numpy(reference_model.normalise(raw, scaler)),
                    t7=torch.from_numpy(t7), t30=torch.from_numpy(t30),
                    d7=torch.from_numpy((t7 > 0).astype(np.int64)), d30=torch.from_numpy((t30 > 0).astype(np.int64)))


def check_split(py: dict, trainer: dict) -> None:
    for k, v in py.items():
        if trainer.get(k) != v:
            raise RuntimeError(f"the rebuilt split differs from the trainer's on {k}: {v} vs {trainer.get(k)}")


def check_scaler(py: dict, trainer: dict) -> None:
    for k in ("mean", "std"):
        a, b = np.asarray(py[k]), np.asarray(trainer[k], dtype=np.float64)
        if not np.allclose(a, b, rtol=1e-5, atol=1e-6):
            raise RuntimeError(f"the rebuilt scaler differs from the trainer's scaler.json ({k}, max "
                               f"{np.abs(a - b).max():.3g})")


def trainer_windows(rows: Path, ckpt: Path) -> Tuple[Dict[str, dict], dict]:
    """The windows `trainer fit` trained, validated and tested on (checkpoint `ckpt`), rebuilt
    from `rows` by the trainer's rules and checked against the checkpoint (split counts and
    dates, scaler): each split's tensors normalised with the trainer's scaler, and the split
    summary."""
    cfg = json.loads((ckpt / "config.json").read_text())
    seq = cfg["sequence"]
    corpus = Corpus(rows, cfg["features"]["names"], seq["sequence_length"])
    tr, va, te, summary = corpus.time_split(seq["train_ratio"], seq["val_ratio"])
    scaler = json.loads((ckpt / "scaler.json").read_text())
    check_split(summary, json.loads((ckpt / "metrics.json").read_text())["split"])
    check_scaler(corpus.scaler(tr), scaler)
    return {k: corpus.tensors(ws, scaler) for k, ws in (("train", tr), ("val", va), ("test", te))}, summary


# ----------------------------------------------------------------------------------------------
# Loss, metrics, evaluation (shared by both sides)


def loss_parts(out: dict, y: dict, w: List[float]) -> torch.Tensor:
    return (w[0] * F.mse_loss(out["7day_trend"].squeeze(1), y["t7"])
            + w[1] * F.cross_entropy(out["7day_direction"], y["d7"])
            + w[2] * F.mse_loss(out["30day_trend"].squeeze(1), y["t30"])
            + w[3] * F.cross_entropy(out["30day_direction"], y["d30"]))


def predict(model, x: torch.Tensor) -> dict:
    model.eval()
    with torch.no_grad():
        return model(x)


def metrics(out: dict, y: dict) -> dict:
    res = {}
    for h, tk, dk in (("7d", "t7", "d7"), ("30d", "t30", "d30")):
        pred = out[f"{h[:-1]}day_trend"].squeeze(1).double()
        p_up = torch.softmax(out[f"{h[:-1]}day_direction"].float(), -1)[:, 1]
        truth = y[tk].double()
        res[h] = dict(mse=float(((pred - truth) ** 2).mean()),
                      direction_accuracy=float(((p_up > 0.5) == (y[dk] == 1)).double().mean()))
    return res


def load_weights(model_cfg: dict, path: Path):
    from safetensors.torch import load_file

    model = reference_model.model_from_config(model_cfg)
    model.load_state_dict(load_file(str(path)), strict=True)
    return model


# ----------------------------------------------------------------------------------------------
# The two trainers


def recipe_toml(r: dict) -> str:
    w = r["loss_weights"]
    return f"""[training]
batch_size = {r['batch_size']}
early_stopping_patience = 0
max_grad_norm = {r['clip']}
device = "cpu"
progress = false

[loss]
kind = "lstm"
trend_7d_weight = {w[0]}
direction_7d_weight = {w[1]}
trend_30d_weight = {w[2]}
direction_30d_weight = {w[3]}

[optimizer]
kind = "adam"
learning_rate = {r['lr']}
weight_decay = {r['weight_decay']}

[scheduler]
kind = "cosine"
warmup_epochs = {r['warmup_epochs']}
min_lr = {r['min_lr']}
"""


def cosine_warmup_lr(r: dict, epochs: int, epoch: int) -> float:
    """The guide's schedule, once per epoch (optim.rs `cosine_warmup_lr`)."""
    base, lo, wu = r["lr"], r["min_lr"], r["warmup_epochs"]
    if epoch < wu:
        return base * (epoch + 1) / wu
    progress = min((epoch - wu) / max(1, epochs - wu), 1.0)
    return lo + (base - lo) * 0.5 * (1.0 + math.cos(math.pi * progress))


def trainer_fit(trainer: Path, rows: Path, cfg_path: Path, out: Path, seed: int, epochs: int, threads: int) -> float:
    t0 = time.perf_counter()
    run([trainer, "fit", "--data", rows, "--out", out, "--config", cfg_path, "--epochs", epochs, "--seed", seed,
         "--device", "cpu", "--threads", threads, "--no-progress"], "trainer fit")
    return time.perf_counter() - t0


def torch_fit(model_cfg: dict, r: dict, data: dict, seed: int, epochs: int):
    """A plain PyTorch loop: torch.optim.Adam (L2 weight decay), clip_grad_norm_, LambdaLR
    stepped once per epoch, shuffled batches, best validation loss restored."""
    torch.manual_seed(seed)
    model = reference_model.model_from_config(model_cfg)
    opt = torch.optim.Adam(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: cosine_warmup_lr(r, epochs, e) / r["lr"])
    tr, va = data["train"], data["val"]
    n, bs = len(tr["x"]), r["batch_size"]
    best, best_state, best_epoch = math.inf, copy.deepcopy(model.state_dict()), None
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            y = {k: v[idx] for k, v in tr.items()}
            loss = loss_parts(model(y["x"]), y, r["loss_weights"])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), r["clip"])
            opt.step()
        sched.step()
        with torch.no_grad():
            val = float(loss_parts(predict(model, va["x"]), va, r["loss_weights"]))
        if val < best:
            best, best_state, best_epoch = val, copy.deepcopy(model.state_dict()), epoch
    seconds = time.perf_counter() - t0
    last = copy.deepcopy(model)
    model.load_state_dict(best_state)
    return model, last, best_epoch, seconds


# ----------------------------------------------------------------------------------------------
# Initialisation


def init_stats(trainer: Path, rows: Path, cfg_path: Path, out: Path, seed: int, threads: int) -> List[dict]:
    """Per-tensor std of the trainer's fresh weights (`fit --epochs 0`) and PyTorch's default init."""
    from safetensors.torch import load_file

    run([trainer, "fit", "--data", rows, "--out", out, "--config", cfg_path, "--epochs", 0, "--seed", seed,
         "--device", "cpu", "--threads", threads, "--no-progress"], "trainer fit --epochs 0")
    ours = load_file(str(out / "model.safetensors"))
    model_cfg = json.loads((out / "config.json").read_text())["model"]
    torch.manual_seed(seed)
    ref = reference_model.model_from_config(model_cfg).state_dict()
    stats = []
    for name in sorted(ref):
        a, b = ours[name].double(), ref[name].double()
        sa, sb = float(a.std()) if a.numel() > 1 else 0.0, float(b.std()) if b.numel() > 1 else 0.0
        stats.append(dict(name=name, numel=a.numel(), trainer_std=sa, torch_std=sb,
                          trainer_absmax=float(a.abs().max()), torch_absmax=float(b.abs().max()),
                          ratio=(sa / sb) if sb > 0 else (1.0 if sa == 0 else math.inf)))
    return stats


# ----------------------------------------------------------------------------------------------
# Report


def dist(values: List[float]) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return dict(mean=float(a.mean()), std=float(a.std(ddof=1)) if len(a) > 1 else 0.0, values=a.tolist())


def summarise(runs: List[dict], which: str) -> dict:
    return {f"{k}_{h}": dist([r[which][h][k] for r in runs])
            for h in ("7d", "30d") for k in ("mse", "direction_accuracy")}


def verdict(tr: dict, pt: dict) -> dict:
    mse_rel = (tr["mse_7d"]["mean"] - pt["mse_7d"]["mean"]) / pt["mse_7d"]["mean"]
    acc_diff = tr["direction_accuracy_7d"]["mean"] - pt["direction_accuracy_7d"]["mean"]
    return dict(mse_7d_rel_diff=mse_rel, acc_7d_diff=acc_diff,
                mse_ok=abs(mse_rel) <= GOAL_MSE_REL, acc_ok=abs(acc_diff) <= GOAL_ACC_POINTS,
                met=abs(mse_rel) <= GOAL_MSE_REL and abs(acc_diff) <= GOAL_ACC_POINTS)


def trainer_labels(paths: List[Path]) -> List[str]:
    if len(paths) == 1:
        return ["trainer"]
    return [f"trainer[{p.name}]" for p in paths]


def print_report(res: dict) -> None:
    for label, init in res["init"].items():
        big = [s for s in init if s["numel"] >= INIT_MIN_NUMEL]
        off = [s for s in big if not 0.8 <= s["ratio"] <= 1.25]
        print(f"\ninit ({label} vs PyTorch defaults): per-tensor std ratio over the {len(big)} tensors of >= "
              f"{INIT_MIN_NUMEL} values: {min(s['ratio'] for s in big):.3f} .. {max(s['ratio'] for s in big):.3f}")
        for s in off:
            print(f"  differs: {s['name']:<32} trainer std {s['trainer_std']:.4f}  torch std {s['torch_std']:.4f}"
                  f"  ratio {s['ratio']:.2f}")
    sp = res["split"]
    print(f"\nsplit (identical for all): train {sp['train']}, val {sp['val']}, test {sp['test']} windows "
          f"(purged {sp['purged']}, val from {sp['val_start']}, test from {sp['test_start']})")
    print(f"\ntest split, {len(res['seeds'])} seeds x {res['recipe']['epochs']} epochs (mean +- std over seeds); "
          f"'best' = best validation epoch restored (both loops), 'last' = last epoch")
    print(f"{'':<30}{'mse 7d':>18}{'acc 7d':>18}{'mse 30d':>18}{'acc 30d':>18}{'s/run':>8}")
    for which in ("test", "last"):
        for key in res["runs"]:
            s = res["summary"][key][which]
            cells = [f"{s[k]['mean']:.4f} +- {s[k]['std']:.4f}" for k in
                     ("mse_7d", "direction_accuracy_7d", "mse_30d", "direction_accuracy_30d")]
            secs = np.mean([r["seconds"] for r in res["runs"][key]])
            label = f"{key} ({'best' if which == 'test' else 'last'})"
            print(f"{label:<30}" + "".join(f"{c:>18}" for c in cells) + f"{secs:>8.1f}")
    for key, runs in res["runs"].items():
        print(f"per seed 7d mse {key}: {[round(r['test']['7d']['mse'], 4) for r in runs]}")
    for key, v in res["verdicts"].items():
        print(f"verdict {key} vs pytorch: mean 7d mse {100 * v['mse_7d_rel_diff']:+.1f}% (goal within "
              f"{100 * GOAL_MSE_REL:.0f}%: {'ok' if v['mse_ok'] else 'NOT MET'}), 7d accuracy "
              f"{100 * v['acc_7d_diff']:+.2f} points (goal within {100 * GOAL_ACC_POINTS:.0f}: "
              f"{'ok' if v['acc_ok'] else 'NOT MET'}) -> {'GOAL MET' if v['met'] else 'GOAL NOT MET'}")


def main(argv: Optional[List[str]] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="number of seeds (--first-seed .. --first-seed + N - 1) [5]")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="first seed, to add seeds to an earlier run (--first-seed 5 --seeds 5: seeds 5..9) [0]")
    ap.add_argument("--epochs", type=int, default=12, help="epochs per run [12]")
    ap.add_argument("--json-out", type=Path, help="write every figure here as JSON")
    ap.add_argument("--trainer", type=Path, action="append",
                    help="trainer binary; repeat to compare several builds (e.g. before/after a fix), each "
                         "against the same PyTorch runs; the first one decides the verdict "
                         "[$TRAINER_BIN, else the newest build in the target dir: paths.py]")
    ap.add_argument("--features", type=Path, default=default_bin("features"), help="features binary")
    ap.add_argument("--tickers", type=int, default=10)
    ap.add_argument("--weeks", type=int, default=260)
    ap.add_argument("--data-seed", type=int, default=7, help="seed of the synthetic data [7]")
    ap.add_argument("--source", choices=("features", "trainer"), default="features",
                    help="synthetic rows from `features synth-prices` + `features build` (default) or from "
                         "`trainer synth` (stronger signal)")
    ap.add_argument("--threads", type=int, default=2, help="threads for each trainer [2]")
    ap.add_argument("--workdir", type=Path, help="keep the data and checkpoints here (default: a temp dir)")
    args = ap.parse_args(argv)
    args.trainer = args.trainer or [default_bin("trainer")]
    for b in (*args.trainer, args.features):
        if not b.exists():
            ap.error(f"{b} does not exist (build with: cargo build --workspace --bins)")
    torch.set_num_threads(args.threads)
    recipe = dict(lr=1e-3, weight_decay=1e-5, warmup_epochs=5, min_lr=1e-6, batch_size=32, epochs=args.epochs,
                  clip=1.0, loss_weights=[1.0, 0.5, 1.0, 0.5])
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="compare_trainers_")
        work = Path(tmp.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    try:
        return _compare(args, recipe, work)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _compare(args, recipe: dict, work: Path) -> dict:
    rows = make_rows(args.source, args.features, args.trainer[0], work, args.tickers, args.weeks, args.data_seed)
    cfg_path = work / "train.toml"
    cfg_path.write_text(recipe_toml(recipe))
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    labels = trainer_labels(args.trainer)
    res = dict(recipe=recipe, seeds=seeds, data=dict(source=args.source, tickers=args.tickers, weeks=args.weeks, seed=args.data_seed),
               trainers={lb: str(p) for lb, p in zip(labels, args.trainer)},
               runs={**{lb: [] for lb in labels}, "pytorch": []})
    res["init"] = {lb: init_stats(p, rows, cfg_path, work / f"init{i}", seeds[0], args.threads)
                   for i, (lb, p) in enumerate(zip(labels, args.trainer))}
    data = None
    for seed in seeds:
        for i, (label, trainer) in enumerate(zip(labels, args.trainer)):
            ckpt = work / f"trainer{i}_seed{seed}"
            secs = trainer_fit(trainer, rows, cfg_path, ckpt, seed, args.epochs, args.threads)
            cfg = json.loads((ckpt / "config.json").read_text())
            tm = json.loads((ckpt / "metrics.json").read_text())
            if data is None:
                data, res["split"] = trainer_windows(rows, ckpt)
                model_cfg = cfg["model"]
            check_split(res["split"], tm["split"])
            test_x = data["test"]["x"]
            best = metrics(predict(load_weights(cfg["model"], ckpt / "model.safetensors"), test_x), data["test"])
            last = metrics(predict(load_weights(cfg["model"], ckpt / "last.safetensors"), test_x), data["test"])
            for h in ("7d", "30d"):  # the trainer's own test figures agree: same windows, same weights
                for k in ("mse", "direction_accuracy"):
                    if abs(tm["test"]["metrics"][h][k] - best[h][k]) > 1e-4:
                        raise RuntimeError(f"{label}: metrics.json test {h} {k} {tm['test']['metrics'][h][k]} "
                                           f"differs from the Python evaluation {best[h][k]}")
            res["runs"][label].append(dict(seed=seed, test=best, last=last, best_epoch=tm["best_epoch"],
                                           seconds=secs))
            print(f"seed {seed}: {label} 7d mse {best['7d']['mse']:.4f} acc {best['7d']['direction_accuracy']:.4f}",
                  file=sys.stderr, flush=True)
        model, last_model, best_epoch, secs = torch_fit(model_cfg, recipe, data, seed, args.epochs)
        test = metrics(predict(model, data["test"]["x"]), data["test"])
        res["runs"]["pytorch"].append(dict(seed=seed, test=test,
                                           last=metrics(predict(last_model, data["test"]["x"]), data["test"]),
                                           best_epoch=best_epoch, seconds=secs))
        print(f"seed {seed}: pytorch 7d mse {test['7d']['mse']:.4f} acc {test['7d']['direction_accuracy']:.4f}",
              file=sys.stderr, flush=True)
    res["summary"] = {k: {w: summarise(v, w) for w in ("test", "last")} for k, v in res["runs"].items()}
    res["verdicts"] = {lb: verdict(res["summary"][lb]["test"], res["summary"]["pytorch"]["test"]) for lb in labels}
    res["verdict"] = res["verdicts"][labels[0]]
    print_report(res)
    if args.json_out:
        args.json_out.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
