#!/usr/bin/env bash
# The main job on the bundled example: set up, build, import and run examples/tiny_cnn.onnx
# on a random image, print its outputs and timing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/lithe run examples/tiny_cnn.onnx --random-input --seed 1 \
  --input-shape image=1x3x64x64 --runs 20 --output-dir build/quickstart-out
