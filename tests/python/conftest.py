"""Fixtures shared by the scorer's real-broker tests (test_scorer_kafka, test_scorer_s3,
test_scorer_security, test_readme): one nisshi broker and one test model per module; and, for
every test, the tails of the logs under its tmp_path in the report when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest

import scorer_harness as h
from scorer_model import build as build_model


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A plaintext nisshi broker on loopback (test_scorer_security defines its TLS one)."""
    b = h.Broker(str(tmp_path_factory.mktemp("broker")))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The scorer tests' ONNX model (tests/python/scorer_model.py, seed 7)."""
    path = str(tmp_path_factory.mktemp("model") / "model.onnx")
    build_model(path, seed=7)
    return path


LOG_TAIL_LINES = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test, the tail of every `*.log` under its tmp_path (the scorers' and brokers'
    logs) goes into the failure report, so a failure seen only in CI's output can be read
    there: pytest keeps only the last three temp dirs."""
    outcome = yield
    rep = outcome.get_result()
    tmp = item.funcargs.get("tmp_path") if hasattr(item, "funcargs") else None
    if rep.when != "call" or not rep.failed or tmp is None:
        return
    for log in sorted(Path(tmp).rglob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        rep.sections.append((f"last {len(lines)} lines of {log.relative_to(tmp)}", "\n".join(lines)))
