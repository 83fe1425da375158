#!/usr/bin/env bash
# Installs the local Kafka-protocol broker, nisshi 0.8.1 (tansu's successor, same CLI; it
# evicts a group member that died without leaving, which tansu 0.6.0 never does), with its
# libsql/SQLite storage engine, into $NISSHI_ROOT (default $TRENDSCORE_CACHE/nisshi-0.8.1;
# TRENDSCORE_CACHE defaults to $HOME/.cache/trendscore) unless it is already there. Idempotent.
# nisshi needs a newer rustc than the project's pinned stable: it is built with the installed
# nightly toolchain (`cargo +nightly`), at opt-level 1: 12 min on 2 idle cores the first time
# (20 core-minutes), where the release profile's opt-level 3 takes 25-27 min, for a broker
# that costs the same CPU in the scorer benchmark (deploy/broker/README.md).
# NISSHI_OPT_LEVEL overrides the opt-level.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"  # NISSHI_ROOT, NISSHI_BIN
ROOT="$NISSHI_ROOT"
BIN="$NISSHI_BIN"
if [[ -x "$BIN" ]]; then
    echo "nisshi already installed: $BIN"
    exit 0
fi
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "installing the nightly toolchain for nisshi"
    rustup toolchain install nightly --profile minimal
fi
# The default features have no storage engine for SQLite: libsql is required.
# Built outside the project directory, so its rust-toolchain.toml does not pin the build.
(cd / && CARGO_PROFILE_RELEASE_OPT_LEVEL="${NISSHI_OPT_LEVEL:-1}" cargo +nightly install nisshi --version 0.8.1 --locked --features libsql --root "$ROOT")
echo "installed $BIN"
