#!/usr/bin/env bash
# Installs every Debian package lithe needs to build and test. Idempotent; runs as root
# with no standard input. Skips apt entirely when everything is already installed.
set -euo pipefail
PKGS=(
  cmake ninja-build g++ clang ccache                # toolchain
  libprotobuf-dev protobuf-compiler libonnx-dev     # ONNX protobuf import
  libflatbuffers-dev flatbuffers-compiler           # engine file format
  libcli11-dev libfmt-dev nlohmann-json3-dev        # CLI, formatting, JSON reports
  libgtest-dev libgmock-dev libbenchmark-dev        # tests and microbenchmarks
  libssl-dev                                        # SHA-256 of source models (engine header)
  libxxhash-dev                                     # engine file checksum (header-only XXH64)
  libstb-dev                                        # lithe eval: JPEG/PNG decoding (stb_image)
  libonnx-testdata                                  # ONNX backend conformance suite
  dataset-fashion-mnist                             # real-model accuracy tests (fashion_mnist_*)
  python3 python3-numpy python3-onnx                # test helpers
)
# Node.js and npm run the ONNX Runtime oracle (onnxruntime-node); keep an existing install.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
if [ "${LITHE_WITH_TORCH:-0}" = 1 ]; then
  PKGS+=(python3-torch python3-torchvision)        # exports the torchvision test models
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq </dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
