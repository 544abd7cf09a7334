#!/usr/bin/env bash
# lithe-run (runtime only) against `lithe run` on the same engine files: the same output
# lines and the same .npy files byte for byte, at 1 and 3 threads, FP32 and INT8 engines.
# Usage: test_runner.sh LITHE_BIN SOURCE_DIR LITHE_RUN_BIN
set -u
LITHE="$1"
SRC="$2"
RUNNER="$3"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failn=0
M="$SRC/examples/tiny_cnn.onnx"
"$LITHE" build "$M" -o "$T/fp32.lithe" >/dev/null || exit 1
"$LITHE" build "$M" -o "$T/int8.lithe" --precision int8 --calib random --calib-samples 4 >/dev/null ||
  exit 1
for e in fp32 int8; do
  for t in 1 3; do
    "$LITHE" run "$T/$e.lithe" --random-input --seed 7 --threads "$t" -o "$T/a_$e$t" >"$T/a.txt" || exit 1
    "$RUNNER" "$T/$e.lithe" --random-input --seed 7 --threads "$t" -o "$T/b_$e$t" >"$T/b.txt" || exit 1
    n=$(ls "$T/a_$e$t" | wc -l)
    if [ "$n" -lt 1 ] || ! diff -r "$T/a_$e$t" "$T/b_$e$t" >/dev/null ||
       ! diff <(grep '^output' "$T/a.txt") <(grep '^output' "$T/b.txt") >/dev/null; then
      echo "FAIL $e, $t thread(s): lithe-run differs from lithe run"
      failn=$((failn + 1))
    else
      echo "ok   $e, $t thread(s): $n output file(s) identical; $(grep -m1 '^output' "$T/b.txt")"
    fi
  done
done
# What a device ships: no shared library beyond the C library's own (static by default).
if ldd "$RUNNER" 2>&1 | grep -qE 'protobuf|onnx|crypto|stb'; then
  echo "FAIL lithe-run links $(ldd "$RUNNER" | grep -oE 'lib(protobuf|onnx|crypto|stb)[^ ]*' | tr '\n' ' ')"
  failn=$((failn + 1))
fi
[ "$failn" -eq 0 ]
