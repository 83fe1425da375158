#!/usr/bin/env bash
# Installs the local Kafka-protocol broker, nisshi 0.8.1 (tansu's successor, same CLI; it
# evicts a group member that died without leaving, which tansu 0.6.0 never does), with its
# libsql/SQLite storage engine, into $HOME/.cache/trendscore/nisshi-0.8.1 unless it is
# already there. Idempotent. nisshi needs a newer rustc than the project's pinned stable: it
# is built with the installed nightly toolchain (`cargo +nightly`), about 25 minutes on
# 2 idle cores the first time.
set -euo pipefail
ROOT="${NISSHI_ROOT:-$HOME/.cache/trendscore/nisshi-0.8.1}"
BIN="$ROOT/bin/nisshi"
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
(cd / && cargo +nightly install nisshi --version 0.8.1 --locked --features libsql --root "$ROOT")
echo "installed $BIN"
