"""Every command the README shows a newcomer runs here, as written: the README's
```sh doctest blocks are extracted and run in order in a scratch directory with the built
binaries on PATH, against seeded synthetic prices (`my-prices.csv`) and a real broker on
loopback ($BROKERS). The two commands themselves (scripts/demo.sh, scripts/test.sh) are what
CI runs; this checks the rest. A block that fails fails the test with its output."""

from __future__ import annotations

import os
import re
import subprocess

import pyarrow.parquet as pq

import scorer_harness as h

ROOT = h.ROOT


def blocks():
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```sh doctest\n(.*?)```", text, flags=re.S)


def bin_dir():
    return os.path.dirname(h.scorer_bin())


def test_the_readme_has_runnable_blocks():
    assert len(blocks()) >= 2


def test_readme_commands_run_as_written(tmp_path, broker):
    env = dict(os.environ)
    env["PATH"] = bin_dir() + os.pathsep + env["PATH"]
    env["BROKERS"] = broker.address
    env["SCORER__KAFKA__SESSION_TIMEOUT_MS"] = "6000"
    env["SCORER__HTTP__LISTEN"] = ""
    os.symlink(os.path.join(ROOT, "configs"), tmp_path / "configs")
    subprocess.run(["features", "synth-prices", "--out", "my-prices.csv", "--tickers", "6", "--days", "1500"],
                   cwd=tmp_path, env=env, check=True, capture_output=True)
    for i, block in enumerate(blocks()):
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=900)
        assert r.returncode == 0, f"README block {i} failed:\n{block}\n--- stderr:\n{r.stderr[-4000:]}"
    backfill = h.read_output(str(tmp_path / "my-predictions"))
    stream = h.read_output(str(tmp_path / "my-stream"))
    assert len(backfill) > 0 and len(stream) == len(backfill)
    assert {(r["ticker"], r["week"]) for r in stream} == {(r["ticker"], r["week"]) for r in backfill}
    assert str(pq.read_schema(h.output_files(str(tmp_path / "my-predictions"))[0]).field("week").type) == "date32[day]"
