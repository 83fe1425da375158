"""Cross-check of `features build` against an independent numpy implementation.

Runs the real binary on synthetic prices (and on skfolio's S&P 500 data when `data/` has been
fetched), reads the Parquet output with pyarrow and recomputes a broad subset of the 62 features
and both labels from the raw closes. Binary: $FEATURES_BIN, else the newest build in the
target dir (tests/python/paths.py).
"""

import csv
import datetime as dt
import json
import math
import os
import pathlib
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest

import paths

ROOT = pathlib.Path(__file__).resolve().parents[2]


def features_bin():
    found = paths.binary("features")
    if not found:
        pytest.fail(f"features binary not built: {paths.BUILD_HINT}")
    return found


def run(*args):
    subprocess.run([features_bin(), *args], check=True, capture_output=True)


def iso_week(d):
    return (d - dt.date(1970, 1, 5)).days // 7


def load_long(path):
    out = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            d = dt.date.fromisoformat(row["date"])
            out.setdefault(row["ticker"], ([], []))
            out[row["ticker"]][0].append(d)
            out[row["ticker"]][1].append(float(row["close"]))
    return {t: (ds, np.array(cs)) for t, (ds, cs) in out.items()}


def load_wide(path):
    with open(path) as f:
        r = csv.reader(f)
        head = next(r)
        rows = list(r)
    dates = [dt.date.fromisoformat(x[0]) for x in rows]
    return {h: (dates, np.array([float(x[i + 1]) for x in rows])) for i, h in enumerate(head[1:])}


def reference(dates, closes, mdates, mcloses):
    """Expected values per week date for the checked features and labels."""
    ends = [i for i in range(len(dates)) if i + 1 == len(dates) or iso_week(dates[i + 1]) != iso_week(dates[i])]
    w = closes[ends]
    lr = np.diff(np.log(closes))  # lr[i-1] = ln(C[i]/C[i-1])
    rw = np.diff(np.log(w))  # rw[k-1] = return of week k
    mpos = {d: i for i, d in enumerate(mdates)}
    out = {}
    for k, p in enumerate(ends):
        if k < 52 or p < 252:
            continue
        # The test inputs share one calendar, so "as of" is the same date.
        m = np.array([mcloses[mpos[dates[ends[kk]]]] for kk in range(k - 52, k + 1)])
        mr = np.diff(np.log(m))
        c = closes[: p + 1]
        x = {}
        x["ret_w_lag0"] = rw[k - 1]
        x["ret_w_lag3"] = rw[k - 4]
        x["cumret_13w"] = math.log(w[k] / w[k - 13])
        x["vol_w_13"] = np.std(rw[k - 13 : k], ddof=1)
        x["vol_d_21"] = np.std(lr[p - 21 : p], ddof=1)
        x["vol_d_252"] = np.std(lr[p - 252 : p], ddof=1)
        x["px_sma_50"] = c[-1] / c[-50:].mean() - 1
        x["sma_50_200"] = c[-50:].mean() / c[-200:].mean() - 1
        d14 = np.diff(c[-15:])
        x["rsi_14d"] = d14[d14 > 0].sum() / np.abs(d14).sum()
        sd = np.std(c[-20:])
        x["bb_pos_20"] = (c[-1] - c[-20:].mean()) / (2 * sd)
        x["dd_52w"] = c[-1] / c[-252:].max() - 1
        r63 = lr[p - 63 : p]
        z = r63 - r63.mean()
        x["skew_d_63"] = (z**3).mean() / (z**2).mean() ** 1.5
        x["kurt_d_63"] = (z**4).mean() / (z**2).mean() ** 2 - 3
        y = rw[k - 52 : k]
        cov = np.cov(y, mr, ddof=1)
        x["beta_52w"] = cov[0, 1] / cov[1, 1]
        x["corr_52w"] = np.corrcoef(y, mr)[0, 1]
        x["rel_13w"] = math.log(w[k] / w[k - 13]) - math.log(m[-1] / m[-14])
        # labels
        sig = max(np.std(w[k - 25 : k + 1] / w[k - 26 : k] - 1, ddof=1), 0.005)
        lab = {}
        for h in (7, 30):
            tgt = dates[p] + dt.timedelta(days=h)
            if dates[-1] < tgt:
                lab[h] = None
            else:
                j = max(i for i in range(p, len(dates)) if dates[i] <= tgt)
                lab[h] = math.tanh((closes[j] / closes[p] - 1) / (sig * math.sqrt(h / 7)))
        out[dates[p]] = (x, lab)
    return out


def check(out_parquet, series, mdates, mcloses, sample_every):
    table = pq.read_table(out_parquet)
    meta = pq.ParquetFile(out_parquet).metadata.metadata
    manifest = json.loads(meta[b"trendscore.features.manifest"])
    idx = {f["name"]: int(f["column"].split("_")[1]) for f in manifest["features"]}
    assert len(idx) == 62
    cols = table.to_pydict()
    checked = 0
    for t, (dates, closes) in series.items():
        ref = reference(dates, closes, mdates, mcloses)
        rows = [i for i, tk in enumerate(cols["ticker"]) if tk == t]
        assert len(rows) == len(ref), t
        for n, i in enumerate(rows):
            if n % sample_every:
                continue
            week = cols["week"][i]
            x, lab = ref[week]
            for name, want in x.items():
                got = cols[f"feature_{idx[name]}"][i]
                assert abs(got - want) <= 1e-4 * max(1.0, abs(want)), (t, week, name, got, want)
            for h, col in ((7, "trend_7day"), (30, "trend_30day")):
                got = cols[col][i]
                if lab[h] is None:
                    assert got is None, (t, week, col)
                else:
                    assert abs(got - lab[h]) <= 1e-5, (t, week, col, got, lab[h])
            checked += 1
    assert checked > 0
    return checked


def test_synthetic_prices_match_numpy(tmp_path):
    prices, market = tmp_path / "p.csv", tmp_path / "m.csv"
    run("synth-prices", "--out", str(prices), "--market-out", str(market), "--tickers", "3", "--days", "900", "--seed", "3")
    out = tmp_path / "rows.parquet"
    run("build", "--prices", str(prices), "--market", str(market), "--out", str(out))
    series = load_long(prices)
    m = load_wide(market)["SYNMKT"]
    assert check(out, series, m[0], m[1], sample_every=1) > 300


def test_skfolio_sp500_matches_numpy(tmp_path):
    data = pathlib.Path(os.environ.get("TRENDSCORE_DATA_DIR", ROOT / "data"))
    if not (data / "sp500_dataset.csv.gz").exists():
        pytest.fail("data/sp500_dataset.csv.gz not fetched: run features fetch-data --out data (scripts/test.sh does)")
    import gzip

    out = tmp_path / "sp500.parquet"
    run("build", "--prices", str(data / "sp500_dataset.csv.gz"), "--market", str(data / "sp500_index.csv.gz"), "--out", str(out))
    plain = tmp_path / "p.csv"
    plain.write_bytes(gzip.decompress((data / "sp500_dataset.csv.gz").read_bytes()))
    idx = tmp_path / "i.csv"
    idx.write_bytes(gzip.decompress((data / "sp500_index.csv.gz").read_bytes()))
    series = load_wide(plain)
    series = {t: series[t] for t in ("AAPL", "JPM", "XOM")}
    m = load_wide(idx)["SP500"]
    assert check(out, series, m[0], m[1], sample_every=7) > 500
