"""The main job builds `cargo build --workspace --bins`, the tests `cargo test --workspace`.
If a dev-dependency turns on a feature of a shared dependency that the binaries do not, the
two resolve that dependency (and everything above it: arrow, tract) differently and a fresh
machine compiles them twice. This test fails when the two resolutions differ; the fix is a
pin in workspace-hack/Cargo.toml."""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def features(edges):
    out = subprocess.run(["cargo", "tree", "--workspace", "-e", edges, "--prefix", "none", "-f", "{p}|{f}"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    m = {}
    for line in out.splitlines():
        line = line.replace(" (*)", "").strip()
        if "|" in line:
            pkg, f = line.split("|", 1)
            m.setdefault(pkg, set()).update(x for x in f.split(",") if x)
    return m


def test_binaries_and_tests_share_one_feature_configuration():
    bins, tests = features("normal,build"), features("normal,build,dev")
    differ = {k: sorted(tests[k] - bins[k]) for k in tests if k in bins and tests[k] != bins[k]}
    assert not differ, f"dev-dependencies add features (pin them in workspace-hack/Cargo.toml): {differ}"
