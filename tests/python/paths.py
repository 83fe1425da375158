"""Where the project's builds are: the one rule every Python helper and test uses.

The target dir is the one scripts/env.sh sets: $CARGO_TARGET_DIR, else
$TRENDSCORE_CACHE/target, else ~/.cache/trendscore/target. A binary is $<NAME>_BIN when set
(scripts/test.sh exports FEATURES_BIN, TRAINER_BIN, EXPORTER_BIN and SCORER_BIN, the build it
just made), else the newer of the release and dev builds there, so a stale release build is
never run in place of the code just built."""

from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("TRENDSCORE_CACHE", os.path.expanduser("~/.cache/trendscore"))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(CACHE, "target"))
# The broker, as scripts/env.sh sets it (deploy/broker/install.sh installs it there).
NISSHI_BIN = os.environ.get("NISSHI_BIN") or os.path.join(
    os.environ.get("NISSHI_ROOT", os.path.join(CACHE, "nisshi-0.8.1")), "bin", "nisshi")
BUILD_HINT = "build it with scripts/test.sh, or `. scripts/env.sh && cargo build --workspace --bins`"


def binary(name: str) -> str | None:
    """The path of the project's binary `name` (features, trainer, exporter, scorer), or None."""
    env = os.environ.get(f"{name.upper()}_BIN")
    if env:
        return env
    found = [p for p in (os.path.join(TARGET, prof, name) for prof in ("release", "debug")) if os.path.isfile(p)]
    return max(found, key=os.path.getmtime) if found else None
