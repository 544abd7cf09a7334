#!/usr/bin/env bash
# The ASan + UBSan job: builds the `asan` preset (clang, build-asan/, ccache when present) and
# runs the unit tests and the malformed-input corpus (tests/malformed/run_corpus.sh) under it.
# Any sanitizer report, failed test or failed corpus case fails the job.
#
# Usage: scripts/sanitize.sh
# Env:   LITHE_SANITIZE_MODELS  real models the model-driven unit tests use under ASan
#                               (default "ppocr_cls,blazeface": the two smallest; the others
#                               take minutes each under ASan and run in the release job)
#        LITHE_CONCURRENCY_RUNS inferences of the concurrency test (default here 500)
#        LITHE_CORPUS_MAX_MS    per-case time limit of the corpus (default here 5000: ASan
#                               start-up and checks cost a few times the release time)
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
cmake --preset asan -DLITHE_WERROR=ON >/dev/null
ninja -C build-asan -j2 lithe_unit_tests lithe_cli
t_build=$(date +%s)

# A report stops the process with a non-zero exit code; leaks count.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
models=${LITHE_SANITIZE_MODELS:-ppocr_cls,blazeface}
export LITHE_THREAD_MODELS=$models LITHE_BUILD_MODELS=$models LITHE_PLAN_MODELS=$models
export LITHE_FP16_MODELS=$models
export LITHE_CONCURRENCY_RUNS=${LITHE_CONCURRENCY_RUNS:-500}

# Unit tests: two shards in parallel (one per core).
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
for shard in 0 1; do
  GTEST_TOTAL_SHARDS=2 GTEST_SHARD_INDEX=$shard build-asan/tests/lithe_unit_tests --gtest_brief=1 \
    >"$logs/shard$shard.log" 2>&1 &
  pids+=($!)
done
unit_rc=0
for shard in 0 1; do
  rc=0
  wait "${pids[$shard]}" || rc=$?
  tail -n 3 "$logs/shard$shard.log" | sed "s/^/unit tests shard $shard: /"
  if [ "$rc" -ne 0 ]; then
    unit_rc=1
    grep -E '^\[  FAILED  \]|ERROR: (Address|Leak)Sanitizer|runtime error' "$logs/shard$shard.log" | head -20 || true
  fi
done
t_unit=$(date +%s)

corpus_rc=0
if [ -f tests/malformed/run_corpus.sh ]; then
  LITHE_CORPUS_MAX_MS=${LITHE_CORPUS_MAX_MS:-5000} bash tests/malformed/run_corpus.sh build-asan/lithe \
    >"$logs/corpus.log" 2>&1 || corpus_rc=$?
  tail -n 5 "$logs/corpus.log"
else
  echo "sanitize.sh: tests/malformed/run_corpus.sh not present yet: malformed corpus skipped"
fi
t_end=$(date +%s)

echo "sanitize.sh: build $((t_build - t0)) s, unit tests $((t_unit - t_build)) s," \
  "malformed corpus $((t_end - t_unit)) s, total $((t_end - t0)) s (real models: $models)"
if [ "$unit_rc" -ne 0 ] || [ "$corpus_rc" -ne 0 ]; then
  echo "sanitize.sh: FAILED (unit tests exit $unit_rc, corpus exit $corpus_rc)"
  exit 1
fi
echo "sanitize.sh: clean"
