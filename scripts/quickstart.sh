#!/usr/bin/env bash
# The main job on the bundled example: set up, build lithe, build an engine from
# examples/tiny_cnn.onnx, show what the build did, run it on a random image (outputs saved),
# and benchmark it at 1 and 2 threads with a per-node profile, with lithe-run (the lean runner
# a device ships: engine files only, the runtime alone, static).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/lithe build examples/tiny_cnn.onnx -o build/tiny_cnn.lithe --input-shape image=1x3x64x64
./build/lithe run build/tiny_cnn.lithe --random-input --seed 1 --output-dir build/quickstart-out
for t in 1 2; do
  ./build/lithe-run build/tiny_cnn.lithe --random-input --seed 1 --warmup 10 --runs 200 \
    --threads "$t" $([ "$t" = 1 ] && echo --profile) | tail -n +2
done
