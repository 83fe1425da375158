# Sourced by the project scripts: where builds and cached tools live.
# A target dir outside the clone lets a fresh clone (CI) reuse compiled dependencies.
export TRENDSCORE_CACHE="${TRENDSCORE_CACHE:-$HOME/.cache/trendscore}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TRENDSCORE_CACHE/target}"
export LIBTORCH_USE_PYTORCH=1
export PATH="$TRENDSCORE_CACHE/nisshi-0.8.1/bin:$PATH"
mkdir -p "$TRENDSCORE_CACHE"
