#!/usr/bin/env bash
# Installs what a fresh machine lacks; idempotent and quick when everything is there.
#  - Debian packages the builds need (protobuf compiler, cmake, ...);
#  - Python packages: torch==2.11.0 (libtorch for tch 0.24), onnxruntime (the ONNX Runtime
#    library the scorer loads dynamically), and the test-side tools (numpy, onnx, pyarrow,
#    pytest, safetensors, confluent-kafka, duckdb, PyYAML and kubernetes-validate);
#  - the Kafka-protocol broker (tansu 0.6.0, built once and cached under ~/.cache/trendscore).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

# make and g++ build librdkafka (rdkafka-sys); a TrueType font draws the text of the plots.
APT_PACKAGES=(pkg-config make g++ fonts-dejavu-core)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! "$PY" - <<'PYEOF' 2>/dev/null
import importlib, sys
import torch
assert torch.__version__.split("+")[0] == "2.11.0", torch.__version__
for m in ["numpy", "onnx", "onnxruntime", "pyarrow", "pytest", "safetensors", "confluent_kafka", "duckdb", "yaml", "kubernetes_validate"]:
    importlib.import_module(m)
PYEOF
then
  echo "setup: installing Python packages (torch 2.11.0 is large: this takes a few minutes once)"
  "$PY" -m pip install -q -r requirements.txt
fi

if [ -x deploy/broker/install.sh ]; then
  deploy/broker/install.sh
fi
echo "setup: ok (cargo target dir: $CARGO_TARGET_DIR)"
