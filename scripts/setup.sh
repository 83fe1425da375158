#!/usr/bin/env bash
# Installs what a fresh machine lacks; idempotent and quick when everything is there.
#  - Debian packages the builds need (a C toolchain for librdkafka and aws-lc, OpenSSL
#    headers, cmake, a font for the plots);
#  - Python packages (requirements.txt): torch==2.11.0 (libtorch for tch 0.24), onnxruntime
#    (the ONNX Runtime library the scorer loads dynamically), and the test-side tools
#    (numpy, onnx, pyarrow, pytest, safetensors, confluent-kafka, duckdb, boto3 and the moto
#    S3 server, PyYAML and kubernetes-validate);
#  - with SETUP_BROKER=1 (scripts/bench.sh sets it; scripts/test.sh builds it in the
#    background instead): the Kafka-protocol broker nisshi 0.8.1, built once with cargo
#    +nightly (about 12 minutes on 2 cores, deploy/broker/install.sh) and cached under
#    $TRENDSCORE_CACHE. The main job does not wait for it: it uses the broker when it is
#    installed and an embedded one otherwise (see scripts/demo.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

# make, g++ and libssl-dev build librdkafka with TLS/SASL (rdkafka-sys); cmake builds aws-lc
# (the TLS of object_store's S3/GCS/Azure clients); a TrueType font draws the plots' text.
APT_PACKAGES=(pkg-config make g++ libssl-dev cmake openssl time fonts-dejavu-core)
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
for m in ["numpy", "onnx", "onnxruntime", "pyarrow", "pytest", "safetensors", "confluent_kafka", "duckdb",
          "boto3", "moto.server", "yaml", "kubernetes_validate"]:
    importlib.import_module(m)
PYEOF
then
  echo "setup: installing Python packages (torch 2.11.0 is large: this takes a few minutes once)"
  "$PY" -m pip install -q -r requirements.txt
fi

if [ "${SETUP_BROKER:-0}" = 1 ]; then
  deploy/broker/install.sh
fi
echo "setup: ok (cargo target dir: $CARGO_TARGET_DIR)"
