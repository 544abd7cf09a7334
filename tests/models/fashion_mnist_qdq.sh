#!/usr/bin/env bash
# Explicit quantization on a real model: scripts/make_qdq_model.py turns
# examples/fashion_mnist_cnn.onnx into an ONNX Runtime-style QDQ model (min/max ranges from 32
# training images), `lithe build` imports it as INT8 from its own scales (no --calib), and
# fashion_mnist.sh measures top-1 on the 10,000 test images against MIN_TOP1 and, when ONNX
# Runtime is installed, against ONNX Runtime's top-1 on the same QDQ model (within P points):
#
#   fashion_mnist_qdq.sh [--ort-tolerance P] LITHE_BIN CACHE_DIR MIN_TOP1 [BUILD_ARGS...]
#
# Exit 0 pass, 1 fail, 2 usage error.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-/usr/bin/python3}"
TOL_ARGS=()
if [ "${1:-}" = "--ort-tolerance" ]; then
  TOL_ARGS=(--ort-tolerance "$2")
  shift 2
fi
if [ $# -lt 3 ]; then
  echo "usage: fashion_mnist_qdq.sh [--ort-tolerance P] LITHE_BIN CACHE_DIR MIN_TOP1 [BUILD_ARGS...]" >&2
  exit 2
fi
LITHE="$1"
CACHE="$2"
mkdir -p "$CACHE"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT

# The 32 ranging images, once per CACHE_DIR (the lock as in fashion_mnist.sh).
RANGE="$CACHE/qdq-range-32"
stamp="$(sha256sum "$SRC/scripts/fashion_mnist_data.py" | cut -c1-16) train 32"
exec 9>"$CACHE/lock-qdq"
flock 9
if [ "$(cat "$RANGE/stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$RANGE"
  "$PY" "$SRC/scripts/fashion_mnist_data.py" "$RANGE" --split train --count 32 >/dev/null
  echo "$stamp" >"$RANGE/stamp"
fi
flock -u 9

"$PY" "$SRC/scripts/make_qdq_model.py" "$SRC/examples/fashion_mnist_cnn.onnx" "$T/fashion_mnist_qdq.onnx" \
  --calib "$RANGE" --samples 32 --lithe "$LITHE"
FASHION_MNIST_MODEL="$T/fashion_mnist_qdq.onnx" \
  bash "$HERE/fashion_mnist.sh" "${TOL_ARGS[@]+"${TOL_ARGS[@]}"}" "$@"
