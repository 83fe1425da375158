# The trainer image: `trainer` (fit, evaluate, predict; the only binary that links libtorch) and
# `features` (prices -> weekly rows), on a CUDA base. Build from the repository root:
#
#   docker build -f deploy/docker/trainer.Dockerfile -t trendscore-trainer:0.1.0 .
#
# libtorch is torch 2.11.0's lib/ from `pip install torch==2.11.0` (CUDA 13.0 build; the CUDA and
# cuDNN libraries come as pip wheels into the same venv), found at build time through
# LIBTORCH_USE_PYTORCH=1 and at run time through the rpath trainer/build.rs writes. The same
# venv path is used in both stages, so the rpath holds.
#
# GPU: `trainer fit --device auto|cuda` on a node with an NVIDIA driver >= 580 (CUDA 13).
# CPU fallback: `--device auto` trains on the CPU where no GPU is visible (the CUDA libraries
# load without a driver; CUDA is only initialised when a device is found).
# linux/amd64 (torch's CUDA wheels); the pins are in deploy/docker/trainer-requirements.txt.

# The pinned Rust toolchain (rust-toolchain.toml), copied into the CUDA base below.
FROM rust:1.95.0-slim-bookworm AS rust

FROM nvidia/cuda:13.0.2-base-ubuntu24.04 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates g++ make pkg-config python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/trainer-requirements.txt /tmp/trainer-requirements.txt
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: -r /tmp/trainer-requirements.txt \
 && /opt/venv/bin/python -c "import torch; assert torch.__version__.split('+')[0] == '2.11.0', torch.__version__"
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/opt/venv/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUSTUP_TOOLCHAIN=1.95.0 LIBTORCH_USE_PYTORCH=1 CARGO_TARGET_DIR=/src/target CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p trendscore-trainer -p trendscore-features --bins \
 && mkdir -p /out \
 && cp /src/target/release/trainer /src/target/release/features /out/

FROM nvidia/cuda:13.0.2-base-ubuntu24.04 AS trainer
# python3: the venv's interpreter (for `python3 -c "import torch; print(torch.cuda.is_available())"`
# diagnostics); the trainer itself only loads torch/lib.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 trainer \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/trainer --create-home \
      --shell /usr/sbin/nologin trainer
COPY --from=build /opt/venv /opt/venv
COPY --from=build /out/trainer /out/features /usr/local/bin/
# LIBTORCH_USE_PYTORCH matters at build time; kept so `cargo` in a derived image finds the same
# libtorch.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LIBTORCH_USE_PYTORCH=1
# Fails the build if libtorch (or a CUDA library it links) does not load.
RUN trainer --help >/dev/null && features --help >/dev/null
LABEL org.opencontainers.image.title="trendscore-trainer" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
WORKDIR /var/lib/trainer
ENTRYPOINT ["/usr/local/bin/trainer"]
CMD ["--help"]
