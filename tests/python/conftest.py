"""Fixtures shared by the scorer's real-broker tests (test_scorer_kafka, test_scorer_s3,
test_scorer_security, test_readme): one nisshi broker and one test model per module."""

from __future__ import annotations

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
