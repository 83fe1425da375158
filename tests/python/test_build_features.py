"""The main job builds `cargo build --workspace --bins`, the tests `cargo test --workspace`.
If a dev-dependency turns on a feature of a shared dependency that the binaries do not, the
two resolve that dependency (and everything above it: arrow, tract) differently and a fresh
machine compiles them twice. The first test fails when the two resolutions differ; the fix is a
pin in workspace-hack/Cargo.toml. The second guards the dev profile's per-crate settings
(Cargo.toml): every override names a crate in the build, none of the hot-path crates is
compiled unoptimised, and dependencies run without debug assertions and overflow checks (as in
a release build) while the workspace's own crates keep them."""

import os
import subprocess
import tomllib

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


# Crates on a hot path of the main job, the tests or the benchmarks: inference, Parquet, the
# stream's parsing and I/O. The dev profile may compile other crates unoptimised, never these.
HOT_PREFIXES = ("tract-", "arrow-", "zstd", "rdkafka", "ort-", "lz4")
HOT = {"parquet", "ort", "serde_json", "serde", "serde_core", "tokio", "snap", "flate2", "miniz_oxide",
       "csv", "csv-core", "chrono", "ndarray", "trendscore-scorer", "trendscore-schemas",
       "trendscore-trainer"}


def dev_overrides():
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        return tomllib.load(f)["profile"]["dev"]["package"]


def test_dev_profile_overrides_name_real_packages_and_spare_the_hot_paths():
    out = subprocess.run(["cargo", "tree", "--workspace", "-e", "normal,build,dev", "--prefix", "none", "-f", "{p}"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    built = {line.split()[0] for line in out.splitlines() if line.strip()}
    overrides = dev_overrides()
    assert overrides["*"]["opt-level"] == 2
    # A name that matches nothing (a crate renamed or dropped by an upgrade) silently stops
    # saving its compile time: cargo only warns.
    stale = sorted(n for n in overrides if n != "*" and n not in built)
    assert not stale, f"[profile.dev.package.X] for packages not in the build: {stale}"
    cold = sorted(n for n, o in overrides.items() if o.get("opt-level", 2) < 2)
    assert len(cold) > 20, cold
    hot = [n for n in cold if n.startswith(HOT_PREFIXES) or n in HOT]
    assert not hot, f"hot-path crates compiled unoptimised in the dev profile: {hot}"
    # Dependencies run as in a release build (tract with debug assertions NaN-fills every
    # fresh tensor and re-checks every node's facts on every LSTM step); the workspace's own
    # crates keep the checks.
    assert overrides["*"].get("debug-assertions") is False and overrides["*"].get("overflow-checks") is False
    checked_again = sorted(n for n, o in overrides.items() if n != "*" and (o.get("debug-assertions") or
                                                                          o.get("overflow-checks")))
    assert not checked_again, f"dependencies built with debug assertions or overflow checks: {checked_again}"
    unchecked_own = sorted(n for n, o in overrides.items() if n.startswith("trendscore-") and
                           (o.get("debug-assertions") is False or o.get("overflow-checks") is False))
    assert not unchecked_own, f"workspace crates built without their checks: {unchecked_own}"


def ci_lint_env():
    """The two variables scripts/test.sh exports so its one build runs clippy's lints."""
    script = open(os.path.join(ROOT, "scripts", "test.sh")).read()
    lines = [line for line in script.splitlines()
             if line.startswith(("export RUSTC_WORKSPACE_WRAPPER=", "export CLIPPY_ARGS="))]
    assert len(lines) == 2, f"scripts/test.sh no longer exports the lint variables: {lines}"
    out = subprocess.run(["bash", "-c", "\n".join(lines) + "\nprintf '%s\\n%s' \"$RUSTC_WORKSPACE_WRAPPER\" \"$CLIPPY_ARGS\""],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout.split("\n")
    return {"RUSTC_WORKSPACE_WRAPPER": out[0], "CLIPPY_ARGS": out[1]}


def test_the_ci_build_fails_on_a_clippy_lint(tmp_path):
    """CI lints with clippy's driver inside `cargo build` instead of a separate `cargo clippy`:
    a crate with a clippy-only warning (`needless_return`, which rustc accepts) must fail that
    build, and the same crate without it must pass."""
    with open(os.path.join(ROOT, "rust-toolchain.toml"), "rb") as f:
        toolchain = tomllib.load(f)["toolchain"]["channel"]
    # The probe lives outside the workspace, so it names the workspace's toolchain itself.
    env = {**os.environ, **ci_lint_env(), "CARGO_TARGET_DIR": str(tmp_path / "target"),
           "RUSTUP_TOOLCHAIN": toolchain}
    crate = tmp_path / "probe"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "probe"\nversion = "0.1.0"\nedition = "2021"\n\n[workspace]\n')

    def build(body):
        (crate / "src" / "lib.rs").write_text(f"pub fn next(x: u32) -> u32 {{\n    {body}\n}}\n")
        return subprocess.run(["cargo", "build", "--offline"], cwd=crate, env=env, capture_output=True, text=True)

    bad = build("return x + 1;")
    assert bad.returncode != 0 and "needless_return" in bad.stderr, bad.stderr
    good = build("x + 1")
    assert good.returncode == 0, good.stderr
