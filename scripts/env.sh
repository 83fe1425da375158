# Sourced by the project scripts: where builds and cached tools live.
# A target dir outside the clone lets a fresh clone (CI) reuse compiled dependencies.
export TRENDSCORE_CACHE="${TRENDSCORE_CACHE:-$HOME/.cache/trendscore}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TRENDSCORE_CACHE/target}"
export LIBTORCH_USE_PYTORCH=1
# The local Kafka-protocol broker (deploy/broker/install.sh installs it under NISSHI_ROOT);
# every script and test that runs it takes NISSHI_BIN (BROKER_BIN overrides it in start.sh).
export NISSHI_ROOT="${NISSHI_ROOT:-$TRENDSCORE_CACHE/nisshi-0.8.1}"
export NISSHI_BIN="$NISSHI_ROOT/bin/nisshi"
export PATH="$NISSHI_ROOT/bin:$PATH"
mkdir -p "$TRENDSCORE_CACHE"
