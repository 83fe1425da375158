#!/usr/bin/env bash
# Installs the tansu 0.6.0 Kafka-protocol broker (with the libsql/SQLite storage engine) into
# $HOME/.cache/trendscore/tansu-0.6.0 unless it is already there. Idempotent.
# About 10 minutes on 2 cores the first time. Needs crates.io access and a Rust toolchain.
set -euo pipefail
ROOT="${TANSU_ROOT:-$HOME/.cache/trendscore/tansu-0.6.0}"
BIN="$ROOT/bin/tansu"
if [[ -x "$BIN" ]]; then
    echo "tansu already installed: $BIN"
    exit 0
fi
# The default features have no storage engine (memory:// then fails at start): libsql is required.
cargo install tansu --version 0.6.0 --locked --features libsql --root "$ROOT"
echo "installed $BIN"
