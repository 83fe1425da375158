# The scorer image: `scorer` (run, backfill, replay, topics) and `exporter`, with ONNX Runtime
# for the ort backends and tract built in. Two targets, built from the repository root:
#
#   docker build -f deploy/docker/scorer.Dockerfile --target scorer      -t trendscore-scorer:0.1.0 .
#   docker build -f deploy/docker/scorer.Dockerfile --target scorer-cuda -t trendscore-scorer:0.1.0-cuda .
#
# `scorer` (the default, last stage): Debian slim, ONNX Runtime CPU from the PyPI wheel the
# tests run against (linux/amd64 and linux/arm64). `scorer-cuda`: the CUDA execution provider
# on an nvidia/cuda runtime base with cuDNN (linux/amd64 only); run it with `backend = "ort-cuda"`.
#
# Pins: the Rust image = rust-toolchain.toml; ORT_VERSION = onnxruntime in requirements.txt;
# every base image has a fixed tag. tests/python/test_deploy.py fails when one of them drifts.
# BuildKit is required (cache mounts); it is the default builder of Docker 23+.

ARG ORT_VERSION=1.32.0

# ---------------------------------------------------------------------------------------------
# Build: only the packages this image ships. Neither links libtorch (only the trainer does).
FROM rust:1.95.0-slim-bookworm AS build
# librdkafka (rdkafka-sys) builds with make and a C/C++ compiler; pkg-config finds zlib and
# OpenSSL (Kafka TLS and SASL/SCRAM); perl is only needed if OpenSSL is ever vendored.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make g++ pkg-config zlib1g-dev libssl-dev perl \
 && rm -rf /var/lib/apt/lists/*
# RUSTUP_TOOLCHAIN overrides rust-toolchain.toml so rustup does not try to add rustfmt/clippy.
ENV RUSTUP_TOOLCHAIN=1.95.0 CARGO_TARGET_DIR=/src/target CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p trendscore-scorer -p trendscore-exporter --bins \
 && mkdir -p /out \
 && cp /src/target/release/scorer /src/target/release/exporter /out/

# ---------------------------------------------------------------------------------------------
# ONNX Runtime (CPU): libonnxruntime.so from the onnxruntime wheel on PyPI, the same build the
# tests load through the Python package. The wheel is only unzipped, never installed.
FROM debian:bookworm-20260421-slim AS ort-cpu
ARG ORT_VERSION
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl unzip \
 && rm -rf /var/lib/apt/lists/*
RUN set -eu; \
    case "${TARGETARCH:-amd64}" in \
      amd64) url=https://files.pythonhosted.org/packages/a3/81/55845186c20cba59f614991f4065dea148e48eeb9749893768c85ce64327/onnxruntime-1.32.0-cp312-cp312-manylinux_2_28_x86_64.whl; \
             sha=99e1074c4b2197accd5073052a465361be17b89c093b8ffb6e6bd8f986c52df8 ;; \
      arm64) url=https://files.pythonhosted.org/packages/4a/8f/1e43fb994513c7c7a9c6965272ef89d963c1bd4080993a6267bf913701d1/onnxruntime-1.32.0-cp312-cp312-manylinux_2_28_aarch64.whl; \
             sha=e36c187006e7a7c8b8d6d57f1a209dd63f52430dca6c282b177718ad6b841054 ;; \
      *) echo "no ONNX Runtime wheel for ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    curl -fsSL -o /tmp/ort.whl "$url"; \
    echo "$sha  /tmp/ort.whl" | sha256sum -c -; \
    mkdir -p /opt/onnxruntime/lib; \
    unzip -j /tmp/ort.whl "onnxruntime/capi/libonnxruntime.so.${ORT_VERSION}" -d /opt/onnxruntime/lib; \
    rm /tmp/ort.whl

# ---------------------------------------------------------------------------------------------
# ONNX Runtime (CUDA 13): the official release archive. onnxruntime-gpu ${ORT_VERSION} is not on
# PyPI (1.31.1 is its newest there), so the GitHub release is the source. Pass the archive's
# sha256 (from the release page) as ORT_CUDA_SHA256 to have it checked; CI builds must set it.
FROM debian:bookworm-20260421-slim AS ort-cuda
ARG ORT_VERSION
ARG ORT_CUDA_SHA256=""
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN set -eu; \
    name="onnxruntime-linux-x64-gpu_cuda13-${ORT_VERSION}"; \
    curl -fsSL -o /tmp/ort.tgz "https://github.com/microsoft/onnxruntime/releases/download/v${ORT_VERSION}/${name}.tgz"; \
    if [ -n "${ORT_CUDA_SHA256}" ]; then echo "${ORT_CUDA_SHA256}  /tmp/ort.tgz" | sha256sum -c -; \
    else echo "WARNING: ORT_CUDA_SHA256 not set; ${name}.tgz sha256: $(sha256sum /tmp/ort.tgz | cut -d' ' -f1)" >&2; fi; \
    mkdir -p /tmp/ort /opt/onnxruntime/lib; \
    tar -xzf /tmp/ort.tgz -C /tmp/ort --strip-components=1; \
    cp -a /tmp/ort/lib/libonnxruntime.so* /tmp/ort/lib/libonnxruntime_providers_shared.so \
          /tmp/ort/lib/libonnxruntime_providers_cuda.so /opt/onnxruntime/lib/; \
    test -f "/opt/onnxruntime/lib/libonnxruntime.so.${ORT_VERSION}"; \
    rm -rf /tmp/ort.tgz /tmp/ort

# ---------------------------------------------------------------------------------------------
# CUDA variant. The CUDA provider needs cuDNN 9 and the CUDA 13 runtime libraries (cudart,
# cuBLAS, cuFFT, cuRAND), all in this base; the driver comes from the node (>= 580 for CUDA 13).
FROM nvidia/cuda:13.1.1-cudnn-runtime-ubuntu24.04 AS scorer-cuda
ARG ORT_VERSION
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3t64 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 scorer \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin scorer \
 && mkdir -p /var/lib/scorer && chown 10001:10001 /var/lib/scorer
COPY --from=ort-cuda /opt/onnxruntime /opt/onnxruntime
COPY --from=build /out/scorer /out/exporter /usr/local/bin/
# The providers are found beside libonnxruntime (same directory).
ENV ORT_DYLIB_PATH=/opt/onnxruntime/lib/libonnxruntime.so.${ORT_VERSION} \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN scorer --help >/dev/null && exporter --help >/dev/null
USER 10001:10001
WORKDIR /var/lib/scorer
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/scorer"]
CMD ["run", "--config", "/etc/trendscore/config/scorer.toml"]

# ---------------------------------------------------------------------------------------------
# CPU image (default target).
FROM debian:bookworm-20260421-slim AS scorer
ARG ORT_VERSION
# libssl3: Kafka TLS; libstdc++6: ONNX Runtime; ca-certificates: TLS to brokers and S3.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 scorer \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin scorer \
 && mkdir -p /var/lib/scorer && chown 10001:10001 /var/lib/scorer
COPY --from=ort-cpu /opt/onnxruntime /opt/onnxruntime
COPY --from=build /out/scorer /out/exporter /usr/local/bin/
# ORT_DYLIB_PATH: where the ort backends load ONNX Runtime from (infer/src/ort_backend.rs).
# SSL_CERT_FILE: the system trust store for OpenSSL (librdkafka) and rustls, whatever their
# compiled-in default directories are.
ENV ORT_DYLIB_PATH=/opt/onnxruntime/lib/libonnxruntime.so.${ORT_VERSION} \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Fails the build if a shared library the binaries link is missing from this base.
RUN scorer --help >/dev/null && exporter --help >/dev/null
LABEL org.opencontainers.image.title="trendscore-scorer" \
      org.opencontainers.image.description="trendscore scoring service (Kafka -> ONNX model -> Parquet + topic)" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
WORKDIR /var/lib/scorer
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/scorer"]
CMD ["run", "--config", "/etc/trendscore/config/scorer.toml"]
